"""Page defaults sized in seconds: what each page computes at Start, from the measured rate.

    page_defaults("slice", rate=9.5)              # quick: finishes in ≤ BUDGET_S seconds here
    page_defaults("slice", rate=9.5, preset="paper")   # the paper's sizes (GPU-sized)
    estimate_seconds("slice", page_defaults("slice", 9.5), 9.5)

A pure function of the rate (forward passes per second of the vote sampler, as measured by
`rsviz.views.base.measured_rate`) and the preset:

- "quick" (the app's default): the largest setting, from a ladder that ends at the standard
  setting of the page, whose estimated cost finishes in at most `BUDGET_S` seconds at `rate`
  (the estimate times the page's measured `OVERHEAD`);
  the smallest rung when even that does not fit. A fast machine gets the standard setting, a
  slow one a smaller grid, fewer points or a smaller budget. `gpu=True` lets the ladder climb
  to the paper's sizes.
- "paper": the sizes of the paper's figures (GPU-sized: minutes to hours on a CPU).
- "standard": the standard setting unsized (reproducible scripted runs and the app's tests).

A page's cost is the `cost()` of the view request the page builds (`page_request`), so the
seconds shown before Start and the sizing are one count. Importing this module imports nothing
heavy; sizing a page imports its engine config (torch for most).
"""

from __future__ import annotations

import math
from typing import Any

from rsviz.config import HVP_PASSES, OVERHEAD, WHITEBOX_ITERATION_PASSES  # noqa: F401

BUDGET_S = 45.0
PRESETS = ("quick", "paper", "standard")
PAGES = ("image", "slice", "profile", "dichotomy", "attack")
SIZED_BY = {"image": "N", "attack": "budget"}  # pages sized by one number, not a ladder
QUICK_WHITEBOX_ITERATIONS = 20  # the quick preset's dichotomy segment search (‖x_a‖ ≈ 1.2× best)

# The standard setting of each page on a CPU (the ladder's top for "quick") and the paper's.
STANDARD = {
    "image": {"N": 1000},
    "slice": {"grid": 17, "n_samples": 50, "ns": [10, 50], "mode": "adaptive"},
    "profile": {"n_samples": 256, "points": 30, "attack_iters": 20, "lanczos_steps": 16,
                "probes": 4},
    "dichotomy": {"grid": 64, "n_samples": 128, "trials": 1000, "attack_iters": 100},
    "attack": {"budget": 2000},
}
PAPER = {
    "image": {"N": 100_000},
    "slice": {"grid": 201, "n_samples": 200, "ns": [10, 50, 200], "mode": "adaptive"},
    "profile": {"n_samples": 2000, "points": 60, "attack_iters": 100, "lanczos_steps": 30,
                "probes": 10},
    "dichotomy": {"grid": 64, "n_samples": 1000, "trials": 1000, "attack_iters": 100},
    "attack": {"budget": 2000},
}


def page_request(page: str, setting: dict[str, Any], n: int = 10, smoothed: bool = True) -> Any:
    """The view request a page builds from `setting`, its other inputs at their defaults (σ,
    seeds, levels and the image change no cost; `n` and `smoothed` describe the attack page's
    target, g_{σ,n} or f). Imports the page's engine config, torch with it."""
    ids = {"model_id": "", "image_hash": ""}
    if page == "image":
        from rsviz.views.image import VotesRequest

        return VotesRequest(**ids, n_samples=setting["N"])
    if page == "slice":
        from rsviz.slices.config import SliceConfig
        from rsviz.views.slice import SliceRequest

        return SliceRequest(**ids, config=SliceConfig(
            grid=setting["grid"], n_samples=setting["n_samples"], ns=tuple(setting["ns"]),
            mode=setting.get("mode", "adaptive")))
    if page == "profile":  # the default window searches ∂g_σ first
        from rsviz.profile import ProfileConfig
        from rsviz.views.profile import ProfileRequest

        return ProfileRequest(**ids, config=ProfileConfig(
            n_samples=setting["n_samples"], points=setting["points"],
            attack_iters=setting["attack_iters"], lanczos_steps=setting["lanczos_steps"],
            probes=setting["probes"]))
    if page == "dichotomy":  # the white-box segment, B past ∂g_σ (the page's default)
        from rsviz.dichotomy.config import DichotomyConfig
        from rsviz.views.dichotomy import DichotomyRequest

        return DichotomyRequest(**ids, attack_iters=setting["attack_iters"],
                                config=DichotomyConfig(grid=setting["grid"],
                                                       n_samples=setting["n_samples"],
                                                       trials=setting["trials"]))
    if page == "attack":
        from rsviz.attacks.oracle import OracleConfig
        from rsviz.views.attack import AttackRequest

        return AttackRequest(**ids, config=OracleConfig(sigma=1.0 if smoothed else None, n=n,
                                                        budget=setting["budget"]))
    raise ValueError(f"unknown page {page!r}; pages: {', '.join(PAGES)}")


