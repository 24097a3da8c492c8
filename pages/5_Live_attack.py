"""Live attack: HSJA, SurFree or RayS against f or g_{σ,n}, converging live (paper §4)."""

from __future__ import annotations

import dataclasses

import streamlit as st

from rsviz.attacks import CRITERIA, REGISTRY, AttackTrace, OracleConfig, run_attack
from rsviz.cache import default_cache, make_key
from rsviz.errors import RsvizError
from rsviz.figures.attacks import (amplified_perturbation, distortion_figure, to_image,
                                   trace_rows)
from rsviz.figures.votes import vote_histogram
from rsviz.smoothing import forward_labels, make_generator, sample_votes
from ui.common import current, persist, remember, require_ready, widget
from ui.export import export_panel
from ui.jobs import job_panel, snapshot

SLOT = "live_attack"
RUNS_KEY = "attack_runs"      # session: cache keys of finished runs to overlay
STOPPED_KEY = "attack_stopped"  # session: partial traces of stopped runs, by job id

st.title("Live attack")
st.caption("A decision-based attack sees only the decisions of the classifier. Against the "
           "smoothed classifier g_{σ,n} every query is a fresh vote of n noisy copies, so the "
           "answers near the boundary are random. The curve is the L2 distortion of the closest "
           "point the criterion has accepted so far, against the queries spent (paper §4: "
           "budgets up to 2 000 queries).")
state = current()


def choice(kind, label, key, options, default, **kwargs):
    """A select box / radio whose choice survives page switches."""
    value = persist(key, default)
    return kind(label, options, index=options.index(value) if value in options else 0,
                key=key + "_w", on_change=remember, args=(key,), **kwargs)


def index_key(model_id: str, image_hash: str) -> str:
    return make_key("attack-index", model_id, image_hash)


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


def overlay_traces(model_id: str, image_hash: str, exclude: str) -> list[AttackTrace]:
    """Finished runs chosen for the overlay (from the disk cache), plus stopped ones."""
    index = default_cache().get(index_key(model_id, image_hash), {})
    options = [k for k in index if k != exclude]
    if not options:
        chosen = []
    else:
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


