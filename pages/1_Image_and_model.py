"""Image & model: what the base classifier f and the smoothed classifier g_{σ,n} decide here.

Recipe: sidebar (image, model, σ, n) + page widgets (N, α, P_a, seed, draws) -> SmoothingConfig
-> one background job samples n0 + N votes (cached on disk, keyed without n, α and P_a, so those
change instantly) -> figures from the recorded votes -> export panels.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from rsviz.cache import make_key
from rsviz.commands.smooth import COHEN_N, sample_image, summarize
from rsviz.config import SmoothingConfig
from rsviz.device import resolve_precision
from rsviz.errors import RsvizError
from rsviz.figures.votes import (decisions_figure, g_draws_figure, p_hat_figure,
                                 prob_wrong_figure, top5_figure, vote_histogram)
from rsviz.jobs import format_eta
from rsviz.models import top_k
from rsviz.smoothing import VoteRecord, estimate_rate, lower_confidence_bound, prob_wrong_binomial
from rsviz.theory import certified_radius, theory_summary
from ui.common import current, persist, remember, require_ready, show_error
from ui.export import export_panel, page_pack_button
from ui.jobs import job_panel

N0 = 100  # CERTIFY's selection votes (Cohen et al.'s default)
AUTO_START_S = 3.0

st.title("Image & model")
state = current()
if not require_ready(state):
    st.stop()
model, x, info = state.model, state.x, state.model.info

cols = st.columns(2)
cols[0].image(state.image.original, caption=f"Original ({state.image.name})", width="stretch")
cols[1].image(x.permute(1, 2, 0).numpy(), width="stretch", clamp=True,
              caption=f"Model input x: resize to {info.resize}, centre crop {info.input_size}×"
                      f"{info.input_size}, pixels in [0,1] (noise is added here)")


@st.cache_data(show_spinner=False, max_entries=32)
def f_top5(model_id: str, image_hash: str, _model, _x) -> list[tuple[int, str, float]]:
    with torch.inference_mode():
        logits = _model(_x[None].to(_model.device))[0]
    return [(c, _model.info.class_name(c), p) for c, p in top_k(logits, 5)]


st.subheader("Top-5 of the base classifier f")
top5 = f_top5(state.model_id, state.image_hash, model, x)
fig = top5_figure(top5)
st.plotly_chart(fig, key="top5_chart")
st.caption("What am I looking at: the softmax of f on the clean input, no noise. f is "
           "deterministic; the smoothed classifier below votes over noisy copies of x.")
export_panel(fig, "top5_f", {"class_index": [r[0] for r in top5], "name": [r[1] for r in top5],
                            "softmax": [r[2] for r in top5]}, key="top5")

# ------------------------------------------------------------------------- page settings
st.subheader(f"Smoothed classifier g_σ,n at σ = {state.sigma:g}, n = {state.n}")
default_N = 1000 if state.device.type == "cpu" else 10_000
c = st.columns(6)
N = int(c[0].number_input("N (samples for the estimates)", 1, 1_000_000,
                          persist("img_N", default_N), step=100, key="img_N_w",
                          on_change=remember, args=("img_N",),
                          help="Votes recorded at x. They give p̂, its interval, Cohen's radius "
                               "(CERTIFY with n = N) and N // n independent draws of g_σ,n."))
alpha = float(c[1].number_input("α (1 − confidence)", 1e-6, 0.5, persist("img_alpha", 0.001),
                                format="%.4f", step=0.001, key="img_alpha_w",
                                on_change=remember, args=("img_alpha",)))
p_a = float(c[2].number_input("P_a (adversarial level)", 0.01, 0.99, persist("img_pa", 0.9),
                              step=0.05, key="img_pa_w", on_change=remember, args=("img_pa",),
                              help="Eq. (4): x_a is adversarial of level P_a when "
                                   "P[g_σ,n(x_a) ≠ g_σ(x_o)] ≥ P_a."))
seed = int(c[3].number_input("Seed", 0, 2**31 - 1, persist("img_seed", 0), key="img_seed_w",
                             on_change=remember, args=("img_seed",)))
n_show = int(c[4].number_input("Draws of g to show", 1, 10, persist("img_draws", 3),
                               key="img_draws_w", on_change=remember, args=("img_draws",)))
precisions = ["auto", "fp32", "bf16"] + (["fp16"] if state.device.type == "cuda" else [])
chosen = persist("img_precision", "auto")
precision_choice = c[5].selectbox(
    "Forward precision", precisions, index=precisions.index(chosen) if chosen in precisions else 0,
    key="img_precision_w", on_change=remember, args=("img_precision",),
    help="auto = bf16 autocast where the device supports it (fp32 otherwise). The certificate "
         "is about the classifier actually run; see docs/smoothing.md for the measured "
         "agreement of bf16 with fp32.")
try:
    config = SmoothingConfig(sigma=state.sigma, n=state.n, n_samples=N, alpha=alpha, seed=seed,
                             precision=precision_choice)
    if state.n > N:
        raise RsvizError(f"n = {state.n} exceeds N = {N}: raise N to at least n.")
except RsvizError as exc:
    show_error(exc)
    st.stop()

precision = resolve_precision(config.precision, model.device)
key = make_key("image-votes", state.model_id, state.image_hash, config.sigma, N, N0, seed,
               precision)


def compute(job):
    return sample_image(model, x, config, N0, job)


def metric_row(items: list[tuple[str, str, str]]) -> None:
    for col, (label, value, help_text) in zip(st.columns(len(items)), items):
        col.metric(label, value, help=help_text or None)


def render(sampled: dict, fresh: bool) -> None:
    summary = summarize(sampled, state.n, alpha, seed, info.class_name)
    votes = VoteRecord(np.asarray(sampled["labels"])[None], info.num_classes, state.sigma)
    counts = votes.counts[0]
    top, cert = summary["top_class"], summary["certify"]
    draws = np.asarray(summary["g_draws"])
    st.caption(f"{sampled['forward_passes']:,} forward passes (n0 = {N0} + N = {N}) in "
               f"{sampled['seconds']:.1f} s, precision {sampled['precision']}, batch "
               f"{sampled['batch_size']}; seed {seed}. Cached on disk: reopening is instant.")
    params = {"model": info.name, "image": state.image.name, "sigma": state.sigma,
              "n": state.n, "N": N, "n0": N0, "alpha": alpha, "seed": seed, "P_a": p_a}

    st.markdown("#### Votes of the N noisy samples")
    fig = vote_histogram(counts, info.class_name)
    st.plotly_chart(fig, key="votes_chart")
    st.caption("What am I looking at: the class f gives to each of the N copies x + σ·noise. "
               "Their shares estimate p_c(x); the tallest bar is the ideal g_σ(x).")
    export_panel(fig, "votes", summary["vote_counts"], params, key="votes")

    st.markdown(f"#### Draws of g_σ,n with n = {state.n}")
    metric_row([("Draws of g (N // n)", f"{len(draws)}", "independent, disjoint blocks of n votes"),
                ("Top class ĉ (all N votes)", f"{summary['top_class_name']}", ""),
                ("P[g ≠ ĉ], binomial", f"{summary['prob_g_wrong']['binomial']:.4f}",
                 "exact two-class law from p̂ (top class vs the rest)"),
                ("P[g ≠ ĉ], empirical", f"{summary['prob_g_wrong']['empirical']:.4f}",
                 f"fraction of the {len(draws)} draws that differ from ĉ")])
    classes, block_counts = votes.block_counts(state.n)
    fig = g_draws_figure(classes, block_counts[0], draws, info.class_name, state.n, n_show)
    st.plotly_chart(fig, key="draws_chart")
    export_panel(fig, "g_draws_votes", {"class_index": classes.tolist()} | {
        f"draw_{b + 1}": block_counts[0, b].tolist() for b in range(min(n_show, len(draws)))},
        params, key="draws")
    fig2 = decisions_figure(draws, info.class_name, state.n)
    st.plotly_chart(fig2, key="decisions_chart")
    export_panel(fig2, "g_decisions", {"draw": list(range(1, len(draws) + 1)),
                                       "decision": draws.tolist()}, params, key="decisions")
    ns = sorted({int(v) for v in np.geomspace(1, N, 40).astype(int)} | {state.n})
    rng = np.random.default_rng(seed)
    emp = [float((votes.g_draws(k, rng)[0] != top).mean()) if N // k >= 20 else None for k in ns]
    exact = [float(prob_wrong_binomial(summary["p_hat"], k)) for k in ns]
    fig3 = prob_wrong_figure(ns, exact, emp, [N // k for k in ns], state.n, p_a)
    st.plotly_chart(fig3, key="pwrong_chart")
    export_panel(fig3, "prob_g_wrong", {"n": ns, "binomial": exact, "empirical": emp,
                                        "draws": [N // k for k in ns]}, params, key="pwrong")
    st.caption("What am I looking at: g_σ,n is random. Each draw is the plurality of a fresh "
               "block of n votes (ties broken at random); the bars show a few draws and how often "
               "each class wins over all N // n draws. The curve is P[g_σ,n ≠ ĉ] for every n: "
               "the exact binomial law from p̂ (line, top vs rest) and the empirical frequency "
               "(markers, where at least 20 draws exist).")

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

    st.markdown("#### Certified radius and the level-P_a threshold")
    k_big = int(round(summary["p_hat"] * COHEN_N))
    radius_big = float(certified_radius(lower_confidence_bound(k_big, COHEN_N, alpha),
                                        state.sigma))
    theory = theory_summary(state.n, p_a, state.sigma,
                            cert["p_lower_one_sided"] if cert["p_lower_one_sided"] > 0 else None)
    metric_row([("Certified radius R̲", "abstain" if cert["abstain"] else f"{cert['radius']:.4f}",
                 f"σ Φ⁻¹(p̲_A) with n = N = {N} (eq. 2, Cohen's CERTIFY)"),
                (f"R̲ if n = {COHEN_N:,}", f"{radius_big:.4f}",
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
        st.markdown(f"A level-{p_a:g} adversarial example of g_σ,{state.n} lies at least "
                    f"R̲ + extra = **{theory['min_distance']:.4f}** from x (eq. 6), versus the "
                    f"certified R̲ = {cert['radius']:.4f}.")
    with st.expander("What am I looking at"):
        st.markdown(
            f"R̲ = σ Φ⁻¹(p̲_A) certifies the ideal g_σ within an L2 ball (Cohen et al.). Here n "
            f"= N = {N} votes were used; Cohen's n = {COHEN_N:,} gives a smaller interval and a "
            "larger radius for the same image, so a small n understates R̲. Eq. (5) gives the "
            "largest π0(x_a) at which g_σ,n errs with probability ≥ P_a; the paper's closed form "
            f"is exact only for odd n (n = {state.n} here). Random tie-break threshold: "
            f"{theory['threshold_random_tie']:.4f}; paper's shortcut: ⌈n·P_a⌉ = "
            f"{theory['shortcut_wrong_votes']} wrong votes.")


rate = estimate_rate(model, precision)
eta = (N + N0) / max(rate, 1e-9)
try:
    job_panel("image_votes", f"votes on {state.image.name} (σ={state.sigma:g}, N={N})", compute,
              key, render, start_label="Sample the votes",
              cost_note=f"{N + N0:,} forward passes ≈ {format_eta(eta)} on "
                        f"{model.device.type.upper()} ({rate:.0f} passes/s measured).",
              auto=eta < AUTO_START_S)
except RsvizError as exc:
    show_error(exc)
page_pack_button("image_and_model")
