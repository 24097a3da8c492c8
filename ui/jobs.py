"""Job panels: start a background job, follow it live, cancel it, reload finished results.

The manager is one object for the whole server (`st.cache_resource`); only job ids live in
`st.session_state`, so a page finds its job again after navigation (docs/architecture.md).
A job is shared by every session that asks for the same key: each one subscribes, a session's
Cancel detaches that session, and the job stops only when no connected session waits for it.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from rsviz.cache import default_cache
from rsviz.jobs import Job, JobManager, JobSnapshot
from rsviz.progress import Progress, format_eta

CONFIRM_ABOVE_S = 600.0  # a Start estimated above this asks for a second click
DETACHED_KEY = "rsviz_detached"  # ids of the jobs this session cancelled (detached from)


def _release(manager: JobManager) -> None:
    manager.shutdown(wait=5.0)


def _alive(subscriber: str) -> bool:
    """Whether a subscriber's browser session is still connected (always, outside a server)."""
    from streamlit import runtime

    session = subscriber.split("/", 1)[0]
    return not runtime.exists() or runtime.get_instance().is_active_session(session)


@st.cache_resource(on_release=_release)
def get_manager() -> JobManager:
    """The server-wide job manager (one worker thread, one device queue)."""
    return JobManager(alive=_alive)


def session_id() -> str:
    """This session as the subscriber of the jobs it waits for: Streamlit's session id (whose
    connection `_alive` checks) and a token of its session state (AppTest runs share an id)."""
    ctx = get_script_run_ctx()
    token = st.session_state.setdefault("rsviz_session_token", uuid.uuid4().hex[:12])
    return f"{ctx.session_id if ctx is not None else 'script'}/{token}"


def _slot_key(slot: str) -> str:
    return f"rsviz_job_{slot}"


def _confirm_key(slot: str) -> str:
    return f"rsviz_confirm_{slot}"


def _detached() -> set[str]:
    return st.session_state.setdefault(DETACHED_KEY, set())


def start(slot: str, name: str, fn: Callable[[Job], Any], cache_key: str | None) -> None:
    """Submit (or join) a job for a page slot (use as a button's on_click)."""
    job_id = get_manager().submit(name, fn, cache_key, session_id())
    st.session_state[_slot_key(slot)] = job_id
    st.session_state.pop(_confirm_key(slot), None)
    _detached().discard(job_id)


def cancel(job_id: str) -> None:
    """This session's Cancel: detach it; the job stops when no other session waits for it."""
    get_manager().cancel(job_id, session_id())
    _detached().add(job_id)


def snapshot(slot: str) -> JobSnapshot | None:
    job = get_manager().get(st.session_state.get(_slot_key(slot)))
    return job.snapshot() if job is not None else None


def cached(cache_key: str) -> Any:
    """A finished result in the disk cache, or None."""
    return default_cache().get(cache_key)


def cache_notice() -> None:
    """Say once that the disk cache was found corrupt and rebuilt."""
    disk = default_cache()
    if disk.notice:
        st.toast(disk.notice)
        disk.notice = None


def progress_line(snap: JobSnapshot) -> None:
    """Progress bar with done/total, elapsed time and ETA, plus a Cancel button."""
    frac = snap.fraction or 0.0
    text = (f"{snap.name}: {snap.message} — elapsed {format_eta(snap.elapsed_s)}, "
            f"ETA {format_eta(snap.eta_s)}")
    if snap.status == "queued":
        text = f"{snap.name}: queued behind another job on the device"
    st.progress(frac, text=text)
    st.button("Cancel", key=f"cancel_{snap.id}", on_click=cancel, args=(snap.id,),
              help="Stops the job at its next step; results computed so far are kept where the "
                   "view supports it. Other sessions waiting for the same job keep it running.")


def start_button(slot: str, name: str, fn: Callable[[Job], Any], cache_key: str,
                 label: str, cost_note: str, confirm: str) -> None:
    """The Start button; with `confirm` (the run's size), the first click asks for a second."""
    if cost_note:
        st.caption(cost_note)
    args = (slot, name, fn, cache_key)
    if confirm and st.session_state.get(_confirm_key(slot)) == cache_key:
        st.warning(f"This is a large run: {confirm}. Start it?")
        st.button(f"Yes, start ({confirm})", key=f"confirm_{slot}", type="primary",
                  on_click=start, args=args)
        return
    st.button(label, key=f"start_{slot}", type="primary", on_click=_arm if confirm else start,
              args=(slot, cache_key) if confirm else args)


