"""Every CLI view's JSON on the tiny CNN and the analytic toys equals its recording (see cases.py).

Recorded from the code before the view layer existed; a refactor must leave these numbers alone.
"""

from __future__ import annotations

import json

import pytest

from tests.golden.cases import CASES, RTOL, differences, golden_path, normalize, run_case


def identities(value) -> set:
    """Every "forward" identity tag in a JSON output."""
    if isinstance(value, dict):
        found = {value["forward"]} if isinstance(value.get("forward"), str) else set()
        return found.union(*(identities(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(identities(v) for v in value))
    return set()


@pytest.mark.parametrize("name", list(CASES))
def test_golden(name, tmp_path):
    expected = json.loads(golden_path(name).read_text(encoding="utf-8"))
    raw = run_case(name, tmp_path)
    for tag in identities(raw):  # recorded in eager fp32: what ran must say so
        assert tag.startswith("cpu/eager/fp32/"), tag
    actual = normalize(raw)
    diff = differences(expected, actual)
    assert not diff, f"{name} differs from its recording (rtol {RTOL}):\n" + "\n".join(diff[:20])
