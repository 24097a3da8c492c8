"""Boundary slices (paper Fig. 2): geometry, analytic boundaries, adaptive vs dense, CLI, page."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from rsviz.errors import ConfigError, RsvizError
from rsviz.models import BallClassifier, Classifier, LinearClassifier, ModelInfo
from rsviz.slices import SliceConfig, agreement, compute_slice, gram_schmidt, make_plane


def _wrap(net: torch.nn.Module, size: int, name: str) -> Classifier:
    info = ModelInfo(name=name, model_id=f"{name}-test", input_size=size, resize=size,
                     mean=(0.0,) * 3, std=(1.0,) * 3, class_names=("class 0", "class 1"),
                     source="test")
    return Classifier(net, info, normalize=False)


# ----------------------------------------------------------------------------- geometry


def test_gram_schmidt_gives_orthonormal_directions():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(3, 16, 16, generator=g)
    b = a + 0.01 * torch.randn(3, 16, 16, generator=g)  # nearly parallel: still orthonormal
    e1, e2 = gram_schmidt(a, b)
    assert e1.shape == a.shape
    assert abs(float(e1.norm()) - 1) < 1e-5 and abs(float(e2.norm()) - 1) < 1e-5
    assert abs(float((e1 * e2).sum())) < 1e-5
    assert float((e1 * a).sum() / a.norm()) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(RsvizError):
        gram_schmidt(a, 2 * a)


def test_plane_points_and_grid_extent(tiny_model):
    x_o = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    config = SliceConfig(sigma=0.1, ns=(1,), grid=5, extent=2.0, n_samples=2, seed=4)
    plane = make_plane(tiny_model, x_o, config)
    pts = plane.points(np.array([0.0, 2.0, -1.0]), np.array([0.0, 0.0, 1.5]))
    dist = (pts - x_o).flatten(1).norm(dim=1).numpy()
    assert dist == pytest.approx([0.0, 2.0, np.hypot(1.0, 1.5)], abs=1e-4)
    # same seed, same plane; another seed, another plane
    again = make_plane(tiny_model, x_o, config)
    assert torch.equal(plane.e1, again.e1) and torch.equal(plane.e2, again.e2)
    other = make_plane(tiny_model, x_o, SliceConfig(**{**config.__dict__, "seed": 5}))
    assert abs(float((plane.e1 * other.e1).sum())) < 0.2
    result = compute_slice(tiny_model, x_o, config)
    assert result.u.tolist() == pytest.approx([-2, -1, 0, 1, 2])
    assert result.f_labels.shape == (5, 5) and result.samples[2, 2] == 2
    # clipping keeps every point of the slice in the image cube (off by default)
    clipped = plane.points(np.array([50.0]), np.array([0.0]), clip=True)
    assert float(clipped.min()) >= 0 and float(clipped.max()) <= 1
    assert float(plane.points(np.array([50.0]), np.array([0.0])).abs().max()) > 1


@pytest.mark.parametrize("bad", [dict(grid=4), dict(ns=(10, 50), n_samples=20),
                                 dict(coarse=3), dict(sigma=0.0), dict(ns=()),
                                 dict(extent=-1.0), dict(direction="up")])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        SliceConfig(**{"ns": (10,), "n_samples": 20, **bad})


# ----------------------------------------------------------------- analytic boundaries


def test_linear_rs_boundary_coincides_with_base_boundary():
    """Half-space w·x + b > 0 at distance 0.22 from x_o: p_1 = Φ((w·x+b)/σ), so the p̂_y = 1/2
    contour must lie on f's boundary u = 0.22 (slice towards x_o + 0.44 w, e1 = w)."""
    size, sigma, N = 8, 0.08, 200
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3 * size * size, generator=g)
    w = w / w.norm()
    x_o = torch.full((3, size, size), 0.5)
    b = -(float(w @ x_o.flatten()) + 0.22)
    model = _wrap(LinearClassifier(w, b, logit_scale=10.0), size, "linear")
    target = x_o + 0.44 * w.view(3, size, size)
    config = SliceConfig(sigma=sigma, ns=(10,), grid=21, extent=0.5, n_samples=N,
                         direction="image", target="x_o + 0.44 w", mode="dense", seed=1)
    result = compute_slice(model, x_o, config, target=target)
    assert result.y == 0 and result.landmarks[1][1] == pytest.approx(0.44, abs=1e-5)
    u = result.u
    f_switch = [u[np.flatnonzero(row)[0]] for row in result.f_labels]  # first class-1 point
    assert np.allclose(f_switch, 0.25)  # grid ... 0.2 < 0.22 < 0.25 ...
    crossings = []
    for row in result.p_y:  # p̂_y decreases along u: interpolate where it crosses 1/2
        k = int(np.flatnonzero(row < 0.5)[0])
        crossings.append(u[k - 1] + (row[k - 1] - 0.5) / (row[k - 1] - row[k]) * (u[k] - u[k - 1]))
    crossings = np.array(crossings)
    spacing = u[1] - u[0]
    assert np.all(np.abs(crossings - 0.22) < spacing)  # every row within one grid step
    assert abs(crossings.mean() - 0.22) < 0.01  # 21 rows, binomial noise ~0.004
    exact = stats.norm.cdf((0.22 - u) / sigma)
    tol = 5 * np.sqrt(0.25 / N)
    assert np.abs(result.p_y - exact[None, :]).max() < tol


