"""Fault injection (issue #29): what a hostile but honest user can do gives one rsviz line,
never a traceback, a hang or another session's lost work."""

from __future__ import annotations

import importlib.util
import io
import os
import sys

import pytest

from rsviz.errors import ImageError, RsvizError
from rsviz.images import decode_image, synthetic_image
from tests.conftest import ROOT, make_app


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


def test_corrupt_openvino_ir_is_rebuilt(isolated_cache, caplog):
    pytest.importorskip("openvino")
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
