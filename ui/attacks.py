"""Panels of the "Live attack" page: runs to overlay, the distortion curve, the images, the
votes at x_adv; f's label at x_o for the page's caption and target check."""

from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from rsviz.attacks import REGISTRY, AttackTrace
from rsviz.cache import default_cache, make_key
from rsviz.figures.attacks import amplified_perturbation, distortion_figure, to_image, trace_rows
from rsviz.figures.votes import vote_histogram
from rsviz.views.attack import CompareRequest, f_label, votes_at_adv
from ui.common import choice, metric_row, widget
from ui.export import export_panel
from ui.jobs import snapshot, view_panel

P_A_HELP = ("Share of 100 fresh queries of the attacked classifier, outside the budget, that "
            "call the final point adversarial (eq. 4's P_a, measured). Against f it is 0 or 1.")
RUNS_KEY = "attack_runs"      # session: cache keys of finished runs to overlay
STOPPED_KEY = "attack_stopped"  # session: partial traces of stopped runs, by job id


def index_key(model_id: str, image_hash: str) -> str:
    return make_key("attack-index", "1", model_id, image_hash)


def remember_run(key: str, label: str, model_id: str, image_hash: str) -> None:
    """Add a finished run to the session's overlay and to the disk index of this image."""
    runs = st.session_state.setdefault(RUNS_KEY, [])
    if key not in runs:
        runs.append(key)
    disk = default_cache()
    index = disk.get(index_key(model_id, image_hash), {})
    if key not in index:
        index[key] = label
        disk.set(index_key(model_id, image_hash), index)


def overlay_traces(model_id: str, image_hash: str, exclude: str | set[str]) -> list[Any]:
    """Finished runs chosen for the overlay (from the disk cache), plus stopped ones; the
    runs of the request on screen (`exclude`: its key or keys) are drawn by the page."""
    index = default_cache().get(index_key(model_id, image_hash), {})
    excluded = {exclude} if isinstance(exclude, str) else set(exclude)
    options = [k for k in index if k not in excluded]
    chosen = []
    if options:
        default = [k for k in st.session_state.get(RUNS_KEY, []) if k in options]
        chosen = st.multiselect("Overlay finished runs on this image", options, default=default,
                                format_func=lambda k: index.get(k, k), key="attack_overlay")
    traces = []
    for key in chosen:
        result = default_cache().get(key)
        if result is not None:
            traces.append(result["trace"])
    stopped = st.session_state.get(STOPPED_KEY, {})
    if stopped and st.checkbox(f"Also show {len(stopped)} stopped run(s)", value=True,
                               key="attack_show_stopped"):
        traces += list(stopped.values())
    return traces


def show_curve(traces: list[Any], display: dict, live: Any = None) -> Any:
    """The distortion against queries of `traces` (and of a running one), or None."""
    if not traces and live is None:
        return None
    fig = distortion_figure(traces, live=live, **display)
    st.plotly_chart(fig, key="attack_fig")
    return fig


def compare_caption(on_f: Any, on_g: Any) -> None:
    """One sentence on f against g: how far each got from its first success."""
    def gain(trace: Any) -> str:
        first = next((p[2] for p in trace.points if p[2] != float("inf")), None)
        if first is None or not trace.success:
            return "found no adversarial point"
        return (f"went from L2 {first:.4g} at its first success to {trace.l2:.4g} "
                f"({first / max(trace.l2, 1e-12):.1f}× closer)")
    st.caption(f"Same attack and seed: against f ({on_f.config.budget:,} queries, one forward "
               f"pass each) it {gain(on_f)}; against g_{{σ,n}} ({on_g.config.budget:,} queries of "
               f"up to n passes) it {gain(on_g)}.")


def show_images(trace: Any, x: Any, y: int, class_name: Any) -> None:
    if trace.x_adv is None:
        st.info("No adversarial point accepted yet.")
        return
    image, gain = amplified_perturbation(trace.x_adv, x)
    cols = st.columns(3)
    cols[0].image(to_image(x), caption=f"x_o — {class_name(y)}", width="stretch")
    adv = trace.adv_label_f
    cols[1].image(to_image(trace.x_adv), width="stretch",
                  caption="x_adv" + (f" — f says {class_name(adv)}" if adv is not None else ""))
    cols[2].image(image, width="stretch",
                  caption=f"perturbation × {gain:.3g} (grey = 0; L2 {trace.l2:.4g}, "
                          f"L∞ {trace.linf:.4g})")


