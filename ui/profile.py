"""Panels of the "Profile & SORM" page: the profile, its crossings and eq. (5)-(6), curvature."""

from __future__ import annotations

from typing import Any

import streamlit as st

from rsviz.figures.profile import profile_figure, spectrum_figure
from rsviz.profile import summary
from ui.export import export_panel


def profile_partial(partial: dict) -> None:
    """While it runs: 1 − p̂_y at the points measured so far."""
    st.line_chart({"1 − p̂_y": list(1 - partial["p_y"])})


def profile_panels(out: dict, class_name: Any, config: Any) -> None:
    """Everything drawn from a finished profile (a ProfileRequest's result)."""
    result = out["profile"]
    st.caption(f"x_a: class {class_name(result.y)} -> {class_name(result.label_adv)}"
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
    crossings_panel(table)
    if "curvature" in table:
        curvature_panel(result, table["curvature"], config)


def _distance(value: float | None, spec: str = ".4f") -> str:
    return "—" if value is None else format(value, spec)


def crossings_panel(table: dict) -> None:
    """Where each curve reaches each level P_a, eq. (6)'s bound, eq. (5)'s thresholds."""
    st.subheader("Crossings and eq. (6)")
    st.table([{"curve": c["label"], "level": c["level"], "from x_o": _distance(c["from_xo"]),
               "beyond x_a": _distance(c["beyond_xa"], "+.4f"),
               "eq. 6 bound (from x_o)": _distance(c["eq6_bound_from_xo"])}
              for c in table["crossings"]])
    st.caption("Eq. (5) thresholds: " + "; ".join(
        f"n = {t['n']}, P_a = {t['p_a']:g}: π0 ≤ {t['pi0_exact_eq5']:.4f}"
        for t in table["thresholds"]))


def curvature_panel(result: Any, cv: dict, config: Any) -> None:
    """Σκ of ∂f at x_a, where eq. 3 is defined, and the Ritz spectrum with its export."""
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
