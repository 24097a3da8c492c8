"""Checkpoints as their authors publish them: replicas of each family's module structure and
serialisation (random weights, built here), loaded by rsviz, must give the original wrapper's
logits (max |difference| <= 1e-5). Bad files give one line and load nothing.

The replicas are written from the published descriptions of:
- Cohen et al., locuslab/smoothing: `Sequential(NormalizeLayer(means, sds), DataParallel(net))`,
  the layer keeping means/sds as plain attributes (no state), saved as
  `{"epoch", "arch", "state_dict", "optimizer"}`.
- Cohen et al.'s CIFAR-10 models (`archs/cifar_resnet.py`, after bearpaw's
  pytorch-classification): `Sequential(NormalizeLayer(CIFAR-10 means, sds), ResNet(depth=110))`
  without DataParallel, so keys `1.conv1.weight`, `1.layer1.0.conv1.weight`, ...,
  `1.layer2.0.downsample.0.weight`, `1.fc.weight`; an 8x8 average pool (32x32 inputs); saved as
  `{"epoch", "arch": "cifar_resnet110", "state_dict", "optimizer"}`.
- RobustBench (robustbench/model_zoo): `normalize_model(net, mu, sigma)` =
  `Sequential(OrderedDict(normalize=ImageNormalizer, model=net))`, the normaliser's mean/std
  buffers of shape [1,3,1,1]; its files hold the network alone (under `state_dict`, keys
  optionally `module.`), or a user saves the whole normalised model.
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
from tests.helpers import random_batchnorm

TOL = 1e-5
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


def _net(arch: str = "resnet18", num_classes: int = 1000, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    return random_batchnorm(net)


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
    assert model.info.trained_sigma == 0.25  # np.float32 noise_sd, read through the allow-list


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
    (CIFAR_MEAN, CIFAR_STD, "CIFAR-10 normalisation from the file's normaliser")])
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
    with pytest.raises(CheckpointMismatch, match="does not match cifar_resnet110"):
        load_checkpoint(None, cohen_file(cohen_model(), "cifar_resnet110"))
    with pytest.raises(CheckpointMismatch, match="'densenet_cifar' is not one rsviz can build"):
        load_checkpoint(None, cohen_file(cohen_model(), "densenet_cifar"))


def test_cli_offers_every_normalisation(tmp_path):
    from rsviz.commands._common import NORMALIZATIONS as CLI_CHOICES
    from rsviz.models import NORMALIZATIONS

    assert CLI_CHOICES == NORMALIZATIONS


# ---------------------------------------------- Cohen et al. CIFAR-10 ResNet-110 (RandTrain)


class BearpawBlock(nn.Module):
    """The basic block of bearpaw's CIFAR ResNet as Cohen et al. ship it (written here from
    its published structure: conv-bn-relu-conv-bn, projected shortcut, relu after the sum)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        out += residual
        return self.relu(out)


class BearpawCifarResNet(nn.Module):
    def __init__(self, depth: int = 110, num_classes: int = 10) -> None:
        super().__init__()
        n = (depth - 2) // 6
        self.inplanes = 16
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(16, n)
        self.layer2 = self._make_layer(32, n, 2)
        self.layer3 = self._make_layer(64, n, 2)
        self.avgpool = nn.AvgPool2d(8)
        self.fc = nn.Linear(64, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [BearpawBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BearpawBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x))))))
        return self.fc(self.avgpool(x).view(x.size(0), -1))


