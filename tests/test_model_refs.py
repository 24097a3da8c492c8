"""Model references (rsviz.models.refs): one syntax for the sidebar, the CLI and study plans.

Weights are replicas with random weights put where the libraries keep them (a Hugging Face
cache laid out as huggingface_hub writes it, torch's hub folder); the loaded model must give
the library's own logits. Offline (RSVIZ_OFFLINE=1, set by conftest) a missing file is one line
naming it and where it goes, and nothing is downloaded."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch

from rsviz.errors import ConfigError, ModelUnavailable
from rsviz.models import load_model_ref, parse_model_ref
from tests.helpers import random_batchnorm

TOL = 1e-5
REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def local_caches(tmp_path, monkeypatch):
    """Empty HF and torch caches of our own, and no network at all."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("RSVIZ_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield tmp_path


def hf_cache_put(root, repo: str, files: dict[str, bytes]) -> None:
    """Lay files out as huggingface_hub's cache does: models--ORG--NAME/{refs/main,snapshots}."""
    folder = root / ("models--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(REVISION)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)


def safetensors_bytes(state: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in state.items()})


def random_timm(name: str, seed: int = 0, **kwargs):
    import timm

    torch.manual_seed(seed)
    return random_batchnorm(timm.create_model(name, pretrained=False, **kwargs).eval())


def pixels(size: int) -> torch.Tensor:
    return torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(3)) * 1.4 - 0.2


def test_parse_every_syntax():
    assert parse_model_ref("tiny_cnn").scheme == "registry"
    assert parse_model_ref("timm:resnet18.a1_in1k").name == "resnet18.a1_in1k"
    ref = parse_model_ref("timm:resnet18@/w/model.safetensors")
    assert (ref.name, ref.file) == ("resnet18", "/w/model.safetensors")
    assert parse_model_ref("torchvision:resnet50.IMAGENET1K_V2").scheme == "torchvision"
    assert parse_model_ref("hf-hub:timm/vit_base_patch16_224.augreg_in21k").scheme == "hf-hub"
    assert parse_model_ref("checkpoint:/a/b.pth") == parse_model_ref("auto:/a/b.pth")
    assert parse_model_ref("resnet18:/a/b.pth").arch == "resnet18"
    assert str(parse_model_ref("cifar_resnet110:/a/b.pth")) == "cifar_resnet110:/a/b.pth"
    with pytest.raises(ConfigError, match=r"Unknown model 'tiny_cn' \(did you mean 'tiny_cnn'\?\)"):
        parse_model_ref("tiny_cn")
    with pytest.raises(ConfigError, match="give a name after 'timm:'"):
        parse_model_ref("timm:")


def test_timm_from_the_hugging_face_cache_gives_its_logits(local_caches):
    net = random_timm("test_resnet.r160_in1k")
    hf_cache_put(local_caches / "hf", "timm/test_resnet.r160_in1k",
                 {"model.safetensors": safetensors_bytes(net.state_dict())})
    model = load_model_ref("timm:test_resnet")  # the default tag's weights
    info = model.info
    assert (info.input_size, info.resize, info.interpolation) == (160, 168, "bilinear")
    assert info.num_classes == 1000 and info.class_names[0] == "tench"
    assert info.name == "timm:test_resnet" and info.model_id.startswith("timm-test_resnet-")
    x = pixels(64)
    with torch.no_grad():
        expected = net((x - 0.5) / 0.5)
        assert (model(x) - expected).abs().max().item() <= TOL
    again = load_model_ref("timm:test_resnet.r160_in1k")
    assert again.info.model_id.split("-")[-1] == info.model_id.split("-")[-1]


def test_timm_with_a_local_weights_file(local_caches):
    net = random_timm("test_resnet", seed=1, num_classes=1000)
    path = local_caches / "mine.safetensors"
    path.write_bytes(safetensors_bytes(net.state_dict()))
    model = load_model_ref(f"timm:test_resnet@{path}")
    x = pixels(32)
    with torch.no_grad():
        assert (model(x) - net((x - 0.5) / 0.5)).abs().max().item() <= TOL
    with pytest.raises(ConfigError, match="no weights file at"):
        load_model_ref(f"timm:test_resnet@{local_caches / 'absent.safetensors'}")


def test_hf_hub_repo_through_timm(local_caches):
    net = random_timm("test_resnet", seed=2, num_classes=10)
    config = {"architecture": "test_resnet", "num_classes": 10,
              "label_names": [f"thing {i}" for i in range(10)],
              "pretrained_cfg": {"input_size": [3, 96, 96], "interpolation": "bicubic",
                                 "crop_pct": 1.0, "mean": [0.4, 0.4, 0.4],
                                 "std": [0.2, 0.2, 0.2], "num_classes": 10}}
    hf_cache_put(local_caches / "hf", "someone/cifar-net",
                 {"config.json": json.dumps(config).encode(),
                  "model.safetensors": safetensors_bytes(net.state_dict())})
    model = load_model_ref("hf-hub:someone/cifar-net")
    info = model.info
    assert (info.input_size, info.resize, info.interpolation) == (96, 96, "bicubic")
    assert info.class_names[3] == "thing 3"
    x = pixels(96)
    with torch.no_grad():
        assert (model(x) - net((x - 0.4) / 0.2)).abs().max().item() <= TOL