def _arm(slot: str, cache_key: str) -> None:
    st.session_state[_confirm_key(slot)] = cache_key


def job_panel(slot: str, name: str, fn: Callable[[Job], Any], cache_key: str,
              render: Callable[[Any, bool], None], start_label: str = "Compute",
              cost_note: str = "", auto: bool = False,
              render_partial: Callable[[Any], None] | None = None, confirm: str = "") -> Any:
    """The standard view of one expensive computation.

    Shows the finished result at once when it is in the disk cache; otherwise a Start button
    (with `cost_note`, the estimated cost; a second click is asked for when `confirm`, the
    size of a large run, is given), then live progress with ETA and Cancel, partial results
    while it runs, and the result when done. A job of the same key started elsewhere (another
    session, or this one before a reload) is joined. `render(result, fresh)` draws a result.
    Returns the result when one is available, else None.
    """
    manager = get_manager()
    result = cached(cache_key)
    cache_notice()  # after the first read, which finds a corrupt database
    job = manager.get(st.session_state.get(_slot_key(slot)))
    if job is not None and job.cache_key != cache_key:
        job = None
    active = manager.find_active(cache_key)
    if active is not None and active is not job and active.id not in _detached():
        manager.subscribe(active.id, session_id())  # re-attach after a reload or page switch
        st.session_state[_slot_key(slot)] = active.id
        job = active
    snap = job.snapshot() if job is not None else None
    if snap is not None and snap.status == "done" and snap.result is not None:
        result = snap.result
    if result is not None:
        if snap is not None and snap.warning:
            st.warning(snap.warning)
        render(result, False)
        return result
    detached = snap is not None and snap.id in _detached()
    if snap is None or snap.finished or detached:
        if snap is not None and snap.status == "error":
            st.error(f"The computation failed: {snap.error}")
        elif snap is not None and (detached or snap.status == "cancelled"):
            st.info("The last run was cancelled." + (
                " It goes on for the other sessions waiting for it." if not snap.finished else ""))
        if auto and snap is None:
            start(slot, name, fn, cache_key)
        else:
            start_button(slot, name, fn, cache_key, start_label, cost_note, confirm)
            return None

    def live(polling: bool) -> None:
        now = snapshot(slot)
        if now is None:
            return
        if not now.finished and now.id not in _detached():
            progress_line(now)
            if render_partial is not None and now.partial is not None:
                render_partial(now.partial)
        elif polling:
            st.rerun()

    st.fragment(run_every=1.0)(live)(True)
    return None


def view_panel(slot: str, request: Any, model: Any, x: Any, render: Callable[[Any, bool], None],
               name: str, start_label: str = "Compute", note: str = "",
               auto_below_s: float = 0.0,
               render_partial: Callable[[Any], None] | None = None,
               progress: Callable[[Job], Progress] | None = None) -> Any:
    """`job_panel` for a view request: its disk-cache key, its run, and a cost note made of
    the request's cost in forward passes and the measured rate of this model
    (docs/architecture.md). Starts by itself when the estimate is under `auto_below_s`; asks
    for a second click above CONFIRM_ABOVE_S. `progress` wraps the job's Progress (e.g. to
    count passes the engine does not report)."""
    from rsviz.views.base import estimate, timed_run

    guess = estimate(request, model)
    cost, eta = guess.cost, guess.seconds
    cost_note = (f"Estimated cost: {cost.describe()} ≈ {format_eta(eta)} "
                 f"{guess.describe()} on {model.device.type.upper()}. {note}")
    confirm = f"{cost.describe()}, about {format_eta(eta)}" if eta > CONFIRM_ABOVE_S else ""
    wrap = progress or (lambda job: job)
    return job_panel(slot, name, lambda job: timed_run(request, model, x, wrap(job)),
                     request.key(),
                     render, start_label=start_label, cost_note=cost_note.strip(),
                     auto=eta < auto_below_s, render_partial=render_partial, confirm=confirm)
