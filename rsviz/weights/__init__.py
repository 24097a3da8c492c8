"""Weights that ship inside rsviz, so no model needs a download.

Each file is an fp16 state dict listed in `manifest.json` with its SHA-256; `load_state` checks
the digest before unpickling (with `weights_only=True`) and returns the tensors in fp32, so a
truncated or altered file is refused with one line saying what to do.
"""

from __future__ import annotations

import hashlib
import io
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rsviz.errors import ModelUnavailable

FOLDER = Path(__file__).resolve().parent
MANIFEST = FOLDER / "manifest.json"


@lru_cache(maxsize=1)
def manifest() -> dict[str, dict[str, Any]]:
    """name -> {file, sha256, trained_sigma, ...} of every shipped weights file."""
    return json.loads(MANIFEST.read_text())


def sha256_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def load_state(name: str, path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The fp32 state dict of shipped weights `name`, after checking the file's SHA-256.

    Args:
        name: an entry of the manifest.
        path: read this file instead of the shipped one (it must still match the checksum).
    """
    if name not in manifest():
        raise ModelUnavailable(f"No shipped weights named {name!r}; known: {', '.join(manifest())}.")
    entry = manifest()[name]
    path = Path(path) if path else FOLDER / entry["file"]
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelUnavailable(f"The weights file {path} of {name} cannot be read "
                               f"({exc.strerror}); restore it from the repository.") from exc
    digest = sha256_of(raw)
    if digest != entry["sha256"]:
        raise ModelUnavailable(
            f"The weights file {path} of {name} is corrupted or altered (SHA-256 {digest[:12]}… "
            f"instead of {entry['sha256'][:12]}…); restore it from the repository.")
    state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def efficientnet_lite0_noise(path: str | Path | None = None) -> nn.Module:
    """EfficientNet-Lite0 made robust to Gaussian noise (distilled, then weight-interpolated
    with the clean Lite0; docs/model_card_noise.md): the timm
    `tf_efficientnet_lite0` network with the shipped weights (input normalised to [-1, 1])."""
    import timm

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    net.load_state_dict(load_state("efficientnet_lite0_noise", path))
    return net
