"""Jobs: every background computation of this server, with progress, duration and cancel."""

import streamlit as st

from rsviz.progress import format_eta
from ui.jobs import cancel, get_manager, session_id

st.title("Jobs")
st.caption("Background computations of this server (all sessions). A job keeps running when "
           "you switch pages; finished results are in the disk cache. Cancel detaches your "
           "session: a job stops when no session waits for it any more.")
manager = get_manager()
jobs = manager.list()
if not jobs:
    st.info("No job yet. Start one from a view.")
me = session_id()
for snap in jobs:
    cols = st.columns([3, 2, 2, 1])
    cols[0].markdown(f"**{snap.name}** · `{snap.id}`")
    cols[1].progress(snap.fraction or (1.0 if snap.status == "done" else 0.0),
                     text=f"{snap.status} — {snap.message}")
    if snap.finished:
        timing = f"took {format_eta(snap.elapsed_s)}"
    else:
        others = manager.waiting(snap.id, besides=me)
        timing = f"elapsed {format_eta(snap.elapsed_s)} · ETA {format_eta(snap.eta_s)}" + (
            f" · {others} other session(s) waiting: Cancel detaches only yours" if others else "")
    cols[2].caption(timing + (f" · {snap.error}" if snap.error else ""))
    if not snap.finished:
        cols[3].button("Cancel", key=f"jobs_cancel_{snap.id}", on_click=cancel, args=(snap.id,))
