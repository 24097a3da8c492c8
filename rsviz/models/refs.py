"""Model references: one syntax for the sidebar, the CLI (`--model`) and study plans (`models:`).

| reference | what it loads |
|---|---|
| `efficientnet_lite0` | a registry name (`rsviz.models.REGISTRY`) |
| `torchvision:resnet50`, `torchvision:resnet50.IMAGENET1K_V2` | a torchvision model with its weights (DEFAULT when no tag) |
| `timm:NAME`, `timm:resnet18.a1_in1k` | a timm model with its pretrained weights |
| `timm:NAME@PATH` | a timm model with the weights of a local file (.safetensors, .pth) |
| `hf-hub:ORG/REPO` | a timm model published on the Hugging Face hub (config.json + weights) |
| `checkpoint:PATH` | a checkpoint file, its family and architecture detected (`load_checkpoint`) |
| `ARCH:PATH`, `auto:PATH` | a checkpoint of a named architecture (the older plan syntax) |

Weights are read from the local caches first: torch's hub folder (`$TORCH_HOME/hub/checkpoints`)
for torchvision, the Hugging Face cache (`$HF_HUB_CACHE`, `~/.cache/huggingface/hub`) or torch's
hub folder for timm. With `RSVIZ_OFFLINE=1` nothing is downloaded: a missing file raises
ModelUnavailable with one line naming the file and where to put it. Without it, a missing file
is downloaded by torchvision / timm as they normally do.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rsviz.errors import ConfigError, ModelUnavailable, RsvizError
from rsviz.models.base import Classifier, ModelInfo, content_hash, imagenet_classes

SCHEMES = ("torchvision", "timm", "hf-hub", "checkpoint")
REF_HELP = ("a registry name, torchvision:NAME[.WEIGHTS], timm:NAME[@FILE], hf-hub:ORG/REPO, "
            "checkpoint:PATH (or ARCH:PATH)")


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference.

    Attributes:
        scheme: "registry", "torchvision", "timm", "hf-hub" or "checkpoint".
        name: the registry name, torchvision NAME[.WEIGHTS], timm name, hub repo or file path.
        arch: a checkpoint's architecture ("auto": detected from the file).
        file: a timm model's local weights file (`timm:NAME@FILE`).
    """

    scheme: str
    name: str
    arch: str = "auto"
    file: str | None = None

    def __str__(self) -> str:
        if self.scheme == "registry":
            return self.name
        if self.scheme == "checkpoint" and self.arch != "auto":
            return f"{self.arch}:{self.name}"
        return f"{self.scheme}:{self.name}" + (f"@{self.file}" if self.file else "")


def offline() -> bool:
    """RSVIZ_OFFLINE=1: never download anything."""
    return os.environ.get("RSVIZ_OFFLINE") == "1"


def parse_model_ref(ref: str) -> ModelRef:
    """Parse a reference (see the module docstring); ConfigError with one line when it is none."""
    from rsviz.models.checkpoints import CHECKPOINT_ARCHS
    from rsviz.models.registry import REGISTRY

    ref = str(ref).strip()
    if ref in REGISTRY:
        return ModelRef("registry", ref)
    scheme, sep, rest = ref.partition(":")
    rest = rest.strip()
    if sep and scheme in SCHEMES:
        if not rest:
            raise ConfigError(f"Model {ref!r}: give a name after '{scheme}:'.")
        if scheme == "timm" and "@" in rest:
            name, _, file = rest.partition("@")
            return ModelRef("timm", name.strip(), file=os.path.expanduser(file.strip()))
        if scheme == "checkpoint":
            return ModelRef("checkpoint", os.path.expanduser(rest))
        return ModelRef(scheme, rest)
    if sep and (scheme in CHECKPOINT_ARCHS or scheme == "auto") and rest:
        return ModelRef("checkpoint", os.path.expanduser(rest), arch=scheme)
    close = difflib.get_close_matches(ref, list(REGISTRY), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"Unknown model {ref!r}{hint}: give {REF_HELP}; registry names: "
                      f"{', '.join(REGISTRY)}.")


def check_model_ref(ref: str) -> ModelRef:
    """Cheap checks before anything runs: the syntax, a registry name, a checkpoint or weights
    file that exists. Weights in caches are checked when the model loads."""
    parsed = parse_model_ref(ref)
    if parsed.scheme == "checkpoint" and not Path(parsed.name).is_file():
        raise ConfigError(f"Model {ref!r}: no checkpoint file at {parsed.name}.")
    if parsed.file and not Path(parsed.file).is_file():
        raise ConfigError(f"Model {ref!r}: no weights file at {parsed.file}.")
    return parsed


