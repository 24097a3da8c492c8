"""Theory vs practice on one image: what RS guarantees and where g_σ actually changes its answer.

For the RS-aware figure (`rsviz.figures.rs_aware`): per image, the certified radius R(x_o)
(Cohen et al.'s CERTIFY) and the distance from x_o to ∂g_σ along an attack's direction, the
point t where the vote estimate p̂_y(x_o + t·u) crosses ½, found by bisection. Both are
measurements with their own noise seed, outside any attack's budget. R(x_o) is rsviz's one
CERTIFY (`rsviz.certification.certify_one`, seeded by `certify_seed`): the radius the image page
and the certification view give for the same image, σ, seed and votes.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from rsviz.attacks.bisection import bisect_bracket
from rsviz.certification import CertificationConfig, certify_one
from rsviz.models import Classifier
from rsviz.smoothing import make_generator, sample_votes

MAX_DISTANCE = 400.0  # ∂g_σ not crossed before this L2 distance: reported as inf


def boundary_distance(model: Classifier, x: torch.Tensor, y: int, direction: torch.Tensor,
                      sigma: float, votes: int, high: float, seed: int, steps: int = 8) -> float:
    """Distance t along `direction` where p̂_y(x + t·direction/‖direction‖) crosses ½.

    Bisection on [0, high] with `votes` fresh votes per point (`high` doubled until p̂_y < ½
    there); inf if p̂_y ≥ ½ up to MAX_DISTANCE. Costs (steps + 1 + doublings) × votes passes.
    """
    generator = make_generator(seed, model.device)
    unit = direction / direction.norm()

    def p_y(t: float) -> float:
        point = (x + t * unit)[None]
        return float(sample_votes(model, point, sigma, votes, generator).p_hat(y)[0])

    while p_y(high) >= 0.5:
        high *= 2
        if high > MAX_DISTANCE:
            return math.inf
    low, high = bisect_bracket(lambda t: p_y(t) < 0.5, 0.0, high, tol=0.0, max_steps=steps)
    return (low + high) / 2


def certification(sigma: float, cert_n: int, seed: int) -> CertificationConfig:
    """The CERTIFY of R(x_o): n = cert_n votes and the base seed; n0 and α are
    CertificationConfig's defaults."""
    return CertificationConfig(sigmas=(sigma,), n=cert_n, seed=seed)


def geometry(model: Classifier, x: torch.Tensor, y: int, sigma: float,
             x_adv: torch.Tensor | None, cert_n: int = 1000, votes: int = 200,
             seed: int = 0) -> dict[str, Any]:
    """{"radius": R(x_o) (0 when CERTIFY abstains or certifies another class), "cert_n",
    "boundary": distance to ∂g_σ along x_adv − x_o (None without x_adv)}."""
    result = certify_one(model, x, sigma, certification(sigma, cert_n, seed))
    out: dict[str, Any] = {"radius": float(result.radius) if result.predict == y else 0.0,
                           "cert_n": cert_n, "boundary": None}
    if x_adv is not None:
        delta = x_adv.reshape(x.shape).to(x.device, torch.float32) - x
        out["boundary"] = boundary_distance(model, x, y, delta, sigma, votes,
                                            float(delta.norm()), seed + 1)
    return out


def geometry_cost(cert_n: int, votes: int, steps: int = 8) -> int:
    """Forward passes of `geometry` without doublings (n0 + cert_n + (steps + 1) · votes)."""
    settings = certification(1.0, cert_n, 0)  # n0 depends on neither σ nor the seed
    return settings.n0 + settings.n + (steps + 1) * votes
