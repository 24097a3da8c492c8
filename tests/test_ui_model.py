"""The sidebar's model section: a bad, truncated, wrong-architecture or pickled-object checkpoint
(uploaded or by path), or a bad custom normalisation, gives one line; the app keeps its current
model and caches nothing new. Upload size and custom normalisation are checked with clear
messages."""

from __future__ import annotations

import io
from pathlib import Path

import diskcache
import pytest
import torch
import torchvision
from torch import nn

from rsviz.errors import CheckpointMismatch
from rsviz.models import check_upload_size, load_checkpoint, parse_mean_std
from tests.conftest import make_app
from tests.test_app import start

pytestmark = pytest.mark.usefixtures("one_thread")


def _saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _resnet18_state(num_classes: int = 10) -> dict:
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=num_classes).state_dict()


def _state(at):
    from ui.common import STATE_KEY

    return at.session_state[STATE_KEY]


def _cache_keys(folder: Path) -> set[str]:
    with diskcache.Cache(str(folder)) as cache:
        return set(cache.iterkeys())


def _p_hat(at) -> str:
    return next(m.value for m in at.metric if m.label == "p̂_A")


def _bad_cases(tmp_path: Path) -> list[tuple[str, dict, str]]:
    """(name, sidebar settings, expected message) for each kind of bad checkpoint."""
    resnet18 = _saved(_resnet18_state())
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(resnet18[: len(resnet18) // 2])
    return [
        ("truncated upload", {"upload": resnet18[:4096]}, "truncated, corrupt or not a checkpoint"),
        ("pickled object", {"upload": _saved(nn.Linear(2, 2))},
         "stores a Python object of type torch.nn.modules.linear.Linear"),
        ("wrong architecture", {"upload": resnet18, "arch": "resnet50"},
         "does not match resnet50"),
        ("bad custom normalisation", {"upload": resnet18, "norm": "custom", "std": "0.2, 0, 0.2"},
         "every std must be positive"),
        ("truncated file by path", {"path": str(truncated)}, "truncated, corrupt"),
        ("missing path", {"path": str(tmp_path / "nope.pth")}, "Cannot read checkpoint"),
    ]


def _choose(at, upload: bytes | None = None, path: str = "", arch: str = "auto",
            norm: str = "auto", std: str | None = None):
    sb = at.sidebar  # first no file (so no valid intermediate choice loads), then the file
    sb.selectbox(key="sb_arch").select(arch)
    sb.selectbox(key="sb_norm").select(norm)
    sb.text_input(key="sb_ckpt_path").input("")
    sb.file_uploader(key="sb_ckpt").set_value(None)
    at.run()
    sb = at.sidebar  # the widgets of the new run (custom adds mean/std)
    if std is not None:
        sb.text_input(key="sb_norm_std").input(std)
    sb.text_input(key="sb_ckpt_path").input(path)
    sb.file_uploader(key="sb_ckpt").set_value(
        ("bad.pth", upload, "application/octet-stream") if upload is not None else None)
    return at.run()


def test_bad_checkpoint_keeps_the_current_model_and_caches_nothing(app_env, isolated_cache,
                                                                   tmp_path):
    at = make_app()
    start(at, "image_votes", lambda a: any(m.label == "p̂_A" for m in a.metric))
    before = _state(at).model
    shown = _p_hat(at)
    keys = _cache_keys(isolated_cache)
    assert before.info.name == "tiny_cnn" and keys

    at.sidebar.selectbox(key="sb_model").select("checkpoint").run()
    assert not at.exception, at.exception
    assert _state(at).model is before  # nothing given yet: still the tiny CNN, with a note
    assert any("Give a checkpoint path" in i.value and "Still using tiny_cnn" in i.value
               for i in at.sidebar.info)

    for name, settings, message in _bad_cases(tmp_path):
        _choose(at, **settings)
        assert not at.exception, (name, at.exception)
        errors = [e.value for e in at.sidebar.error]
        assert len(errors) == 1 and message in errors[0], (name, errors)
        assert "\n" not in errors[0] and errors[0].endswith("Still using tiny_cnn."), name
        state = _state(at)
        assert state.model is before and state.model_id == before.info.model_id, name
        assert state.ready and _p_hat(at) == shown, name  # the page still shows its result
        assert _cache_keys(isolated_cache) == keys, name  # nothing cached under the bad file


def test_a_good_checkpoint_after_a_bad_one_becomes_the_model(app_env, tmp_path):
    at = make_app()
    at.sidebar.selectbox(key="sb_model").select("checkpoint").run()
    _choose(at, upload=b"garbage")
    assert _state(at).model.info.name == "tiny_cnn"
    path = tmp_path / "good.pth"
    path.write_bytes(_saved(_resnet18_state()))
    _choose(at, path=str(path), norm="custom", std="0.5, 0.5, 0.5")
    assert not at.exception, at.exception
    assert not at.sidebar.error, [e.value for e in at.sidebar.error]
    model = _state(at).model
    assert model.info.name == "checkpoint:resnet18"
    assert model.info.std == (0.5, 0.5, 0.5) and "custom normalisation" in model.info.source
    assert any(model.info.source in c.value for c in at.sidebar.caption)


def test_upload_size_check_says_what_to_do():
    check_upload_size(2**30, 2**30)  # at the limit: accepted
    with pytest.raises(CheckpointMismatch) as info:
        check_upload_size(3 * 2**30 + 1, 2**30)
    text = str(info.value)
    assert "3.0 GB" in text and "1.0 GB upload limit" in text and "server.maxUploadSize" in text
    with pytest.raises(CheckpointMismatch, match="201 MB, over the 200 MB"):
        check_upload_size(201 * 2**20, 200 * 2**20)


def test_upload_limit_follows_the_app_config(app_env):
    from ui.model import upload_limit

    config = (Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text()
    assert "maxUploadSize = 1024" in config
    at = make_app()
    at.sidebar.selectbox(key="sb_model").select("checkpoint").run()
    assert "up to 1 GB" in at.sidebar.file_uploader(key="sb_ckpt").label
    assert upload_limit() == int(__import__("streamlit").get_option("server.maxUploadSize")) * 2**20


@pytest.mark.parametrize("mean, std, message", [
    ("0.5, 0.5", "1, 1, 1", "the mean needs 3 numbers"),
    ("a, b, c", "1, 1, 1", "the mean needs 3 numbers"),
    ("0.5, nan, 0.5", "1, 1, 1", "the mean needs 3 numbers"),
    ("0.5, 0.5, 0.5", "1, inf, 1", "the std needs 3 numbers"),
    ("0.5, 0.5, 0.5", "1, -1, 1", "every std must be positive"),
])
def test_custom_normalisation_is_validated(mean, std, message):
    with pytest.raises(CheckpointMismatch, match=message) as info:
        parse_mean_std(mean, std)
    assert "\n" not in str(info.value)


def test_custom_normalisation_is_applied():
    mean, std = parse_mean_std("0.4914 0.4822 0.4465", "0.2023;0.1994;0.2010")
    assert mean == (0.4914, 0.4822, 0.4465) and std == (0.2023, 0.1994, 0.2010)
    model = load_checkpoint(None, _saved(_resnet18_state()), (mean, std))
    net = torchvision.models.resnet18(weights=None, num_classes=10)
    net.load_state_dict(_resnet18_state())
    net.eval()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    expected = net((x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None])
    with torch.no_grad():
        assert torch.allclose(model(x), expected, atol=1e-5)
    with pytest.raises(CheckpointMismatch, match="3 positive finite stds"):
        load_checkpoint(None, _saved(_resnet18_state()), ((0.5,) * 3, (1.0, float("nan"), 1.0)))
