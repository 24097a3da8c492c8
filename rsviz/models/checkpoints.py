"""User checkpoints: read safely, recognise the family that wrote them, rebuild the classifier.

Families recognised from the file itself:
- Cohen et al. (RandTrain): `{"arch", "state_dict", ...}` of `Sequential(NormalizeLayer,
  DataParallel(net))`, keys `1.module.*`; their NormalizeLayer has no state, so the ImageNet
  normalisation is added here.
- Madry et al.'s robustness library (AdvTrain): `{"model", ...}` of a DataParallel
  AttackerModel, keys `module.model.*` plus `module.normalizer.new_mean/new_std` (used) and an
  attacker copy `module.attacker.*` (dropped); their normaliser clamps inputs to [0, 1] first.
- Cohen et al.'s CIFAR-10 ResNet-110/20 (`arch` "cifar_resnet110"): keys `1.*` (no
  DataParallel) of `Sequential(NormalizeLayer, net)`; the CIFAR-10 normalisation is added and the
  model takes 32×32 inputs (rsviz/models/cifar.py).
- RobustBench / TRADES CIFAR-10 WideResNets (keys `block1.layer.*`, `convShortcut`): inputs in
  [0, 1], no normalisation (rsviz/models/cifar.py).
- RobustBench: `Sequential(normalize=ImageNormalizer(mean, std), model=net)` saved whole (keys
  `normalize.mean/std` used, `model.*`), or the network alone as RobustBench distributes it
  (optionally under `state_dict` and `module.`; its ImageNet normalisation is added).
- Plain torchvision state dicts, with or without DataParallel's `module.` prefix.

Files are read with `torch.load(weights_only=True)`; the only extra globals allowed are the
harmless ones some trainers store (argparse.Namespace, numpy scalars and dtypes).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import os
import re
import stat
import threading
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from rsviz.errors import CheckpointMismatch, ModelUnavailable, RsvizError
from rsviz.models.base import (IMAGENET_MEAN, IMAGENET_STD, Classifier, ModelInfo, content_hash,
                               imagenet_classes)
from rsviz.models.cifar import (CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, CIFAR_SIZE,
                                cifar_arch_of, cifar_label, is_cifar_arch, make_cifar_net,
                                wrn_shape)

CHECKPOINT_ARCHS = ("resnet50", "resnet18", "resnet34", "resnet101", "wide_resnet50_2",
                    "vgg16_bn", "densenet121", "efficientnet_b0", "mobilenet_v3_large",
                    "cifar_resnet110", "cifar_resnet20", "cifar_wrn28_10", "cifar_wrn34_10")
NORMALIZATIONS = ("auto", "imagenet", "cifar10", "mean-only", "none", "custom")
Normalization = "str | tuple[Sequence[float], Sequence[float]] | bool | None"

_SCALAR = np._core.multiarray.scalar  # noqa: SLF001 - the function numpy scalars unpickle with
SAFE_GLOBALS: list[Any] = [
    argparse.Namespace, np.dtype,
    (_SCALAR, "numpy._core.multiarray.scalar"), (_SCALAR, "numpy.core.multiarray.scalar"),
    *[type(np.dtype(t)) for t in ("float16", "float32", "float64", "int32", "int64", "bool")],
]
READ_TIMEOUT_S = 120.0  # a checkpoint path on a stalled file system fails instead of hanging
APP_CONFIG = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"
_ARCH_LABELS = {"resnet50": "ResNet50", "resnet18": "ResNet18", "resnet34": "ResNet34",
                "resnet101": "ResNet101", "wide_resnet50_2": "WideResNet50-2",
                "cifar_resnet110": "CIFAR ResNet-110", "cifar_resnet20": "CIFAR ResNet-20"}


@dataclass(frozen=True)
class Detection:
    """What a checkpoint file was recognised as, and how it will be run."""

    family: str
    arch: str
    arch_from: str
    prefix: str
    normalization: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    norm_from: str
    clamp: bool = False

    def line(self) -> str:
        """One line for the user, e.g. "Detected: Cohen et al. RandTrain, ResNet50, ImageNet
        normalisation added"."""
        arch = _ARCH_LABELS.get(self.arch) or cifar_label(self.arch) or self.arch
        if self.arch_from:
            arch += f" ({self.arch_from})"
        text = f"Detected: {self.family}, {arch}, {self.norm_from}"
        return text + (", inputs clipped to [0, 1] as in its wrapper" if self.clamp else "")


