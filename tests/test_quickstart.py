"""examples/quickstart.ipynb runs: its code cells, in order, as one script (what a notebook
kernel does), in a temporary folder; the objects it builds are checked afterwards. Also: the
public names of rsviz/__init__.py resolve, and `import rsviz` imports no torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def notebook_code(path=NOTEBOOK) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert code, "the notebook has no code"
    assert all(not line.lstrip().startswith(("%", "!")) for cell in code
               for line in cell.splitlines()), "magics do not run as a script"
    return "\n\n".join(code)


@pytest.mark.usefixtures("one_thread")
def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__quickstart__"}
    exec(compile(notebook_code(), str(NOTEBOOK), "exec"), namespace)  # noqa: S102
    assert namespace["model"].info.model_id.startswith("my-net-")
    assert namespace["result"].predict in (-1, *range(10))
    assert namespace["slice_result"].config.grid == 9
    assert namespace["trace"].points and namespace["trace"].attack == "hsja"
    html = (tmp_path / "quickstart_slice.html").read_text(encoding="utf-8")
    assert "plotly" in html.lower()
    bundle = json.loads((tmp_path / "quickstart_slice.json").read_text(encoding="utf-8"))
    assert bundle


def test_public_names_resolve_and_import_is_light():
    import rsviz

    for name in rsviz.__all__:
        assert getattr(rsviz, name) is not None, name
    assert set(rsviz.__all__) <= set(dir(rsviz))
    with pytest.raises(AttributeError):
        rsviz.not_a_name  # noqa: B018
    code = ("import sys, rsviz; print(rsviz.__version__); "
            "print(sorted(m for m in ('torch', 'streamlit', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.splitlines()
    assert out[1] == "[]", out
