"""Profile & SORM: probability of being adversarial along x_a − x_o (paper Fig. 1, eq. 3–6).

Recipe: widgets -> ProfileConfig -> ProfileRequest (rsviz.views.profile, disk cache shared
with `rsviz profile`) -> profile and curvature figures.
"""

from __future__ import annotations

import streamlit as st

from rsviz.figures.profile import profile_figure, spectrum_figure
from rsviz.profile import ProfileConfig, summary
from rsviz.views.base import inputs
from rsviz.views.profile import ProfileRequest
from ui.common import (choice, current, gsigma_check, request_or_stop, require_ready, several,
                       widget)
from ui.export import export_panel
from ui.engines import sized
from ui.jobs import view_panel

N_CHOICES = [1, 3, 5, 10, 20, 50, 100, 200, 500, 1000]

st.title("Profile & SORM")
st.caption("A white-box attack finds x_a on the boundary ∂f of the base classifier. Walking from "
           "x_o along x_a − x_o, the plot shows the probability that the smoothed classifier "
           "says something other than y: the ideal g_σ (1 − p̂_y with its Clopper–Pearson band) "
           "and the practical g_{σ,n} for several n, the levels P_a of eq. (4) and where each "
           "curve reaches them, and SORM's curvature-based predictions (eq. 3).")
state = current()


if require_ready(state):
    model, x, sigma = state.model, state.x, state.sigma
    gsigma_check(state, sigma, stop=True, key="prof_anyway")
    gpu = model.device.type != "cpu"
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
    config = request_or_stop(lambda: ProfileConfig(
        sigma=sigma, n_values=tuple(sorted(n_values)), n_samples=n_samples, points=points,
        window=window, beyond=beyond, p_levels=tuple(sorted({0.5, 0.8, round(user_pa, 4)})),
        curvature=curvature, lanczos_steps=steps, probes=probes, slq_steps=10 if gpu else 6,
        seed=seed, attack_iters=attack_iters))
    request = ProfileRequest(**inputs(model, x), config=config)

    def render_partial(partial: dict) -> None:
        st.line_chart({"1 − p̂_y": list(1 - partial["p_y"])})

    def render(out: dict, fresh: bool) -> None:
        result, info = out["profile"], model.info
        st.caption(f"x_a: class {info.class_name(result.y)} -> {info.class_name(result.label_adv)}"
                   f" at ‖x_a − x_o‖ = {result.distance:.4f} (bisection bracket "
                   f"{result.attack['bracket']:.1e}, cos(normal, x_a − x_o) = "
                   f"{result.attack['cos_angle']:.4f}); R(x_o, σ) = {result.radius:.4f}; "
                   f"{result.forward_passes} forward passes.")
        if result.gsigma is not None:
            (st.warning if not result.gsigma.found else st.caption)(result.gsigma.describe())
        fig = profile_figure(result)
        st.plotly_chart(fig)
        data = {k: v.tolist() for k, v in result.table().items()}
        export_panel(fig, "profile", data, {"config": config}, key="profile_fig")
        table = summary(result)
        st.subheader("Crossings and eq. (6)")
        st.table([{"curve": c["label"], "level": c["level"],
                   "from x_o": "—" if c["from_xo"] is None else f"{c['from_xo']:.4f}",
                   "beyond x_a": "—" if c["beyond_xa"] is None else f"{c['beyond_xa']:+.4f}",
                   "eq. 6 bound (from x_o)": "—" if c["eq6_bound_from_xo"] is None
                   else f"{c['eq6_bound_from_xo']:.4f}"} for c in table["crossings"]])
        st.caption("Eq. (5) thresholds: " + "; ".join(
            f"n = {t['n']}, P_a = {t['p_a']:g}: π0 ≤ {t['pi0_exact_eq5']:.4f}"
            for t in table["thresholds"]))
        if "curvature" in table:
            cv = table["curvature"]
            lo, hi = cv["eq3_valid_beyond_xa"]
            st.subheader("Curvature of ∂f at x_a")
            st.caption(f"Secant Hessian at the noise scale h = {cv['h']:g}; Σκ over d − 1 = "
                       f"{cv['dim'] - 1} tangent directions = {cv['sum_kappa']:.4g} ± "
                       f"{cv['sum_kappa_se']:.2g} (SLQ, standard error over probes). Eq. 3 is "
                       f"defined only for {lo:+.3f} < distance beyond x_a < {hi:+.3f} "
                       "(1 + βκ̃ > 0); SORM values outside [0, 1] are not drawn.")
            spec = spectrum_figure(result)
            st.plotly_chart(spec)
            export_panel(spec, "curvature spectrum",
                         {"ritz": result.curvature.ritz.tolist(),
                          "ritz_error": result.curvature.ritz_error.tolist()},
                         {"config": config}, key="profile_spec")

    view_panel("profile", request, model, x, render, "Profile & SORM",
               start_label="Compute profile", render_partial=render_partial,
               note=f"{config.points} points × N = {config.n_samples}, the white-box attack, "
                    f"{2 * config.curvature_config().hvps if curvature else 0} gradients for "
                    "curvature.")
