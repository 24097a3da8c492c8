"""Checkpoints as their authors publish them: replicas of each family's module structure and
serialisation (random weights, built here), loaded by rsviz, must give the original wrapper's
logits (max |difference| <= 1e-5). Bad files give one line and load nothing.

The replicas are written from the published descriptions of:
- Cohen et al., locuslab/smoothing: `Sequential(NormalizeLayer(means, sds), DataParallel(net))`,
  the layer keeping means/sds as plain attributes (no state), saved as
  `{"epoch", "arch", "state_dict", "optimizer"}`.
- Madry et al., MadryLab/robustness: `DataParallel(AttackerModel)` with an `InputNormalize`
  (buffers new_mean/new_std of shape [3,1,1], input clamped to [0,1]), the network as `.model`
  and an `Attacker` holding a second normaliser and the same network; saved as
  `{"model", "optimizer", "schedule", "epoch", "amp"}`; the network's forward takes
  with_latent/fake_relu/no_relu and the wrapper returns (logits, input).
"""

from __future__ import annotations

import argparse
import io

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from rsviz.cache import make_key
from rsviz.errors import CheckpointMismatch, ModelUnavailable
from rsviz.models import IMAGENET_MEAN, IMAGENET_STD, load_checkpoint

TOL = 1e-5
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


def _net(arch: str = "resnet18", num_classes: int = 1000, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    with torch.no_grad():  # non-trivial batch-norm statistics, so eval mode matters
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return net


def _saved(obj, **kwargs) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    return buffer.getvalue()


def _sgd_state(model: nn.Module) -> dict:
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    for p in model.parameters():
        opt.state[p]["momentum_buffer"] = torch.zeros_like(p)
    return opt.state_dict()


def _inputs(size: int = 64) -> torch.Tensor:
    """Images with some pixels outside [0, 1], as under Gaussian noise."""
    return torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(1)) * 1.6 - 0.3


# ------------------------------------------------------------------ Cohen et al. (RandTrain)


