"""The shared job panel: start, live partial results, result, cancel, instant reload."""

from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest


def _page():
    import time as _time

    import streamlit as st

    from ui.jobs import job_panel

    def fn(job):
        for i in range(40):
            job.check_cancel()
            _time.sleep(0.05)
            job.report(i + 1, 40, f"step {i}", partial=i)
        return {"v": 42}

    job_panel("demo", "Demo job", fn, "demo-key", lambda res, fresh: st.write(f"RESULT {res['v']}"),
              cost_note="about 2 s", render_partial=lambda p: st.write(f"PARTIAL {p}"))


def _texts(at):
    return [m.value for m in at.markdown]


def test_job_panel_runs_and_reloads(fresh_streamlit):
    at = AppTest.from_function(_page, default_timeout=30)
    at.run()
    assert [b.label for b in at.button] == ["Compute"] and "about 2 s" in at.caption[0].value
    at.button(key="start_demo").click().run()
    assert "Cancel" in [b.label for b in at.button]
    time.sleep(0.5)
    at.run()
    assert any(t.startswith("PARTIAL") for t in _texts(at))
    deadline = time.time() + 20
    while "RESULT 42" not in _texts(at) and time.time() < deadline:
        time.sleep(0.3)
        at.run()
    assert "RESULT 42" in _texts(at) and not at.exception
    again = AppTest.from_function(_page, default_timeout=30)  # a new session: from the disk cache
    again.run()
    assert "RESULT 42" in _texts(again)


def test_job_panel_cancel(fresh_streamlit):
    at = AppTest.from_function(_page, default_timeout=30)
    at.run()
    at.button(key="start_demo").click().run()
    time.sleep(0.2)
    at.run()
    cancel = [b for b in at.button if b.label == "Cancel"][0]
    cancel.click().run()
    time.sleep(0.3)
    at.run()
    assert "RESULT 42" not in _texts(at)
    assert any("cancelled" in i.value for i in at.info)
    assert [b.label for b in at.button] == ["Compute"]
