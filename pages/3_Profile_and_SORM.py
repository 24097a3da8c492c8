"""Profile & SORM: probability of being adversarial along x_a − x_o (paper Fig. 1, eq. 3–6).

Recipe: widgets -> ProfileConfig (`page_config`) -> ProfileRequest (rsviz.views.profile, disk
cache shared with `rsviz profile`) -> background job -> panels (ui/profile.py).
"""

from __future__ import annotations

import streamlit as st

from rsviz.views.base import inputs
from rsviz.views.profile import ProfileRequest, page_config
from ui.common import choice, page_inputs, request_or_stop, several, widget
from ui.engines import sized
from ui.jobs import view_panel
from ui.profile import profile_panels, profile_partial

N_CHOICES = [1, 3, 5, 10, 20, 50, 100, 200, 500, 1000]

st.title("Profile & SORM")
st.caption("A white-box attack finds x_a on the boundary ∂f of the base classifier. Walking from "
           "x_o along x_a − x_o, the plot shows the probability that the smoothed classifier "
           "says something other than y: the ideal g_σ (1 − p̂_y with its Clopper–Pearson band) "
           "and the practical g_{σ,n} for several n, the levels P_a of eq. (4) and where each "
           "curve reaches them, and SORM's curvature-based predictions (eq. 3).")
state, model, x = page_inputs(stop=True, key="prof_anyway")
sigma = state.sigma
d = sized("profile", model)  # N, points, attack and curvature budget: measured rate
cols = st.columns(4)
n_values = several(cols[0].multiselect, "n (votes of g_{σ,n})", "prof_n", N_CHOICES,
                   [5, 10, 50])
n_samples = int(widget(cols[1].number_input, "N samples per point", "prof_N",
                       d["n_samples"], min_value=16, max_value=1_000_000, step=64))
points = int(widget(cols[2].number_input, "Profile points", "prof_points",
                    d["points"], min_value=4, max_value=500, step=2))
user_pa = float(widget(cols[3].number_input, "Your P_a level", "prof_pa", 0.9,
                       min_value=0.01, max_value=0.99, step=0.05))
with st.expander("Range, curvature, seed"):
    cols = st.columns(4)
    window = choice(cols[0].selectbox, "Window", "prof_window", ["gsigma", "x_a"], "gsigma",
                    format_func={"gsigma": "around ∂g_σ (searched first)",
                                 "x_a": "x_a + extent"}.get,
                    help="Around ∂g_σ: the search finds where p̂_y = ½ along x_a − x_o, "
                         "then the window runs past the distance where the smallest n "
                         "reaches the highest P_a.")
    beyond = float(widget(cols[0].number_input, "Extent past x_a (× σ)", "prof_beyond", 8.0,
                          min_value=0.5, max_value=100.0, step=0.5,
                          disabled=window != "x_a"))
    curvature = bool(widget(cols[1].checkbox, "Curvature & SORM", "prof_curv", True))
    steps = int(widget(cols[2].number_input, "Lanczos steps", "prof_lanczos",
                       d["lanczos_steps"], min_value=2, max_value=200))
    probes = int(widget(cols[3].number_input, "Log-det probes", "prof_probes",
                        d["probes"], min_value=1, max_value=100))
    seed = int(widget(cols[0].number_input, "Seed", "prof_seed", 0, min_value=0, step=1))
    attack_iters = int(widget(cols[1].number_input, "Attack gradients", "prof_attack",
                              d["attack_iters"], min_value=2, max_value=1000,
                              help="Margin gradients of the white-box attack (DeepFool + "
                                   "refinement); each refinement step also costs ~20 "
                                   "forward passes in fp32."))
if not n_values:
    st.info("Pick at least one value of n.")
    st.stop()
config = request_or_stop(lambda: page_config(
    user_pa, model.device.type != "cpu", sigma=sigma, n_values=n_values,
    n_samples=n_samples, points=points, window=window, beyond=beyond, curvature=curvature,
    lanczos_steps=steps, probes=probes, seed=seed, attack_iters=attack_iters))
request = ProfileRequest(**inputs(model, x), config=config)
view_panel("profile", request, model, x,
           lambda out, fresh: profile_panels(out, model.info.class_name, config),
           "Profile & SORM", start_label="Compute profile", render_partial=profile_partial,
           note=f"{config.points} points × N = {config.n_samples}, the white-box attack, "
                f"{2 * config.curvature_config().hvps if curvature else 0} gradients for "
                "curvature.")
