"""Streamlit helpers shared by every page: the sidebar state, cached models, persistence.

Pages read the shared selection with `current()` (a page that computes: `page_inputs`, its one
preamble); app.py draws the sidebar with `sidebar()` before running the page.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import streamlit as st
import torch

from rsviz.device import describe_device, resolve_device
from rsviz.errors import RsvizError
from rsviz.images import (DEFAULT_SAMPLE, SAMPLES, LoadedImage, decode_image, load_sample,
                          model_input, tensor_hash)
from rsviz.models import (CHECKPOINT_ARCHS, DEFAULT_MODEL, NORMALIZATIONS, PAPER_SIGMA, REGISTRY,
                          Classifier, default_sigma)
from ui.engines import engine_sidebar, preset_sidebar
from ui.model import model_choices, model_section

STATE_KEY = "rsviz_state"


@dataclass
class AppState:
    """What the sidebar selected: the same for every page."""

    model: Classifier | None
    model_error: str | None
    image: LoadedImage | None
    image_error: str | None
    x: torch.Tensor | None  # preprocessed [3,H,W] in [0,1]
    sigma: float
    n: int
    device: torch.device

    @property
    def ready(self) -> bool:
        return self.model is not None and self.x is not None

    @property
    def image_hash(self) -> str:
        return tensor_hash(self.x) if self.x is not None else ""

    @property
    def model_id(self) -> str:
        return self.model.info.model_id if self.model is not None else ""


def metric_row(items: list[tuple[str, str, str]]) -> None:
    """One row of st.metric: (label, value, help) each, help "" for none."""
    for col, (label, value, help_text) in zip(st.columns(len(items)), items):
        col.metric(label, value, help=help_text or None)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_sample(name: str) -> LoadedImage:
    return load_sample(name)


@st.cache_data(show_spinner=False, max_entries=8)
def cached_upload(data: bytes, name: str) -> LoadedImage:
    return decode_image(data, name)


def persist(key: str, default: Any) -> Any:
    """Value of a page widget kept across page switches and reloads: use as
    `value=persist(k, d)` and `on_change=remember, args=(k,)` with the widget key `k + '_w'`.
    A reload starts a new session: the value then comes from the URL (`keep_in_url`)."""
    store = st.session_state.setdefault("rsviz_persist", {})
    if key not in store and key in st.query_params:
        text = st.query_params.get_all(key) if isinstance(default, list) else st.query_params[key]
        parsed = _parse(text, default)
        if parsed is not None:
            store[key] = parsed
    return store.get(key, default)


def _parse(text: Any, default: Any) -> Any:
    """A URL value as the type of `default` (None when it does not parse); lists stay text,
    matched against the options by `several`."""
    try:
        if isinstance(default, bool):
            return {"True": True, "False": False}.get(text)
        if isinstance(default, (int, float, str)):
            return type(default)(text)
        if isinstance(default, list):
            return list(text)
    except (TypeError, ValueError):
        pass
    return None


def keep_in_url(key: str, value: Any, default: Any) -> None:
    """Keep a page setting in the URL's query parameters while it differs from its default, so
    that a reload restores it (and the page re-attaches to its running job)."""
    params = st.query_params
    if value == default:
        if key in params:
            del params[key]
    elif isinstance(value, list):
        if params.get_all(key) != [str(v) for v in value]:
            params[key] = [str(v) for v in value]
    elif params.get(key) != str(value):
        params[key] = str(value)


def remember(key: str) -> None:
    """A widget's new value into the persisted store (its `on_change`)."""
    keep(key, st.session_state[key + "_w"])


def keep(key: str, value: Any) -> None:
    """Persist a value no widget holds (read back by `persist`), e.g. which results folder a
    page opened, so that it stays open across reruns and page switches."""
    st.session_state.setdefault("rsviz_persist", {})[key] = value


