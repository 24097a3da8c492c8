"""Jobs: every background computation of this server, with progress and cancel."""

import streamlit as st

from rsviz.jobs import format_eta
from ui.jobs import get_manager

st.title("Jobs")
st.caption("Background computations of this server (all sessions). A job keeps running when "
           "you switch pages; finished results are in the disk cache.")
manager = get_manager()
jobs = manager.list()
if not jobs:
    st.info("No job yet. Start one from a view.")
for snap in jobs:
    cols = st.columns([3, 2, 2, 1])
    cols[0].markdown(f"**{snap.name}** · `{snap.id}`")
    cols[1].progress(snap.fraction or (1.0 if snap.status == "done" else 0.0),
                     text=f"{snap.status} — {snap.message}")
    cols[2].caption(f"elapsed {format_eta(snap.elapsed_s)} · ETA {format_eta(snap.eta_s)}"
                    + (f" · {snap.error}" if snap.error else ""))
    if not snap.finished:
        cols[3].button("Cancel", key=f"jobs_cancel_{snap.id}", on_click=manager.cancel,
                       args=(snap.id,))
