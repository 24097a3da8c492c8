"""SurFree: properties of the iterator, determinism, and convergence on analytic boundaries."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from rsviz.attacks.base import run_steps
from rsviz.attacks.oracle import Oracle, OracleConfig
from rsviz.attacks.surfree import (SurFree, block_idct, circle_point, dct_matrix, orthonormalize,
                                   random_dct_direction, zigzag_mask)
from rsviz.errors import ConfigError
from rsviz.models import Classifier, LinearClassifier, ModelInfo
from rsviz.smoothing import forward_labels, make_generator


class RecordingOracle(Oracle):
    """An oracle that remembers every point it accepted."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.accepted: list[torch.Tensor] = []

    def is_adversarial(self, xs: torch.Tensor) -> torch.Tensor:
        out = super().is_adversarial(xs)
        batch = xs[None] if xs.dim() == 3 else xs
        flags = out.reshape(-1)
        self.accepted += [batch[i].detach().clone() for i in range(len(batch)) if flags[i]]
        return out


def linear_model(size: int, w: torch.Tensor, offset: float = 0.2):
    """Half-space at L2 distance `offset` from the grey image x_o (class 0 at x_o)."""
    w = w.flatten() / w.flatten().norm()
    x_o = torch.full((3, size, size), 0.5)
    b = -(float(w @ x_o.flatten()) + offset)
    info = ModelInfo(name="lin", model_id="lin", input_size=size, resize=size, mean=(0.0,) * 3,
                     std=(1.0,) * 3, class_names=("inside", "outside"), source="test")
    return Classifier(LinearClassifier(w, b, logit_scale=10.0), info, normalize=False), x_o


def attack(model, x_o, config: OracleConfig, seed: int = 0, **params):
    """Run SurFree to the end; fp32 so that f's decisions can be re-checked exactly (bf16
    rounds boundary points differently from one batch shape to another)."""
    config = replace(config, precision="fp32")
    y = int(forward_labels(model, x_o[None], precision="fp32")[0])
    oracle = RecordingOracle(model, x_o, y, config)
    states = list(run_steps(SurFree(**params), oracle, x_o, make_generator(seed)))
    return oracle, states, y


def tiny_image(seed: int = 1) -> torch.Tensor:
    return torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- pure helpers


def test_dct_matrix_is_orthonormal():
    matrix = dct_matrix(8)
    assert torch.allclose(matrix @ matrix.T, torch.eye(8), atol=1e-5)


def test_zigzag_mask_takes_the_lowest_frequencies():
    mask = zigzag_mask(8, 0.5)
    assert int(mask.sum()) == 32
    assert mask[0, 0] and mask[0, 1] and mask[1, 0] and not mask[7, 7]
    # the first 28 coefficients are the full diagonals i + j ≤ 6
    i, j = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    assert bool(mask[(i + j) <= 6].all()) and not bool(mask[(i + j) >= 8].any())


def test_block_idct_of_dc_coefficient_is_constant_tile():
    coeffs = torch.zeros(1, 16, 16)
    coeffs[0, 0, 8] = 8.0          # DC of the tile at rows 0-7, columns 8-15
    pixels = block_idct(coeffs)
    assert torch.allclose(pixels[0, :8, 8:], torch.ones(8, 8), atol=1e-5)
    assert pixels[0, 8:].abs().max() < 1e-6 and pixels[0, :8, :8].abs().max() < 1e-6


def test_dct_direction_is_low_frequency_and_seeded():
    shape = torch.Size((3, 16, 16))
    a = random_dct_direction(shape, make_generator(5))          # whole-image DCT (default)
    b = random_dct_direction(shape, make_generator(5))
    assert a.shape == shape and torch.equal(a, b)
    matrix = dct_matrix(16)
    spectrum = matrix @ a[1] @ matrix.T
    assert spectrum[~zigzag_mask(16, 0.5)].abs().max() < 1e-4
    assert spectrum[zigzag_mask(16, 0.5)].abs().max() > 0.5      # signs ±1 on ~2/3 of them
    tiled = random_dct_direction(shape, make_generator(5), block=8)   # the 8×8 variant
    matrix = dct_matrix(8)
    tile = matrix @ tiled[0, 8:, :8] @ matrix.T
    assert tile[~zigzag_mask(8, 0.5)].abs().max() < 1e-4 and tile.abs().max() > 0.5


def test_orthonormalize_and_circle_geometry():
    g = make_generator(0)
    u = torch.randn(48, generator=g)
    u /= u.norm()
    history = torch.linalg.qr(torch.randn(48, 5, generator=g)).Q.T      # 5 orthonormal rows
    v = orthonormalize(torch.randn(48, generator=g), u, history)
    assert abs(float(v @ u)) < 1e-5 and abs(float(v.norm()) - 1) < 1e-5
    assert float((history @ v).abs().max()) < 0.05   # exact for u, approximate for the history
    assert orthonormalize(3 * u, u) is None
    x_o = torch.full((3, 4, 4), 0.5)
    for theta in (0.0, 30.0, -60.0):
        z = circle_point(x_o, u, v, 0.3, theta)
        assert math.isclose(float((z - x_o).norm()), 0.3 * math.cos(math.radians(theta)), rel_tol=1e-4)