def _clamped(value: Any, kwargs: dict) -> Any:
    """A number from the URL kept within the widget's bounds (a bad one must not crash)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        value = max(value, low) if low is not None else value
        value = min(value, high) if high is not None else value
    return value


def widget(kind: Any, label: str, key: str, default: Any, **kwargs: Any) -> Any:
    """A page widget (e.g. `st.number_input` or `cols[0].slider`) whose value survives page
    switches and reloads: `widget(cols[0].number_input, "N", "prof_N", 256, min_value=16)`."""
    value = kind(label, value=_clamped(persist(key, default), kwargs), key=key + "_w",
                 on_change=remember, args=(key,), **kwargs)
    keep_in_url(key, value, default)
    return value


def choice(kind: Any, label: str, key: str, options: list, default: Any, **kwargs: Any) -> Any:
    """A select box or radio (`kind`, e.g. `cols[0].selectbox`) whose choice survives page
    switches and reloads; an option that disappeared falls back to the first one."""
    value = persist(key, default)
    index = next((i for i, o in enumerate(options) if o == value or str(o) == str(value)), 0)
    picked = kind(label, options, index=index, key=key + "_w", on_change=remember, args=(key,),
                  **kwargs)
    keep_in_url(key, picked, default)
    return picked


def several(kind: Any, label: str, key: str, options: list, default: list, **kwargs: Any) -> list:
    """A multiselect whose choice survives page switches and reloads (unknown options are
    dropped)."""
    wanted = [str(v) for v in persist(key, default)]
    kept = [o for o in options if str(o) in wanted]
    kept.sort(key=lambda o: wanted.index(str(o)))
    picked = kind(label, options, default=kept, key=key + "_w", on_change=remember,
                  args=(key,), **kwargs)
    keep_in_url(key, list(picked), list(default))
    return picked


# The sidebar's settings kept in the URL (widget key -> query parameter), so that a reload
# restores them, and with them the keys of the running jobs it re-attaches to.
SIDEBAR_URL = {"sb_source": "source", "sb_sample": "image", "sb_model": "model",
               "sb_device": "device", "sb_arch": "arch", "sb_norm": "norm",
               "sb_ckpt_path": "ckpt", "sb_sigma": "sigma", "sb_n": "n"}
CHECKPOINT_KEYS = ("sb_arch", "sb_norm", "sb_ckpt_path")


def restore(key: str, default: Any, options: list | tuple | None = None,
            **bounds: Any) -> None:
    """Give the sidebar widget `key` its first value of this session: the URL's (a reload),
    else `default`. The value goes through Session State before the widget is drawn, and the
    widget is drawn without a value or index: Streamlit never sees both, so it does not warn
    about a default value plus Session State. Later reruns keep the widget's own value."""
    if key in st.session_state:
        return
    value, param = default, SIDEBAR_URL[key]
    if param in st.query_params:
        parsed = _parse(st.query_params[param], default)
        if isinstance(parsed, float) and not math.isfinite(parsed):
            parsed = None
        if options is not None:
            parsed = next((o for o in options if str(o) == str(parsed)), None)
        if parsed is not None:
            value = _clamped(parsed, bounds)
    st.session_state[key] = value


def sidebar_in_url(key: str, default: Any) -> None:
    """Keep the sidebar widget `key`'s value in the URL while it differs from `default`."""
    if key in st.session_state:
        keep_in_url(SIDEBAR_URL[key], st.session_state[key], default)