def test_ball_rs_boundary_moves_as_ncx2_predicts():
    """Ball ‖x − c‖ < r in d = 192: ‖x + σN − c‖²/σ² ~ ncx2(d, ‖x − c‖²/σ²), so the RS
    boundary is the circle of radius ρ with ncx2.cdf(r²/σ², d, ρ²/σ²) = 1/2, well inside r."""
    size, r, sigma, N = 8, 1.0, 0.05, 128
    d = 3 * size * size
    c = torch.full((3, size, size), 0.5)
    model = _wrap(BallClassifier(c.flatten(), r, logit_scale=10.0), size, "ball")
    rho = optimize.brentq(lambda t: stats.ncx2.cdf(r**2 / sigma**2, d, t**2 / sigma**2) - 0.5,
                          1e-3, r)
    assert 0.6 < rho < 0.8  # the shift is large: ρ ≈ √(r² − dσ²)
    config = SliceConfig(sigma=sigma, ns=(10,), grid=25, extent=1.2, n_samples=N, mode="dense")
    result = compute_slice(model, c, config)
    radius = np.hypot(*np.meshgrid(result.u, result.v))
    exact = stats.ncx2.cdf(r**2 / sigma**2, d, radius**2 / sigma**2)
    assert np.abs(result.p_y - exact).max() < 5 * np.sqrt(0.25 / N)
    far = np.abs(radius - rho) > 0.06  # p is within 0.2 of 1/2 only closer than that
    assert np.array_equal(result.g_labels[far], (radius[far] > rho).astype(int))
    clear = np.abs(radius - r) > 1e-3  # grid points exactly on ∂f go either way in float32
    assert np.array_equal(result.f_labels[clear], (radius[clear] > r).astype(int))
    annulus = (radius > rho + 0.06) & (radius < r - 0.02)
    assert annulus.sum() > 20 and (result.g_labels[annulus] != result.f_labels[annulus]).all()


# ------------------------------------------------------------------ adaptive vs dense


def test_adaptive_agrees_with_dense_on_tiny_model(tiny_model):
    from rsviz.images import preprocess, synthetic_image

    x = preprocess(synthetic_image(32, 0), 32, 32)
    base = dict(sigma=0.05, ns=(10, 50), grid=21, n_samples=64, extent=24.0, n0=16)
    dense = compute_slice(tiny_model, x, SliceConfig(**base, mode="dense"))
    adaptive = compute_slice(tiny_model, x, SliceConfig(**base, mode="adaptive", noise_seed=1))
    assert adaptive.forward_passes < dense.forward_passes / 3.5
    assert np.array_equal(dense.f_labels, adaptive.f_labels)
    assert agreement(dense.g_labels, adaptive.g_labels) >= 0.97
    # every disagreement is at a point where the dense votes themselves were split
    differ = dense.g_labels != adaptive.g_labels
    assert (dense.p_top[differ] < 0.8).all()
    # sequential votes: n0, 2·n0, 4·n0 (= N); filled cells have none
    samples = adaptive.samples
    assert set(np.unique(samples)) <= {0, 16, 32, 64}
    assert (samples == 0).any() and (samples == 16).any() and (samples == 64).any()
    # honest realisations: n = 10 ≤ n0 is exact wherever votes were drawn; n = 50 wherever
    # N = 64 votes were drawn, never in filled cells, and not where 16 unanimous votes are
    # all there is (2·16 ≤ 50)
    assert np.array_equal(adaptive.draw_exact[10], samples > 0)
    exact50 = adaptive.draw_exact[50]
    assert exact50[samples == 64].all() and not exact50[samples <= 16].any()
    assert set(np.unique(adaptive.draws[50])) <= set(np.unique(dense.g_labels)) | {adaptive.y}


