"""What every model is in rsviz: a classifier on pixel space [0,1]^{3xHxW} returning logits,
with its input normalisation inside (as in Cohen et al.'s `Sequential(normalize_layer, model)`),
and the metadata the app needs (ModelInfo)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import torch
from torch import nn

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
        model_id: identifier of the model's content for cache keys, study task ids and results
            folders: name plus a hash of the weights and the input normalisation.
        input_size: side of the square input, in pixels.
        resize: short side before the centre crop.
        mean, std: normalisation applied inside the wrapper.
        class_names: one name per output class.
        source: where the weights come from, in words (for checkpoints: what was detected).
        interpolation: resize filter ("bicubic" or "bilinear").
        trained_sigma: Gaussian noise level the model was trained for (0 for plain models).
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
    trained_sigma: float = 0.0

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
    """(x − mean) / std per channel, as a layer; with clamp=True, x is first clipped to [0, 1]
    (as Madry et al.'s robustness library does in front of its networks)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...],
                 clamp: bool = False) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))
        self.clamp = clamp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.clamp:
            x = x.clamp(0, 1)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def extra_repr(self) -> str:
        return f"clamp={self.clamp}"


class Classifier(nn.Module):
    """A base classifier f on pixel space: normalisation + network, in eval mode."""

    def __init__(self, net: nn.Module, info: ModelInfo, normalize: bool = True,
                 clamp: bool = False) -> None:
        super().__init__()
        self.normalize = Normalize(info.mean, info.std, clamp) if normalize else nn.Identity()
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


def content_hash(module: nn.Module, length: int = 12) -> str:
    """Hex digest of what a module computes: its structure (repr) and every parameter and
    buffer (name, dtype, shape, bytes). Two models with the same hash give the same logits."""
    digest = hashlib.sha256(repr(module).encode())
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:length]


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