def sidebar() -> AppState:
    """Draw the shared sidebar and store the selection for the pages. Its settings survive a
    reload through the URL's query parameters (`restore`, `sidebar_in_url`), as the pages'
    widgets do (`widget`)."""
    sb = st.sidebar
    sb.markdown("### Image")
    restore("sb_source", "Sample", ["Sample", "Upload"])
    source = sb.radio("Source", ["Sample", "Upload"], horizontal=True, key="sb_source",
                      label_visibility="collapsed")
    sidebar_in_url("sb_source", "Sample")
    image, image_error = None, None
    if source == "Sample":
        default = os.environ.get("RSVIZ_SAMPLE", DEFAULT_SAMPLE)
        names = list(SAMPLES)
        restore("sb_sample", default if default in names else names[0], names)
        choice = sb.selectbox("Sample photo", names, key="sb_sample",
                              format_func=lambda k: f"{k} ({SAMPLES[k][1]})")
        sidebar_in_url("sb_sample", default)
        image = cached_sample(choice)
    else:
        upload = sb.file_uploader("Your image (JPEG, PNG, WebP, BMP, TIFF)", key="sb_upload",
                                  type=["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"])
        if upload is None:
            image_error = "Upload an image, or pick a sample photo."
        else:
            try:
                image = cached_upload(upload.getvalue(), upload.name)
            except RsvizError as exc:
                image_error = str(exc)
                sb.error(image_error)

    sb.markdown("### Model")
    names = model_choices()
    default_model = os.environ.get("RSVIZ_MODEL", DEFAULT_MODEL)
    default_model = default_model if default_model in names else names[0]
    restore("sb_model", default_model, names + ["checkpoint"])
    model_name = sb.selectbox("Base classifier f", names + ["checkpoint"], key="sb_model",
                              format_func=lambda k: REGISTRY[k].label if k in REGISTRY
                              else "Your checkpoint (state dict)…")
    sidebar_in_url("sb_model", default_model)
    devices = ["auto", "cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    restore("sb_device", "auto", devices)
    device_choice = sb.selectbox("Device", devices, key="sb_device")
    sidebar_in_url("sb_device", "auto")
    device = resolve_device(device_choice)
    checkpoint_defaults = {"sb_arch": "auto", "sb_norm": NORMALIZATIONS[0], "sb_ckpt_path": ""}
    if model_name == "checkpoint":  # a path on the server, not an upload, can be restored
        restore("sb_arch", "auto", ("auto",) + CHECKPOINT_ARCHS)
        restore("sb_norm", NORMALIZATIONS[0], NORMALIZATIONS)
        restore("sb_ckpt_path", "")
    model, model_error = model_section(sb, model_name, device)
    for key in CHECKPOINT_KEYS:
        if model_name == "checkpoint":
            sidebar_in_url(key, checkpoint_defaults[key])
        elif SIDEBAR_URL[key] in st.query_params:
            del st.query_params[SIDEBAR_URL[key]]
    sb.caption(f"Device: **{describe_device(device)}**")
    if model is not None:
        engine_sidebar(sb, model)
        preset_sidebar(sb, model)

    sb.markdown("### Smoothing")
    sigma_default, sigma_why = default_sigma(model.info) if model is not None else (
        PAPER_SIGMA, "")
    restore("sb_sigma", float(sigma_default), min_value=0.001, max_value=2.0)
    sigma = sb.number_input("σ (noise std, pixel units of [0,1])", min_value=0.001,
                            max_value=2.0, step=0.01, format="%.3f", key="sb_sigma",
                            help="Cohen et al. use σ ∈ {0.25, 0.5, 1.0}; the paper also "
                                 "studies 0.05 and 0.15.")
    sidebar_in_url("sb_sigma", float(sigma_default))
    if sigma_why:
        sb.caption(f"Default {sigma_why}.")
    restore("sb_n", 10, min_value=1, max_value=100_000)
    n = int(sb.number_input("n (votes per query of g_{σ,n})", min_value=1, max_value=100_000,
                            step=1, key="sb_n"))
    sidebar_in_url("sb_n", 10)
    x = None
    if model is not None and image is not None:
        x = model_input(image.original, model)
    state = AppState(model=model, model_error=model_error, image=image, image_error=image_error,
                     x=x, sigma=float(sigma), n=n, device=device)
    st.session_state[STATE_KEY] = state
    return state


def current() -> AppState:
    """The sidebar selection (drawn by app.py before the page runs)."""
    state = st.session_state.get(STATE_KEY)
    if state is None:
        state = sidebar()
    return state


def require_ready(state: AppState) -> bool:
    """Show why a page cannot compute yet; True when model and image are ready."""
    if state.model is None:
        st.warning(state.model_error or "Choose a model in the sidebar.")
        return False
    if state.x is None:
        st.info(state.image_error or "Choose an image in the sidebar.")
        return False
    return True


def page_inputs(check: bool = True,
                **options: Any) -> tuple[AppState, Classifier, torch.Tensor]:
    """The preamble of a page that computes: (state, model, x) of the sidebar selection, or the
    page stopped with the reason (`require_ready`). With `check`, `gsigma_check` at the
    sidebar's σ first, with `options` (`offer`, `stop`, `key`); pages whose σ is their own
    widget pass check=False and call `gsigma_check` with it."""
    state = current()
    if not require_ready(state):
        st.stop()
    if check:
        gsigma_check(state, state.sigma, **options)
    return state, state.model, state.x


def show_error(exc: BaseException | str) -> None:
    """The one way a page shows an error: one message, never a traceback."""
    if isinstance(exc, str):
        st.error(exc)
    elif isinstance(exc, RsvizError):
        st.error(str(exc))
    else:
        first = str(exc).splitlines()[0] if str(exc) else ""
        st.error(f"{type(exc).__name__}: {first}")


def request_or_stop(build: Any) -> Any:
    """`build()` (a request or config constructor), or the error shown and the page stopped."""
    try:
        return build()
    except RsvizError as exc:
        show_error(exc)
        st.stop()


@st.cache_data(show_spinner="Checking g_σ at x_o…", max_entries=64)
def _at_xo(model_id: str, image_hash: str, sigma: float, forward: str, _model: Any,
           _x: torch.Tensor) -> tuple[bool, float, int, str]:
    """`rsviz.gsigma.check_at_xo`, once per model, image, σ and forward identity."""
    from rsviz.gsigma import check_at_xo

    return tuple(check_at_xo(_model, _x, float(sigma)))


def gsigma_check(state: AppState, sigma: float, where: str = "in the sidebar", offer: str = "",
                 stop: bool = False, key: str = "") -> bool:
    """Before a page's Start button: when the ideal g_σ already disagrees with f at x_o (a
    sequential test of 32–256 votes, cached), one warning that says so and what to change
    (another image, a smaller σ `where` it is set, plus the page's own `offer`). With `stop`,
    the page stops there unless "Run anyway" (checkbox `key`) is ticked. True when g_σ agrees."""
    from rsviz.engines import forward_of

    if not state.ready:
        return True
    agrees, _, _, message = _at_xo(state.model_id, state.image_hash, float(sigma),
                                   forward_of(state.model).tag(), state.model, state.x)
    if agrees:
        return True
    st.warning(f"{message.rstrip('.')}: try another image (sidebar) or a smaller σ ({where})"
               + (f", or {offer}" if offer else "") + ".")
    if stop and not st.checkbox("Run anyway", key=key or "gsigma_run_anyway",
                                help="The result will show g_σ's disagreement at x_o, not a "
                                     "boundary around it."):
        st.stop()
    return False
