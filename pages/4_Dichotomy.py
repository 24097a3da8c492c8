"""Dichotomy: where a binary search against g_{σ,n} lands, per n (paper Fig. 3).

Recipe: widgets -> DichotomyConfig -> DichotomyRequest (rsviz.views.dichotomy: it also picks
the segment, as `rsviz dichotomy` does) -> background job -> panels (ui/dichotomy.py).
"""

from __future__ import annotations

import streamlit as st

from rsviz.defaults import WHITEBOX_ITERATION_PASSES
from rsviz.dichotomy import DichotomyConfig
from rsviz.images import SAMPLES, model_input
from rsviz.views.base import inputs
from rsviz.views.dichotomy import SEGMENTS, DichotomyRequest
from ui.common import cached_sample, choice, page_inputs, request_or_stop, several, widget
from ui.dichotomy import dichotomy_panels
from ui.engines import sized
from ui.jobs import view_panel

N_CHOICES = [1, 3, 5, 10, 20, 50, 100, 200, 500, 1000]

st.title("Dichotomy against g_{σ,n}")
st.caption("A decision-based attack finds the boundary on a segment [A, B] (A classified y, "
           "B adversarial) by binary search. Against the random classifier g_{σ,n} every answer "
           "near the boundary is a coin flip, so the output is a random variable: it "
           "concentrates around the ideal boundary ∂g_σ only when n is large (paper Fig. 3).")
state, model, x = page_inputs(stop=True, key="dich_anyway")
sigma = state.sigma
kinds = list(SEGMENTS)
cols = st.columns([2, 1, 1, 1])
kind = choice(cols[0].radio, "End point B", "dich_segment", kinds, kinds[0],
              format_func=SEGMENTS.get, help="White-box and random segments fall back to the "
                                             "other image when they find no adversarial B.")
others = [s for s in SAMPLES if s != getattr(state.image, "name", None)]
other = choice(cols[1].selectbox, "Other image", "dich_other", others, others[0],
               disabled=kind != "towards")
extension = widget(cols[2].number_input, "B past ∂g_σ by (× σ)", "dich_ext", 3.0,
                   min_value=0.0, max_value=50.0, step=0.5,
                   help="∂g_σ is searched along the segment first (sequential votes); B is "
                        "then this many σ past it, so the dichotomies straddle ∂g_σ (Fig. 3).")
d = sized("dichotomy", model)  # segment grid, N and white-box search: sized to the rate
attack_iters = int(widget(cols[3].number_input, "White-box iterations", "dich_iters",
                          d["attack_iters"], min_value=1, max_value=1000, step=10,
                          disabled=kind != "whitebox",
                          help="Gradient iterations of the search for the boundary point x_a "
                               f"of f (each ≈ {WHITEBOX_ITERATION_PASSES} forward passes' time "
                               "on a CPU). 20 puts x_a within ≈ 1.2× of the closest point found "
                               "with 100."))
cols = st.columns(4)
n_values = several(cols[0].multiselect, "n (votes per query)", "dich_n", N_CHOICES, [10, 50, 100])
trials = int(widget(cols[1].number_input, "Trials per n", "dich_trials", d["trials"], min_value=10,
                    max_value=100_000, step=100))
steps = int(widget(cols[2].slider, "Bisection steps k", "dich_steps", 12, min_value=3,
                   max_value=20))
seed = int(widget(cols[3].number_input, "Seed", "dich_seed", 0, min_value=0, step=1))
with st.expander("Segment measurement and simulation"):
    cols = st.columns(4)
    grid = int(widget(cols[0].number_input, "Points on the segment", "dich_grid", d["grid"],
                      min_value=4, max_value=1024, step=8))
    n_samples = int(widget(cols[1].number_input, "N samples per point", "dich_N", d["n_samples"],
                           min_value=16, max_value=100_000, step=64))
    method = choice(cols[2].radio, "Simulated query", "dich_method", ["multinomial", "binomial"],
                    "multinomial", help="multinomial: n votes drawn from the measured class "
                                        "frequencies (exact for any number of classes); "
                                        "binomial: P[Bin(n, 1 − p̂_y) > n/2], exact for two "
                                        "classes.")
    fit = choice(cols[3].radio, "p̂_y along t", "dich_fit", ["probit", "none"], "probit",
                 format_func={"probit": "probit fit", "none": "raw"}.get,
                 help="The simulation amplifies the sampling error of p̂ about √n times; a "
                      "smooth fit Φ(cubic in t) removes most of it.")
    live = widget(st.checkbox, "Also run live", "dich_live", False,
                  help="Every query of every trial goes to the model (lazy exact vote). "
                       "Validates the simulation; costs up to trials × k × n passes per n.")
if not n_values:
    st.info("Pick at least one value of n.")
    st.stop()
config = request_or_stop(lambda: DichotomyConfig(
    sigma=sigma, n_values=tuple(sorted(n_values)), trials=trials, steps=steps, grid=grid,
    n_samples=n_samples, method=method, fit=fit, live=bool(live), seed=seed))
towards = kind == "towards"
request = request_or_stop(lambda: DichotomyRequest(
    **inputs(model, x), config=config, kind=kind, extension=float(extension),
    attack_iters=attack_iters,
    other=model_input(cached_sample(other).original, model) if towards else None,
    other_name=f"sample:{other}" if towards else ""))
params = {"kind": kind, "other": other if towards else None, "extension": float(extension),
          "attack_iters": attack_iters if kind == "whitebox" else None}
view_panel("dichotomy", request, model, x,
           lambda out, fresh: dichotomy_panels(out, model.info.class_name, params),
           "Dichotomy", start_label="Run dichotomies",
           note=f"The simulation of {trials:,} trials × {len(n_values)} values of n is free.")