class CohenNormalizeLayer(nn.Module):
    """Means/sds as plain tensors (no parameters, no buffers), broadcast by repeat/permute."""

    def __init__(self, means, sds) -> None:
        super().__init__()
        self.means = torch.tensor(means)
        self.sds = torch.tensor(sds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        means = self.means.repeat((batch, height, width, 1)).permute(0, 3, 1, 2)
        sds = self.sds.repeat((batch, height, width, 1)).permute(0, 3, 1, 2)
        return (x - means) / sds


def cohen_model(arch: str = "resnet18", seed: int = 0) -> nn.Module:
    net = nn.DataParallel(_net(arch, seed=seed))
    return nn.Sequential(CohenNormalizeLayer(IMAGENET_MEAN, IMAGENET_STD), net).eval()


def cohen_file(model: nn.Module, arch: str, **extra) -> bytes:
    return _saved({"epoch": 90, "arch": arch, "state_dict": model.state_dict(),
                   "optimizer": _sgd_state(model), **extra})


def test_cohen_randtrain_replica_gives_identical_logits():
    original = cohen_model()
    assert all(k.startswith("1.module.") for k in original.state_dict())
    model = load_checkpoint(None, cohen_file(original, "resnet18"))
    x = _inputs()
    diff = (model(x) - original(x)).abs().max().item()
    assert diff <= TOL, diff
    assert model.info.source.startswith(
        "Detected: Cohen et al. RandTrain, ResNet18 (from the file's arch key), "
        "ImageNet normalisation added")
    assert model.info.mean == IMAGENET_MEAN and model.info.std == IMAGENET_STD


def test_cohen_file_with_namespace_and_numpy_scalars_loads_through_the_allow_list():
    original = cohen_model(seed=3)
    raw = cohen_file(original, "resnet18",
                     args=argparse.Namespace(arch="resnet18", noise_sd=0.25, lr=0.1),
                     best_acc=np.float64(0.67), noise_sd=np.float32(0.25), steps=np.int64(7))
    with pytest.raises(Exception, match="Unsupported global"):  # plain weights_only refuses it
        torch.load(io.BytesIO(raw), weights_only=True)
    model = load_checkpoint("resnet18", raw)
    x = _inputs()
    assert (model(x) - original(x)).abs().max().item() <= TOL


def test_cohen_resnet50_structure():
    """The published RandTrain layout at full size: arch key 'resnet50', keys 1.module.*."""
    original = cohen_model("resnet50")
    model = load_checkpoint(None, cohen_file(original, "resnet50"))
    assert model.info.name == "checkpoint:resnet50" and "ResNet50" in model.info.source
    x = _inputs(32)[:1]
    assert (model(x) - original(x)).abs().max().item() <= TOL


# --------------------------------------------------------- Madry et al. robustness (AdvTrain)


class InputNormalizeReplica(nn.Module):
    def __init__(self, new_mean: torch.Tensor, new_std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("new_mean", new_mean[..., None, None])
        self.register_buffer("new_std", new_std[..., None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (torch.clamp(x, 0, 1) - self.new_mean) / self.new_std


class RobustnessResNet(nn.Module):
    """The library's ImageNet ResNet: torchvision's layers, a forward with extra flags."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        for name, child in net.named_children():
            self.add_module(name, child)

    def forward(self, x, with_latent=False, fake_relu=False, no_relu=False):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        latent = torch.flatten(self.avgpool(x), 1)
        out = self.fc(latent)
        return (out, latent) if with_latent else out


class AttackerReplica(nn.Module):
    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.normalize = InputNormalizeReplica(mean, std)
        self.model = model


class AttackerModelReplica(nn.Module):
    def __init__(self, model: nn.Module, mean, std) -> None:
        super().__init__()
        mean, std = torch.tensor(mean), torch.tensor(std)
        self.normalizer = InputNormalizeReplica(mean, std)
        self.model = model
        self.attacker = AttackerReplica(model, mean, std)

    def forward(self, inp, target=None, make_adv=False, with_latent=False, fake_relu=False,
                no_relu=False, with_image=True):
        output = self.model(self.normalizer(inp), with_latent=with_latent,
                            fake_relu=fake_relu, no_relu=no_relu)
        return output, inp


def madry_file(mean=IMAGENET_MEAN, std=IMAGENET_STD, seed: int = 0):
    original = nn.DataParallel(AttackerModelReplica(RobustnessResNet(_net(seed=seed)), mean, std))
    original.eval()
    schedule = torch.optim.lr_scheduler.StepLR(
        torch.optim.SGD(original.parameters(), lr=0.1), step_size=30)
    raw = _saved({"model": original.state_dict(), "optimizer": _sgd_state(original),
                  "schedule": schedule.state_dict(), "epoch": 90, "amp": "N/A"})
    return original, raw


@pytest.mark.parametrize("mean,std,label", [
    (IMAGENET_MEAN, IMAGENET_STD, "ImageNet normalisation from the file's normaliser"),
    (CIFAR_MEAN, CIFAR_STD, "custom normalisation from the file's normaliser")])
def test_madry_advtrain_replica_gives_identical_logits(mean, std, label):
    original, raw = madry_file(mean, std)
    keys = original.state_dict()
    assert "module.normalizer.new_mean" in keys and "module.attacker.model.fc.weight" in keys
    model = load_checkpoint(None, raw)
    x = _inputs()  # some pixels outside [0, 1]: their normaliser clamps them
    logits, _ = original(x)
    diff = (model(x) - logits).abs().max().item()
    assert diff <= TOL, diff
    assert model.info.source.startswith(
        f"Detected: Madry et al. robustness library (AdvTrain), ResNet18 (recognised from its "
        f"weights), {label}, inputs clipped to [0, 1]")
    assert np.allclose(model.info.mean, mean) and np.allclose(model.info.std, std)


# --------------------------------------------------------- plain torchvision and DataParallel


def _imagenet_reference(net: nn.Module, x: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    return net.eval()((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))


@pytest.mark.parametrize("parallel", [False, True])
def test_torchvision_state_dicts(parallel):
    net = _net(num_classes=10)
    state = (nn.DataParallel(net) if parallel else net).state_dict()
    model = load_checkpoint(None, _saved(state))
    family = "DataParallel state dict" if parallel else "torchvision state dict"
    assert model.info.source.startswith(
        f"Detected: {family}, ResNet18 (recognised from its weights), ImageNet normalisation added")
    assert model.info.num_classes == 10
    x = _inputs()
    assert (model(x) - _imagenet_reference(net, x)).abs().max().item() <= TOL


@pytest.mark.parametrize("choice,mean,std", [
    ("none", (0.0,) * 3, (1.0,) * 3), ("mean-only", IMAGENET_MEAN, (1.0,) * 3),
    (((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)), (0.5,) * 3, (0.25,) * 3),
    (True, (0.0,) * 3, (1.0,) * 3)])
def test_normalisation_can_be_overridden(choice, mean, std):
    net = _net(num_classes=5)
    model = load_checkpoint("resnet18", _saved(net.state_dict()), normalization=choice)
    assert "(your choice)" in model.info.source
    x = _inputs()
    assert (model(x) - _imagenet_reference(net, x, mean, std)).abs().max().item() <= TOL


def test_checkpoint_from_a_path_on_the_server(tmp_path):
    original = cohen_model(seed=5)
    path = tmp_path / "checkpoint.pth.tar"
    path.write_bytes(cohen_file(original, "resnet18"))
    model = load_checkpoint("auto", str(path))
    assert "checkpoint.pth.tar" in model.info.source
    x = _inputs()
    assert (model(x) - original(x)).abs().max().item() <= TOL
    with pytest.raises(ModelUnavailable, match="Cannot read checkpoint"):
        load_checkpoint(None, str(tmp_path / "missing.pth"))


# ------------------------------------------------------------------------- identity = content


def test_model_id_is_the_content():
    a, b = _net(num_classes=10, seed=1), _net(num_classes=10, seed=2)
    model_a = load_checkpoint("resnet18", _saved(a.state_dict()))
    model_b = load_checkpoint("resnet18", _saved(b.state_dict()))
    assert model_a.info.name == model_b.info.name  # same architecture, same display name ...
    assert model_a.info.model_id != model_b.info.model_id  # ... two models
    same = load_checkpoint(None, _saved(nn.DataParallel(a).state_dict()))
    assert same.info.model_id == model_a.info.model_id  # same weights in another layout
    other_norm = load_checkpoint("resnet18", _saved(a.state_dict()), normalization="none")
    assert other_norm.info.model_id != model_a.info.model_id
    key = lambda m: make_key("image-votes", m.info.model_id, "img", 0.25, 100)  # noqa: E731
    assert key(model_a) != key(model_b)


def test_two_checkpoints_of_one_architecture_get_two_study_task_sets():
    from rsviz.certification import CertificationConfig
    from rsviz.study import StudyPlan, build_tasks
    from rsviz.study.tasks import ImageRef

    plan = StudyPlan(models=("resnet18:a.pth",), sigmas=(0.25,), attacks=("hsja",),
                     certify=CertificationConfig(n0=8, n=16, alpha=0.001))
    ids = []
    for seed in (1, 2):
        model = load_checkpoint("resnet18", _saved(_net(num_classes=10, seed=seed).state_dict()))
        refs = [ImageRef(0, "img", "sample:coffee", 0, "hash", model.info.model_id)]
        ids.append({t.task_id for t in build_tasks(plan, refs, model.info.model_id)})
    assert ids[0] and ids[1] and not ids[0] & ids[1]


# ------------------------------------------------------------------------------- bad files


def test_bad_files_give_one_line():
    net = _net(num_classes=10)
    raw = _saved(net.state_dict())
    cases = {
        "truncated": (raw[: len(raw) // 2], "truncated, corrupt or not a checkpoint"),
        "garbage": (b"not a checkpoint at all", "truncated, corrupt or not a checkpoint"),
        "empty": (b"", "truncated, corrupt or not a checkpoint"),
        "whole module": (_saved(net), "Python object of type torchvision.models.resnet.ResNet"),
        "not tensors": (_saved({"a": 1}), "not a state dict"),
    }
    for name, (data, message) in cases.items():
        with pytest.raises(CheckpointMismatch, match=message) as info:
            load_checkpoint(None, data)
        assert "\n" not in str(info.value), name


def test_pickled_object_is_never_run(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with pytest.raises(CheckpointMismatch, match="does not unpickle"):
        load_checkpoint("resnet18", _saved({"x": Evil()}))
    assert not marker.exists()


def test_wrong_architecture_is_clear():
    state = _net(num_classes=10).state_dict()
    with pytest.raises(CheckpointMismatch, match="does not match resnet50"):
        load_checkpoint("resnet50", _saved(state))
    state["layer1.0.conv1.weight"] = torch.zeros(3, 3, 3, 3)
    with pytest.raises(CheckpointMismatch, match="shape mismatch"):
        load_checkpoint("resnet18", _saved(state))
    with pytest.raises(CheckpointMismatch, match="Cannot tell the checkpoint's architecture"):
        load_checkpoint(None, _saved(state))
    with pytest.raises(CheckpointMismatch, match="says its architecture is 'resnet18'"):
        load_checkpoint("resnet50", cohen_file(cohen_model(), "resnet18"))
    with pytest.raises(CheckpointMismatch, match="'cifar_resnet110' is not"):
        load_checkpoint(None, cohen_file(cohen_model(), "cifar_resnet110"))


def test_cli_offers_every_normalisation(tmp_path):
    from rsviz.commands._common import NORMALIZATIONS as CLI_CHOICES
    from rsviz.models import NORMALIZATIONS

    assert CLI_CHOICES == NORMALIZATIONS
