"""Sidebar model section: a registry model, a model by reference (`timm:NAME`,
`torchvision:NAME`, `hf-hub:REPO`, `checkpoint:PATH`; rsviz.models.refs) or a checkpoint (path on
the server or upload), its architecture and normalisation. A model that fails to load never replaces the one in use: the
app keeps its current model and says why in one line (docs/models.md)."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import streamlit as st
import torch

from rsviz.errors import RsvizError
from rsviz.models import (CHECKPOINT_ARCHS, IMAGENET_MEAN, IMAGENET_STD, NORMALIZATIONS,
                          REGISTRY, Classifier, check_upload_size, load_checkpoint, load_model,
                          load_model_ref, parse_mean_std, parse_model_ref)

IN_USE_KEY = "rsviz_model_in_use"
WAITING = ("Give a checkpoint path, a model reference (timm:NAME, torchvision:NAME, "
           "hf-hub:ORG/REPO) or upload a checkpoint.")


@st.cache_resource(show_spinner="Loading the model…")
def cached_model(name: str, device: str) -> Classifier:
    return load_model(name, torch.device(device))


@st.cache_resource(show_spinner="Loading the checkpoint…", max_entries=3)
def cached_checkpoint(arch: str, digest: str, _data: bytes, normalization: Any,
                      device: str) -> Classifier:
    return load_checkpoint(arch, _data, normalization, torch.device(device))


@st.cache_resource(show_spinner="Loading the checkpoint…", max_entries=3)
def cached_checkpoint_file(arch: str, path: str, stamp: tuple[int, int], normalization: Any,
                           device: str, limit: int) -> Classifier:
    """A checkpoint on the server, reloaded when its size or modification time changes; a
    regular file of at most `limit` bytes, read with a timeout (no FIFO, device or folder)."""
    return load_checkpoint(arch, path, normalization, torch.device(device), max_bytes=limit)


@st.cache_resource(show_spinner="Loading the model…", max_entries=3)
def cached_ref(ref: str, device: str) -> Classifier:
    """A model by reference (timm:, torchvision:, hf-hub:): weights from the local caches, or
    one line saying which file is missing and where to put it."""
    return load_model_ref(ref, torch.device(device))


def upload_limit() -> int:
    """The upload limit in bytes (server.maxUploadSize, in MB)."""
    return int(st.get_option("server.maxUploadSize")) * 2**20


def model_choices() -> list[str]:
    show_tests = os.environ.get("RSVIZ_SHOW_TEST_MODELS", "1") == "1"
    return [k for k, spec in REGISTRY.items() if show_tests or not spec.test_only]


def model_section(sb: Any, model_name: str, device: torch.device
                  ) -> tuple[Classifier | None, str | None]:
    """The model chosen in the sidebar, or the one in use when it cannot be loaded: (model,
    message shown to the pages when there is none)."""
    try:
        if model_name == "checkpoint":
            model = checkpoint_widgets(sb, device)
            error = WAITING if model is None else None
        else:
            model, error = cached_model(model_name, str(device)), None
    except RsvizError as exc:
        model, error = None, str(exc)
    return keep_current(sb, model, error)


def keep_current(sb: Any, model: Classifier | None, error: str | None
                 ) -> tuple[Classifier | None, str | None]:
    """A newly loaded model becomes the one in use; otherwise the one in use stays, with one
    line saying why (an error for a bad file, a note while no file is given)."""
    if model is not None:
        st.session_state[IN_USE_KEY] = model
        return model, None
    previous = st.session_state.get(IN_USE_KEY)
    kept = f" Still using {previous.info.name}." if previous is not None else ""
    (sb.info if error == WAITING else sb.error)(f"{error}{kept}")
    return previous, None if previous is not None else error


def checkpoint_widgets(sb: Any, device: torch.device) -> Classifier | None:
    """The checkpoint widgets; the loaded model, None while no file is given. A bad file or a
    bad normalisation raises RsvizError with one line."""
    arch = sb.selectbox("Architecture", ("auto",) + CHECKPOINT_ARCHS, key="sb_arch",
                        help="auto: the file's arch key, else the architecture its weights fit.")
    normalization: Any = sb.selectbox(
        "Input normalisation", NORMALIZATIONS, key="sb_norm",
        help="auto: what the file says (Cohen et al.: ImageNet added; Madry et al.: its "
             "normaliser's mean/std). custom: type the mean and std (R, G, B).")
    custom = None
    if normalization == "custom":
        cols = sb.columns(2)
        custom = (cols[0].text_input("Mean (R, G, B)", ", ".join(map(str, IMAGENET_MEAN)),
                                     key="sb_norm_mean"),
                  cols[1].text_input("Std (R, G, B)", ", ".join(map(str, IMAGENET_STD)),
                                     key="sb_norm_std"))
    path = sb.text_input(
        "Checkpoint path on the server, or a model reference", key="sb_ckpt_path",
        help="A file path (or checkpoint:PATH), or a model by name: timm:NAME (e.g. "
             "timm:resnet18.a1_in1k), torchvision:NAME (e.g. torchvision:resnet50), "
             "hf-hub:ORG/REPO. Weights come from the local caches; offline, a missing file is "
             "named with where to put it.").strip()
    reference = _reference(path)
    if reference is not None:
        model = cached_ref(reference, str(device))
        sb.caption(model.info.source)
        return model
    if path.startswith("checkpoint:"):
        path = path[len("checkpoint:"):].strip()
    limit = upload_limit()
    upload = sb.file_uploader(
        f"…or upload it (.pth, .pt, .tar; up to {limit / 2**30:.0f} GB)" if limit >= 2**30
        else f"…or upload it (.pth, .pt, .tar; up to {limit // 2**20} MB)",
        type=["pth", "pt", "bin", "tar"], key="sb_ckpt",
        help="A path on the server has the same limit (server.maxUploadSize in "
             ".streamlit/config.toml).")
    if custom is not None:
        normalization = parse_mean_std(*custom)
    if path:
        full = os.path.expanduser(path)
        stat = os.stat(full) if os.path.isfile(full) else None
        stamp = (stat.st_size, stat.st_mtime_ns) if stat else (0, 0)
        model = cached_checkpoint_file(arch, full, stamp, normalization, str(device), limit)
    elif upload is None:
        return None
    else:
        check_upload_size(upload.size, limit)
        data = upload.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        model = cached_checkpoint(arch, digest, data, normalization, str(device))
    sb.caption(model.info.source)
    return model


def _reference(text: str) -> str | None:
    """The text as a timm:/torchvision:/hf-hub: reference (a registry name counts too), None
    when it is a checkpoint path."""
    if not text or os.path.exists(os.path.expanduser(text)):
        return None
    try:
        parsed = parse_model_ref(text)
    except RsvizError:
        return None
    return text if parsed.scheme in ("timm", "torchvision", "hf-hub", "registry") else None
