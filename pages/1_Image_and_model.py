"""Image & model: what the base classifier f and the smoothed classifier g_{σ,n} decide here.

Recipe: sidebar (image, model, σ, n) + page widgets (N, α, P_a, seed, draws) -> VotesRequest
(rsviz.views.image) -> one background job samples n0 + N votes (cached on disk, keyed without
n and α, so those change instantly) -> panels from the recorded votes (ui/votes.py).
"""

from __future__ import annotations

import streamlit as st

from rsviz.progress import OffsetProgress
from rsviz.views.base import inputs
from rsviz.views.image import N0, VotesRequest
from ui.common import choice, gsigma_check, page_inputs, request_or_stop, widget
from ui.engines import sized
from ui.jobs import view_panel
from ui.votes import images_panel, smoothed_panels, top5_panel

AUTO_START_S = 3.0

st.title("Image & model")
state, model, x = page_inputs(check=False)  # g_σ is checked below, above the votes
images_panel(state)
top5_panel(state)

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
view_panel("image_votes", request, model, x,
           lambda sampled, fresh: smoothed_panels(request, sampled, state, p_a, n_show),
           f"votes on {state.image.name} (σ={state.sigma:g}, N={N})",
           start_label="Sample the votes", auto_below_s=AUTO_START_S,
           progress=lambda job: OffsetProgress(job, N0))  # the n0 votes are not reported