def load_model_ref(ref: str, device: torch.device | str = "cpu",
                   normalization: Any = None, arch: str | None = None) -> Classifier:
    """Load any model reference as a Classifier on `device`.

    Args:
        ref: see the module docstring.
        device: where to put the model.
        normalization: a checkpoint's input normalisation (`load_checkpoint`); other references
            carry their own and refuse one.
        arch: a checkpoint's architecture when the reference does not name one.
    Raises RsvizError (ModelUnavailable, CheckpointMismatch, ConfigError) with one line.
    """
    parsed = check_model_ref(ref)
    if parsed.scheme != "checkpoint" and normalization not in (None, "auto", False):
        raise ConfigError(f"Model {ref!r} carries its own input normalisation; a normalisation "
                          "choice applies to checkpoints only.")
    if parsed.scheme == "registry":
        from rsviz.models.registry import load_model

        return load_model(parsed.name, device)
    if parsed.scheme == "checkpoint":
        from rsviz.models.checkpoints import load_checkpoint

        chosen = arch if arch not in (None, "", "auto") else parsed.arch
        return load_checkpoint(chosen, parsed.name, normalization, device)
    loader = {"torchvision": _torchvision, "timm": _timm, "hf-hub": _hf_hub}[parsed.scheme]
    try:
        return loader(parsed).to(device)
    except RsvizError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the library raises becomes one line
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ModelUnavailable(f"Cannot load {ref}: {type(exc).__name__}: {first}") from exc


# ------------------------------------------------------------------------------ torchvision


def torch_hub_folder() -> Path:
    """Where torch keeps downloaded weights ($TORCH_HOME/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _torchvision(ref: ModelRef) -> Classifier:
    import torchvision

    from rsviz.models.registry import REGISTRY, load_model

    arch, _, tag = ref.name.partition(".")
    known = torchvision.models.list_models(module=torchvision.models)
    if arch not in known:
        close = difflib.get_close_matches(arch, known, n=3)
        raise ModelUnavailable(f"torchvision has no classification model {arch!r}"
                               + (f" (did you mean {', '.join(close)}?)." if close else "."))
    enum = torchvision.models.get_model_weights(arch)
    try:
        weights = enum[tag.upper()] if tag else enum.DEFAULT
    except KeyError:
        raise ModelUnavailable(f"torchvision:{arch} has no weights {tag!r}; available: "
                               f"{', '.join(w.name for w in enum)}.") from None
    registry_name = f"{arch}.{weights.name.lower()}"
    if registry_name in REGISTRY:  # the same weights as a registry entry: the same model id
        return load_model(registry_name)
    filename = os.path.basename(weights.url)
    target = torch_hub_folder() / filename
    if target.is_file():
        state = torch.load(target, map_location="cpu", weights_only=True)
    elif offline():
        raise ModelUnavailable(
            f"torchvision:{arch}.{weights.name}: the weights file {filename} is not in "
            f"{target.parent} and RSVIZ_OFFLINE=1 forbids downloading; download {weights.url} "
            f"on a machine with internet access and copy it there (or set TORCH_HOME).")
    else:
        state = weights.get_state_dict(progress=False, check_hash=True)
    net = torchvision.models.get_model(arch, weights=None,
                                       num_classes=len(weights.meta["categories"]))
    net.load_state_dict(state)
    transform = weights.transforms()
    interpolation = getattr(transform.interpolation, "value", "bilinear")
    version = os.path.splitext(filename)[0].rsplit("-", 1)[-1]
    info = ModelInfo(
        name=f"torchvision:{arch}.{weights.name}", model_id=f"{registry_name}-{version}",
        input_size=int(transform.crop_size[0]), resize=int(transform.resize_size[0]),
        mean=tuple(transform.mean), std=tuple(transform.std),
        class_names=tuple(weights.meta["categories"]),
        source=f"torchvision {arch} {weights.name} ({target})",
        interpolation=interpolation if interpolation in ("bicubic", "bilinear") else "bilinear")
    return Classifier(net, info)


# ------------------------------------------------------------------------------------- timm


def hf_cache_folder() -> Path:
    """The Hugging Face hub cache ($HF_HUB_CACHE, else $HF_HOME/hub, else
    ~/.cache/huggingface/hub), read at each call."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface")
    return Path(home).expanduser() / "hub"


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def _cached_hf(repo: str, filenames: tuple[str, ...]) -> str | None:
    """The local path of the first of `filenames` cached for hub repo `repo`, else None (no
    network)."""
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        found = try_to_load_from_cache(repo, filename, cache_dir=str(hf_cache_folder()))
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def _missing_hf(what: str, repo: str, filenames: tuple[str, ...]) -> ModelUnavailable:
    return ModelUnavailable(
        f"{what}: {' or '.join(filenames)} of the Hugging Face repo {repo} is not in the cache "
        f"{hf_cache_folder()} and RSVIZ_OFFLINE=1 forbids downloading; run "
        f"`huggingface-cli download {repo}` on a machine with internet access and copy its "
        "cache folder there (or set HF_HUB_CACHE), or give a local file as timm:NAME@FILE.")