def test_sequential_test_decides_clear_leads_only():
    from scipy.stats import binom

    from rsviz.slices import decided

    rows = [[3] * 16,                      # unanimous: p = 2^-16
            [3] * 12 + [5] * 4,            # p = P[Bin(16, 1/2) ≥ 12] = 0.038
            [1] * 30 + [2] * 2,            # p ≈ 1.3e-7
            [0] * 10 + [1] * 3 + [2] * 3]  # top vs runner-up: P[Bin(13, 1/2) ≥ 10] = 0.046
    labels = [np.array(r) for r in rows]
    got = [bool(decided(r[None], 6, 0.001)[0]) for r in labels]
    assert got == [True, False, True, False]
    assert binom.sf(9, 13, 0.5) > 0.01 and bool(decided(labels[3][None], 6, 0.05)[0])


def test_realisation_is_exact_only_when_the_lead_is_out_of_reach():
    from scipy.stats import binom

    from rsviz.slices import realisation

    rng = np.random.default_rng(0)

    def draw(votes: list[int], n: int, m: int = 1) -> tuple[np.ndarray, np.ndarray]:
        labels = np.tile(np.array(votes), (m, 1))
        counts = np.stack([np.bincount(r, minlength=4) for r in labels])
        return realisation(labels, counts, n, rng)

    assert draw([2] * 16, 20)[1].all()           # 16 > 0 + 4: no 4 votes can catch up
    assert not draw([2] * 16, 50)[1].any()       # 16 ≤ 0 + 34: inferred (but still class 2)
    assert (draw([2] * 16, 50)[0] == 2).all()
    assert draw([1] * 30 + [0] * 2, 50)[1].all()  # lead 28 > 18 votes to come
    label, exact = draw([0, 1] * 8, 10)           # n ≤ k: plurality of the first 10, exact
    assert exact.all() and label[0] in (0, 1)
    # inferred draws follow the law of the missing votes: 20 A, 12 B, n = 50, 18 votes to
    # come from p̂ = (0.625, 0.375): A wins when X > 5 (X ~ Bin(18, 0.625)), a coin flip at 5
    m = 20_000
    label, exact = draw([0] * 20 + [1] * 12, 50, m)
    assert not exact.any()
    p_a = binom.sf(5, 18, 0.625) + 0.5 * binom.pmf(5, 18, 0.625)
    assert abs((label == 0).mean() - p_a) < 4 * np.sqrt(p_a * (1 - p_a) / m)


def test_exact_realisations_option_makes_every_draw_exact(tiny_model):
    from rsviz.images import preprocess, synthetic_image

    x = preprocess(synthetic_image(32, 0), 32, 32)
    config = SliceConfig(sigma=0.05, ns=(4, 40), grid=9, n_samples=40, extent=24.0, n0=4,
                         exact_realisations=True)
    result = compute_slice(tiny_model, x, config)
    assert all(m.all() for m in result.draw_exact.values())
    assert result.forward_passes < result.dense_passes


def test_whitebox_direction_points_to_the_boundary_point(linear_model):
    x_o = torch.full((3, 32, 32), 0.5)
    config = SliceConfig(sigma=0.05, ns=(1,), grid=3, n_samples=1, direction="whitebox")
    plane = make_plane(linear_model, x_o, config)
    w = linear_model.net.w.view(3, 32, 32)
    assert float((plane.e1 * w).sum()) == pytest.approx(1.0, abs=1e-3)  # x_a − x_o ∥ w
    assert plane.landmarks[1][1] == pytest.approx(0.2, abs=5e-3)


# ---------------------------------------------------------------------- figures, CLI


def test_figures_colour_classes_stably_and_group_rare_ones(tiny_model):
    from rsviz.figures.slices import adversarial_figure, label_maps_figure, shown_classes
    from rsviz.figures.theme import OTHER_COLOR, class_color

    x = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    result = compute_slice(tiny_model, x, SliceConfig(sigma=0.1, ns=(2, 4), grid=7,
                                                      n_samples=4, extent=40.0))
    result.f_labels = result.f_labels.copy()
    result.f_labels[0, 0] = 9 if result.y != 9 else 8  # one rare class -> "other"
    result.class_names.setdefault(int(result.f_labels[0, 0]), "rare")
    shown = shown_classes(result, ["f", 2, 4], max_classes=8, min_fraction=0.01)
    assert result.y in shown and int(result.f_labels[0, 0]) not in shown
    fig = label_maps_figure(result, min_fraction=0.01)
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert len(heatmaps) == 3
    legend = {t.name: t.marker.color for t in fig.data if t.type == "scatter" and t.x == (None,)}
    assert legend["other"] == OTHER_COLOR
    for c in shown:
        name = result.class_names[c] + (" (y)" if c == result.y else "")
        assert legend[name] == class_color(c)
    assert any("(other)" in str(v) for v in np.asarray(heatmaps[0].text, dtype=object).ravel())
    assert any(t.type == "contour" for t in fig.data)
    adv = adversarial_figure(result)
    assert len([t for t in adv.data if t.type == "heatmap"]) == 2