def display_options() -> tuple[dict, int]:
    """The "Display" expander: distortion, x axis, log scales; and the votes at x_adv."""
    with st.expander("Display"):
        cols = st.columns(4)
        display = {
            "metric": choice(cols[0].radio, "Distortion", "attack_metric", ["l2", "linf"], "l2",
                             format_func={"l2": "L2", "linf": "L∞"}.get, horizontal=True),
            "x_axis": choice(cols[1].radio, "x axis", "attack_xaxis",
                             ["queries", "forward_passes"], "queries",
                             format_func=lambda k: k.replace("_", " ")),
            "log_x": widget(cols[2].checkbox, "log x", "attack_logx", False),
            "log_y": widget(cols[2].checkbox, "log y", "attack_logy", True)}
        vote_n = int(widget(cols[3].number_input, "Votes for the histogram at x_adv",
                            "attack_N", 100, min_value=10, max_value=10_000, step=50,
                            help="Fresh noisy samples at the final x_adv (not counted as "
                                 "queries); with f attacked, at the sidebar's σ."))
    return display, vote_n


def theory_vs_practice(model: Any, x: Any, attack: str, config: Any, name: str) -> None:
    """Issue 18's figure for this image: R(x_o), ∂g_σ along the attack direction, the plain and
    the RS-aware run (both runs from the disk cache when the page made them already)."""
    from rsviz.figures.rs_aware import distances_figure
    from rsviz.views.base import inputs
    from rsviz.views.rs_aware import TheoryVsPracticeRequest

    st.subheader("Theory vs practice on this image")
    st.caption("What RS guarantees, where g_σ actually changes its answer, and what the two "
               "attacks reach, on one log axis: the certified radius R(x_o) (CERTIFY), the "
               "distance to ∂g_σ along the attack's direction (bisection on p̂_y = ½), then the "
               "plain and the RS-aware run of the attack above (same budget, criterion and "
               "seed; runs already made here are reused). Hover a point for its empirical P_a.")
    cols = st.columns(2)
    cert_n = int(widget(cols[0].number_input, "CERTIFY votes", "tvp_cert_n", 1000,
                        min_value=100, max_value=1_000_000, step=500,
                        help="n of CERTIFY (n0 = 100, α = 0.001) for R(x_o)."))
    votes = int(widget(cols[1].number_input, "Votes per point on the way to ∂g_σ", "tvp_votes",
                       200, min_value=10, max_value=100_000, step=50,
                       help="p̂_y of each bisection point (9 points or more)."))
    request = TheoryVsPracticeRequest(**inputs(model, x), attack=attack, config=config,
                                      cert_n=cert_n, votes=votes)

    def render(result: dict, fresh: bool) -> None:
        rows = [result["row"]]
        fig = distances_figure(rows, title=f"{name}: theory vs practice")
        st.plotly_chart(fig, key="tvp_fig")
        export_panel(fig, "theory_vs_practice", rows,
                     {"attack": attack, "oracle": config.describe(), "cert_n": cert_n,
                      "votes": votes, "seed": config.seed}, key="tvp_export")

    view_panel("theory_vs_practice", request, model, x, render, f"Theory vs practice: {name}",
               start_label="Compute R(x_o), ∂g_σ and both runs")


def trace_metrics(trace: Any) -> None:
    """Queries, forward passes, distortions, success and empirical P_a of a finished run."""
    p_a = trace.p_a_empirical
    metric_row([("Queries", f"{trace.queries:,}", ""),
                ("Forward passes", f"{trace.forward_passes:,}", ""),
                ("L2", f"{trace.l2:.4g}" if trace.success else "—", ""),
                ("L∞", f"{trace.linf:.4g}" if trace.success else "—", ""),
                ("Success", "yes" if trace.success else "no", ""),
                ("Empirical P_a", "—" if p_a is None else f"{p_a:.2f}", P_A_HELP)])


@st.cache_data(show_spinner=False, max_entries=32)
def _label(model_id: str, image_hash: str, forward: str, _model: Any, _x: Any) -> int:
    return f_label(_model, _x)


