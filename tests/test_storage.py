"""JSON conversion and atomic writes (rsviz.storage)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from rsviz.storage import to_jsonable, write_json_atomic, write_text_atomic


@dataclass(frozen=True)
class _Config:
    sigma: float
    ns: tuple[int, ...]


def test_to_jsonable_gives_plain_json_types():
    value = {"a": np.float32(0.5), 3: np.arange(3), "t": torch.tensor([[1.5, 2.0]]),
             "nan": float("nan"), "inf": np.inf, "-inf": -float("inf"), "ok": np.bool_(True),
             "cfg": _Config(0.25, (10, 50)), "set": {7}, "path": Path("/tmp/x")}
    out = to_jsonable(value)
    assert out == {"a": 0.5, "3": [0, 1, 2], "t": [[1.5, 2.0]], "nan": None, "inf": "inf",
                   "-inf": "-inf", "ok": True, "cfg": {"sigma": 0.25, "ns": [10, 50]},
                   "set": [7], "path": "/tmp/x"}
    assert type(out["a"]) is float and type(out["3"][0]) is int and type(out["ok"]) is bool
    json.dumps(out, allow_nan=False)  # strict JSON


def test_atomic_writes_replace_the_file_and_leave_no_temporary(tmp_path):
    path = tmp_path / "sub" / "result.json"
    write_json_atomic(path, {"x": np.array([1.0, np.nan])})
    assert json.loads(path.read_text()) == {"x": [1.0, None]}
    write_text_atomic(path, "second")
    assert path.read_text() == "second"
    assert os.listdir(path.parent) == ["result.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "keep.txt"
    path.write_text("old")
    with pytest.raises(TypeError):
        write_text_atomic(path, None)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["keep.txt"]