def test_cli_writes_maps_and_figures(tmp_path, capsys):
    from rsviz.cli import main

    out = tmp_path / "slice"
    code = main(["slice", "sample:coffee", "--model", "tiny_cnn", "--grid", "5", "--n", "2", "4",
                 "--samples", "8", "--extent", "10", "--out", str(out), "--no-png", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    payload = json.loads(captured.out)
    assert payload["forward_passes"] > 0 and payload["grid"] == 5
    maps = np.load(out / "slice.npz")
    assert maps["f_labels"].shape == (5, 5) and "g_n4" in maps and "p_adv_n2" in maps
    assert (out / "labels.html").exists() and (out / "adversarial.html").exists()


def test_cli_says_what_the_dense_grid_costs_and_what_the_setup_added(tmp_path, capsys):
    """The CLI's pass count uses the app's wording (one shared function), never '0.8x more'."""
    from types import SimpleNamespace

    from rsviz.cli import main
    from ui.slices import passes_note as caption_note

    args = ["slice", "sample:coffee", "--model", "tiny_cnn", "--grid", "5", "--n", "2",
            "--samples", "4", "--mode", "dense", "--out", str(tmp_path / "s"), "--no-png"]
    assert main(args + ["--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    dense, spent = payload["dense_passes"], payload["forward_passes"]
    assert dense == 25 * 5 and spent > dense  # the automatic extent spent passes
    assert main(args) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.startswith("forward passes:"))
    assert line.startswith(f"forward passes: {spent:,} (dense: the grid's {dense:,} plus "
                           f"{spent - dense:,} to set up the plane and extent) in "), line
    assert "more" not in text and "x " not in line
    spent_here = SimpleNamespace(forward_passes=spent, dense_passes=dense)
    assert caption_note(spent_here, SimpleNamespace(mode="dense")) in line  # the app's words


def test_point_labels_give_images_noise_and_labels_at_chosen_points(tiny_model):
    """`rsviz.views.slice.point_labels` (the page's images at chosen points): x(u, v) of the
    slice, one noisy sample from the seeded generator drawn point after point, f's labels of
    both, and g_σ and p̂ at the nearest grid point; the same points give the same answer."""
    from rsviz.smoothing import forward_labels, make_generator
    from rsviz.views.slice import point_labels

    x = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    result = compute_slice(tiny_model, x, SliceConfig(sigma=0.2, ns=(2,), grid=5, extent=2.0,
                                                      n_samples=4, seed=1, mode="dense"))
    points = [("x_o", 0.0, 0.0), ("typed", 0.9, -1.6)]
    shown = point_labels(result, tiny_model, x, points, 0.2, 7)
    generator = make_generator(7, "cpu")
    for p, (name, u, v), (iu, iv) in zip(shown, points, [(2, 2), (3, 0)]):
        assert (p["name"], p["u"], p["v"]) == (name, u, v)
        assert torch.equal(p["image"], result.point(x, u, v))
        noise = torch.randn(p["image"].shape, generator=generator)
        assert torch.allclose(p["noisy"], p["image"] + 0.2 * noise)
        labels = forward_labels(tiny_model, torch.stack([p["image"], p["noisy"]]))
        assert (p["f"], p["f_noisy"]) == (int(labels[0]), int(labels[1]))
        assert (p["g"], p["p_top"]) == (int(result.g_labels[iv, iu]),
                                        float(result.p_top[iv, iu]))
    assert torch.allclose(shown[0]["image"], x)
    again = point_labels(result, tiny_model, x, points, 0.2, 7)
    assert all(torch.equal(a["noisy"], b["noisy"]) for a, b in zip(shown, again))


# --------------------------------------------------------------------------------- page


def test_page_computes_a_tiny_slice_and_shows_the_figure(app_env):
    from tests.conftest import make_app, run_until

    at = make_app("pages/2_Boundary_slice.py")
    assert not at.exception, at.exception
    at.number_input(key="sl_grid_w").set_value(5)
    at.multiselect(key="sl_ns_w").set_value([5, 10])
    at.number_input(key="sl_N_w").set_value(10)
    at.run()
    assert not at.exception, at.exception
    assert any("Estimated cost" in c.value for c in at.caption)
    at.button(key="start_slice").click().run()
    run_until(at, lambda at: any("forward passes (" in s.value for s in at.success), timeout=30)
    assert not at.exception, at.exception
    assert any("forward passes (" in s.value for s in at.success)
    charts = at.get("plotly_chart")
    assert len(charts) >= 2
    spec = json.loads(charts[0].proto.spec)
    assert sum(t["type"] == "heatmap" for t in spec["data"]) == 3
    assert any("Images at chosen points" in s.value for s in at.subheader)
    assert any("**x_o**" in c.value and "g_σ:" in c.value for c in at.caption)  # point_labels
