"""The app starts, every page runs past its Start button on the tiny CNN and shows the number
its view computes, the sidebar drives the pages, errors are messages."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT, make_app, run_until

PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("[0-9]*.py"))


def test_app_runs_without_exception(app_env):
    at = make_app()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="sb_model").value == "tiny_cnn"
    assert any("Top-5" in s.value for s in at.subheader)


def texts(at) -> str:
    """Every caption, markdown, success, info, table and metric of the page, as one string."""
    parts = [e.value for kind in ("caption", "markdown", "success", "info", "warning")
             for e in getattr(at, kind)]
    parts += [f"{m.label}={m.value}" for m in at.metric]
    parts += [str(t.value) for t in at.table]
    return "\n".join(map(str, parts))


def start(at, slot: str, done, timeout: float = 120.0):
    """Click the page's Start button (when it did not start by itself) and wait for `done`."""
    assert not at.exception, at.exception
    buttons = [b for b in at.button if b.key == f"start_{slot}"]
    if buttons:
        buttons[0].click().run()
    run_until(at, lambda a: bool(a.exception) or done(a), timeout=timeout)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert done(at), texts(at)[-2000:]
    return at


def page_inputs():
    from rsviz.models import load_model
    from rsviz.views.base import inputs
    from rsviz.views.inputs import load_image

    model = load_model("tiny_cnn")
    x, _ = load_image("sample:coffee", model)
    return model, x, inputs(model, x)


def image_page(at):
    from rsviz.views.image import VotesRequest

    start(at, "image_votes", lambda a: any(m.label == "p̂_A" for m in a.metric))
    model, x, ids = page_inputs()
    request = VotesRequest(**ids, sigma=0.05, n_samples=1000, n0=100, seed=0, n=10)
    expected = request.summary(request.run(model, x))
    shown = {m.label: m.value for m in at.metric}
    assert shown["p̂_A"] == f"{expected['p_hat']:.4f}"
    assert shown["Draws of g (N // n)"] == "100"


def slice_page(at):
    from rsviz.slices import SliceConfig
    from rsviz.views.slice import SliceRequest

    at.number_input(key="sl_grid_w").set_value(5).run()
    at.multiselect(key="sl_ns_w").set_value([5]).run()
    at.number_input(key="sl_N_w").set_value(10).run()
    start(at, "slice", lambda a: any("forward passes" in s.value for s in a.success))
    model, x, ids = page_inputs()
    config = SliceConfig(sigma=0.05, ns=(5,), grid=5, n_samples=10)
    result = SliceRequest(**ids, config=config).run(model, x)
    assert f"{result.forward_passes:,} forward passes" in at.success[0].value


def profile_page(at):
    from rsviz.profile import ProfileConfig
    from rsviz.views.profile import ProfileRequest

    at.multiselect(key="prof_n_w").set_value([5]).run()
    at.number_input(key="prof_N_w").set_value(16).run()
    at.number_input(key="prof_points_w").set_value(4).run()
    at.checkbox(key="prof_curv_w").uncheck().run()
    at.number_input(key="prof_attack_w").set_value(4).run()
    start(at, "profile", lambda a: "‖x_a − x_o‖ = " in texts(a))
    model, x, ids = page_inputs()
    config = ProfileConfig(sigma=0.05, n_values=(5,), n_samples=16, points=4, beyond=8.0,
                           p_levels=(0.5, 0.8, 0.9), curvature=False, lanczos_steps=16,
                           probes=4, slq_steps=6, seed=0, attack_iters=4)
    out = ProfileRequest(**ids, config=config).run(model, x)
    assert f"‖x_a − x_o‖ = {out['profile'].distance:.4f}" in texts(at)


