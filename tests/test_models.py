"""Model registry: the embedded model is right, zoo models fail clearly offline, checkpoints load."""

from __future__ import annotations

import io

import pytest
import torch
import torchvision

from rsviz.errors import CheckpointMismatch, ModelUnavailable
from rsviz.images import load_sample, preprocess
from rsviz.models import (REGISTRY, imagenet_classes, load_checkpoint, load_model, top_k,
                          _remap_lite0_key)


@pytest.fixture(scope="module")
def lite0():
    return load_model("efficientnet_lite0")


def _top5_names(model, sample):
    info = model.info
    x = preprocess(load_sample(sample).original, info.input_size, info.resize, info.interpolation)
    with torch.inference_mode():
        logits = model(x[None])[0]
    return [info.class_name(c) for c, _ in top_k(logits, 5)], top_k(logits, 1)[0][1]


def test_lite0_recognises_bundled_photos(lite0):
    cat, _ = _top5_names(lite0, "chelsea")
    assert {"tiger cat", "tabby", "Egyptian cat"} & set(cat[:3])
    coffee, p = _top5_names(lite0, "coffee")
    assert coffee[0] == "espresso" and p > 0.9  # 95% with the right (0.5, 0.5) normalisation


def test_lite0_preprocessing_is_the_tf_one(lite0):
    """The weights come from TensorFlow: mean = std = 0.5 and bicubic resize (DESIGN.md §4)."""
    assert lite0.info.mean == (0.5, 0.5, 0.5) and lite0.info.std == (0.5, 0.5, 0.5)
    assert lite0.info.interpolation == "bicubic"
    assert lite0.info.num_classes == 1000 and len(imagenet_classes()) == 1000


def test_lite0_key_remap_covers_every_block():
    assert _remap_lite0_key("_blocks.0._depthwise_conv.weight") == "blocks.0.0.conv_dw.weight"
    assert _remap_lite0_key("_blocks.1._expand_conv.weight") == "blocks.1.0.conv_pw.weight"
    assert _remap_lite0_key("_blocks.15._project_conv.weight") == "blocks.6.0.conv_pwl.weight"
    assert _remap_lite0_key("_blocks.14._bn2.bias") == "blocks.5.3.bn3.bias"
    assert _remap_lite0_key("_fc.weight") == "classifier.weight"


def test_zoo_models_fail_clearly_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for name in ("resnet50.imagenet1k_v1", "resnet50.imagenet1k_v2", "resnet18.imagenet1k_v1",
                 "wide_resnet50_2.imagenet1k_v1"):
        with pytest.raises(ModelUnavailable) as info:
            load_model(name)
        message = str(info.value)
        assert ".pth" in message and "copy it into" in message and str(tmp_path) in message


def test_zoo_model_loads_from_hub_cache(monkeypatch, tmp_path):
    """With the weights file in torch's hub cache, the real torchvision loading path is used."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    net = torchvision.models.resnet18()
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(net.state_dict(), folder / weights.url.rsplit("/", 1)[1])
    model = REGISTRY["resnet18.imagenet1k_v1"]
    # check_hash would reject our random file: load through the registry with hash off
    monkeypatch.setattr(type(weights), "get_state_dict",
                        lambda self, progress=True, check_hash=False: torch.load(
                            folder / self.url.rsplit("/", 1)[1], weights_only=True))
    loaded = load_model(model.name)
    assert loaded.info.num_classes == 1000
    assert torch.equal(loaded.net.fc.weight, net.fc.weight)


def _resnet18_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("prefix,wrap", [("", None), ("module.", None), ("1.module.", None),
                                         ("module.model.", "state_dict")])
def test_checkpoint_prefixes(prefix, wrap):
    net = torchvision.models.resnet18(num_classes=10)
    state = {prefix + k: v for k, v in net.state_dict().items()}
    if prefix == "module.model.":  # Madry et al.'s layout also stores a normaliser and an attacker copy
        state["module.normalizer.new_mean"] = torch.zeros(3, 1, 1)
    obj = {wrap: state, "epoch": 3} if wrap else state
    model = load_checkpoint("resnet18", _resnet18_bytes(obj))
    assert model.info.num_classes == 10
    assert torch.equal(model.net.fc.weight, net.fc.weight)
    x = torch.rand(2, 3, 64, 64)
    expected = net.eval()((x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
                          / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
    assert torch.allclose(model(x), expected, atol=1e-5)


def test_checkpoint_normalized_inside_adds_no_normalisation():
    net = torchvision.models.resnet18(num_classes=4).eval()
    model = load_checkpoint("resnet18", _resnet18_bytes(net.state_dict()), normalized_inside=True)
    x = torch.rand(1, 3, 64, 64)
    assert torch.allclose(model(x), net(x), atol=1e-5)


def test_checkpoint_mismatch_is_clear():
    state = torchvision.models.resnet18(num_classes=10).state_dict()
    with pytest.raises(CheckpointMismatch, match="does not match resnet50"):
        load_checkpoint("resnet50", _resnet18_bytes(state))
    state["layer1.0.conv1.weight"] = torch.zeros(3, 3, 3, 3)
    with pytest.raises(CheckpointMismatch, match="shape mismatch"):
        load_checkpoint("resnet18", _resnet18_bytes(state))
    with pytest.raises(CheckpointMismatch, match="weights_only"):
        load_checkpoint("resnet18", b"not a checkpoint at all")


def test_checkpoint_refuses_pickled_objects():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    buffer = io.BytesIO()
    torch.save({"x": Evil()}, buffer)
    with pytest.raises(CheckpointMismatch):
        load_checkpoint("resnet18", buffer.getvalue())


def test_analytic_models_match_their_formulas(linear_model, ball_model):
    x = torch.rand(5, 3, 32, 32)
    lin = linear_model.net
    assert torch.equal(linear_model(x).argmax(1), (lin.score(x) > 0).long())
    p = lin.exact_p(x, 0.3)
    assert p.shape == (5, 2) and abs(p.sum(1) - 1).max() < 1e-12
    ball = ball_model.net
    inside = (x.flatten(1) - ball.center).norm(dim=1) < ball.radius
    assert torch.equal(ball_model(x).argmax(1), (~inside).long())


def test_unknown_model():
    with pytest.raises(ModelUnavailable, match="Unknown model"):
        load_model("nope")
