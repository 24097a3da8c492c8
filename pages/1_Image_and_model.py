"""Image & model: what f decides on the current image."""

import streamlit as st
import torch

from rsviz.models import top_k
from ui.common import current, require_ready

st.title("Image & model")
state = current()
if require_ready(state):
    cols = st.columns(2)
    cols[0].image(state.image.original, caption=f"Original ({state.image.name})",
                  use_container_width=True)
    cols[1].image(state.x.permute(1, 2, 0).numpy(), caption="Model input (resize + centre crop)",
                  use_container_width=True)
    with torch.inference_mode():
        logits = state.model(state.x[None].to(state.model.device))[0]
    st.subheader("Top-5 of the base classifier f")
    st.table([{"class": state.model.info.class_name(c), "index": c, "probability": f"{p:.1%}"}
              for c, p in top_k(logits, 5)])
