"""Fault injection (issue #29): what a hostile but honest user can do gives one rsviz line,
never a traceback, a hang or another session's lost work."""

from __future__ import annotations

import importlib.util
import io
import os
import sys
import threading
import time

import pytest

from rsviz.errors import ImageError, RsvizError
from rsviz.images import decode_image, synthetic_image
from tests.conftest import ROOT, make_app
from tests.test_study import image_folder  # noqa: F401 (a fixture)


def malformed_tiff() -> bytes:
    """An uncompressed RGB TIFF whose StripOffsets tag is typed RATIONAL (byte 72 set to 5):
    Pillow raised TypeError on it."""
    buffer = io.BytesIO()
    synthetic_image(32).save(buffer, format="TIFF", compression="raw")
    data = bytearray(buffer.getvalue())
    assert int.from_bytes(data[70:72], "little") == 273  # the StripOffsets tag, typed at 72
    data[72] = 5
    return bytes(data)


def load_bench(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------- decoding


def test_malformed_tiff_is_one_rsviz_error():
    with pytest.raises(ImageError, match=r"^bad\.tif: the image is corrupt") as info:
        decode_image(malformed_tiff(), "bad.tif")
    assert "\n" not in str(info.value)


def test_decode_fuzz_lets_only_rsviz_errors_escape():
    fuzz = load_bench("decode_fuzz")
    counts, escapes = fuzz.run(3000, seed=0)
    assert escapes == []
    for fmt in fuzz.FORMATS:  # the mutants reach every decoder: some decode, some are refused
        assert counts[fmt, "rsviz error"] > 0, fmt
        assert counts[fmt, "decoded"] > 0, fmt


def test_malformed_tiff_upload_keeps_the_app_whole(app_env):
    at = make_app()
    at.sidebar.radio(key="sb_source").set_value("Upload").run()
    at.sidebar.file_uploader(key="sb_upload").set_value(
        ("bad.tif", malformed_tiff(), "image/tiff")).run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and errors[0].startswith("bad.tif: the image is corrupt"), errors
    assert at.sidebar.selectbox(key="sb_model")  # the sidebar went on past the uploader


# ----------------------------------------------------------------------- checkpoint paths


def _special_paths(tmp_path):
    fifo = tmp_path / "pipe.pth"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.pth"
    folder.mkdir()
    return [(str(fifo), "named pipe \\(FIFO\\)"), ("/dev/zero", "device"), (str(folder), "folder")]


def test_special_files_are_refused_before_reading(tmp_path):
    from rsviz.models import load_checkpoint

    for path, kind in _special_paths(tmp_path):
        with pytest.raises(RsvizError, match=f"is a {kind}, not a checkpoint file") as info:
            load_checkpoint(None, path)
        assert "\n" not in str(info.value)


def test_checkpoint_over_the_limit_is_refused(tmp_path):
    from rsviz.models.checkpoints import checkpoint_limit, load_checkpoint

    path = tmp_path / "big.pth"
    path.write_bytes(b"\0" * (2**20 + 1))
    with pytest.raises(RsvizError, match="over the 1 MB limit on checkpoints"):
        load_checkpoint(None, str(path), max_bytes=2**20)
    assert checkpoint_limit() == 1024 * 2**20  # server.maxUploadSize of .streamlit/config.toml


def test_fifo_checkpoint_path_in_the_sidebar_is_one_line(app_env, tmp_path):
    fifo = tmp_path / "pipe.pth"
    os.mkfifo(fifo)
    at = make_app(timeout=30)  # a blocked read would time the run out
    at.sidebar.selectbox(key="sb_model").select("checkpoint").run()
    at.sidebar.text_input(key="sb_ckpt_path").input(str(fifo)).run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and "is a named pipe (FIFO)" in errors[0], errors
    assert errors[0].endswith("Still using tiny_cnn.")


# ------------------------------------------------------------------------ self-healing caches


def test_garbage_cache_db_is_moved_aside_and_rebuilt(isolated_cache):
    from rsviz.cache import default_cache
    from rsviz.jobs import JobManager

    isolated_cache.mkdir(parents=True)
    garbage = os.urandom(8192)
    (isolated_cache / "cache.db").write_bytes(garbage)
    manager = JobManager()
    snap = manager.wait(manager.submit("x", lambda job: {"v": 1}, cache_key="key-x"))
    manager.shutdown()
    assert snap.status == "done" and snap.warning is None
    assert default_cache().get("key-x") == {"v": 1}  # stored in the rebuilt database
    assert (isolated_cache / "cache.db.corrupt").read_bytes() == garbage
    assert "rebuilt the cache" in default_cache().notice


def test_the_app_says_it_rebuilt_the_cache(fresh_streamlit, isolated_cache, tmp_path,
                                          monkeypatch):
    from streamlit.testing.v1 import AppTest

    isolated_cache.mkdir(parents=True)
    (isolated_cache / "cache.db").write_bytes(os.urandom(8192))
    monkeypatch.setenv("RSVIZ_TEST_GATE", str(tmp_path))  # exists: the job ends at once
    at = AppTest.from_function(_shared_page, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    assert any("rebuilt the cache" in t.value for t in at.toast)
    assert not at.error


def test_corrupt_openvino_ir_is_rebuilt(isolated_cache, caplog):
    import openvino  # noqa: F401 - pinned in requirements.txt: missing, this fails
    import torch

    from rsviz.engines.select import choose_engine, engines_dir
    from rsviz.models import load_model

    model = load_model("tiny_cnn")
    first, _ = choose_engine(model, force="openvino", count=64)
    if first is None:
        pytest.skip("OpenVINO cannot convert the model here")
    ir = next((engines_dir() / "openvino").glob("*.xml"))
    ir.write_bytes(os.urandom(ir.stat().st_size))
    engine, choice = choose_engine(model, force="openvino", count=64)
    assert choice.name == "openvino" and engine is not None
    x = torch.rand((4, *model.info.input_shape), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(engine.logits(x), model(x), atol=1e-4)
    assert ir.with_name(ir.name + ".corrupt").is_file() and ir.is_file()
    assert "rebuilt the cache" in caplog.text


# ------------------------------------------------------------------- jobs shared by sessions


def _held(gate: threading.Event, steps: int = 400):
    """A job that runs until `gate` is set (or cancelled), then returns."""
    def fn(job):
        for i in range(steps):
            job.check_cancel()
            if gate.wait(0.01):
                break
            job.report(i + 1, steps)
        return {"v": 1}

    return fn


def test_one_subscriber_cancelling_leaves_the_job_to_the_other(tmp_path):
    from rsviz.cache import DiskCache
    from rsviz.jobs import JobManager

    gone = set()
    manager = JobManager(DiskCache(tmp_path), alive=lambda s: s not in gone)
    gate = threading.Event()
    job_id = manager.submit("slice", _held(gate), cache_key="k", subscriber="A")
    assert manager.submit("slice", _held(gate), cache_key="k", subscriber="B") == job_id
    assert manager.cancel(job_id, "A") is False  # A detached, B still waits
    assert manager.get(job_id).snapshot().status in ("queued", "running")
    assert manager.waiting(job_id) == 1
    gate.set()
    snap = manager.wait(job_id)
    assert snap.status == "done" and snap.result == {"v": 1}

    gate.clear()
    other = manager.submit("slice", _held(gate), cache_key="k2", subscriber="A")
    manager.subscribe(other, "B")
    gone.add("B")  # B's tab was closed: nobody is left once A cancels
    assert manager.cancel(other, "A") is True
    assert manager.wait(other).status == "cancelled"
    manager.shutdown()


def test_finished_jobs_show_their_duration(tmp_path):
    from rsviz.cache import DiskCache
    from rsviz.jobs import JobManager

    manager = JobManager(DiskCache(tmp_path))
    gate = threading.Event()
    gate.set()
    snap = manager.wait(manager.submit("x", _held(gate)))
    time.sleep(0.3)
    assert manager.get(snap.id).snapshot().elapsed_s == snap.elapsed_s  # frozen at the end
    manager.shutdown()


def _shared_page():
    import os
    import time as _time

    import streamlit as st

    from ui.jobs import job_panel

    def fn(job):
        for i in range(400):
            job.check_cancel()
            if os.path.exists(os.environ["RSVIZ_TEST_GATE"]):
                break
            _time.sleep(0.02)
            job.report(i + 1, 400)
        return {"v": 42}

    job_panel("demo", "Demo job", fn, "shared-key",
              lambda res, fresh: st.write(f"RESULT {res['v']}"))


def _texts(at):
    return [m.value for m in at.markdown]


def test_two_sessions_one_cancel_the_other_gets_the_result(fresh_streamlit, tmp_path,
                                                           monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import run_until
    from ui.jobs import get_manager

    gate = tmp_path / "gate"
    monkeypatch.setenv("RSVIZ_TEST_GATE", str(gate))
    a = AppTest.from_function(_shared_page, default_timeout=30)
    a.run()
    a.button(key="start_demo").click().run()
    b = AppTest.from_function(_shared_page, default_timeout=30)
    b.run()  # same settings: B joins A's job
    assert "Cancel" in [x.label for x in b.button]
    [cancel] = [x for x in a.button if x.label == "Cancel"]
    cancel.click().run()
    assert any("goes on for the other sessions" in i.value for i in a.info)
    [job] = get_manager().list()
    assert job.status == "running"  # B still waits for it
    gate.touch()
    run_until(b, lambda t: "RESULT 42" in _texts(t))
    assert "RESULT 42" in _texts(b) and not b.exception


SLICE = "pages/2_Boundary_slice.py"


def _slice_app(**params):
    """The Boundary slice page, its settings given as URL query parameters (as after a reload)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update(params)
    at.run()
    at.switch_page(SLICE)
    return at.run()


def _slice_jobs():
    from ui.jobs import get_manager

    return [s for s in get_manager().list() if s.name == "Boundary slice"]


def test_reload_reattaches_to_the_running_job(app_env):
    from ui.jobs import get_manager

    a = make_app(SLICE)
    a.number_input(key="sl_grid_w").set_value(5)
    a.number_input(key="sl_seed_w").set_value(612)
    a.radio(key="sl_mode_w").set_value("dense")
    a.number_input(key="sl_N_w").set_value(100_000).run()  # minutes: still running below
    a.button(key="start_slice").click().run()
    if any(x.key == "confirm_slice" for x in a.button):  # over 10 min on a slow machine
        a.button(key="confirm_slice").click().run()
    [job] = _slice_jobs()
    params = dict(a.query_params)
    assert params["sl_grid"] == "5" and params["sl_seed"] == "612"
    try:
        b = _slice_app(**params)  # the reloaded tab: a new session with the same URL
        assert not b.exception, b.exception
        assert b.number_input(key="sl_grid_w").value == 5
        assert b.number_input(key="sl_seed_w").value == 612
        assert "Cancel" in [x.label for x in b.button]  # showing the running job
        assert [s.id for s in _slice_jobs()] == [job.id]  # joined, not started again
    finally:
        get_manager().cancel(job.id)


def _votes_jobs():
    from ui.jobs import get_manager

    return [s for s in get_manager().list()
            if s.name.startswith("votes on astronaut") and "N=1000000" in s.name]


@pytest.fixture
def duplication_warnings(monkeypatch):
    """Streamlit's 'created with a default value but also had its value set via the Session
    State API' warnings logged while the test runs (Streamlit logs it once per process)."""
    import logging

    from streamlit.elements.lib import policies

    monkeypatch.setattr(policies, "_shown_default_value_warning", False)
    seen = []

    class Handler(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler = Handler()
    logger = logging.getLogger(policies.__name__)
    logger.addHandler(handler)
    yield seen
    logger.removeHandler(handler)


def _reloaded(params: dict, page: str | None = None):
    """A new session opened on the same URL (a reload), optionally on `page`."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update(params)
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    return at


def test_reload_keeps_the_sidebar_and_reattaches_to_its_job(app_env, duplication_warnings):
    """σ and the image are part of the votes job's key: after a reload the sidebar must come
    back with them (from the URL) for the page to find its running job again."""
    from ui.jobs import get_manager

    a = make_app()
    a.sidebar.number_input(key="sb_sigma").set_value(0.5).run()
    a.sidebar.number_input(key="sb_n").set_value(11).run()
    a.sidebar.selectbox(key="sb_sample").select("astronaut").run()
    a.number_input(key="img_N_w").set_value(1_000_000).run()  # a minute at least here
    a.button(key="start_image_votes").click().run()
    if any(x.key == "confirm_image_votes" for x in a.button):
        a.button(key="confirm_image_votes").click().run()
    [job] = _votes_jobs()
    params = dict(a.query_params)
    assert params["sigma"] == "0.5" and params["n"] == "11" and params["image"] == "astronaut"
    try:
        b = _reloaded(params)
        assert not b.exception, b.exception
        assert b.sidebar.number_input(key="sb_sigma").value == 0.5
        assert b.sidebar.number_input(key="sb_n").value == 11
        assert b.sidebar.selectbox(key="sb_sample").value == "astronaut"
        assert "Cancel" in [x.label for x in b.button]  # showing the running job
        assert [s.id for s in _votes_jobs()] == [job.id]  # joined, not started again
        assert dict(b.query_params) == params  # and the URL stays as it was
    finally:
        get_manager().cancel(job.id)
    assert duplication_warnings == []


def test_reload_keeps_the_model_and_device(app_env, duplication_warnings):
    a = make_app()
    a.sidebar.selectbox(key="sb_model").select("linear_toy").run()
    a.sidebar.selectbox(key="sb_device").select("cpu").run()
    params = dict(a.query_params)
    assert params["model"] == "linear_toy" and params["device"] == "cpu"
    b = _reloaded(params, SLICE)
    assert not b.exception, b.exception
    assert b.sidebar.selectbox(key="sb_model").value == "linear_toy"
    assert b.sidebar.selectbox(key="sb_device").value == "cpu"
    b.sidebar.selectbox(key="sb_model").select("tiny_cnn").run()  # back to the default
    assert "model" not in b.query_params and not b.exception
    assert duplication_warnings == []


def test_reload_restores_a_checkpoint_path(app_env, tmp_path, duplication_warnings):
    import torch

    from tests.test_ui_model import _resnet18_state
    from ui.common import STATE_KEY

    path = tmp_path / "good.pth"
    torch.save(_resnet18_state(), path)
    a = make_app()
    a.sidebar.selectbox(key="sb_model").select("checkpoint").run()
    a.sidebar.text_input(key="sb_ckpt_path").input(str(path)).run()
    params = dict(a.query_params)
    assert params["model"] == "checkpoint" and params["ckpt"] == str(path)
    b = _reloaded(params)
    assert not b.exception, b.exception
    assert b.sidebar.text_input(key="sb_ckpt_path").value == str(path)
    assert b.sidebar.selectbox(key="sb_model").value == "checkpoint"
    assert b.session_state[STATE_KEY].model.info.name == "checkpoint:resnet18"
    b.sidebar.selectbox(key="sb_model").select("tiny_cnn").run()  # the path leaves the URL
    assert "ckpt" not in b.query_params and "model" not in b.query_params
    assert duplication_warnings == []


def test_bad_sidebar_values_in_the_url_fall_back_to_the_defaults(app_env):
    b = _reloaded({"sigma": "nan", "n": "12.5x", "image": "../../etc/passwd",
                   "model": "nope", "device": "cuda:99", "source": "Camera"})
    assert not b.exception, b.exception
    assert b.sidebar.number_input(key="sb_n").value == 10
    assert b.sidebar.selectbox(key="sb_model").value == "tiny_cnn"
    assert b.sidebar.selectbox(key="sb_device").value == "auto"
    assert b.sidebar.radio(key="sb_source").value == "Sample"
    sigma = b.sidebar.number_input(key="sb_sigma").value
    assert sigma == sigma  # not NaN
    c = _reloaded({"sigma": "5", "n": "0"})  # out of the widgets' range: clamped
    assert c.sidebar.number_input(key="sb_sigma").value == 2.0
    assert c.sidebar.number_input(key="sb_n").value == 1


def test_large_start_asks_for_a_second_click(app_env):
    from ui.jobs import get_manager

    at = _slice_app(sl_grid="51", sl_N="100000", sl_mode="dense")  # 2.6e8 passes: hours
    at.button(key="start_slice").click().run()
    assert not _slice_jobs()  # nothing started yet
    [warning] = at.warning
    assert "large run" in warning.value and "forward passes" in warning.value
    at.button(key="confirm_slice").click().run()
    [job] = _slice_jobs()
    get_manager().cancel(job.id)


def test_votes_progress_counts_to_the_real_total(tiny_model):
    from rsviz.images import preprocess
    from rsviz.progress import OffsetProgress
    from rsviz.views.base import inputs
    from rsviz.views.image import VotesRequest

    class Recorder:
        def __init__(self):
            self.reports = []

        def report(self, done, total=None, message="", partial=None):
            self.reports.append((done, total, message))

        def check_cancel(self):
            pass

    x = preprocess(synthetic_image(32), 32)
    request = VotesRequest(**inputs(tiny_model, x), sigma=0.25, n_samples=300, n0=100)
    recorder = Recorder()
    request.run(tiny_model, x, OffsetProgress(recorder, request.n0))  # as the page runs it
    done, total, message = recorder.reports[-1]
    assert done == total == request.cost().passes == 400
    assert message == "400 / 400 forward passes"


def test_slice_caption_never_says_fewer_is_more():
    from types import SimpleNamespace

    from ui.slices import passes_note

    dense = SimpleNamespace(mode="dense")
    adaptive = SimpleNamespace(mode="adaptive")
    spent = SimpleNamespace(dense_passes=1000, forward_passes=1250)
    assert passes_note(spent, dense) == ("dense: the grid's 1,000 plus 250 to set up the plane "
                                         "and extent")
    assert passes_note(spent, adaptive) == "adaptive; the dense grid takes 1,000, no saving here"
    saved = SimpleNamespace(dense_passes=1000, forward_passes=250)
    assert passes_note(saved, adaptive) == "adaptive; the dense grid takes 1,000, 4.0× as many"


def test_no_use_container_width_left():
    sources = [*ROOT.glob("ui/*.py"), *ROOT.glob("pages/*.py"), ROOT / "app.py"]
    assert not [p.name for p in sources if "use_container_width" in p.read_text()]


# --------------------------------------------------------------------- study with a bad image


def test_study_with_bad_images_lists_them_and_runs_the_rest(app_env, tiny_model, image_folder,
                                                            tmp_path):
    from rsviz.study import open_results, run_study
    from tests.test_study import StandIn, tiny_plan

    folder = image_folder  # two good images, labelled
    (folder / "bad.tif").write_bytes(malformed_tiff())
    jpeg = io.BytesIO()
    synthetic_image(32).save(jpeg, format="JPEG")
    (folder / "cut.jpg").write_bytes(jpeg.getvalue()[:300])  # truncated
    with open(folder / "labels.csv", "a") as labels:
        labels.write("bad.tif,1\ncut.jpg,2\n")
    out = tmp_path / "out"
    study = run_study(tiny_plan(folder), out, model=tiny_model, attack_fn=StandIn())
    assert len(study.results) == study.expected == 10  # 2 good images × 5 tasks
    reasons = {f["image"]: f["error"] for f in study.failed}
    assert set(reasons) == {"bad.tif", "cut.jpg"}
    assert "bad.tif: the image is corrupt" in reasons["bad.tif"]
    assert [r["idx"] for r in study.images] == [2, 3]  # their indices in the whole set
    assert open_results(out).failed == study.failed  # failed.json

    at = make_app("pages/6_Study.py")
    at.radio(key="study_mode_w").set_value("Open a results folder").run()
    at.text_area(key="study_open_w").set_value(str(out)).run()
    at.button(key="study_open_btn").click().run()
    assert not at.exception, at.exception
    [warning] = at.warning
    assert warning.value.startswith("2 failed") and "read image bad.tif" in warning.value


def test_empty_study_folder_is_not_blamed_on_labels(tmp_path):
    from rsviz.imagesets import ImageSetError, from_folder

    (tmp_path / "labels.csv").write_text("filename,class_index\na.png,1\n")
    with pytest.raises(ImageSetError, match="no image files in this folder") as info:
        from_folder(tmp_path)
    assert "label" not in str(info.value).split(": ", 1)[1]