def attack_label(state: Any) -> int:
    """f's label at x_o (`rsviz.views.attack.f_label`, the run's own), once per model, image
    and forward identity: the page states it and checks the target against it before Start."""
    from rsviz.engines import forward_of

    return _label(state.model_id, state.image_hash, forward_of(state.model).tag(), state.model,
                  state.x)


@st.cache_data(show_spinner="Votes at x_adv…", max_entries=16)
def _adv_votes(key: str, sigma: float, votes: int, seed: int, _model: Any, _trace: Any) -> Any:
    return votes_at_adv(_model, _trace, sigma, votes, seed)


def adv_votes_panel(model: Any, key: str, trace: Any, sigma: float, votes: int) -> None:
    """The histogram of `votes` fresh votes of g_σ at the run's x_adv (`votes_at_adv`, cached
    by the run's key), with its export; nothing without an x_adv."""
    counts = _adv_votes(key, sigma, votes, trace.config.seed, model, trace)
    if counts is None:
        return
    st.subheader(f"Votes of g(σ={sigma:g}) at x_adv (N = {votes} fresh samples)")
    hist = vote_histogram(counts, model.info.class_name)
    st.plotly_chart(hist, key="attack_votes")
    export_panel(hist, "attack_votes_at_xadv", {"class": list(range(len(counts))),
                                                "votes": [int(c) for c in counts]},
                 {"sigma": sigma, "N": votes}, key="attack_votes_export")


class AttackPanels:
    """What the page draws of an attack request (an `AttackRequest`, or a `CompareRequest` of
    f and g): `partial` while it runs, `render` once done, `after` below the job panel."""

    def __init__(self, state: Any, request: Any, display: dict, votes: int) -> None:
        self.state, self.request, self.display, self.votes = state, request, display, votes
        self.key = request.key()
        self.compare = isinstance(request, CompareRequest)
        self.on_screen = ({self.key, *(r.key() for r in request.runs().values())}
                          if self.compare else self.key)

    def overlay(self) -> list[Any]:
        return overlay_traces(self.state.model_id, self.state.image_hash, self.on_screen)

    def partial(self, partial: Any) -> None:
        """The running trace (and, comparing, the finished run) over the overlay."""
        done = []
        if isinstance(partial, dict):  # f and g: the finished run(s), and the one going on
            done, partial = [r["trace"] for r in partial["done"].values()], partial["trace"]
        show_curve(self.overlay() + done, self.display, live=partial)
        show_images(partial, self.state.x, partial.label, self.state.model.info.class_name)

    def render(self, result: dict, fresh: bool) -> None:
        """A finished run: metrics, the curve with its export, the images, votes at x_adv."""
        state, request = self.state, self.request
        runs = {k: result[k] for k in ("f", "g")} if self.compare else {"run": result}
        if self.compare:
            compare_caption(runs["f"]["trace"], runs["g"]["trace"])
        for name, run in runs.items():
            remember_run(request.runs()[name].key() if self.compare else self.key,
                         run["trace"].describe(), state.model_id, state.image_hash)
        shown = runs.get("g", runs.get("run"))
        trace: AttackTrace = shown["trace"]
        trace_metrics(trace)
        traces = self.overlay() + [r["trace"] for r in runs.values()]
        fig = show_curve(traces, self.display)
        config = request.config
        export_panel(fig, "attack_distortion", trace_rows(traces),
                     {"attack": request.attack, "variant": request.variant,
                      "paper": REGISTRY[request.attack].paper, "oracle": config.describe(),
                      "p_a_empirical": trace.p_a_empirical, **dataclasses.asdict(config),
                      "params": trace.params}, key="attack_export")
        show_images(trace, state.x, shown["label"], state.model.info.class_name)
        adv_votes_panel(state.model, self.key, trace, state.sigma, self.votes)

    def after(self, slot: str, result: Any) -> None:
        """Below the job panel: a stopped run kept in this session's overlay, and the overlay
        alone while no run of this request is drawn."""
        snap = snapshot(slot)
        stopped = snap.partial if snap is not None and snap.status == "cancelled" else None
        if isinstance(stopped, AttackTrace):
            st.session_state.setdefault(STOPPED_KEY, {})[snap.id] = stopped
            if stopped.x_adv is not None:
                st.caption(f"Stopped at {stopped.queries:,} queries, L2 {stopped.l2:.4g}: "
                           "kept in the overlay for this session.")
        if result is None and (snap is None or snap.finished):
            show_curve(self.overlay(), self.display)
