"""Panels of the "Image & model" page: the images, f's top-5, votes, draws of g_{σ,n}, p̂
interval, radius.

Each panel draws figures from a VotesRequest's summary and page details
(`rsviz.views.image.page_details`), or from `rsviz.views.image.top5`; nothing here samples the
model or derives a number from the votes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from rsviz.figures.votes import (decisions_figure, g_draws_figure, p_hat_figure,
                                 prob_wrong_figure, top5_figure, vote_histogram)
from rsviz.views.image import COHEN_N, page_details, top5
from ui.common import metric_row
from ui.export import export_panel


def images_panel(state: Any) -> None:
    """The photo as loaded and the model's input x (where the noise is added)."""
    info = state.model.info
    cols = st.columns(2)
    cols[0].image(state.image.original, caption=f"Original ({state.image.name})", width="stretch")
    cols[1].image(state.x.permute(1, 2, 0).numpy(), width="stretch", clamp=True,
                  caption=f"Model input x: resize to {info.resize}, centre crop "
                          f"{info.input_size}×{info.input_size}, pixels in [0,1] (noise is "
                          "added here)")


@st.cache_data(show_spinner=False, max_entries=32)
def _top5(model_id: str, image_hash: str, _model: Any, _x: Any) -> list[dict]:
    return top5(_model, _x)


def top5_panel(state: Any) -> None:
    """f's softmax on the clean input (`rsviz.views.image.top5`, once per model and image)."""
    st.subheader("Top-5 of the base classifier f")
    rows = _top5(state.model_id, state.image_hash, state.model, state.x)
    fig = top5_figure([(r["class_index"], r["name"], r["prob"]) for r in rows])
    st.plotly_chart(fig, key="top5_chart")
    st.caption("What am I looking at: the softmax of f on the clean input, no noise. f is "
               "deterministic; the smoothed classifier below votes over noisy copies of x.")
    export_panel(fig, "top5_f", {"class_index": [r["class_index"] for r in rows],
                                "name": [r["name"] for r in rows],
                                "softmax": [r["prob"] for r in rows]}, key="top5")


def smoothed_panels(request: Any, sampled: dict, state: Any, p_a: float, n_show: int) -> None:
    """Everything drawn from a VotesRequest's recorded votes: the votes, draws of g_{σ,n}, the
    p̂ interval and the radius, for the sidebar's n and the page's α and P_a."""
    info, N = state.model.info, request.n_samples
    summary = request.summary(sampled, info.class_name)
    details = page_details(sampled, summary, p_a, n_show)
    st.caption(f"{sampled['forward_passes']:,} forward passes (n0 = {request.n0} + N = {N}) in "
               f"{sampled['seconds']:.1f} s, precision {sampled['precision']}, batch "
               f"{sampled['batch_size']}; seed {request.seed}. Cached on disk: reopening is "
               "instant.")
    params = {"model": info.name, "image": state.image.name, "sigma": request.sigma,
              "n": request.n, "N": N, "n0": request.n0, "alpha": request.alpha,
              "seed": request.seed, "P_a": p_a}
    votes_panel(details["counts"], summary, info.class_name, params)
    draws_panel(details, summary, info.class_name, request.n, n_show, p_a, params)
    interval_panel(summary, details["counts"], request.alpha, N, params)
    radius_panel(summary, details, request.n, p_a, N)


def votes_panel(counts: np.ndarray, summary: dict, class_name: Any, params: dict) -> None:
    st.markdown("#### Votes of the N noisy samples")
    fig = vote_histogram(counts, class_name)
    st.plotly_chart(fig, key="votes_chart")
    st.caption("What am I looking at: the class f gives to each of the N copies x + σ·noise. "
               "Their shares estimate p_c(x); the tallest bar is the ideal g_σ(x).")
    export_panel(fig, "votes", summary["vote_counts"], params, key="votes")