def _timm_info(net: torch.nn.Module, name: str, model_id: str, source: str,
               label_names: Any = None) -> ModelInfo:
    from timm.data import resolve_model_data_config

    config = resolve_model_data_config(net)
    _, height, width = config["input_size"]
    if height != width:
        raise ModelUnavailable(f"{name} takes {height}×{width} inputs; rsviz runs square inputs.")
    crop = float(config.get("crop_pct") or 1.0)
    num_classes = int(getattr(net, "num_classes", 0) or 0)
    if label_names and len(label_names) == num_classes:
        classes = tuple(str(c) for c in label_names)
    elif num_classes == 1000:
        classes = imagenet_classes()
    else:
        classes = tuple(f"class {i}" for i in range(num_classes))
    interpolation = config.get("interpolation", "bicubic")
    return ModelInfo(name=name, model_id=model_id, input_size=int(height),
                     resize=int(math.floor(height / crop)), mean=tuple(config["mean"]),
                     std=tuple(config["std"]), class_names=classes, source=source,
                     interpolation=interpolation if interpolation in ("bicubic", "bilinear")
                     else "bilinear")


def _wrap_timm(net: torch.nn.Module, name: str, id_prefix: str, source: str,
               label_names: Any = None) -> Classifier:
    model = Classifier(net, _timm_info(net, name, "", source, label_names))
    model.info = ModelInfo(**{**model.info.__dict__,
                              "model_id": f"{id_prefix}-{content_hash(model)}"})
    return model


def _timm(ref: ModelRef) -> Classifier:
    import timm
    from timm.models import get_pretrained_cfg

    base = ref.name.partition(".")[0]
    if not timm.is_model(base):
        close = difflib.get_close_matches(base, timm.list_models(), n=3)
        raise ModelUnavailable(f"timm has no model {base!r}"
                               + (f" (did you mean {', '.join(close)}?)." if close else "."))
    name = f"timm:{ref.name}"
    if ref.file:
        net = timm.create_model(ref.name, pretrained=True,
                                pretrained_cfg_overlay={"file": ref.file})
        return _wrap_timm(net, name, f"timm-{ref.name}", f"timm {ref.name}, weights {ref.file}")
    cfg = get_pretrained_cfg(ref.name)  # the default tag when the name has none
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise ModelUnavailable(f"timm:{ref.name} has no pretrained weights in timm; give a "
                               f"weights file as timm:{ref.name}@FILE.")
    local = None
    if cfg.hf_hub_id:
        local = _cached_hf(cfg.hf_hub_id, (cfg.hf_hub_filename,) if cfg.hf_hub_filename
                           else WEIGHT_FILES[:2])
    if local is None and cfg.url:
        candidate = torch_hub_folder() / os.path.basename(cfg.url)
        local = str(candidate) if candidate.is_file() else None
    if local is not None:
        net = timm.create_model(ref.name, pretrained=True, pretrained_cfg_overlay={"file": local})
        where = local
    elif offline():
        if cfg.hf_hub_id:
            raise _missing_hf(name, cfg.hf_hub_id, WEIGHT_FILES[:2])
        raise ModelUnavailable(
            f"{name}: the weights file {os.path.basename(cfg.url)} is not in "
            f"{torch_hub_folder()} and RSVIZ_OFFLINE=1 forbids downloading; download {cfg.url} "
            f"on a machine with internet access and copy it there, or give it as {name}@FILE.")
    else:
        net = timm.create_model(ref.name, pretrained=True)
        where = cfg.hf_hub_id or cfg.url
    return _wrap_timm(net, name, f"timm-{ref.name}", f"timm {ref.name} ({where})")


def _hf_hub(ref: ModelRef) -> Classifier:
    import timm

    repo = ref.name
    name = f"hf-hub:{repo}"
    config_path = _cached_hf(repo, ("config.json",))
    weights = _cached_hf(repo, WEIGHT_FILES)
    if config_path is None or weights is None:
        if offline():
            raise _missing_hf(name, repo, ("config.json",) if config_path is None
                              else WEIGHT_FILES[:2])
        net = timm.create_model(f"hf-hub:{repo}", pretrained=True)
        return _wrap_timm(net, name, f"hf-hub-{repo.replace('/', '--')}", f"timm hf-hub:{repo}",
                          net.pretrained_cfg.get("label_names"))
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    arch = config.get("architecture")
    if not arch or not timm.is_model(arch.partition(".")[0]):
        raise ModelUnavailable(f"{name}: its config.json names no timm architecture "
                               f"({arch!r}); rsviz loads timm models from the hub.")
    pretrained = dict(config.get("pretrained_cfg") or {})
    pretrained.pop("source", None)  # loaded from the cached file, not from the hub
    pretrained.update(hf_hub_id=repo, file=weights)
    if "num_classes" in config:
        pretrained["num_classes"] = config["num_classes"]
    net = timm.create_model(arch, pretrained=True, pretrained_cfg=pretrained,
                            **(config.get("model_args") or {}))
    return _wrap_timm(net, name, f"hf-hub-{repo.replace('/', '--')}",
                      f"timm hf-hub:{repo} ({weights})", config.get("label_names"))