def dichotomy_page(at):
    from rsviz.dichotomy import DichotomyConfig
    from rsviz.views.dichotomy import DichotomyRequest

    at.multiselect(key="dich_n_w").set_value([5]).run()
    at.number_input(key="dich_trials_w").set_value(20).run()
    at.number_input(key="dich_grid_w").set_value(8).run()
    at.number_input(key="dich_N_w").set_value(16).run()
    start(at, "dichotomy", lambda a: len(a.table) > 0)
    model, x, ids = page_inputs()
    config = DichotomyConfig(sigma=0.05, n_values=(5,), trials=20, steps=12, grid=8,
                             n_samples=16)
    out = DichotomyRequest(**ids, config=config, kind="whitebox").run(model, x)
    expected = out["result"].summary()["per_n"]["5"]["simulated"]["mean"]
    assert f"{expected:.4f}" in str(at.table[0].value)


def attack_page(at):
    from rsviz.attacks import OracleConfig
    from rsviz.views.attack import AttackRequest

    at.number_input(key="attack_budget_w").set_value(30).run()
    at.radio(key="attack_target_w").set_value("f").run()
    start(at, "live_attack", lambda a: any(m.label == "Queries" for m in a.metric))
    model, x, ids = page_inputs()
    request = AttackRequest(**ids, attack="hsja", config=OracleConfig(sigma=None, budget=30))
    trace = request.run(model, x)["trace"]
    shown = {m.label: m.value for m in at.metric}
    assert shown["Queries"] == f"{trace.queries:,}"
    assert shown["L2"] == (f"{trace.l2:.4g}" if trace.success else "—")


def fill_small_study(at):
    """The Study form's small plan on the 3 golden images (n 5, 10 queries, CERTIFY 8 + 32)."""
    at.text_input(key="study_ns_w").set_value("5").run()
    at.number_input(key="study_budget_w").set_value(10).run()
    at.number_input(key="study_n0_w").set_value(8).run()
    at.number_input(key="study_cn_w").set_value(32).run()
    at.radio(key="study_src_w").set_value("Folder on the server").run()
    at.text_input(key="study_folder_w").set_value(str(ROOT / "tests/golden/images")).run()


def study_page(at):
    fill_small_study(at)
    assert "3 image(s)" in texts(at)
    done = re.compile(r"(\d+) of (\d+) tasks done")
    start(at, "study", lambda a: any((m := done.search(c.value)) and m[1] == m[2] != "0"
                                     for c in a.caption))
    # 3 images × (2 attacks × (f + g_σ,5) + 1 certification) = 15 tasks
    assert any("15 of 15 tasks done" in c.value for c in at.caption)


def jobs_page(at):
    at.switch_page("pages/1_Image_and_model.py").run()
    start(at, "image_votes", lambda a: any(m.label == "p̂_A" for m in a.metric))
    at.switch_page("pages/9_Jobs.py").run()
    assert any("votes on coffee" in m.value for m in at.markdown), texts(at)


CHECKS = {"1_Image_and_model": image_page, "2_Boundary_slice": slice_page,
          "3_Profile_and_SORM": profile_page, "4_Dichotomy": dichotomy_page,
          "5_Live_attack": attack_page, "6_Study": study_page, "9_Jobs": jobs_page}


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs(app_env, page, tmp_path, monkeypatch):
    """Each page runs past its Start button and shows the number its view computes."""
    monkeypatch.setenv("RSVIZ_RESULTS_DIR", str(tmp_path / "results"))
    at = make_app(page)
    assert not at.exception, at.exception
    CHECKS[page.split("/")[-1][:-3]](at)


def test_every_page_has_a_check():
    assert sorted(CHECKS) == sorted(p.split("/")[-1][:-3] for p in PAGES)


def test_missing_weights_shown_as_message(app_env):
    at = make_app()
    at.sidebar.selectbox(key="sb_model").select("resnet50.imagenet1k_v1").run()
    assert not at.exception
    errors = " ".join(e.value for e in at.sidebar.error)
    assert "resnet50-0676ba61.pth" in errors and "copy it into" in errors