def draws_panel(details: dict, summary: dict, class_name: Any, n: int, n_show: int,
                p_a: float, params: dict) -> None:
    draws = np.asarray(summary["g_draws"])
    st.markdown(f"#### Draws of g_σ,n with n = {n}")
    metric_row([("Draws of g (N // n)", f"{len(draws)}", "independent, disjoint blocks of n votes"),
                ("Top class ĉ (all N votes)", f"{summary['top_class_name']}", ""),
                ("P[g ≠ ĉ], binomial", f"{summary['prob_g_wrong']['binomial']:.4f}",
                 "exact two-class law from p̂ (top class vs the rest)"),
                ("P[g ≠ ĉ], empirical", f"{summary['prob_g_wrong']['empirical']:.4f}",
                 f"fraction of the {len(draws)} draws that differ from ĉ")])
    classes, block_counts = details["block_classes"], details["block_counts"]
    fig = g_draws_figure(classes, block_counts, draws, class_name, n, n_show)
    st.plotly_chart(fig, key="draws_chart")
    export_panel(fig, "g_draws_votes", {"class_index": classes.tolist()} | {
        f"draw_{b + 1}": block_counts[b].tolist() for b in range(min(n_show, len(draws)))},
        params, key="draws")
    fig2 = decisions_figure(draws, class_name, n)
    st.plotly_chart(fig2, key="decisions_chart")
    export_panel(fig2, "g_decisions", {"draw": list(range(1, len(draws) + 1)),
                                       "decision": draws.tolist()}, params, key="decisions")
    curve = details["prob_g_wrong_curve"]
    fig3 = prob_wrong_figure(curve["n"], curve["binomial"], curve["empirical"], curve["draws"],
                             n, p_a)
    st.plotly_chart(fig3, key="pwrong_chart")
    export_panel(fig3, "prob_g_wrong", curve, params, key="pwrong")
    st.caption("What am I looking at: g_σ,n is random. Each draw is the plurality of a fresh "
               "block of n votes (ties broken at random); the bars show a few draws and how often "
               "each class wins over all N // n draws. The curve is P[g_σ,n ≠ ĉ] for every n: "
               "the exact binomial law from p̂ (line, top vs rest) and the empirical frequency "
               "(markers, where at least 20 draws exist).")


def interval_panel(summary: dict, counts: np.ndarray, alpha: float, N: int, params: dict) -> None:
    cert, top = summary["certify"], summary["top_class"]
    st.markdown("#### p̂ of the top class and its interval")
    metric_row([("p̂_A", f"{summary['p_hat']:.4f}", f"{counts[top]} of {N} votes"),
                ("Interval low", f"{summary['p_lower']:.4f}", summary["interval"]),
                ("Interval high", f"{summary['p_upper']:.4f}", summary["interval"]),
                ("p̲_A (one-sided)", f"{cert['p_lower_one_sided']:.4f}",
                 "CERTIFY's lower bound for ĉ_A (chosen from the n0 selection votes)")])
    fig = p_hat_figure(summary["p_hat"], summary["p_lower"], summary["p_upper"],
                       cert["p_lower_one_sided"], alpha, summary["top_class_name"], N)
    st.plotly_chart(fig, key="phat_chart")
    st.caption("What am I looking at: the Clopper–Pearson interval holds p_A with confidence "
               "1 − α; CERTIFY only needs the one-sided lower end p̲_A.")
    export_panel(fig, "p_hat_interval", {k: summary[k] for k in ("p_hat", "p_lower", "p_upper")}
                 | {"certify": cert}, params, key="phat")


def radius_panel(summary: dict, details: dict, n: int, p_a: float, N: int) -> None:
    cert, theory = summary["certify"], details["theory"]
    st.markdown("#### Certified radius and the level-P_a threshold")
    metric_row([("Certified radius R̲", "abstain" if cert["abstain"] else f"{cert['radius']:.4f}",
                 f"σ Φ⁻¹(p̲_A) with n = N = {N} (eq. 2, Cohen's CERTIFY)"),
                (f"R̲ if n = {COHEN_N:,}", f"{details['radius_cohen_n']:.4f}",
                 "same p̂, Cohen's default n: a tighter p̲_A, hence a larger radius"),
                ("π0 threshold, exact", f"{theory['threshold_exact']:.4f}",
                 "eq. (5) from the binomial tail: strict majority of n votes wrong"),
                ("π0 threshold, paper", f"{theory['threshold_paper']:.4f}",
                 "the paper's closed form 1 − I⁻¹(ñ, ñ), ñ = 1 + ⌊n/2⌋ (exact for odd n)"),
                ("eq. (6) extra distance", f"{theory['extra_distance']:.4f}",
                 "σ Φ⁻¹(1 − π0*) with the exact threshold")])
    if cert["abstain"]:
        st.info(f"CERTIFY abstains: p̲_A = {cert['p_lower_one_sided']:.4f} ≤ ½ with n = {N}.")
    else:
        st.markdown(f"A level-{p_a:g} adversarial example of g_σ,{n} lies at least "
                    f"R̲ + extra = **{theory['min_distance']:.4f}** from x (eq. 6), versus the "
                    f"certified R̲ = {cert['radius']:.4f}.")
    with st.expander("What am I looking at"):
        st.markdown(
            f"R̲ = σ Φ⁻¹(p̲_A) certifies the ideal g_σ within an L2 ball (Cohen et al.). Here n "
            f"= N = {N} votes were used; Cohen's n = {COHEN_N:,} gives a smaller interval and a "
            "larger radius for the same image, so a small n understates R̲. Eq. (5) gives the "
            "largest π0(x_a) at which g_σ,n errs with probability ≥ P_a; the paper's closed form "
            f"is exact only for odd n (n = {n} here). Random tie-break threshold: "
            f"{theory['threshold_random_tie']:.4f}; paper's shortcut: ⌈n·P_a⌉ = "
            f"{theory['shortcut_wrong_votes']} wrong votes.")
