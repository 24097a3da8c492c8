"""Boundary slice: a 2D cut of image space around x_o, with and without smoothing (Fig. 2)."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from rsviz.cache import make_key
from rsviz.errors import RsvizError
from rsviz.figures.slices import adversarial_figure, label_maps_figure, samples_figure
from rsviz.images import SAMPLES, preprocess, tensor_hash, to_pil
from rsviz.jobs import format_eta
from rsviz.slices import DIRECTIONS, SliceConfig, SliceResult, compute_slice, estimate_passes, forward_rate
from rsviz.smoothing import forward_labels, make_generator
from ui.common import (cached_sample, cached_upload, current, persist, remember, require_ready,
                       widget)
from ui.export import export_panel
from ui.jobs import job_panel

N_CHOICES = [1, 5, 10, 20, 50, 100, 200, 500, 1000]
# CPU: under a minute with EfficientNet-Lite0 (dense would be 17²·51 = 14 739 passes; adaptive
# measured 7 120 passes in 37 s on 'coffee', idle 2-core CPU); GPU: the paper's Fig. 2.
DEFAULTS = {"cpu": dict(sigma=0.05, ns=[10, 50], grid=17, n_samples=50),
            "gpu": dict(sigma=0.05, ns=[10, 50, 200], grid=201, n_samples=200)}


@st.cache_resource(show_spinner="Measuring the forward speed…", max_entries=8)
def _rate(model_id: str, device: str, _model: torch.nn.Module) -> float:
    return forward_rate(_model)


st.title("Boundary slice")
st.caption("A 2D plane x(u, v) = x_o + u·e1 + v·e2 of image space (e1 ⟂ e2, unit L2 norm), "
           "each point an image coloured by the label it receives: the base classifier f, then "
           "one realisation of the smoothed classifier g_σ,n per n, all from the same votes "
           "(paper Fig. 2). The dotted line is p̂_y = 1/2, the boundary of the ideal g_σ.")
state = current()
if not require_ready(state):
    st.stop()
model, x = state.model, state.x
gpu = state.device.type == "cuda"
d = DEFAULTS["gpu" if gpu else "cpu"]

with st.container(border=True):
    c1, c2, c3, c4 = st.columns(4)
    direction = c1.selectbox("Directions", list(DIRECTIONS), format_func=DIRECTIONS.get,
                             index=list(DIRECTIONS).index(persist("sl_dir", "random")),
                             key="sl_dir_w", on_change=remember, args=("sl_dir",))
    sigma = widget(c2.number_input, "σ (noise std)", "sl_sigma", d["sigma"], min_value=0.001,
                    max_value=2.0, step=0.01, format="%.3f",
                    help="Fig. 2 of the paper uses σ = 0.05 (the sidebar σ is not used here).")
    ns = c3.multiselect("n of g_σ,n (panels)", N_CHOICES, default=persist("sl_ns", d["ns"]),
                        key="sl_ns_w", on_change=remember, args=("sl_ns",))
    n_samples = int(widget(c4.number_input, "N votes per point", "sl_N",
                            max(d["n_samples"], max(ns or [1])), min_value=1, max_value=100_000,
                            help="N ≥ max(n): the panels for every n come from these N votes."))
    c1, c2, c3, c4 = st.columns(4)
    grid = int(widget(c1.number_input, "Grid G (odd, G×G points)", "sl_grid", d["grid"],
                       min_value=3, max_value=1001, step=2))
    auto = widget(c2.checkbox, "Automatic extent", "sl_auto", True,
                   help="1.25× the nearest f-boundary crossing on the axes (random), 1.25× the "
                        "distance to the second image, 2× the distance to x_a.")
    extent = None if auto else float(widget(c2.number_input, "Extent ±E (L2)", "sl_extent",
                                             50.0, min_value=1e-4, format="%.4g"))
    mode = c3.radio("Sampling", ["adaptive", "dense"], horizontal=True,
                    index=["adaptive", "dense"].index(persist("sl_mode", "adaptive")),
                    key="sl_mode_w", on_change=remember, args=("sl_mode",),
                    help="adaptive: n0 votes first, doubled (up to N) only until the top "
                         "class is decided; "
                         "dense: N votes at every point (G²·N passes).")
    seed = int(widget(c4.number_input, "Seed", "sl_seed", 0, min_value=0, step=1))
    clip = widget(st.checkbox, "Clip the slice to the image cube [0,1]^d", "sl_clip", False,
                   help="Off by default, as in the paper: points of the plane (and the noise) "
                        "are not clipped.")
    with st.expander("Adaptive sampling"):
        a1, a2, a3, a4 = st.columns(4)
        n0 = int(widget(a1.number_input, "n0 (first-pass votes)", "sl_n0", 16, min_value=1))
        alpha = float(widget(a4.number_input, "Test level α", "sl_alpha", 0.001,
                              min_value=1e-9, max_value=0.49, format="%.0e",
                              help="A point stops drawing votes once a sign test of its top "
                                   "class against the runner-up has p-value ≤ α."))
        coarse = int(a2.selectbox("Coarse stride", [1, 2, 4, 8, 16],
                                  index=[1, 2, 4, 8, 16].index(persist("sl_coarse", 4)),
                                  key="sl_coarse_w", on_change=remember, args=("sl_coarse",)))
        exact = widget(a3.checkbox, "Exact realisations everywhere", "sl_exact", False,
                        help="Draw lazy votes where a g_σ,n realisation would be inferred "
                             "(fewer than n votes drawn; about n/2 extra votes per such point).")

target, target_name = None, ""
if direction == "image":
    t1, t2 = st.columns(2)
    others = [s for s in SAMPLES if s != getattr(state.image, "name", "")] or list(SAMPLES)
    choice = t1.selectbox("Second image (sample)", others, key="sl_target")
    upload = t2.file_uploader("…or upload one", type=["jpg", "jpeg", "png", "webp", "bmp"],
                              key="sl_target_upload")
    try:
        loaded = cached_upload(upload.getvalue(), upload.name) if upload else cached_sample(choice)
    except RsvizError as exc:
        st.error(str(exc))
        st.stop()
    info = model.info
    target = preprocess(loaded.original, info.input_size, info.resize, info.interpolation)
    target_name = f"{loaded.name} ({tensor_hash(target)[:8]})"

try:
    config = SliceConfig(sigma=float(sigma), ns=tuple(ns), grid=grid, extent=extent,
                         n_samples=n_samples, direction=direction, target=target_name,
                         clip=bool(clip), mode=mode, n0=n0, coarse=coarse,
                         alpha=alpha, exact_realisations=bool(exact), seed=seed)
except RsvizError as exc:
    st.error(str(exc))
    st.stop()

passes = estimate_passes(config)
rate = _rate(state.model_id, str(state.device), model)
cost_note = (f"Estimated cost: ~{passes:,} forward passes"
             + (f" (dense: {grid * grid * (n_samples + 1):,})" if mode == "adaptive" else "")
             + f", ~{format_eta(passes / rate)} at the measured {rate:,.0f} passes/s.")


def _thumbnails(result: SliceResult, picked: list[tuple[float, float]]) -> None:
    """Images (and one noisy sample) at chosen points of the slice."""
    st.subheader("Images at chosen points")
    st.caption("Click a point of the label maps to add it here (or type u, v). Each point "
               "shows x(u, v) and one noisy sample x(u, v) + σN, with f's label.")
    a, b, c = st.columns([1, 1, 2])
    u = a.number_input("u", value=0.0, format="%.4g", key="sl_pick_u")
    v = b.number_input("v", value=0.0, format="%.4g", key="sl_pick_v")
    points = [(name, lu, lv) for name, lu, lv in result.landmarks]
    points += [("clicked", pu, pv) for pu, pv in picked[-3:]]
    if (u, v) != (0.0, 0.0):
        points.append(("typed", float(u), float(v)))
    generator = make_generator(seed, "cpu")
    cols = st.columns(min(len(points), 5))
    for col, (name, pu, pv) in zip(cols * 2, points[:10]):
        img = result.point(x, pu, pv)
        noisy = img + config.sigma * torch.randn(img.shape, generator=generator)
        labels = forward_labels(model, torch.stack([img, noisy]))
        iu = int(np.abs(result.u - pu).argmin())
        iv = int(np.abs(result.v - pv).argmin())
        g = result.g_labels[iv, iu]
        col.image([to_pil(img), to_pil(noisy)], width=96)
        col.caption(f"**{name}** (u={pu:.3g}, v={pv:.3g}) · f: {model.info.class_name(labels[0])}"
                    f" · f(noisy): {model.info.class_name(labels[1])} · g_σ: "
                    f"{model.info.class_name(int(g))} (p̂={result.p_top[iv, iu]:.2f})")


def render(result: SliceResult, fresh: bool) -> None:
    summary = result.summary()
    st.success(f"{result.forward_passes:,} forward passes ({config.mode}; dense: "
               f"{result.dense_passes:,}, {summary['savings']:.1f}× more) in "
               f"{format_eta(result.seconds)}; y = g_σ(x_o) = {summary['y_name']}, "
               f"extent ±{result.extent:g} L2.")
    fig = label_maps_figure(result)
    event = st.plotly_chart(fig, key="sl_chart", on_select="rerun", selection_mode="points")
    inferred = {n: 1 - float(m.mean()) for n, m in result.draw_exact.items()}
    if any(inferred.values()):
        st.caption("g_σ,n realisations inferred (approximate: fewer than n votes "
                   "were not all drawn) at " + ", ".join(f"{v:.0%} of the points for n = {n}"
                                                         for n, v in inferred.items() if v)
                   + "; elsewhere they are exact draws. Tick 'Exact realisations everywhere' "
                     "for exact draws at every point.")
    maps = {"u": result.u, "v": result.v, "f_labels": result.f_labels,
            "g_labels": result.g_labels, "p_y": result.p_y,
            **{f"g_n{n}": m for n, m in result.draws.items()}}
    params = {**config.__dict__, "ns": list(config.ns), "extent_used": result.extent,
              "model": state.model_id, "image": state.image_hash}
    export_panel(fig, "boundary_slice", {k: np.asarray(v).tolist() for k, v in maps.items()},
                 params, key="sl_labels")
    adv = adversarial_figure(result)
    st.plotly_chart(adv, key="sl_adv")
    export_panel(adv, "boundary_slice_p_adv",
                 {f"p_adv_n{n}": result.p_adversarial(n).tolist() for n in config.ns},
                 params, key="sl_adv")
    with st.expander("Where the forward passes went"):
        st.plotly_chart(samples_figure(result), key="sl_samples")
    picked = []
    selection = getattr(event, "selection", None) or {}
    for point in (selection.get("points", []) if isinstance(selection, dict) else []):
        if point.get("x") is not None and point.get("y") is not None:
            picked.append((float(point["x"]), float(point["y"])))
    _thumbnails(result, picked)


key = make_key("slice", state.model_id, state.image_hash, config)
job_panel("slice", "Boundary slice", lambda job: compute_slice(model, x, config, target, job),
          key, render, start_label="Compute the slice", cost_note=cost_note)
