"""Theory vs practice on one image: R(x_o), ∂g_σ, plain and RS-aware attack (issue 18's figure).

`TheoryVsPracticeRequest` takes one attack configuration against g_{σ,n}, runs (or reads from
the disk cache) its plain and its RS-aware run — the Live attack page's `AttackRequest`s, so a
run made there is reused — then measures the certified radius R(x_o) and the distance to ∂g_σ
along the RS-aware point's direction (the plain one's if RS-aware found none). The result is
the figure's row for this image (`rsviz.figures.rs_aware.distances_rows`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from rsviz.errors import ConfigError
from rsviz.views.attack import AttackRequest
from rsviz.views.base import Cost, Request, progress_of, run_cached

VARIANTS = ("plain", "rs-aware")
# The revision of `rsviz.attacks.rs_aware.geometry`'s numbers (R(x_o), the distance to ∂g_σ):
# bump it when they change for the same request. 2: R(x_o) by `certify_one` (certify_seed's
# rule, was the base seed itself; n0 = CertificationConfig's 64, was 100).
GEOMETRY_REVISION = 2


@dataclass(frozen=True, kw_only=True)
class TheoryVsPracticeRequest(Request):
    """Plain and RS-aware `attack` with oracle `config` (against g: σ set), then CERTIFY with
    `cert_n` votes and the ∂g_σ bisection with `votes` votes per point."""

    NAME = "theory-vs-practice"
    # Its row changes when its two AttackRequests' results do (their VERSION, the RS-aware
    # revision, not a second counter of it) or when `geometry`'s do (GEOMETRY_REVISION).
    VERSION = f"{AttackRequest.VERSION}.{GEOMETRY_REVISION}"

    attack: str = "hsja"
    config: Any = None
    params: tuple[tuple[str, Any], ...] = ()
    cert_n: int = 1000
    votes: int = 200

    def __post_init__(self) -> None:
        if self.config is None or self.config.sigma is None:
            raise ConfigError("Theory vs practice needs an attack against g_{σ,n} (σ set).")
        for name in ("cert_n", "votes"):
            if getattr(self, name) < 10:
                raise ConfigError(f"{name} must be at least 10.")
        self.attack_request("plain")  # checks the attack and its parameters
        super().__post_init__()

    def attack_request(self, variant: str) -> AttackRequest:
        ids = {f.name: getattr(self, f.name) for f in dataclasses.fields(Request)}
        return AttackRequest(**ids, attack=self.attack, config=self.config,
                             params=self.params, variant=variant)

    def cost(self) -> Cost:
        from rsviz.attacks.rs_aware.geometry import geometry_cost

        attacks = sum(self.attack_request(v).cost().passes for v in VARIANTS)
        return Cost(attacks + geometry_cost(self.cert_n, self.votes), "at most")

    def run(self, model: Any, x: Any, progress: Any = None, cancel: Any = None) -> dict:
        from rsviz.attacks.rs_aware.geometry import geometry

        progress = progress_of(progress, cancel)
        runs = {}
        for variant in VARIANTS:
            progress.report(0, None, f"{variant} attack")
            runs[variant], _ = run_cached(self.attack_request(variant), model, x, progress)
        aware, plain = runs["rs-aware"]["trace"], runs["plain"]["trace"]
        x_adv = aware.x_adv if aware.x_adv is not None else plain.x_adv
        progress.report(0, None, "certified radius and ∂g_σ")
        progress.check_cancel()
        geo = geometry(model, x.to(model.device), runs["plain"]["label"], self.config.sigma,
                       x_adv, self.cert_n, self.votes, self.config.seed)
        row = {"image": "x_o", "radius": geo["radius"], "boundary": geo["boundary"],
               "plain": plain.l2, "rs_aware": aware.l2,
               "p_a_plain": plain.p_a_empirical, "p_a_rs_aware": aware.p_a_empirical}
        return {"row": row, "cert_n": self.cert_n, "votes": self.votes,
                "queries": {v: runs[v]["trace"].queries for v in VARIANTS}}

    def summary(self, result: dict) -> dict[str, Any]:
        return {"attack": self.attack, "oracle": self.config.describe(), **result["row"],
                "cert_n": self.cert_n, "votes": self.votes}
