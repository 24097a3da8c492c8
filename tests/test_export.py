"""Figure export: files open, have the requested size, carry their metadata; packs; no browser."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
import zipfile

import plotly.graph_objects as go
import pytest
from PIL import Image

from rsviz import __version__
from rsviz.errors import ConfigError
from rsviz.figures.export import (ExportError, data_to_csv, export_figure, figure_pack,
                                  find_bundles, load_bundle, read_metadata, save_bundle,
                                  static_export_available)
from rsviz.figures.theme import (PALETTE, apply_preset, apply_theme, class_color,
                                 resolve_preset)

PARAMS = {"model": "tiny_cnn", "image_hash": "deadbeef", "sigma": 0.25, "n": 10, "seed": 7}
DATA = {"distance": [0.0, 0.5, 1.0], "p_adv": [0.1, 0.45, 0.9]}
static = pytest.mark.skipif(not static_export_available()[0],
                            reason=f"static export unavailable: {static_export_available()[1]}")


@pytest.fixture
def fig() -> go.Figure:
    fig = go.Figure([go.Scatter(x=DATA["distance"], y=DATA["p_adv"], name="class 1",
                                line=dict(color=class_color(1))),
                     go.Bar(x=[0, 1], y=[2, 1], name="votes")])
    return apply_theme(fig, "P(adversarial) vs distance, σ = 0.25")


@pytest.fixture
def no_browser(monkeypatch):
    """Simulate a machine without Chromium."""
    monkeypatch.setenv("RSVIZ_CHROMIUM", "/nonexistent/chromium")


def test_theme_presets_and_colours(fig):
    assert resolve_preset("slide").name == "slide 16:9"
    assert resolve_preset("Paper Column").width == 336  # 3.5 in at 96 px/in
    with pytest.raises(ConfigError, match="Unknown figure preset"):
        resolve_preset("poster")
    assert [class_color(i) for i in range(5)] == [class_color(i) for i in range(5)]
    assert len({class_color(i) for i in range(len(PALETTE))}) == len(PALETTE)
    fig.add_hline(y=0.5, line_color="black")
    dark = apply_preset(fig, "square", "dark")
    assert dark.layout.shapes[0].line.color == "#FFFFFF"
    assert (dark.layout.width, dark.layout.height) == (800, 800)
    assert dark.layout.paper_bgcolor.upper() == "#1E1E1E"
    assert class_color(1) == "#000000" and dark.data[0].line.color == "#FFFFFF"
    assert fig.data[0].line.color == "#000000" and fig.layout.width is None  # untouched


@static
def test_png_has_requested_size_and_metadata(fig, tmp_path):
    path = tmp_path / "fig.png"
    blob = export_figure(fig, path, "square", "light", scale=1.5, metadata=PARAMS, data=DATA)
    assert path.read_bytes() == blob
    Image.open(path).verify()  # chunk CRCs of the inserted metadata
    image = Image.open(path)
    assert image.format == "PNG" and image.size == (1200, 1200)  # 800 px × scale 1.5
    assert image.text["Title"] == "fig" and image.text["Software"] == f"rsviz {__version__}"
    params = json.loads(image.text["rsviz:params"])  # a tEXt chunk
    assert {k: params[k] for k in PARAMS} == PARAMS and params["rsviz_version"] == __version__
    assert json.loads(image.text["rsviz:data"]) == DATA  # a zTXt chunk
    assert image.info["dpi"] == pytest.approx((144, 144), abs=0.05)  # pHYs stores whole pixels per metre
    # Pixels really differ from the background: something was drawn.
    assert len(set(image.convert("RGB").getdata())) > 10


@static
def test_png_dpi_sets_scale(fig):
    blob = export_figure(fig, "png", "paper column", "dark", dpi=288, metadata=PARAMS)
    image = Image.open(io.BytesIO(blob))
    assert image.size == (336 * 3, 252 * 3)  # 288 dpi = scale 3
    assert image.info["dpi"] == pytest.approx((288, 288), abs=0.05)  # pHYs stores whole pixels per metre
    r, g, b = image.convert("RGB").getpixel((2, 2))
    assert max(r, g, b) < 60  # dark background
    with pytest.raises(ExportError, match="either scale or dpi"):
        export_figure(fig, "png", scale=2, dpi=300)


@static
def test_svg_parses_with_size_and_metadata(fig, tmp_path):
    blob = export_figure(fig, tmp_path / "fig.svg", "slide", metadata=PARAMS, data=DATA,
                         name="Profile σ")
    root = ET.fromstring(blob)
    assert root.tag.endswith("svg")
    assert (root.get("width"), root.get("height")) == ("1280", "720")
    assert root.find("{http://www.w3.org/2000/svg}title").text == "Profile σ"
    meta = read_metadata(tmp_path / "fig.svg")
    assert meta["data"] == DATA and meta["params"]["sigma"] == 0.25
    assert meta["params"]["figure"] == "Profile σ"


@static
def test_pdf_opens_with_page_size_and_info(fig, tmp_path):
    blob = export_figure(fig, tmp_path / "fig.pdf", "paper column", metadata=PARAMS, data=DATA,
                         name="Profile σ")
    assert blob.startswith(b"%PDF-1.") and blob.rstrip().endswith(b"%%EOF")
    box = [float(v) for v in re.search(rb"/MediaBox\s*\[([^\]]+)\]", blob).group(1).split()]
    assert box[2] - box[0] == pytest.approx(252, abs=1)  # 336 px × 0.75 pt/px = 3.5 in
    assert box[3] - box[1] == pytest.approx(189, abs=1)
    meta = read_metadata(blob, "pdf")
    assert meta["data"] == DATA and {k: meta["params"][k] for k in PARAMS} == PARAMS
    assert meta["info"]["Title"] == "Profile σ" and "sigma=0.25" in meta["info"]["Subject"]
    # Incremental update: the new trailer points back at Chromium's xref table.
    assert re.search(rb"/Prev \d+", blob[blob.rfind(b"trailer"):])
    assert blob.count(b"%%EOF") == 2


def test_html_and_bundle_round_trip(fig, tmp_path):
    html = export_figure(fig, "html", "square", metadata=PARAMS, data=DATA)
    assert b"<script src=\"http" not in html and b"Plotly.newPlot" in html  # offline
    assert read_metadata(html, "html")["data"] == DATA
    path = save_bundle(fig, DATA, PARAMS, tmp_path / "results" / "profile", name="Profile σ")
    assert path.suffix == ".json"
    (tmp_path / "results" / "other.json").write_text('{"not": "a bundle"}')
    assert find_bundles(tmp_path / "results") == [path]
    bundle = load_bundle(path)
    assert bundle.name == "Profile σ" and bundle.data == DATA
    assert bundle.params["rsviz_version"] == __version__ and bundle.params["seed"] == 7
    assert list(bundle.figure.data[0].y) == DATA["p_adv"]
    assert bundle.figure.layout.title.text == fig.layout.title.text
    with pytest.raises(ExportError, match="not an rsviz figure bundle"):
        load_bundle(tmp_path / "results" / "other.json")


def test_data_to_csv():
    assert data_to_csv(DATA) == "distance,p_adv\n0.0,0.1\n0.5,0.45\n1.0,0.9\n"
    assert data_to_csv([{"a": 1, "b": 2}, {"a": 3}]) == "a,b\n1,2\n3,\n"
    assert data_to_csv({"a": [1, 2], "b": [1]}) is None
    assert data_to_csv({"grid": [[1, 2], [3, 4]]}) is None
    assert data_to_csv(None) is None


@static
def test_figure_pack_contents(fig):
    blob = figure_pack({"profile σ": fig, "votes": fig}, {"profile σ": DATA},
                       {"profile σ": PARAMS}, preset="paper", dpi=96)
    zf = zipfile.ZipFile(io.BytesIO(blob))
    names = set(zf.namelist())
    for stem in ("profile_s", "votes"):
        assert {f"{stem}.{ext}" for ext in ("png", "svg", "pdf", "html", "json")} <= names
    assert "profile_s.csv" in names and "votes.csv" not in names
    assert Image.open(io.BytesIO(zf.read("votes.png"))).size == (336, 252)
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["static_export"] is True and len(manifest["figures"]) == 2
    assert load_bundle_from_zip(zf, "profile_s.json")["params"]["sigma"] == 0.25


def load_bundle_from_zip(zf: zipfile.ZipFile, name: str) -> dict:
    return json.loads(zf.read(name))


def test_unavailable_static_export_still_gives_html_and_data(fig, no_browser):
    ok, reason = static_export_available()
    assert not ok and "/nonexistent/chromium" in reason and "chromium" in reason.lower()
    with pytest.raises(ExportError, match="needs a Chromium browser"):
        export_figure(fig, "png", metadata=PARAMS)
    assert export_figure(fig, "html").startswith(b"<html>")
    zf = zipfile.ZipFile(io.BytesIO(figure_pack({"profile": fig}, {"profile": DATA})))
    names = set(zf.namelist())
    assert {"profile.html", "profile.json", "profile.csv", "STATIC_EXPORT_UNAVAILABLE.txt"} <= names
    assert not any(n.endswith((".png", ".svg", ".pdf")) for n in names)
    assert "needs a Chromium browser" in zf.read("STATIC_EXPORT_UNAVAILABLE.txt").decode()


def test_switched_off_and_broken_browser(fig, monkeypatch):
    monkeypatch.setenv("RSVIZ_STATIC_EXPORT", "0")
    assert static_export_available() == (False, "Static export is switched off "
                                                "(RSVIZ_STATIC_EXPORT=0).")
    monkeypatch.delenv("RSVIZ_STATIC_EXPORT")
    monkeypatch.setenv("RSVIZ_CHROMIUM", "/bin/false")  # executable, but not a browser
    with pytest.raises(ExportError, match="Static export failed in Chromium"):
        export_figure(fig, "svg")
    ok, reason = static_export_available()
    assert not ok and reason.startswith("Chromium failed to render")


def _figure_cli(argv: list[str]) -> dict:
    """Run the `rsviz figure` command module (rsviz.cli.main would import every command)."""
    import argparse

    from rsviz.commands import figure

    parser = argparse.ArgumentParser()
    figure.add_arguments(parser)
    return figure.run(parser.parse_args(argv))


@static
def test_cli_rebuilds_figures_from_bundles(fig, tmp_path):
    from rsviz.commands.figure import render

    save_bundle(fig, DATA, PARAMS, tmp_path / "res" / "a.json")
    save_bundle(fig, {"grid": [[1]]}, {}, tmp_path / "res" / "deep" / "b.json")
    out = tmp_path / "figs"
    result = _figure_cli([str(tmp_path / "res"), "--preset", "square", "--format",
                          "png,svg,csv", "--scale", "0.5", "--out", str(out)])
    assert len(result["bundles"]) == 2 and json.loads(json.dumps(result)) == result
    assert {p.name for p in out.iterdir()} == {"a.png", "a.svg", "a.csv", "b.png", "b.svg"}
    assert result["skipped"] == [{"figure": "b", "format": "csv", "why": "data not tabular"}]
    assert "5 file(s)" in render(result)
    assert Image.open(out / "a.png").size == (400, 400)
    assert read_metadata(out / "a.png")["params"]["seed"] == 7
    with pytest.raises(ConfigError, match="Unknown format"):
        _figure_cli([str(tmp_path / "res"), "--format", "gif"])
    with pytest.raises(ConfigError, match="no rsviz figure bundle"):
        _figure_cli([str(tmp_path / "figs")])


def test_export_panel_in_app(monkeypatch):
    from streamlit.testing.v1 import AppTest

    def page() -> None:
        import plotly.graph_objects as go

        from ui.export import export_panel, page_pack_button

        fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))
        export_panel(fig, "first", {"x": [0, 1], "y": [1, 0]}, {"seed": 1}, key="a")
        export_panel(fig, "second", None, None, key="b")
        page_pack_button("test page")

    at = AppTest.from_function(page, default_timeout=30).run()
    assert not at.exception
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels.count("HTML") == 2 and labels.count("Data (CSV)") == 1
    assert any(label.startswith("Figure pack (zip, 2 figures)") for label in labels)
    monkeypatch.setenv("RSVIZ_CHROMIUM", "/nonexistent/chromium")
    at = AppTest.from_function(page, default_timeout=30).run()
    assert not at.exception
    assert any("export is unavailable" in i.value for i in at.info)