def passes(page: str, setting: dict[str, Any], n: int = 10, smoothed: bool = True) -> int:
    """Forward passes of a page's Start with `setting`: the `cost()` of the request the page
    builds (`page_request`), so the sizing and the estimate shown before Start are one count."""
    return page_request(page, setting, n, smoothed).cost().passes


def estimate_seconds(page: str, setting: dict[str, Any], rate: float, **target: Any) -> float:
    """Estimated seconds of a page's Start at `rate` forward passes per second."""
    return passes(page, setting, **target) / max(rate, 1e-9)


NICE = (1, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5)  # round sizes × 10^k: at most 25 % below the fit


def _nice_floor(value: float, low: int, high: int) -> int:
    """The largest of NICE × 10^k that is ≤ value, kept within [low, high]."""
    if value <= low:
        return low
    k = 10 ** math.floor(math.log10(value))
    nice = max(m * k for m in NICE if m * k <= value)
    return int(min(max(nice, low), high))


def _ladder(page: str, top: dict[str, Any]) -> list[dict[str, Any]]:
    """Settings of a page from `top` down to the smallest worth drawing, costliest first."""
    out = []
    if page == "slice":
        grids = [g for g in (201, 151, 101, 75, 51, 41, 33, 25, 21, 17, 15, 13, 11)
                 if g <= top["grid"]]
        out += [{**top, "grid": g} for g in grids]
        # slower machines: dense coarse grids with few votes (adaptive sampling's first pass
        # and boundary band cost more than that below G ≈ 11)
        for grid, n_samples in ((15, 20), (13, 20), (11, 20), (11, 10), (9, 10), (7, 10),
                                (7, 5)):
            ns = [v for v in top["ns"] if v <= n_samples] or [n_samples]
            out.append({**top, "grid": grid, "n_samples": n_samples, "ns": ns, "mode": "dense"})
    elif page == "profile":
        points = [p for p in (60, 40, 30, 24, 20, 16) if p <= top["points"]]
        out += [{**top, "points": p} for p in points]
        # then a lighter curvature (8 + 2·6 Hessian-vector products instead of 16 + 4·6: the
        # largest fixed cost beside the ∂g_σ search) before fewer points: a profile of 8 points
        # rarely shows where p̂_y falls
        light = {**top, "lanczos_steps": min(top["lanczos_steps"], 8),
                 "probes": min(top["probes"], 2)}
        out += [{**light, "points": p} for p in (20, 16, 12) if p <= top["points"]]
        # N stays ≥ 50, the largest n the page shows by default
        out += [{**light, "points": 12, "n_samples": v} for v in (128, 64)
                if v < top["n_samples"]]
        out.append({**light, "points": 8, "n_samples": 64, "attack_iters": 10})
    elif page == "dichotomy":
        # the white-box segment search is a fixed cost: shortened first, then N, then the grid
        out.append(top)
        short = {**top, "attack_iters": min(top["attack_iters"], QUICK_WHITEBOX_ITERATIONS)}
        out += [{**short, "n_samples": v} for v in (1000, 500, 256, 128, 64, 32)
                if v <= top["n_samples"]]
        out += [{**short, "n_samples": 32, "grid": g} for g in (48, 32, 24, 16)
                if g < top["grid"]]
    else:
        out = [top]
    return out


def page_defaults(page: str, rate: float, preset: str = "quick", gpu: bool = False,
                  budget_s: float = BUDGET_S, n: int = 10, smoothed: bool = True,
                  overhead: float | None = None) -> dict:
    """The default setting of `page` at `rate` forward passes per second (module docstring);
    `overhead` replaces the page's prior OVERHEAD (the factor learned on this machine,
    `rsviz.views.base.view_factor`)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    if page not in PAGES:
        raise ValueError(f"unknown page {page!r}; pages: {', '.join(PAGES)}")
    top = dict((PAPER if preset == "paper" or gpu else STANDARD)[page])
    if preset != "quick":
        return top
    factor = overhead if overhead is not None else OVERHEAD[page]
    affordable = max(rate, 1e-9) * budget_s / factor  # passes that fit the budget
    if page in SIZED_BY:  # a cost linear in one size: the largest that fits
        key = SIZED_BY[page]
        low, high = (passes(page, {key: size}, n, smoothed) for size in (100, 200))
        size = 100 + (affordable - low) * 100 / (high - low)
        return {key: _nice_floor(size, 100, top[key])}
    ladder = _ladder(page, top)
    return next((s for s in ladder if passes(page, s) <= affordable), ladder[-1])



VIEW_OF_PAGE = {"image": "image-votes", "attack": "attack-compare"}  # page -> its default view


def describe(page: str, setting: dict[str, Any], rate: float, preset: str, **target: Any) -> str:
    """One line for the page: which preset, and the estimate behind the default."""
    seconds = estimate_seconds(page, setting, rate, **target)
    name = {"quick": f"quick (≤ {BUDGET_S:.0f} s here)", "paper": "paper (GPU-sized)",
            "standard": "standard"}[preset]
    return f"Defaults: {name}, ≈ {seconds:,.0f} s at {rate:,.1f} passes/s."
