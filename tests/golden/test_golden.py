"""Every CLI view's JSON on the tiny CNN and the analytic toys equals its recording (see cases.py).

Recorded from the code before the view layer existed; a refactor must leave these numbers alone.
"""

from __future__ import annotations

import json

import pytest

from tests.golden.cases import CASES, RTOL, differences, golden_path, run_case


@pytest.mark.parametrize("name", list(CASES))
def test_golden(name, tmp_path):
    expected = json.loads(golden_path(name).read_text(encoding="utf-8"))
    actual = run_case(name, tmp_path)
    diff = differences(expected, actual)
    assert not diff, f"{name} differs from its recording (rtol {RTOL}):\n" + "\n".join(diff[:20])
