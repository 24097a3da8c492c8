"""The app on the models of #28: a 32×32 CIFAR-10-shaped model through Image & model, a slice
and an attack; and the sidebar loading models by reference (checkpoint:PATH of a Cohen et al.
CIFAR-10 ResNet replica, timm:NAME from a Hugging Face cache laid out as huggingface_hub writes
it), or saying in one line which file is missing offline."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import make_app
from tests.test_app import start

pytestmark = pytest.mark.usefixtures("one_thread")


def _state(at):
    from ui.common import STATE_KEY

    return at.session_state[STATE_KEY]


def test_cifar10_model_runs_image_slice_and_attack_pages(app_env, monkeypatch):
    monkeypatch.setenv("RSVIZ_MODEL", "cifar10_resnet8_random")
    at = make_app("pages/1_Image_and_model.py")
    model = _state(at).model
    assert model.info.name == "cifar10_resnet8_random" and _state(at).x.shape == (3, 32, 32)
    start(at, "image_votes", lambda a: any(m.label == "p̂_A" for m in a.metric))
    charts = " ".join(c.proto.spec for c in at.get("plotly_chart"))  # top-5, votes: CIFAR names
    assert sum(name in charts for name in model.info.class_names) >= 3

    at.switch_page("pages/2_Boundary_slice.py").run()
    at.number_input(key="sl_grid_w").set_value(5).run()
    at.multiselect(key="sl_ns_w").set_value([5]).run()
    at.number_input(key="sl_N_w").set_value(10).run()
    start(at, "slice", lambda a: any("forward passes" in s.value for s in a.success))

    at.switch_page("pages/5_Live_attack.py").run()
    at.number_input(key="attack_budget_w").set_value(30).run()
    at.radio(key="attack_target_w").set_value("f").run()
    start(at, "live_attack", lambda a: any(m.label == "Queries" for m in a.metric))


def _reference(at, text: str):
    at.sidebar.selectbox(key="sb_model").select("checkpoint").run()
    at.sidebar.text_input(key="sb_ckpt_path").input(text)
    return at.run()


def test_sidebar_loads_models_by_reference(app_env, tmp_path, monkeypatch):
    from rsviz.models import CifarResNet
    from tests.test_model_refs import hf_cache_put, random_timm, safetensors_bytes

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(0)
    path = tmp_path / "checkpoint.pth.tar"
    net = torch.nn.Sequential(torch.nn.Identity(), CifarResNet(8))  # keys 1.*, as Cohen's
    torch.save({"epoch": 1, "arch": "cifar_resnet8", "state_dict": net.state_dict()}, path)
    at = make_app()
    _reference(at, f"checkpoint:{path}")
    assert not at.exception and not at.sidebar.error, [e.value for e in at.sidebar.error]
    model = _state(at).model
    assert model.info.name == "checkpoint:cifar_resnet8" and _state(at).x.shape == (3, 32, 32)
    assert any("CIFAR-10 normalisation added" in c.value for c in at.sidebar.caption)

    _reference(at, "timm:test_resnet")  # not in the cache: one line, the model stays
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and "model.safetensors" in errors[0] and "RSVIZ_OFFLINE=1" in errors[0]
    assert errors[0].endswith("Still using checkpoint:cifar_resnet8.")
    assert _state(at).model.info.name == "checkpoint:cifar_resnet8"

    hf_cache_put(tmp_path / "hf", "timm/test_resnet.r160_in1k",
                 {"model.safetensors": safetensors_bytes(random_timm("test_resnet").state_dict())})
    _reference(at, "timm:test_resnet.r160_in1k")
    assert not at.exception and not at.sidebar.error, [e.value for e in at.sidebar.error]
    assert _state(at).model.info.name == "timm:test_resnet.r160_in1k"
    assert _state(at).x.shape == (3, 160, 160)
