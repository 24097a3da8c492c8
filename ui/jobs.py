"""Job panels: start a background job, follow it live, cancel it, reload finished results.

The manager is one object for the whole server (`st.cache_resource`); only job ids live in
`st.session_state`, so a page finds its job again after navigation (docs/architecture.md).
"""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from rsviz.cache import default_cache
from rsviz.jobs import Job, JobManager, JobSnapshot, format_eta


def _release(manager: JobManager) -> None:
    manager.shutdown(wait=5.0)


@st.cache_resource(on_release=_release)
def get_manager() -> JobManager:
    """The server-wide job manager (one worker thread, one device queue)."""
    return JobManager()


def _slot_key(slot: str) -> str:
    return f"rsviz_job_{slot}"


def start(slot: str, name: str, fn: Callable[[Job], Any], cache_key: str | None) -> None:
    """Submit a job for a page slot (use as a button's on_click)."""
    st.session_state[_slot_key(slot)] = get_manager().submit(name, fn, cache_key)


def snapshot(slot: str) -> JobSnapshot | None:
    job = get_manager().get(st.session_state.get(_slot_key(slot)))
    return job.snapshot() if job is not None else None


def cached(cache_key: str) -> Any:
    """A finished result in the disk cache, or None."""
    return default_cache().get(cache_key)


def progress_line(snap: JobSnapshot) -> None:
    """Progress bar with done/total, elapsed time and ETA, plus a Cancel button."""
    frac = snap.fraction or 0.0
    text = (f"{snap.name}: {snap.message} — elapsed {format_eta(snap.elapsed_s)}, "
            f"ETA {format_eta(snap.eta_s)}")
    if snap.status == "queued":
        text = f"{snap.name}: queued behind another job on the device"
    st.progress(frac, text=text)
    st.button("Cancel", key=f"cancel_{snap.id}", on_click=get_manager().cancel, args=(snap.id,),
              help="Stops the job at its next step; results computed so far are kept where the "
                   "view supports it.")


def job_panel(slot: str, name: str, fn: Callable[[Job], Any], cache_key: str,
              render: Callable[[Any, bool], None], start_label: str = "Compute",
              cost_note: str = "", auto: bool = False,
              render_partial: Callable[[Any], None] | None = None) -> Any:
    """The standard view of one expensive computation.

    Shows the finished result at once when it is in the disk cache; otherwise a Start button
    (with `cost_note`, the estimated cost), then live progress with ETA and Cancel, partial
    results while it runs, and the result when done. `render(result, fresh)` draws a result.
    Returns the result when one is available, else None.
    """
    result = cached(cache_key)
    snap = snapshot(slot)
    active = get_manager().find_active(cache_key)
    if active is not None and (snap is None or snap.id != active.id):
        st.session_state[_slot_key(slot)] = active.id  # re-attach after a reload or page switch
        snap = active.snapshot()
    if snap is not None and snap.status == "done" and getattr(snap, "result", None) is not None:
        job = get_manager().get(snap.id)
        if job is not None and job.cache_key == cache_key:
            result = snap.result
    if result is not None:
        if snap is not None and snap.warning:
            st.warning(snap.warning)
        render(result, False)
        return result
    running = snap is not None and not snap.finished and \
        get_manager().get(snap.id).cache_key == cache_key  # type: ignore[union-attr]
    if not running:
        if snap is not None and snap.status == "error" and get_manager().get(snap.id).cache_key == cache_key:  # type: ignore[union-attr]
            st.error(f"The computation failed: {snap.error}")
        elif snap is not None and snap.status == "cancelled":
            st.info("The last run was cancelled.")
        if auto and (snap is None or snap.status not in ("error", "cancelled")):
            start(slot, name, fn, cache_key)
        else:
            if cost_note:
                st.caption(cost_note)
            st.button(start_label, key=f"start_{slot}", type="primary",
                      on_click=start, args=(slot, name, fn, cache_key))
            return None

    def live(polling: bool) -> None:
        now = snapshot(slot)
        if now is None:
            return
        if not now.finished:
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
               render_partial: Callable[[Any], None] | None = None) -> Any:
    """`job_panel` for a view request: its disk-cache key, its run, and a cost note made of
    the request's cost in forward passes and the measured rate of this model
    (docs/architecture.md). Starts by itself when the estimate is under `auto_below_s`."""
    from rsviz.views.base import measured_rate, seconds

    cost = request.cost()
    rate = measured_rate(model)
    eta = seconds(cost, rate)
    cost_note = (f"Estimated cost: {cost.describe()} ≈ {format_eta(eta)} at the measured "
                 f"{rate:,.0f} passes/s on {model.device.type.upper()}. {note}")
    return job_panel(slot, name, lambda job: request.run(model, x, job), request.key(), render,
                     start_label=start_label, cost_note=cost_note.strip(),
                     auto=eta < auto_below_s, render_partial=render_partial)
