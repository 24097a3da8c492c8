"""Image & model: what the base classifier f and the smoothed classifier g_{σ,n} decide here.

Recipe: sidebar (image, model, σ, n) + page widgets (N, α, P_a, seed, draws) -> VotesRequest
(rsviz.views.image) -> one background job samples n0 + N votes (cached on disk, keyed without
n and α, so those change instantly) -> panels from the recorded votes (ui/votes.py).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from rsviz.figures.votes import top5_figure
from rsviz.jobs import OffsetProgress
from rsviz.smoothing import VoteRecord
from rsviz.views.base import inputs
from rsviz.views.image import N0, VotesRequest, top5
from ui.common import choice, current, gsigma_check, request_or_stop, require_ready, widget
from ui.engines import sized
from ui.export import export_panel
from ui.jobs import view_panel
from ui.votes import draws_panel, interval_panel, radius_panel, votes_panel

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
def f_top5(model_id: str, image_hash: str, _model, _x) -> list[dict]:
    return top5(_model, _x)


st.subheader("Top-5 of the base classifier f")
rows = f_top5(state.model_id, state.image_hash, model, x)
fig = top5_figure([(r["class_index"], r["name"], r["prob"]) for r in rows])
st.plotly_chart(fig, key="top5_chart")
st.caption("What am I looking at: the softmax of f on the clean input, no noise. f is "
           "deterministic; the smoothed classifier below votes over noisy copies of x.")
export_panel(fig, "top5_f", {"class_index": [r["class_index"] for r in rows],
                            "name": [r["name"] for r in rows],
                            "softmax": [r["prob"] for r in rows]}, key="top5")

st.subheader(f"Smoothed classifier g_σ,n at σ = {state.sigma:g}, n = {state.n}")
gsigma_check(state, state.sigma)
c = st.columns(6)
N = int(widget(c[0].number_input, "N (samples for the estimates)", "img_N",
               sized("image", model)["N"], min_value=1,
               max_value=1_000_000, step=100,
               help="Votes recorded at x. They give p̂, its interval, Cohen's radius "
                    "(CERTIFY with n = N) and N // n independent draws of g_σ,n."))
alpha = float(widget(c[1].number_input, "α (1 − confidence)", "img_alpha", 0.001,
                     min_value=1e-6, max_value=0.5, format="%.4f", step=0.001))
p_a = float(widget(c[2].number_input, "P_a (adversarial level)", "img_pa", 0.9, min_value=0.01,
                   max_value=0.99, step=0.05,
                   help="Eq. (4): x_a is adversarial of level P_a when "
                        "P[g_σ,n(x_a) ≠ g_σ(x_o)] ≥ P_a."))
seed = int(widget(c[3].number_input, "Seed", "img_seed", 0, min_value=0, max_value=2**31 - 1))
n_show = int(widget(c[4].number_input, "Draws of g to show", "img_draws", 3, min_value=1,
                    max_value=10))
precision = choice(c[5].selectbox, "Forward precision", "img_precision",
                   ["auto", "fp32", "bf16"] + (["fp16"] if state.device.type == "cuda" else []),
                   "auto", help="auto = bf16 autocast where the device supports it (fp32 "
                                "otherwise). The certificate is about the classifier actually "
                                "run; see docs/smoothing.md for the measured agreement of bf16 "
                                "with fp32.")
request = request_or_stop(lambda: VotesRequest(
    **inputs(model, x), sigma=state.sigma, n_samples=N, n0=N0, seed=seed, precision=precision,
    n=state.n, alpha=alpha))


def render(sampled: dict, fresh: bool) -> None:
    summary = request.summary(sampled, info.class_name)
    votes = VoteRecord(np.asarray(sampled["labels"])[None], info.num_classes, state.sigma)
    st.caption(f"{sampled['forward_passes']:,} forward passes (n0 = {N0} + N = {N}) in "
               f"{sampled['seconds']:.1f} s, precision {sampled['precision']}, batch "
               f"{sampled['batch_size']}; seed {seed}. Cached on disk: reopening is instant.")
    params = {"model": info.name, "image": state.image.name, "sigma": state.sigma,
              "n": state.n, "N": N, "n0": N0, "alpha": alpha, "seed": seed, "P_a": p_a}
    votes_panel(votes.counts[0], summary, info.class_name, params)
    draws_panel(votes, summary, info.class_name, state.n, n_show, p_a, seed, params)
    interval_panel(summary, votes.counts[0], alpha, N, params)
    radius_panel(summary, state.sigma, state.n, p_a, alpha, N)


view_panel("image_votes", request, model, x, render,
           f"votes on {state.image.name} (σ={state.sigma:g}, N={N})",
           start_label="Sample the votes", auto_below_s=AUTO_START_S,
           progress=lambda job: OffsetProgress(job, N0))  # the n0 votes are not reported
