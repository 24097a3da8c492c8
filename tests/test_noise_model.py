"""The shipped noise-robust EfficientNet-Lite0: checksum, corruption refused, logits as trained."""

import hashlib
import shutil

import pytest
import torch

from rsviz.errors import ModelUnavailable
from rsviz.models import REGISTRY, load_model
from rsviz.weights import FOLDER, efficientnet_lite0_noise, load_state, manifest

NAME = "efficientnet_lite0_noise"


def test_file_matches_its_checksum_and_size_limit():
    entry = manifest()[NAME]
    raw = (FOLDER / entry["file"]).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == entry["sha256"]
    assert len(raw) <= 10_000_000
    state = load_state(NAME)
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())


def test_logits_close_to_the_fp32_training_result():
    # The fp32 checkpoint's top-20 logits on a fixed input were recorded at export; the fp16
    # weights (computed in fp32) must reproduce them within 0.1 (measured ≈ 0.03), and a clear argmax.
    model = load_model(NAME)
    x = torch.rand((2, 3, 224, 224), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        logits = model(x)
    for row, reference in zip(logits, manifest()[NAME]["reference_top20"]):
        indices = [i for i, _ in reference]
        values = torch.tensor([v for _, v in reference])
        assert (row[indices] - values).abs().max() < 0.1
        if values[0] - values[1] > 0.2:  # a clear winner keeps its place
            assert int(row.argmax()) == indices[0]


def test_corrupted_or_truncated_file_is_refused_in_one_line(tmp_path):
    source = FOLDER / manifest()[NAME]["file"]
    flipped = tmp_path / "flipped.pt"
    shutil.copy(source, flipped)
    raw = bytearray(flipped.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    flipped.write_bytes(bytes(raw))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(source.read_bytes()[:1000])
    for path in (flipped, truncated):
        with pytest.raises(ModelUnavailable) as info:
            efficientnet_lite0_noise(path)
        assert "corrupted" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ModelUnavailable, match="cannot be read"):
        load_state(NAME, tmp_path / "missing.pt")


def test_registry_entry_says_the_sigma_it_was_trained_for():
    spec = REGISTRY[NAME]
    assert spec.extra["trained_sigma"] == manifest()[NAME]["trained_sigma"] == 0.25
    assert not spec.needs_download and not spec.test_only