def read_checkpoint(raw: bytes) -> Any:
    """torch.load with weights_only=True plus the SAFE_GLOBALS allow-list; never unpickles
    anything else. A refused or broken file raises CheckpointMismatch with one line."""
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line
        text = str(exc)
        match = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if match:
            raise CheckpointMismatch(
                f"The file stores a Python object of type {match.group(1)}, which rsviz does not "
                "unpickle (unpickling can run code); save the weights with "
                "torch.save(model.state_dict(), path).") from exc
        raise CheckpointMismatch(f"Cannot read the file as a PyTorch checkpoint: it is truncated, "
                                 f"corrupt or not a checkpoint ({_reason(exc)}).") from exc


def _reason(exc: Exception) -> str:
    """torch.load's own reason in a few words (its advice to unpickle fully is left out)."""
    text = str(exc).strip()
    match = re.search(r"WeightsUnpickler error:\s*(.+?)(\n\n|$)", text, re.S)
    if match:
        text = match.group(1)
    first = re.split(r"(?<=\.)\s|\n", text, maxsplit=1)[0].rstrip(".")
    return first[:160] or type(exc).__name__


def load_checkpoint(arch: str | None, data: bytes | str, normalization: Normalization = None,
                    device: torch.device | str = "cpu", name: str | None = None,
                    max_bytes: int | None = None) -> Classifier:
    """Load a checkpoint (bytes, or a path on this machine) as a Classifier on pixel space.

    Args:
        arch: torchvision architecture, or None/"auto" to use the file's `arch` key or the
            architecture whose keys and shapes the weights match.
        data: the checkpoint's bytes or its path.
        normalization: None/"auto" (what the file says), "imagenet", "mean-only", "none", or
            (mean, std) for a custom one. True/False are the old "normalises its own input"
            flag ("none" / auto).
        device: where to put the model.
        name: display name of the file (defaults to its base name).
        max_bytes: the largest file read from a path (default `checkpoint_limit()`).
    Any failure raises an RsvizError with one line. The detection line is the model's
    info.source; its model_id hashes weights and normalisation, so two checkpoints of one
    architecture never share results.
    """
    raw, name = _read_bytes(data, name, max_bytes)
    where = os.path.expanduser(str(data)) if isinstance(data, (str, os.PathLike)) else ""
    try:
        return _build(arch, raw, name, normalization, device, where)
    except RsvizError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever torch raises on odd weights is one line
        raise CheckpointMismatch(f"Cannot build a model from the checkpoint "
                                 f"({type(exc).__name__}: {_reason(exc)}).") from exc


def make_net(arch: str, num_classes: int = 1000) -> torch.nn.Module:
    """A network of `arch` with random weights: a CIFAR architecture (`cifar_resnet110`,
    `cifar_wrn28_10`), a torchvision architecture, or `timm:NAME` (no pretrained weights)."""
    if is_cifar_arch(arch):
        return make_cifar_net(arch, num_classes)
    if arch.startswith("timm:"):
        import timm

        return timm.create_model(arch[len("timm:"):], pretrained=False, num_classes=num_classes)
    import torchvision

    return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)


