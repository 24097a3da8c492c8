"""Boundary slice: a 2D cut of image space around x_o, with and without smoothing (Fig. 2).

Recipe: widgets -> SliceConfig -> SliceRequest (rsviz.views.slice) -> background job (disk
cache shared with `rsviz slice`) -> panels (ui/slices.py).
"""

from __future__ import annotations

import streamlit as st

from rsviz.images import SAMPLES, model_input, tensor_hash
from rsviz.slices import DIRECTIONS, SliceConfig
from rsviz.views.base import inputs
from rsviz.views.slice import SliceRequest
from ui.common import (cached_sample, cached_upload, choice, gsigma_check, page_inputs,
                       request_or_stop, several, widget)
from ui.engines import sized
from ui.jobs import view_panel
from ui.slices import slice_panels

N_CHOICES = [1, 5, 10, 20, 50, 100, 200, 500, 1000]

st.title("Boundary slice")
st.caption("A 2D plane x(u, v) = x_o + u·e1 + v·e2 of image space (e1 ⟂ e2, unit L2 norm), "
           "each point an image coloured by the label it receives: the base classifier f, then "
           "one realisation of the smoothed classifier g_σ,n per n, all from the same votes "
           "(paper Fig. 2). The dotted line is p̂_y = 1/2, the boundary of the ideal g_σ.")
state, model, x = page_inputs(check=False)  # g_σ is checked at this page's own σ, below
d = {"sigma": 0.05, **sized("slice", model)}  # G, N, n, mode: sized to the measured rate

with st.container(border=True):
    c1, c2, c3, c4 = st.columns(4)
    direction = choice(c1.selectbox, "Directions", "sl_dir", list(DIRECTIONS), "random",
                       format_func=DIRECTIONS.get)
    sigma = widget(c2.number_input, "σ (noise std)", "sl_sigma", d["sigma"], min_value=0.001,
                   max_value=2.0, step=0.01, format="%.3f",
                   help="Fig. 2 of the paper uses σ = 0.05 (the sidebar σ is not used here).")
    ns = several(c3.multiselect, "n of g_σ,n (panels)", "sl_ns", N_CHOICES, d["ns"])
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
    mode = choice(c3.radio, "Sampling", "sl_mode", ["adaptive", "dense"], d["mode"],
                  horizontal=True, help="adaptive: n0 votes first, doubled (up to N) only until "
                                        "the top class is decided; dense: N votes at every "
                                        "point (G²·N passes).")
    seed = int(widget(c4.number_input, "Seed", "sl_seed", 0, min_value=0, step=1))
    clip = widget(st.checkbox, "Clip the slice to the image cube [0,1]^d", "sl_clip", False,
                  help="Off by default, as in the paper: points of the plane (and the noise) "
                       "are not clipped.")
    with st.expander("Adaptive sampling"):
        a1, a2, a3, a4 = st.columns(4)
        n0 = int(widget(a1.number_input, "n0 (first-pass votes)", "sl_n0", 16, min_value=1))
        coarse = int(choice(a2.selectbox, "Coarse stride", "sl_coarse", [1, 2, 4, 8, 16], 4))
        exact = widget(a3.checkbox, "Exact realisations everywhere", "sl_exact", False,
                       help="Draw lazy votes where a g_σ,n realisation would be inferred "
                            "(fewer than n votes drawn; about n/2 extra votes per such point).")
        alpha = float(widget(a4.number_input, "Test level α", "sl_alpha", 0.001, min_value=1e-9,
                             max_value=0.49, format="%.0e",
                             help="A point stops drawing votes once a sign test of its top "
                                  "class against the runner-up has p-value ≤ α."))

gsigma_check(state, float(sigma), where="σ on this page")
target, target_name = None, ""
if direction == "image":
    t1, t2 = st.columns(2)
    others = [s for s in SAMPLES if s != getattr(state.image, "name", "")] or list(SAMPLES)
    picked = t1.selectbox("Second image (sample)", others, key="sl_target")
    upload = t2.file_uploader("…or upload one", type=["jpg", "jpeg", "png", "webp", "bmp"],
                              key="sl_target_upload")
    loaded = request_or_stop(lambda: cached_upload(upload.getvalue(), upload.name) if upload
                             else cached_sample(picked))
    target = model_input(loaded.original, model)
    target_name = f"{loaded.name} ({tensor_hash(target)[:8]})"

config = request_or_stop(lambda: SliceConfig(
    sigma=float(sigma), ns=tuple(ns), grid=grid, extent=extent, n_samples=n_samples,
    direction=direction, target=target_name, clip=bool(clip), mode=mode, n0=n0, coarse=coarse,
    alpha=alpha, exact_realisations=bool(exact), seed=seed))
request = request_or_stop(lambda: SliceRequest(**inputs(model, x), config=config, target=target))
params = {**config.__dict__, "ns": list(config.ns), "model": state.model_id,
          "image": state.image_hash}
dense = f"Dense: {grid * grid * (n_samples + 1):,} passes." if mode == "adaptive" else ""
view_panel("slice", request, model, x,
           lambda result, fresh: slice_panels(result, request, model, x, params),
           "Boundary slice", start_label="Compute the slice", note=dense)
