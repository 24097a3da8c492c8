"""The package: pyproject.toml declares lower-bounded ranges (and extras) that admit every exact
pin of requirements.txt, requires-python is true, and a wheel built from the checkout installs
into a fresh virtual environment where `rsviz --help` works."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT


def project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt pins exactly: {line!r}"
            out[canonicalize_name(name)] = version.strip()
    return out


def declared() -> dict[str, tuple[str, Requirement]]:
    """Every requirement of the package: name -> (where: 'runtime' or the extra, requirement)."""
    meta = project()
    found = {canonicalize_name(Requirement(r).name): ("runtime", Requirement(r))
             for r in meta["dependencies"]}
    for extra, reqs in meta["optional-dependencies"].items():
        for r in reqs:
            req = Requirement(r)
            if canonicalize_name(req.name) != "rsviz":  # rsviz[app,...]: the other extras
                found.setdefault(canonicalize_name(req.name), (extra, req))
    return found


def test_every_pin_is_admitted_by_a_lower_bounded_range():
    meta, ranges = project(), declared()
    assert set(meta["optional-dependencies"]) >= {"app", "ray", "openvino", "test"}
    assert meta["requires-python"] == ">=3.11" and sys.version_info >= (3, 11)
    for name, version in pins().items():
        assert name in ranges, f"{name} is pinned in requirements.txt but not declared"
        where, req = ranges[name]
        assert req.specifier.contains(version, prereleases=True), (name, version, str(req))
        assert any(s.operator == ">=" for s in req.specifier), f"{name}: no lower bound"
        assert not any(s.operator == "==" for s in req.specifier), f"{name}: pinned exactly"
    for name, (where, _) in ranges.items():
        assert name in pins(), f"{name} ({where}) has no exact pin in requirements.txt"
    runtime = {n for n, (where, _) in ranges.items() if where == "runtime"}
    assert {"torch", "numpy", "timm"} <= runtime
    assert not runtime & {"pytest", "playwright", "ray", "openvino", "streamlit"}


def test_wheel_installs_into_a_fresh_venv_and_rsviz_help_works(tmp_path):
    """Build the wheel from a copy of the checkout (no network: --no-build-isolation,
    --no-deps; the copy keeps setuptools' build/ out of the checkout), install it into a new
    venv, run its `rsviz --help` with the dependencies of this venv on PYTHONPATH (the
    installed rsviz is the wheel's, not the checkout's)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "rsviz", source / "rsviz",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=300)
    if build.returncode != 0 and "No module named" in build.stderr:
        pytest.skip(f"cannot build here: {build.stderr.strip().splitlines()[-1]}")
    assert build.returncode == 0, build.stderr
    wheel = next((tmp_path / "dist").glob("rsviz-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
        entry = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "rsviz/weights/efficientnet_lite0_noise.fp16.pt" in names
    assert "Requires-Python: >=3.11" in metadata
    assert "Requires-Dist: torch>=2.5" in metadata
    assert 'Requires-Dist: streamlit>=1.50; extra == "app"' in metadata
    assert "rsviz = rsviz.cli:main" in entry
    target = tmp_path / "venv"
    venv.create(target, with_pip=False)
    python = target / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    help_run = subprocess.run([str(target / "bin" / "rsviz"), "--help"], capture_output=True,
                              text=True, env=env, timeout=120, cwd=tmp_path)
    assert help_run.returncode == 0, help_run.stderr
    assert "analyze" in help_run.stdout and "certify" in help_run.stdout
    where = subprocess.run([str(python), "-c", "import rsviz; print(rsviz.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert where.stdout.strip().startswith(str(target)), where.stdout
