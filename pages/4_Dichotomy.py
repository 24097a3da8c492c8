"""Dichotomy: where a binary search against g_{σ,n} lands, per n (paper Fig. 3)."""

from __future__ import annotations

import streamlit as st

from rsviz.cache import make_key
from rsviz.dichotomy import (DichotomyConfig, DichotomyResult, run_dichotomy,
                             segment_past_whitebox, segment_random, segment_towards,
                             whitebox_available)
from rsviz.errors import RsvizError
from rsviz.figures.dichotomy import dichotomy_figure, histogram_data, segment_figure
from rsviz.images import SAMPLES, preprocess
from rsviz.smoothing import forward_labels
from ui.common import cached_sample, current, persist, remember, require_ready, widget
from ui.export import export_panel
from ui.jobs import job_panel

N_CHOICES = [1, 3, 5, 10, 20, 50, 100, 200, 500, 1000]
SEGMENTS = {"whitebox": "Past the white-box boundary point x_a of f",
            "towards": "Towards another sample image",
            "random": "Along a random direction"}

st.title("Dichotomy against g_{σ,n}")
st.caption("A decision-based attack finds the boundary on a segment [A, B] (A classified y, "
           "B adversarial) by binary search. Against the random classifier g_{σ,n} every answer "
           "near the boundary is a coin flip, so the output is a random variable: it "
           "concentrates around the ideal boundary ∂g_σ only when n is large (paper Fig. 3).")
state = current()