def cohen_cifar_model(depth: int = 110, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = random_batchnorm(BearpawCifarResNet(depth), weight=True, bias=True)
    return nn.Sequential(CohenNormalizeLayer(CIFAR_MEAN, CIFAR_STD), net).eval()


def test_cohen_cifar10_resnet110_replica_gives_identical_logits(tmp_path):
    original = cohen_cifar_model(110)
    keys = list(original.state_dict())
    assert keys[0] == "1.conv1.weight" and "1.layer2.0.downsample.0.weight" in keys
    assert "1.layer3.17.bn2.running_var" in keys  # 18 blocks per stage: depth 6*18 + 2
    path = tmp_path / "cifar10" / "resnet110" / "noise_0.25" / "checkpoint.pth.tar"
    path.parent.mkdir(parents=True)  # the layout of their released models
    path.write_bytes(cohen_file(original, "cifar_resnet110"))
    model = load_checkpoint(None, str(path))
    x = _inputs(32)
    with torch.no_grad():
        diff = (model(x) - original(x)).abs().max().item()
    assert diff <= TOL, diff
    assert model.info.source.startswith(
        "Detected: Cohen et al. RandTrain, CIFAR ResNet-110 (from the file's arch key), "
        "CIFAR-10 normalisation added")
    info = model.info
    assert (info.input_size, info.resize, info.num_classes) == (32, 32, 10)
    assert info.class_names[:3] == ("airplane", "automobile", "bird")
    assert info.mean == CIFAR_MEAN and info.std == CIFAR_STD
    assert info.model_id.startswith("checkpoint-cifar_resnet110-")
    assert info.trained_sigma == 0.25 and "trained at σ = 0.25 from its path (noise_0.25)" \
        in info.source  # so the app starts at that σ (rsviz.models.default_sigma)


def test_cifar_resnet_recognised_from_its_weights_without_arch_key():
    original = cohen_cifar_model(20, seed=2)
    net_state = {k[2:]: v for k, v in original.state_dict().items()}  # the network alone
    model = load_checkpoint(None, _saved(net_state))
    assert "CIFAR ResNet-20 (recognised from its weights), CIFAR-10 normalisation added" \
        in model.info.source
    x = _inputs(32)
    with torch.no_grad():
        assert (model(x) - original(x)).abs().max().item() <= TOL
    assert load_checkpoint("cifar_resnet20", _saved(net_state)).info.model_id == model.info.model_id


# ---------------------------------------------------------------------------- RobustBench


class ImageNormalizerReplica(nn.Module):
    def __init__(self, mean, std) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.as_tensor(std).view(1, 3, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


def robustbench_model(net: nn.Module, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> nn.Module:
    from collections import OrderedDict

    return nn.Sequential(OrderedDict([("normalize", ImageNormalizerReplica(mean, std)),
                                      ("model", net)])).eval()


def test_robustbench_imagenet_resnet50_normaliser_inside():
    """The whole normalize_model(resnet50) saved: the file's normaliser is used."""
    original = robustbench_model(_net("resnet50", seed=4))
    model = load_checkpoint(None, _saved(original.state_dict()))
    x = _inputs(32)[:2]
    with torch.no_grad():
        assert (model(x) - original(x)).abs().max().item() <= TOL
    assert model.info.source.startswith(
        "Detected: RobustBench normalize_model, ResNet50 (recognised from its weights), "
        "ImageNet normalisation from the file's normaliser")


def test_robustbench_custom_normaliser_inside_is_read_from_the_file():
    original = robustbench_model(_net(num_classes=10, seed=6), CIFAR_MEAN, (0.3, 0.3, 0.3))
    model = load_checkpoint(None, _saved({"state_dict": original.state_dict()}))
    x = _inputs()
    with torch.no_grad():
        assert (model(x) - original(x)).abs().max().item() <= TOL
    assert np.allclose(model.info.std, (0.3,) * 3)


def test_robustbench_distributed_file_normaliser_outside():
    """RobustBench's files hold the network alone (here under state_dict with module.);
    normalize_model adds ImageNet's mu/sigma, and so does rsviz."""
    net = _net(seed=7)
    original = robustbench_model(net)
    raw = _saved({"state_dict": nn.DataParallel(net).state_dict()})
    model = load_checkpoint(None, raw)
    x = _inputs()
    with torch.no_grad():
        assert (model(x) - original(x)).abs().max().item() <= TOL
    assert "ImageNet normalisation added" in model.info.source


def test_timm_architecture_checkpoint():
    import timm

    torch.manual_seed(0)
    net = timm.create_model("test_resnet", pretrained=False, num_classes=7).eval()
    model = load_checkpoint("timm:test_resnet", _saved(net.state_dict()), normalization="none")
    x = _inputs()
    with torch.no_grad():
        assert (model(x) - net(x)).abs().max().item() <= TOL
    assert model.info.num_classes == 7 and model.info.name == "checkpoint:timm:test_resnet"


# ------------------------------------------------- RobustBench CIFAR-10 WideResNet (TRADES)


class TradesBlock(nn.Module):
    """TRADES' pre-activation block as RobustBench ships it (wide_resnet.py): when the width
    changes, x itself is replaced by relu(bn1(x)) and the 1x1 shortcut convolves that."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.equal = cin == cout
        self.convShortcut = None if self.equal else nn.Conv2d(cin, cout, 1, stride, 0, bias=False)

    def forward(self, x):
        if not self.equal:
            x = self.relu1(self.bn1(x))
            out = x
        else:
            out = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(out))))
        return torch.add(x if self.equal else self.convShortcut(x), out)


class TradesStage(nn.Module):
    def __init__(self, n: int, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.layer = nn.Sequential(*[TradesBlock(cin if i == 0 else cout, cout,
                                                 stride if i == 0 else 1) for i in range(n)])

    def forward(self, x):
        return self.layer(x)


class TradesWideResNet(nn.Module):
    def __init__(self, depth: int = 28, widen: int = 10, sub_block1: bool = False) -> None:
        super().__init__()
        n, ch = (depth - 4) // 6, [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(3, ch[0], 3, 1, 1, bias=False)
        self.block1 = TradesStage(n, ch[0], ch[1], 1)
        if sub_block1:
            self.sub_block1 = TradesStage(n, ch[0], ch[1], 1)
        self.block2 = TradesStage(n, ch[1], ch[2], 2)
        self.block3 = TradesStage(n, ch[2], ch[3], 2)
        self.bn1 = nn.BatchNorm2d(ch[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(ch[3], 10)
        self.channels = ch[3]

    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = torch.nn.functional.avg_pool2d(self.relu(self.bn1(out)), 8)
        return self.fc(out.view(-1, self.channels))


def trades_wrn(depth: int, widen: int, sub_block1: bool = False, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return random_batchnorm(TradesWideResNet(depth, widen, sub_block1), weight=True).eval()


def test_robustbench_cifar10_wideresnet_28_10_replica_gives_identical_logits():
    """RobustBench's CIFAR-10 "Standard" is TRADES' WRN-28-10 on [0, 1] inputs, distributed
    as {'state_dict': ...} with DataParallel's module. prefix (Carmon2019Unlabeled)."""
    original = trades_wrn(28, 10)
    raw = _saved({"state_dict": nn.DataParallel(original).state_dict()})
    model = load_checkpoint(None, raw)
    x = _inputs(32)[:2]
    with torch.no_grad():
        assert (model(x) - original(x)).abs().max().item() <= TOL
    assert model.info.source.startswith(
        "Detected: RobustBench / TRADES WideResNet, WideResNet-28-10 (recognised from its "
        "weights), "
        "no normalisation (inputs in [0, 1], as RobustBench runs it)")
    assert (model.info.input_size, model.info.class_names[0]) == (32, "airplane")


def test_wideresnet_with_an_unused_sub_block_and_a_normaliser_inside():
    """A narrow WRN-16-2 with TRADES' sub_block1 (in the file, never run), wrapped by
    RobustBench's normalize_model with CIFAR-10 statistics."""
    original = robustbench_model(trades_wrn(16, 2, sub_block1=True, seed=3), CIFAR_MEAN, CIFAR_STD)
    assert any(k.startswith("model.sub_block1.") for k in original.state_dict())
    model = load_checkpoint(None, _saved(original.state_dict()))
    x = _inputs(32)
    with torch.no_grad():
        assert (model(x) - original(x)).abs().max().item() <= TOL
    assert "WideResNet-16-2" in model.info.source and "CIFAR-10 normalisation from the file" \
        in model.info.source