if require_ready(state):
    model, x = state.model, state.x
    names = list(REGISTRY)
    cols = st.columns(4)
    attack = choice(cols[0].selectbox, "Attack", "attack_name", names, "hsja",
                    format_func=lambda k: REGISTRY[k].label, help="\n".join(
                        f"- {s.label}: {s.paper}" for s in REGISTRY.values()))
    budget = int(widget(cols[1].number_input, "Budget (queries)", "attack_budget", 2000,
                        min_value=10, max_value=100_000, step=250,
                        help="The paper uses up to 2 000 queries (§4.1)."))
    seed = int(widget(cols[2].number_input, "Seed", "attack_seed", 0, min_value=0, step=1,
                      help="Seeds both the attack's random directions and the noise of "
                           "g_{σ,n}: same seed, same run."))
    target = choice(cols[3].radio, "Attacked classifier", "attack_target", ["g", "f"], "g",
                    format_func={"f": "f (undefended)",
                                 "g": f"g(σ={state.sigma:g}, n={state.n})"}.get,
                    help="σ and n come from the sidebar.")
    smoothed = target == "g"
    cols = st.columns(4)
    criteria = list(CRITERIA)
    criterion = choice(cols[0].selectbox, "Adversarial criterion", "attack_criterion",
                       criteria, "single_draw", format_func=CRITERIA.get, disabled=not smoothed,
                       help="single draw: one query of g_{σ,n} is wrong. Shortcut: the paper's "
                            "experiments (⌈n·P_a⌉ wrong votes of the query). Exact: eq. (5) "
                            "applied to the n votes of the query.")
    p_a = float(widget(cols[1].slider, "Level P_a", "attack_pa", 0.5, min_value=0.05,
                       max_value=0.95, step=0.05,
                       disabled=not smoothed or criterion == "single_draw"))
    targeted = widget(cols[2].checkbox, "Targeted", "attack_targeted", False)
    target_class = int(widget(cols[3].number_input, "Target class", "attack_class", 0,
                              min_value=0, max_value=model.info.num_classes - 1, step=1,
                              disabled=not targeted,
                              help="Index of the class the attack must reach."))
    with st.expander("Display"):
        cols = st.columns(4)
        metric = choice(cols[0].radio, "Distortion", "attack_metric", ["l2", "linf"], "l2",
                        format_func={"l2": "L2", "linf": "L∞"}.get, horizontal=True)
        x_axis = choice(cols[1].radio, "x axis", "attack_xaxis", ["queries", "forward_passes"],
                        "queries", format_func={"queries": "queries",
                                                "forward_passes": "forward passes"}.get)
        log_x = widget(cols[2].checkbox, "log x", "attack_logx", False)
        log_y = widget(cols[2].checkbox, "log y", "attack_logy", True)
        vote_n = int(widget(cols[3].number_input, "Votes for the histogram at x_adv", "attack_N",
                            100, min_value=10, max_value=10_000, step=50,
                            help="Fresh noisy samples at the final x_adv (not counted as "
                                 "queries); with f attacked, at the sidebar's σ."))

    y = int(forward_labels(model, x[None], batch_size=1)[0])
    try:
        config = OracleConfig(sigma=state.sigma if smoothed else None, n=state.n,
                              criterion=criterion if smoothed else "single_draw",
                              p_a=p_a, target=target_class if targeted else None,
                              budget=budget, seed=seed)
        if config.target == y:
            raise RsvizError(f"The target class {y} is the class f gives x_o already.")
    except RsvizError as exc:
        st.error(str(exc))
        st.stop()
    spec = REGISTRY[attack]
    vote_sigma = state.sigma
    key = make_key("attack", state.model_id, state.image_hash, attack, config, seed, vote_n,
                   vote_sigma)
    st.caption(f"Untargeted runs leave y = {model.info.class_name(y)} ({y}), f's label at x_o. "
               f"Criterion: {config.describe()}.")

    def compute(job) -> dict:
        trace = run_attack(model, x, y, attack, config, seed, progress=job)
        counts = None
        if trace.x_adv is not None:
            job.report(budget, budget, f"votes of g(σ={vote_sigma:g}) at x_adv")
            record = sample_votes(model, trace.x_adv[None], vote_sigma, vote_n,
                                  make_generator(seed + 1, model.device))
            counts = record.counts[0]
        return {"trace": trace, "counts": counts, "vote_sigma": vote_sigma, "vote_n": vote_n}

    def show_images(trace: AttackTrace) -> None:
        if trace.x_adv is None:
            st.info("No adversarial point accepted yet.")
            return
        image, gain = amplified_perturbation(trace.x_adv, x)
        cols = st.columns(3)
        cols[0].image(to_image(x), caption=f"x_o — {model.info.class_name(y)}",
                      use_container_width=True)
        adv = trace.adv_label_f
        cols[1].image(to_image(trace.x_adv), use_container_width=True,
                      caption="x_adv" + (f" — f says {model.info.class_name(adv)}"
                                         if adv is not None else ""))
        cols[2].image(image, use_container_width=True,
                      caption=f"perturbation × {gain:.3g} (grey = 0; L2 {trace.l2:.4g}, "
                              f"L∞ {trace.linf:.4g})")

    def show_curve(live: AttackTrace | None, current_key: str, done: AttackTrace | None):
        traces = overlay_traces(state.model_id, state.image_hash, current_key)
        if done is not None:
            traces = traces + [done]
        if not traces and live is None:
            return None, traces
        fig = distortion_figure(traces, metric=metric, x_axis=x_axis, log_x=log_x,
                                log_y=log_y, live=live)
        st.plotly_chart(fig, use_container_width=True, key="attack_fig")
        return fig, traces

    def render_partial(partial: AttackTrace) -> None:
        show_curve(partial, key, None)
        show_images(partial)

    def render(result: dict, fresh: bool) -> None:
        trace: AttackTrace = result["trace"]
        remember_run(key, trace.describe(), state.model_id, state.image_hash)
        cols = st.columns(5)
        cols[0].metric("Queries", f"{trace.queries:,}")
        cols[1].metric("Forward passes", f"{trace.forward_passes:,}")
        cols[2].metric("L2", f"{trace.l2:.4g}" if trace.success else "—")
        cols[3].metric("L∞", f"{trace.linf:.4g}" if trace.success else "—")
        cols[4].metric("Success", "yes" if trace.success else "no")
        fig, traces = show_curve(None, key, trace)
        export_panel(fig, "attack_distortion", trace_rows(traces),
                     {"attack": attack, "paper": spec.paper, "oracle": config.describe(),
                      **dataclasses.asdict(config), "params": trace.params}, key="attack_export")
        show_images(trace)
        if result["counts"] is not None:
            st.subheader(f"Votes of g(σ={result['vote_sigma']:g}) at x_adv "
                         f"(N = {result['vote_n']} fresh samples)")
            hist = vote_histogram(result["counts"], model.info.class_name)
            st.plotly_chart(hist, use_container_width=True, key="attack_votes")
            export_panel(hist, "attack_votes_at_xadv",
                         {"class": list(range(len(result["counts"]))),
                          "votes": [int(c) for c in result["counts"]]},
                         {"sigma": result["vote_sigma"], "N": result["vote_n"]},
                         key="attack_votes_export")

    cost = budget * (state.n if smoothed else 1)
    result = job_panel(SLOT, f"{spec.label} against {config.describe()}", compute, key, render,
              start_label="Run the attack",
              cost_note=f"At most {budget:,} queries = {cost:,} forward passes of f "
                        f"(the lazy vote usually needs fewer), plus {vote_n} for the histogram.",
              render_partial=render_partial)

    snap = snapshot(SLOT)
    if snap is not None and snap.status == "cancelled" and isinstance(snap.partial, AttackTrace):
        st.session_state.setdefault(STOPPED_KEY, {})[snap.id] = snap.partial
        if snap.partial.x_adv is not None:
            st.caption(f"Stopped at {snap.partial.queries:,} queries, L2 {snap.partial.l2:.4g}: "
                       "kept in the overlay for this session.")
    if result is None and (snap is None or snap.finished):
        show_curve(None, key, None)  # earlier runs on this image, while no run is shown