if require_ready(state):
    model, x, sigma = state.model, state.x, state.sigma
    kinds = [k for k in SEGMENTS if k != "whitebox" or whitebox_available()]
    cols = st.columns([2, 1, 1])
    kind = cols[0].radio("End point B", kinds, format_func=SEGMENTS.get, key="dich_segment_w",
                         index=kinds.index(persist("dich_segment", kinds[0]))
                         if persist("dich_segment", kinds[0]) in kinds else 0,
                         on_change=remember, args=("dich_segment",))
    others = [s for s in SAMPLES if s != getattr(state.image, "name", None)]
    other = cols[1].selectbox("Other image", others, key="dich_other_w",
                              index=others.index(persist("dich_other", others[0]))
                              if persist("dich_other", others[0]) in others else 0,
                              on_change=remember, args=("dich_other",),
                              disabled=kind != "towards")
    extension = widget(cols[2].number_input, "B past ∂f by (× σ)", "dich_ext", 3.0,
                       min_value=0.0, max_value=50.0, step=0.5,
                       help="Pushes B this many σ beyond the boundary point of f, so that B is "
                            "also adversarial for the smoothed classifier.")
    cols = st.columns(4)
    n_values = cols[0].multiselect("n (votes per query)", N_CHOICES, key="dich_n_w",
                                   default=persist("dich_n", [10, 50, 100]),
                                   on_change=remember, args=("dich_n",))
    trials = int(widget(cols[1].number_input, "Trials per n", "dich_trials", 1000,
                        min_value=10, max_value=100_000, step=100))
    steps = int(widget(cols[2].slider, "Bisection steps k", "dich_steps", 12, min_value=3,
                       max_value=20))
    seed = int(widget(cols[3].number_input, "Seed", "dich_seed", 0, min_value=0, step=1))
    with st.expander("Segment measurement and simulation"):
        cols = st.columns(4)
        grid = int(widget(cols[0].number_input, "Points on the segment", "dich_grid", 64,
                          min_value=4, max_value=1024, step=8))
        n_samples = int(widget(cols[1].number_input, "N samples per point", "dich_N", 128,
                               min_value=16, max_value=100_000, step=64))
        method = cols[2].radio("Simulated query", ["multinomial", "binomial"],
                               key="dich_method_w", on_change=remember, args=("dich_method",),
                               index=["multinomial", "binomial"].index(
                                   persist("dich_method", "multinomial")),
                               help="multinomial: n votes drawn from the measured class "
                                    "frequencies (exact for any number of classes); binomial: "
                                    "P[Bin(n, 1 − p̂_y) > n/2], exact for two classes.")
        fit = cols[3].radio("p̂_y along t", ["probit", "none"], key="dich_fit_w",
                            on_change=remember, args=("dich_fit",),
                            index=["probit", "none"].index(persist("dich_fit", "probit")),
                            format_func={"probit": "probit fit", "none": "raw"}.get,
                            help="The simulation amplifies the sampling error of p̂ about √n "
                                 "times; a smooth fit Φ(cubic in t) removes most of it.")
        live = widget(st.checkbox, "Also run live", "dich_live", False,
                      help="Every query of every trial goes to the model (lazy exact vote). "
                           "Validates the simulation; costs up to trials × k × n passes per n.")
    if not n_values:
        st.info("Pick at least one value of n.")
        st.stop()
    try:
        config = DichotomyConfig(sigma=sigma, n_values=tuple(sorted(n_values)), trials=trials,
                                 steps=steps, grid=grid, n_samples=n_samples, method=method,
                                 fit=fit, live=bool(live), seed=seed)
    except RsvizError as exc:
        st.error(str(exc))
        st.stop()
    segment_params = {"kind": kind, "other": other if kind == "towards" else None,
                      "extension": float(extension)}
    key = make_key("dichotomy", state.model_id, state.image_hash, segment_params, config)

    def compute(job) -> dict:
        y = int(forward_labels(model, x[None])[0])
        note = ""
        try:
            if kind == "whitebox":
                segment = segment_past_whitebox(model, x, y, sigma, extension, job)
            elif kind == "random":
                segment = segment_random(model, x, y, sigma, extension, seed)
            else:
                raise LookupError
        except (RsvizError, LookupError) as exc:
            if kind != "towards":
                note = f"{SEGMENTS[kind]} failed ({exc}); fell back to the other image. "
            loaded = cached_sample(other)
            info = model.info
            x_other = preprocess(loaded.original, info.input_size, info.resize,
                                 info.interpolation)
            segment = segment_towards(model, x, y, x_other, sigma, extension, other)
        result = run_dichotomy(model, segment.a, segment.b, y, config, job)
        return {"result": result, "caption": note + segment.caption, "kind": segment.kind}

    def render(out: dict, fresh: bool) -> None:
        result: DichotomyResult = out["result"]
        st.caption(f"Segment: A = x_o (class {model.info.class_name(result.y)}), "
                   f"‖B − A‖ = {result.length:.3f}. {out['caption']}")
        if result.warning:
            st.warning(result.warning)
        cols = st.columns(3)
        origin = cols[0].radio("Axis", ["A", "boundary"], horizontal=True, key="dich_origin",
                               format_func={"A": "distance from A",
                                            "boundary": "distance from ∂g_σ"}.get)
        layout = cols[1].radio("Layout", ["overlay", "facet"], horizontal=True,
                               key="dich_layout")
        full = cols[2].checkbox("Whole segment A → B", key="dich_full")
        fig = dichotomy_figure(result, origin=origin, layout=layout, full_segment=full)
        st.plotly_chart(fig, use_container_width=True, key="dich_fig")
        rows = []
        for n, run in result.simulated.items():
            for r in [run] + ([result.live[n]] if n in result.live else []):
                s = result.stats(r)
                rows.append({"n": n, "mode": s["mode"], "mean (from A)": f"{s['mean']:.4f}",
                             "std": f"{s['std']:.4f}", "bias vs ∂g_σ": f"{s['bias']:+.4f}",
                             "wrong side": f"{s['wrong_side']:.1%}",
                             "forward passes": f"{s['forward_passes']:,}"})
        st.table(rows)
        st.caption(f"∂f at {result.t_f * result.length:.4f}, ∂g_σ (where p̂_y stops being the "
                   f"plurality) at {result.t_g * result.length:.4f} ± "
                   f"{result.t_g_std * result.length:.4f} (sampling sd of p̂, grey band: every "
                   f"simulated histogram shares this uncertainty); f's own dichotomy "
                   f"returns {result.base.positions[0] * result.length:.4f}. Simulated trials "
                   f"cost nothing beyond the segment pass of "
                   f"{result.profile.forward_passes:,} forward passes. 'Wrong side': outputs "
                   f"on the y side of ∂g_σ.")
        export_panel(fig, "dichotomy", histogram_data(result),
                     {**segment_params, "caption": out["caption"]}, key="dich_export")
        with st.expander("p̂_y along the segment (input of the simulation)"):
            seg_fig = segment_figure(result)
            st.plotly_chart(seg_fig, use_container_width=True, key="dich_seg_fig")

    passes = grid * n_samples
    live_cost = trials * steps * sum(config.n_values) if live else 0
    note = (f"Segment pass: {passes:,} forward passes (~{passes / 150:.0f} s with "
            f"EfficientNet-Lite0 on this CPU); simulation of {trials:,} trials × "
            f"{len(n_values)} values of n is free."
            + (f" Live trials: up to {live_cost:,} more passes (lazy votes use fewer)."
               if live else ""))
    job_panel("dichotomy", "Dichotomy", compute, key, render, start_label="Run dichotomies",
              cost_note=note)