def test_bad_parameters_raise_config_error():
    for params in ({"rho": 0.0}, {"theta_max": 95}, {"T": 0}, {"basis": "wavelet"},
                   {"BS_gamma": 0}):
        with pytest.raises(ConfigError):
            SurFree(**params)


# --------------------------------------------------------------------------- attack properties


@pytest.mark.parametrize("model_name", ["tiny_cnn", "linear_toy"])
def test_properties_on_registry_models(model_name):
    from rsviz.models import load_model

    model = load_model(model_name)
    x_o = tiny_image() if model_name == "tiny_cnn" else torch.full((3, 32, 32), 0.5)
    # seed 1: linear_toy's normal is torch.randn of seed 0, which the start's Gaussian noise
    # would draw too (a start already on the optimal direction)
    oracle, states, y = attack(model, x_o, OracleConfig(budget=400, seed=0), seed=1)
    assert states and states[0].iteration == 0 and states[0].success
    assert len(states) > 3
    l2 = [s.l2 for s in states]
    assert all(b <= a + 1e-6 for a, b in zip(l2, l2[1:])), "best distortion increased"
    assert l2[-1] < 0.8 * l2[0], "no progress"
    assert all(s.queries <= 400 for s in states) and oracle.queries <= 400
    assert states[-1].queries == oracle.queries
    for s in states:
        assert float(s.x_adv.min()) >= 0.0 and float(s.x_adv.max()) <= 1.0
        assert any(torch.equal(s.x_adv, a) for a in oracle.accepted)
    assert int(forward_labels(model, states[-1].x_adv[None], precision="fp32")[0]) != y


def test_same_seed_same_trace():
    from rsviz.models import load_model

    model = load_model("tiny_cnn")
    trace = lambda seed: [(s.queries, s.l2) for s in attack(  # noqa: E731
        model, tiny_image(), OracleConfig(budget=200, seed=0), seed=seed)[1]]
    assert trace(3) == trace(3)
    assert trace(3) != trace(4)


@pytest.mark.parametrize("criterion", ["single_draw", "shortcut"])
def test_against_smoothed_tiny_model_ends_cleanly(criterion):
    from rsviz.models import load_model

    model = load_model("tiny_cnn")
    config = OracleConfig(sigma=0.25, n=10, criterion=criterion, p_a=0.5, budget=250, seed=2)
    oracle, states, _ = attack(model, tiny_image(), config)
    assert states and oracle.queries <= 250
    found = [s for s in states if s.success]
    l2 = [s.l2 for s in found]
    assert all(b <= a + 1e-6 for a, b in zip(l2, l2[1:]))
    for s in found:
        assert any(torch.equal(s.x_adv, a) for a in oracle.accepted)
    assert oracle.forward_passes <= 10 * oracle.queries


def test_no_starting_point_yields_one_empty_state():
    # x_o far from a boundary no noise image can cross: the attack gives up cleanly
    model, x_o = linear_model(4, torch.ones(48), offset=100.0)
    oracle, states, _ = attack(model, x_o, OracleConfig(budget=500, seed=0))
    assert len(states) == 1 and not states[0].success and math.isinf(states[0].l2)
    assert oracle.queries == 100


# --------------------------------------------------------------------------- convergence


def test_approaches_minimal_distance_of_a_half_space():
    """Full-band variant against a random half-space 0.2 from x_o in d = 192."""
    w = torch.randn(3 * 8 * 8, generator=torch.Generator().manual_seed(3))
    model, x_o = linear_model(8, w)
    oracle, states, _ = attack(model, x_o, OracleConfig(budget=1500, seed=0), basis="full")
    assert states[-1].l2 >= 0.2 * (1 - 1e-4), "closer than the analytic minimum"
    assert states[-1].l2 < 0.3, f"{states[-1].l2:.3f} is not within 50% of the minimum 0.2"
    assert states[0].l2 > 1.0


def test_dct_prior_helps_on_a_low_frequency_boundary():
    """When the boundary normal is low-frequency, the DCT directions converge faster."""
    shape = torch.Size((3, 16, 16))
    w = random_dct_direction(shape, torch.Generator().manual_seed(3))
    model, x_o = linear_model(16, w)
    final = {basis: attack(model, x_o, OracleConfig(budget=1000, seed=0), basis=basis)[1][-1].l2
             for basis in ("dct", "full")}
    assert final["dct"] >= 0.2 * (1 - 1e-4)
    assert final["dct"] < 0.9 * final["full"]