def trained_sigma_of(obj: Any, path: str = "") -> tuple[float, str]:
    """The noise level a checkpoint was trained with, and where it was read: the file's
    `noise_sd` (or `args.noise_sd`, as Cohen et al.'s and later trainers store it), else a
    `noise_0.25` folder in its path (the layout of Cohen et al.'s released models); (0, "")."""
    if isinstance(obj, dict):
        for value in (obj.get("noise_sd"), getattr(obj.get("args"), "noise_sd", None)):
            try:
                if value is not None and math.isfinite(float(value)) and float(value) > 0:
                    return float(value), "from the file's noise_sd"
            except (TypeError, ValueError):
                pass
    match = re.search(r"noise_(\d+(?:\.\d+)?)(?:[/\\]|$)", path)
    if match and float(match.group(1)) > 0:
        return float(match.group(1)), f"from its path ({match.group(0).rstrip('/')})"
    return 0.0, ""


def _build(arch: str | None, raw: bytes, name: str | None, normalization: Normalization,
           device: torch.device | str, path: str = "") -> Classifier:
    obj = read_checkpoint(raw)
    sigma, sigma_from = trained_sigma_of(obj, path)
    state, file_arch, container = _unwrap(obj)
    detection, state = detect(state, arch, file_arch, container, normalization)
    num_classes = _num_classes(state)
    net = make_net(detection.arch, num_classes)
    _check_keys(net.state_dict(), state, detection.arch)
    net.load_state_dict(state)
    cifar = is_cifar_arch(detection.arch)
    classes = (imagenet_classes() if num_classes == 1000 else CIFAR10_CLASSES
               if num_classes == 10 and cifar else tuple(f"class {i}" for i in range(num_classes)))
    size, resize = (CIFAR_SIZE, CIFAR_SIZE) if cifar else (224, 256)
    info = ModelInfo(name=f"checkpoint:{detection.arch}", model_id="", input_size=size,
                     resize=resize, mean=detection.mean, std=detection.std, class_names=classes,
                     source=f"{detection.line()}"
                            + (f", trained at σ = {sigma:g} {sigma_from}" if sigma else "")
                            + f" (file {name or hashlib.sha256(raw).hexdigest()[:12]})",
                     trained_sigma=sigma)
    model = Classifier(net, info, normalize=detection.normalization != "none",
                       clamp=detection.clamp)
    model.info = ModelInfo(**{**info.__dict__,
                              "model_id": f"checkpoint-{detection.arch}-{content_hash(model)}"})
    return model.to(device)


def _read_bytes(data: bytes | str, name: str | None,
                max_bytes: int | None = None) -> tuple[bytes, str | None]:
    if not isinstance(data, (str, os.PathLike)):
        return bytes(data), name
    path = os.path.expanduser(str(data))
    return read_checkpoint_file(path, max_bytes), name or os.path.basename(path)


def checkpoint_limit() -> int:
    """The largest checkpoint read, in bytes: the app's upload limit (server.maxUploadSize in
    .streamlit/config.toml, in MB; 1024 when unset), for paths as for uploads."""
    try:
        with open(APP_CONFIG, "rb") as handle:
            return int(tomllib.load(handle)["server"]["maxUploadSize"]) * 2**20
    except (OSError, ValueError, KeyError, TypeError):
        return 1024 * 2**20


