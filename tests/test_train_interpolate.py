"""train/interpolate.py: θ(α) = (1 − α)·θ_clean + α·θ_noise, exactly, on the real Lite0."""

import copy

import pytest
import torch

from rsviz.models import load_model
from train.interpolate import interpolate, main


@pytest.fixture(scope="module")
def pair():
    clean = load_model("efficientnet_lite0")
    other = copy.deepcopy(clean)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=generator))
    return clean, other


def test_weights_are_the_convex_combination(pair):
    clean, other = pair
    mixed = interpolate(clean, other, 0.3).state_dict()
    a, b = clean.state_dict(), other.state_dict()
    for key, value in mixed.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.7 * a[key] + 0.3 * b[key], rtol=0, atol=1e-6)
        else:  # integer buffers (BN's num_batches_tracked) are copied, never averaged
            assert torch.equal(value, a[key])
    assert any(not torch.equal(mixed[k], a[k]) for k in a if a[k].is_floating_point())


def test_the_ends_are_the_two_networks(pair):
    clean, other = pair
    x = torch.rand((2, 3, 224, 224), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        torch.testing.assert_close(interpolate(clean, other, 0.0)(x), clean(x))
        torch.testing.assert_close(interpolate(clean, other, 1.0)(x), other(x))


def test_refuses_the_evaluation_sample(tmp_path):
    folder = tmp_path / "imagenet-sample"
    folder.mkdir()
    (folder / "labels.csv").write_text("filename,class_index\n")
    with pytest.raises(SystemExit, match="evaluation set"):
        main(["--data", str(folder), "--distilled", "unused.pt", "--out", str(tmp_path / "out")])


def test_reads_a_shipped_fp16_state_dict_and_a_distillation_checkpoint(pair, tmp_path):
    from train.interpolate import load_distilled

    _, other = pair
    half = {k: v.half() if v.is_floating_point() else v for k, v in other.net.state_dict().items()}
    torch.save(half, tmp_path / "net.fp16.pt")
    torch.save({"student": other.state_dict(), "state": "{}"}, tmp_path / "best.pt")
    x = torch.rand((1, 3, 224, 224), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        reference = other(x)
        torch.testing.assert_close(load_distilled(str(tmp_path / "best.pt"))(x), reference)
        assert float((load_distilled(str(tmp_path / "net.fp16.pt"))(x) - reference).abs().max()) < 0.1