def test_torchvision_from_the_torch_hub_folder(local_caches):
    import torchvision

    weights = torchvision.models.MobileNet_V3_Small_Weights.DEFAULT
    torch.manual_seed(0)
    net = torchvision.models.mobilenet_v3_small().eval()
    folder = local_caches / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(net.state_dict(), folder / os.path.basename(weights.url))
    model = load_model_ref("torchvision:mobilenet_v3_small")
    assert model.info.name == "torchvision:mobilenet_v3_small.IMAGENET1K_V1"
    assert (model.info.input_size, model.info.resize) == (224, 256)
    x = pixels(64)
    mean = torch.tensor(weights.transforms().mean).view(1, 3, 1, 1)
    std = torch.tensor(weights.transforms().std).view(1, 3, 1, 1)
    with torch.no_grad():
        assert (model(x) - net((x - mean) / std)).abs().max().item() <= TOL


@pytest.mark.parametrize("ref,missing,where", [
    ("timm:resnet18", "model.safetensors or pytorch_model.bin", "hf"),
    ("timm:resnet18.a1_in1k", "timm/resnet18.a1_in1k", "hf"),
    ("hf-hub:timm/resnet18.a1_in1k", "config.json", "hf"),
    ("torchvision:resnet34", "resnet34-b627a593.pth", "torch"),
    ("torchvision:resnet50.IMAGENET1K_V2", "resnet50-11ad3fa6.pth", "torch"),
])
def test_offline_missing_weights_is_one_line_naming_the_file(local_caches, ref, missing, where):
    with pytest.raises(ModelUnavailable) as info:
        load_model_ref(ref)
    text = str(info.value)
    assert "\n" not in text and missing in text and "RSVIZ_OFFLINE=1" in text
    assert str(local_caches / where) in text


def test_unknown_names_say_so():
    with pytest.raises(ModelUnavailable, match="timm has no model 'resnet_nope'"):
        load_model_ref("timm:resnet_nope")
    with pytest.raises(ModelUnavailable, match="has no weights 'NOPE'; available: IMAGENET1K_V1"):
        load_model_ref("torchvision:resnet50.NOPE")
    with pytest.raises(ModelUnavailable, match="torchvision has no classification model"):
        load_model_ref("torchvision:resnet5O")
    with pytest.raises(ConfigError, match="applies to checkpoints only"):
        load_model_ref("tiny_cnn", normalization="imagenet")


def test_checkpoint_reference_and_study_plans(local_caches):
    from rsviz.models import CifarResNet
    from rsviz.study import StudyPlan, check_plan
    from rsviz.study.run import load_model_ref as plan_load

    torch.manual_seed(0)
    path = local_caches / "cifar.pt"
    torch.save(CifarResNet(20).state_dict(), path)
    net = random_timm("test_resnet.r160_in1k")
    hf_cache_put(local_caches / "hf", "timm/test_resnet.r160_in1k",
                 {"model.safetensors": safetensors_bytes(net.state_dict())})
    plan = StudyPlan.from_dict({"models": [f"checkpoint:{path}", "timm:test_resnet",
                                           f"cifar_resnet20:{path}"], "attacks": ["hsja"]})
    check_plan(plan)
    loaded = [plan_load(ref) for ref in plan.models]
    assert loaded[0].info.input_size == 32 and loaded[1].info.input_size == 160
    assert loaded[0].info.model_id == loaded[2].info.model_id
    with pytest.raises(ConfigError, match="no checkpoint file at"):
        check_plan(StudyPlan(models=(f"checkpoint:{local_caches / 'absent.pt'}",)))


def test_cli_model_reference(local_caches, capsys):
    from rsviz.cli import main
    from rsviz.models import CifarResNet

    torch.manual_seed(0)
    path = local_caches / "cifar.pt"
    torch.save(CifarResNet(20).state_dict(), path)
    assert main(["predict", "sample:coffee", "--model", f"checkpoint:{path}", "--json",
                 "--engine", "eager"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "checkpoint:cifar_resnet20"
    assert out["top5"][0]["name"] in ("airplane", "automobile", "bird", "cat", "deer", "dog",
                                      "frog", "horse", "ship", "truck")
    assert main(["predict", "sample:coffee", "--model", "timm:resnet18"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("rsviz predict: error: timm:resnet18: model.safetensors")
    assert len(err.splitlines()) == 1
