"""Live attack: HSJA, SurFree or RayS against f or g_{σ,n}, converging live (paper §4).

Recipe: widgets -> OracleConfig -> AttackRequest (rsviz.views.attack, disk cache shared with
`rsviz attack`) -> background job with a live trace -> curve, images, votes at x_adv.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

from rsviz.attacks import CRITERIA, REGISTRY, VARIANTS, AttackTrace, OracleConfig
from rsviz.defaults import COMPARE_F_QUERIES
from rsviz.figures.attacks import trace_rows
from rsviz.figures.votes import vote_histogram
from rsviz.views.attack import AttackRequest, CompareRequest, votes_at_adv
from rsviz.views.base import inputs
from rsviz.views.image import top5
from ui.attacks import (STOPPED_KEY, compare_caption, display_options, overlay_traces,
                        remember_run, show_curve, show_images, theory_vs_practice, trace_metrics)
from ui.common import (choice, current, gsigma_check, request_or_stop, require_ready, show_error,
                       widget)
from ui.export import export_panel
from ui.engines import sized
from ui.jobs import snapshot, view_panel

SLOT = "live_attack"

st.title("Live attack")
st.caption("A decision-based attack sees only the decisions of the classifier. Against the "
           "smoothed classifier g_{σ,n} every query is a fresh vote of n noisy copies, so the "
           "answers near the boundary are random. The curve is the L2 distortion of the closest "
           "point the criterion has accepted so far, against the queries spent (paper §4: "
           "budgets up to 2 000 queries).")
state = current()
if not require_ready(state):
    st.stop()
model, x, name_of = state.model, state.x, state.model.info.class_name
gsigma_check(state, state.sigma, offer="attack f instead (Attacked classifier)")
cols = st.columns(5)
attack = choice(cols[0].selectbox, "Attack", "attack_name", list(REGISTRY), "hsja",
                format_func=lambda k: REGISTRY[k].label,
                help="\n".join(f"- {s.label}: {s.paper}" for s in REGISTRY.values()))
variant = choice(cols[1].selectbox, "Variant", "attack_variant", list(VARIANTS), "plain",
                 format_func={"plain": "plain", "rs-aware": "RS-aware"}.get,
                 help="\n".join(f"- {k}: {v}" for k, v in VARIANTS.items())
                 + "\n\nEvery repeated query counts against the budget; against f both "
                   "variants make the same queries.")
target = choice(cols[4].radio, "Attacked classifier", "attack_target", ["both", "g", "f"],
                "both", format_func={"both": "f and g (compare)", "f": "f (undefended)",
                                     "g": f"g(σ={state.sigma:g}, n={state.n})"}.get,
                help="f and g: the same attack, seed and budget against both, on one chart "
                     "(the paper's story: one converges, one stalls). σ and n come from the "
                     "sidebar.")
smoothed = target != "f"
per_query = {"both": state.n + COMPARE_F_QUERIES, "g": state.n, "f": 1}[target]
budget = int(widget(cols[2].number_input, "Budget (queries)", "attack_budget",
                    sized("attack", model, n=per_query)["budget"],
                    min_value=10, max_value=100_000, step=250,
                    help="The paper uses up to 2 000 queries (§4.1)."))
seed = int(widget(cols[3].number_input, "Seed", "attack_seed", 0, min_value=0, step=1,
                  help="Seeds both the attack's random directions and the noise of g_{σ,n}: "
                       "same seed, same run."))
cols = st.columns(4)
criterion = choice(cols[0].selectbox, "Adversarial criterion", "attack_criterion",
                   list(CRITERIA), "single_draw", format_func=CRITERIA.get, disabled=not smoothed,
                   help="single draw: one query of g_{σ,n} is wrong. Shortcut: the paper's "
                        "experiments (⌈n·P_a⌉ wrong votes of the query). Exact: eq. (5) "
                        "applied to the n votes of the query.")
p_a = float(widget(cols[1].slider, "Level P_a", "attack_pa", 0.5, min_value=0.05, max_value=0.95,
                   step=0.05, disabled=not smoothed or criterion == "single_draw"))
targeted = widget(cols[2].checkbox, "Targeted", "attack_targeted", False)
target_class = int(widget(cols[3].number_input, "Target class", "attack_class", 0, min_value=0,
                          max_value=model.info.num_classes - 1, step=1, disabled=not targeted,
                          help="Index of the class the attack must reach."))
display, vote_n = display_options()

y = top5(model, x)[0]["class_index"]
config = request_or_stop(lambda: OracleConfig(
    sigma=state.sigma if smoothed else None, n=state.n,
    criterion=criterion if smoothed else "single_draw", p_a=p_a,
    target=target_class if targeted else None, budget=budget, seed=seed))
if config.target == y:
    show_error(f"The target class {y} is the class f gives x_o already.")
    st.stop()
if target == "both":  # f's queries cost one pass, g's up to n: f gets more of them
    request = CompareRequest(**inputs(model, x), attack=attack, config=config, variant=variant,
                             f_budget=min(2000, COMPARE_F_QUERIES * budget))
else:
    request = AttackRequest(**inputs(model, x), attack=attack, config=config, variant=variant)
key = request.key()
on_screen = {key, *(r.key() for r in request.runs().values())} if target == "both" else key
st.caption(f"Untargeted runs leave y = {name_of(y)} ({y}), f's label at x_o. "
           f"Criterion: {config.describe()}.")


@st.cache_data(show_spinner="Votes at x_adv…", max_entries=16)
def adv_votes(key: str, sigma: float, votes: int, _trace: AttackTrace):
    return votes_at_adv(model, _trace, sigma, votes, seed)


def render_partial(partial) -> None:
    done = []
    if isinstance(partial, dict):  # f and g: the finished run(s), and the one going on
        done, partial = [r["trace"] for r in partial["done"].values()], partial["trace"]
    show_curve(overlay_traces(state.model_id, state.image_hash, on_screen) + done, display,
               live=partial)
    show_images(partial, x, y, name_of)


def render(result: dict, fresh: bool) -> None:
    runs = ({k: result[k] for k in ("f", "g")} if "trace" not in result else {"run": result})
    if "f" in runs:
        compare_caption(runs["f"]["trace"], runs["g"]["trace"])
    for name, run in runs.items():
        remember_run(request.runs()[name].key() if name in ("f", "g") else key,
                     run["trace"].describe(), state.model_id, state.image_hash)
    trace: AttackTrace = runs.get("g", runs.get("run"))["trace"]
    trace_metrics(trace)
    traces = overlay_traces(state.model_id, state.image_hash, on_screen) + [
        r["trace"] for r in runs.values()]
    fig = show_curve(traces, display)
    export_panel(fig, "attack_distortion", trace_rows(traces),
                 {"attack": attack, "variant": variant, "paper": REGISTRY[attack].paper,
                  "oracle": config.describe(), "p_a_empirical": trace.p_a_empirical,
                  **dataclasses.asdict(config), "params": trace.params}, key="attack_export")
    show_images(trace, x, y, name_of)
    counts = adv_votes(key, state.sigma, vote_n, trace)
    if counts is not None:
        st.subheader(f"Votes of g(σ={state.sigma:g}) at x_adv (N = {vote_n} fresh samples)")
        hist = vote_histogram(counts, name_of)
        st.plotly_chart(hist, key="attack_votes")
        export_panel(hist, "attack_votes_at_xadv", {"class": list(range(len(counts))),
                                                    "votes": [int(c) for c in counts]},
                     {"sigma": state.sigma, "N": vote_n}, key="attack_votes_export")


label = REGISTRY[attack].label + (" (RS-aware)" if variant == "rs-aware" else "")
against = f"f and {config.describe()}" if target == "both" else config.describe()
result = view_panel(SLOT, request, model, x, render, f"{label} against {against}",
                    start_label="Run the attack",
                    note=f"Plus {vote_n} votes for the histogram at x_adv.",
                    render_partial=render_partial)
snap = snapshot(SLOT)
if snap is not None and snap.status == "cancelled" and isinstance(snap.partial, AttackTrace):
    st.session_state.setdefault(STOPPED_KEY, {})[snap.id] = snap.partial
    if snap.partial.x_adv is not None:
        st.caption(f"Stopped at {snap.partial.queries:,} queries, L2 {snap.partial.l2:.4g}: "
                   "kept in the overlay for this session.")
if result is None and (snap is None or snap.finished):
    show_curve(overlay_traces(state.model_id, state.image_hash, on_screen), display)
if smoothed:
    theory_vs_practice(model, x, attack, config, f"{REGISTRY[attack].label}, plain and RS-aware, "
                       f"against {config.describe()}")
