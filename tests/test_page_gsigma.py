"""Every page says, before its Start button, when g_σ already disagrees with f at x_o (#25 item
7): the tiny CNN on the sample rocket at σ = 1 (tests/test_gsigma.py checks the engine's
verdict on this case), against coffee at the same σ, where g_σ agrees."""

from __future__ import annotations

import pytest

from tests.conftest import make_app

WARNING = "g_σ already disagrees with f at x_o"
# page -> (start slot, stops before Start without "Run anyway", where its σ is set)
PAGES = {"pages/1_Image_and_model.py": ("image_votes", False, None),
         "pages/2_Boundary_slice.py": ("slice", False, "sl_sigma_w"),
         "pages/3_Profile_and_SORM.py": ("profile", True, None),
         "pages/4_Dichotomy.py": ("dichotomy", True, None),
         "pages/5_Live_attack.py": ("live_attack", False, None)}


def open_page(page: str, sigma: float):
    at = make_app(page)
    widget = PAGES[page][2]
    if widget:
        at.number_input(key=widget).set_value(sigma).run()
    else:
        at.sidebar.number_input(key="sb_sigma").set_value(sigma).run()
    assert not at.exception, at.exception
    return at


def warnings(at) -> list[str]:
    return [w.value for w in at.warning if WARNING in w.value]


def start_buttons(at, slot: str) -> list:
    return [b for b in at.button if b.key == f"start_{slot}"]


@pytest.mark.parametrize("page", list(PAGES))
def test_page_warns_before_start_when_g_disagrees_at_xo(app_env, monkeypatch, page):
    import rsviz.gsigma

    calls = []
    real = rsviz.gsigma.check_at_xo
    monkeypatch.setattr(rsviz.gsigma, "check_at_xo",
                        lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    monkeypatch.setenv("RSVIZ_SAMPLE", "rocket")
    slot, stops, _ = PAGES[page]
    at = open_page(page, 1.0)
    found = warnings(at)
    assert len(found) == 1, [w.value for w in at.warning]
    assert "σ = 1)" in found[0] and "f's label class 7" in found[0]
    assert "another image" in found[0] and "smaller σ" in found[0]
    if page.endswith("5_Live_attack.py"):
        assert "attack f instead" in found[0]
    if page.endswith("2_Boundary_slice.py"):
        assert "σ on this page" in found[0]
    if stops:  # nothing to start until the user insists
        assert not start_buttons(at, slot)
        at.checkbox(key=f"{'prof' if slot == 'profile' else 'dich'}_anyway").check().run()
        assert not at.exception, at.exception
        assert start_buttons(at, slot) and warnings(at)
    elif slot != "image_votes":  # the image page may start by itself (a few votes)
        assert start_buttons(at, slot)
    at.run()
    assert calls.count(1.0) == 1, calls  # cached: reruns cost nothing


@pytest.mark.parametrize("page", ["pages/3_Profile_and_SORM.py", "pages/5_Live_attack.py"])
def test_no_warning_where_g_agrees(app_env, monkeypatch, page):
    monkeypatch.setenv("RSVIZ_SAMPLE", "coffee")
    at = open_page(page, 1.0)
    assert not warnings(at)
    assert start_buttons(at, PAGES[page][0])
