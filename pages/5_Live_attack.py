"""Live attack: HSJA, SurFree or RayS against f or g_{σ,n}, converging live (paper §4).

Recipe: widgets -> OracleConfig -> AttackRequest or CompareRequest (`attack_request` in
rsviz.views.attack, disk cache shared with `rsviz attack`) -> background job with a live trace
-> panels (ui/attacks.py): curve, images, votes at x_adv.
"""

from __future__ import annotations

import streamlit as st

from rsviz.attacks import CRITERIA, REGISTRY, VARIANTS, OracleConfig
from rsviz.views.attack import COMPARE_F_BUDGET_CAP, attack_request, passes_per_query
from rsviz.views.base import inputs
from ui.attacks import AttackPanels, attack_label, display_options, theory_vs_practice
from ui.common import choice, page_inputs, request_or_stop, widget
from ui.engines import sized
from ui.jobs import view_panel

SLOT = "live_attack"

st.title("Live attack")
st.caption("A decision-based attack sees only the decisions of the classifier. Against the "
           "smoothed classifier g_{σ,n} every query is a fresh vote of n noisy copies, so the "
           "answers near the boundary are random. The curve is the L2 distortion of the closest "
           "point the criterion has accepted so far, against the queries spent (paper §4: "
           "budgets up to 2 000 queries).")
state, model, x = page_inputs(offer="attack f instead (Attacked classifier)")
name_of = model.info.class_name
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
                help="f and g: the same attack and seed against both, on one chart, f with as many "
                     f"forward passes as g's budget (n per query; at most {COMPARE_F_BUDGET_CAP:,} queries) "
                     "(the paper's story: one converges, one stalls). σ and n come from the "
                     "sidebar.")
smoothed = target != "f"
budget = int(widget(cols[2].number_input, "Budget (queries)", "attack_budget",
                    sized("attack", model, n=passes_per_query(target, state.n))["budget"],
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

y = attack_label(state)  # f's label at x_o, as the run takes it
config = request_or_stop(lambda: OracleConfig(
    sigma=state.sigma if smoothed else None, n=state.n,
    criterion=criterion if smoothed else "single_draw", p_a=p_a,
    target=target_class if targeted else None, budget=budget, seed=seed))
request = request_or_stop(lambda: attack_request(inputs(model, x), attack, config, variant,
                                                 compare=target == "both", label=y))
st.caption(f"Untargeted runs leave y = {name_of(y)} ({y}), f's label at x_o. "
           f"Criterion: {config.describe()}.")
panels = AttackPanels(state, request, display, vote_n)
label = REGISTRY[attack].label + (" (RS-aware)" if variant == "rs-aware" else "")
against = f"f and {config.describe()}" if target == "both" else config.describe()
result = view_panel(SLOT, request, model, x, panels.render, f"{label} against {against}",
                    start_label="Run the attack",
                    note=f"Plus {vote_n} votes for the histogram at x_adv.",
                    render_partial=panels.partial)
panels.after(SLOT, result)
if smoothed:
    theory_vs_practice(model, x, attack, config, f"{REGISTRY[attack].label}, plain and RS-aware, "
                       f"against {config.describe()}")