def read_checkpoint_file(path: str, max_bytes: int | None = None,
                         timeout: float = READ_TIMEOUT_S) -> bytes:
    """The bytes of a checkpoint on this machine: a regular file of at most `max_bytes`
    (default `checkpoint_limit()`), read within `timeout` seconds. A folder, FIFO, device or
    socket is refused before it is opened; every failure raises ModelUnavailable (one line)."""
    limit = max_bytes or checkpoint_limit()
    box: dict[str, Any] = {}

    def read() -> None:
        try:
            box["data"] = _read_regular(path, limit)
        except Exception as exc:  # noqa: BLE001 - handed to the caller below
            box["error"] = exc

    reader = threading.Thread(target=read, name="rsviz-checkpoint-read", daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        raise ModelUnavailable(f"Reading checkpoint {path} took longer than {timeout:.0f} s "
                               "(a stalled file system?); gave up.")
    if "error" in box:
        raise box["error"]
    return box["data"]


def _read_regular(path: str, limit: int) -> bytes:
    try:
        info = os.stat(path)
        _check_regular(path, info.st_mode)
        _check_size(path, info.st_size, limit)
        # O_NONBLOCK: a file swapped for a FIFO after the check cannot block the open
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as handle:
            _check_regular(path, os.fstat(handle.fileno()).st_mode)
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ModelUnavailable(f"Cannot read checkpoint {path}: {exc.strerror or exc}.") from exc
    _check_size(path, len(data), limit)
    return data


def _check_regular(path: str, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = ("a folder" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise ModelUnavailable(f"Checkpoint {path} is {kind}, not a checkpoint file.")


def _check_size(path: str, size: int, limit: int) -> None:
    if size > limit:
        raise ModelUnavailable(f"Checkpoint {path} is {_human(size)}, over the {_human(limit)} "
                               "limit on checkpoints (server.maxUploadSize in "
                               ".streamlit/config.toml).")


def _unwrap(obj: Any) -> tuple[dict[str, torch.Tensor], str | None, str]:
    """(state dict, the file's `arch` if any, which key held the state dict)."""
    container = ""
    file_arch = None
    if isinstance(obj, dict):
        if isinstance(obj.get("arch"), str):
            file_arch = obj["arch"]
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj, container = obj[key], key
                break
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise CheckpointMismatch("The file is not a state dict (a mapping of names to tensors), "
                                 "nor a dict holding one under 'state_dict' or 'model'.")
    return dict(obj), file_arch, container


def detect(state: dict[str, torch.Tensor], arch: str | None = None, file_arch: str | None = None,
           container: str = "", normalization: Normalization = None
           ) -> tuple[Detection, dict[str, torch.Tensor]]:
    """Recognise the family, the architecture and the normalisation; return the network's own
    state dict (prefixes stripped, the robustness library's normaliser/attacker copies dropped)."""
    madry = next((k[:-len("normalizer.new_mean")] for k in state
                  if k.endswith("normalizer.new_mean") and "attacker." not in k), None)
    robustbench = next((k[:-len("normalize.mean")] for k in state
                        if k.endswith("normalize.mean") and k[:-len("mean")] + "std" in state
                        and any(j.startswith(k[:-len("normalize.mean")] + "model.")
                                for j in state)), None)
    clamp = False
    if madry is None and robustbench is not None:
        family, prefix = "RobustBench normalize_model", robustbench + "model."
        mean = tuple(float(v) for v in state[robustbench + "normalize.mean"].flatten())
        std = tuple(float(v) for v in state[robustbench + "normalize.std"].flatten())
        norm = _name_of(mean, std)
        norm_from = f"{_NORM_TEXT[norm]} from the file's normaliser"
    elif madry is not None:
        family, prefix = "Madry et al. robustness library (AdvTrain)", madry + "model."
        mean = tuple(float(v) for v in state[madry + "normalizer.new_mean"].flatten())
        std = tuple(float(v) for v in state[madry + "normalizer.new_std"].flatten())
        norm = _name_of(mean, std)
        norm_from = f"{_NORM_TEXT[norm]} from the file's normaliser"
        clamp = True
    else:
        prefix = _common_prefix(state)
        if prefix in ("1.module.", "1.") and container == "state_dict":
            family = "Cohen et al. RandTrain"
        elif prefix == "module.":
            family = "DataParallel state dict"
        else:
            family = "torchvision state dict" if not prefix else f"state dict (keys under {prefix!r})"
        mean, std, norm = IMAGENET_MEAN, IMAGENET_STD, "imagenet"
        norm_from = "ImageNet normalisation added"
    state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    arch, arch_from = _resolve_arch(arch, file_arch, state)
    if wrn_shape(arch) is not None:  # TRADES/RobustBench: sub_block1 is never run
        state = {k: v for k, v in state.items() if not k.startswith("sub_block1.")}
    if is_cifar_arch(arch) and madry is None and robustbench is None:
        if wrn_shape(arch) is not None:
            family = ("RobustBench / TRADES WideResNet" if family == "torchvision state dict"
                      or family == "DataParallel state dict" else family)
            mean, std, norm = (0.0,) * 3, (1.0,) * 3, "none"
            norm_from = "no normalisation (inputs in [0, 1], as RobustBench runs it)"
        else:
            family = "state dict" if family == "torchvision state dict" else family
            mean, std, norm = CIFAR10_MEAN, CIFAR10_STD, "cifar10"
            norm_from = "CIFAR-10 normalisation added"
    if normalization not in (None, "auto", False):
        norm, mean, std = _parse_normalization(normalization)
        norm_from = f"{_NORM_TEXT[norm]} (your choice)"
    return Detection(family, arch, arch_from, prefix, norm, mean, std, norm_from, clamp), state


_NORM_TEXT = {"imagenet": "ImageNet normalisation", "cifar10": "CIFAR-10 normalisation",
              "mean-only": "ImageNet mean subtracted only",
              "none": "no normalisation", "custom": "custom normalisation"}


def _name_of(mean: tuple[float, ...], std: tuple[float, ...]) -> str:
    close = lambda a, b: len(a) == len(b) and all(abs(x - y) < 1e-6 for x, y in zip(a, b))  # noqa: E731
    if close(mean, CIFAR10_MEAN) and close(std, CIFAR10_STD):
        return "cifar10"
    if close(mean, IMAGENET_MEAN):
        return "imagenet" if close(std, IMAGENET_STD) else (
            "mean-only" if close(std, (1.0,) * 3) else "custom")
    return "none" if close(mean, (0.0,) * 3) and close(std, (1.0,) * 3) else "custom"


def _parse_normalization(choice: Normalization) -> tuple[str, tuple[float, ...], tuple[float, ...]]:
    if choice is True or choice == "none":
        return "none", (0.0,) * 3, (1.0,) * 3
    if choice == "imagenet":
        return "imagenet", IMAGENET_MEAN, IMAGENET_STD
    if choice == "cifar10":
        return "cifar10", CIFAR10_MEAN, CIFAR10_STD
    if choice == "mean-only":
        return "mean-only", IMAGENET_MEAN, (1.0,) * 3
    if isinstance(choice, (tuple, list)) and len(choice) == 2:
        mean, std = (tuple(float(v) for v in part) for part in choice)
        if len(mean) != 3 or len(std) != 3 or not all(map(math.isfinite, mean + std)) \
                or min(std) <= 0:
            raise CheckpointMismatch("A custom normalisation needs 3 finite means and 3 positive "
                                     "finite stds (R, G, B).")
        return "custom", mean, std
    raise CheckpointMismatch(f"Unknown normalisation {choice!r}; choose one of "
                             f"{', '.join(NORMALIZATIONS)}.")


def parse_mean_std(mean: str, std: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A custom normalisation typed as text ("0.485, 0.456, 0.406"), checked: 3 finite means
    and 3 positive finite stds, else CheckpointMismatch with one line."""
    def triple(text: str, what: str) -> tuple[float, ...]:
        parts = [p for p in re.split(r"[\s,;]+", text.strip()) if p]
        try:
            values = tuple(float(p) for p in parts)
        except ValueError:
            values = ()
        if len(values) != 3 or not all(map(math.isfinite, values)):
            raise CheckpointMismatch(f"Custom normalisation: the {what} needs 3 numbers (R, G, B), "
                                     f"got {text.strip()[:40]!r}.")
        return values

    means, stds = triple(mean, "mean"), triple(std, "std")
    if min(stds) <= 0:
        raise CheckpointMismatch(f"Custom normalisation: every std must be positive, got "
                                 f"{', '.join(f'{v:g}' for v in stds)}.")
    return means, stds


def check_upload_size(size: int, limit: int) -> None:
    """Refuse a checkpoint upload of `size` bytes over `limit` bytes with one line that says
    what to do (raise the limit), before anything reads it."""
    if size > limit:
        raise CheckpointMismatch(
            f"The file is {_human(size)}, over the {_human(limit)} upload limit (it bounds "
            "checkpoint paths too): raise server.maxUploadSize in .streamlit/config.toml.")


def _human(size: int) -> str:
    return f"{size / 2**30:.1f} GB" if size >= 2**30 else f"{size / 2**20:.0f} MB"


def _common_prefix(state: dict[str, torch.Tensor]) -> str:
    """The longest dotted prefix shared by every key that is a wrapper's (`module.`, `1.module.`,
    `model.`...), not a layer of the network itself."""
    prefix = ""
    keys = list(state)
    while True:
        heads = {k[len(prefix):].split(".", 1)[0] for k in keys}
        if len(heads) != 1:
            return prefix
        head = heads.pop()
        if head not in ("module", "model", "net", "1", "base_model", "_orig_mod"):
            return prefix
        prefix += head + "."


def _buildable(arch: str, known: Sequence[str]) -> bool:
    return arch in known or is_cifar_arch(arch) or arch.startswith("timm:")


def _resolve_arch(arch: str | None, file_arch: str | None,
                  state: dict[str, torch.Tensor]) -> tuple[str, str]:
    import torchvision

    known = torchvision.models.list_models(module=torchvision.models)
    if file_arch is not None and not _buildable(file_arch, known):
        raise CheckpointMismatch(f"The file's architecture {file_arch!r} is not one rsviz can "
                                 "build (a torchvision ImageNet architecture, Cohen et al.'s "
                                 "cifar_resnet<depth> or cifar_wrn<depth>_<widen>).")
    if arch not in (None, "", "auto"):
        if not _buildable(arch, known):
            raise CheckpointMismatch(f"Unknown architecture {arch!r} (torchvision names, "
                                     "cifar_resnet110, cifar_wrn28_10, or timm:NAME).")
        if file_arch is not None and file_arch != arch:
            raise CheckpointMismatch(f"The file says its architecture is {file_arch!r}, not "
                                     f"{arch!r}: choose auto or {file_arch!r}.")
        return arch, "from the file's arch key" if file_arch else ""
    if file_arch is not None:
        return file_arch, "from the file's arch key"
    cifar = cifar_arch_of(state)
    if cifar is not None and _fits(_signature(cifar), {
            k: v for k, v in state.items() if not k.startswith("sub_block1.")}):
        return cifar, "recognised from its weights"
    for candidate in CHECKPOINT_ARCHS:
        if not is_cifar_arch(candidate) and _fits(_signature(candidate), state):
            return candidate, "recognised from its weights"
    raise CheckpointMismatch("Cannot tell the checkpoint's architecture (no 'arch' key and its "
                             f"weights fit none of {', '.join(CHECKPOINT_ARCHS)}): choose it.")


@lru_cache(maxsize=None)
def _signature(arch: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Key names and shapes of an architecture, built on the meta device (no memory)."""
    with torch.device("meta"):
        net = make_net(arch)
    return tuple((k, tuple(v.shape)) for k, v in net.state_dict().items())


def _fits(signature: tuple[tuple[str, tuple[int, ...]], ...],
          state: dict[str, torch.Tensor]) -> bool:
    """Same keys, and same shapes except at most the classifier's weight and bias."""
    if {k for k, _ in signature} != set(state):
        return False
    return sum(tuple(state[k].shape) != shape for k, shape in signature) <= 2


def _num_classes(state: dict[str, torch.Tensor]) -> int:
    for key in ("fc.weight", "classifier.weight", "classifier.6.weight", "classifier.3.weight",
                "classifier.1.weight", "heads.head.weight", "head.fc.weight", "head.weight"):
        if key in state and state[key].ndim == 2:
            return int(state[key].shape[0])
    return 1000


def _check_keys(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], arch: str) -> None:
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if not (missing or unexpected or wrong):
        return
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
