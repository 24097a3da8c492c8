"""Benchmark: every page's default, timed headless through its view's run(), estimate vs actual.

Loads the model as the app does (the vote sampler's engine chosen by `rsviz.engines`, cached
or measured once), takes the measured rate the pages see (`rsviz.views.base.measured_rate`),
builds each page's request with the "quick" defaults of `rsviz.defaults` (and the page's other
defaults: σ from the sidebar's default for the model, n = 10, seed 0, HSJA against g), and
prints the estimate shown before Start, the actual wall time of `request.run()` and their
ratio. Targets: every default ≤ 60 s, actual within 2× of the estimate. No disk cache.

    flock /tmp/rsviz-heavy.lock .venv/bin/python bench/defaults.py [--model efficientnet_lite0]
        [--image coffee] [--pages image,slice,profile,dichotomy,attack] [--preset quick]
        [--threads T] [--json out.json]
"""

from __future__ import annotations

import time

import harness

from rsviz import engines
from rsviz.defaults import PAGES, page_defaults
from rsviz.device import describe_device, tcmalloc_loaded
from rsviz.models import default_sigma
from rsviz.views.base import inputs, measured_rate, seconds

N = 10  # the sidebar's n


def request_for(page: str, d: dict, model, x, sigma: float):
    """The request the page builds with its defaults `d`."""
    ids = inputs(model, x)
    if page == "image":
        from rsviz.views.image import N0, VotesRequest
        return VotesRequest(**ids, sigma=sigma, n_samples=d["N"], n0=N0, seed=0, n=N,
                            alpha=0.001)
    if page == "slice":
        from rsviz.slices import SliceConfig
        from rsviz.views.slice import SliceRequest
        return SliceRequest(**ids, config=SliceConfig(
            sigma=0.05, ns=tuple(d["ns"]), grid=d["grid"], n_samples=d["n_samples"],
            mode=d["mode"], seed=0))
    if page == "profile":
        from rsviz.profile import ProfileConfig
        from rsviz.views.profile import ProfileRequest
        return ProfileRequest(**ids, config=ProfileConfig(
            sigma=sigma, n_values=(5, 10, 50), n_samples=d["n_samples"], points=d["points"],
            p_levels=(0.5, 0.8, 0.9), lanczos_steps=d["lanczos_steps"], probes=d["probes"],
            slq_steps=6, attack_iters=d["attack_iters"], seed=0))
    if page == "dichotomy":
        from rsviz.dichotomy import DichotomyConfig
        from rsviz.views.dichotomy import DichotomyRequest
        return DichotomyRequest(**ids, config=DichotomyConfig(
            sigma=sigma, n_values=(10, 50, 100), trials=d["trials"], steps=12, grid=d["grid"],
            n_samples=d["n_samples"], seed=0), kind="whitebox", extension=3.0,
            attack_iters=d["attack_iters"])
    if page == "attack":  # the page's default: HSJA against f and against g_{σ,n}
        from rsviz.attacks import OracleConfig
        from rsviz.views.attack import CompareRequest
        return CompareRequest(**ids, attack="hsja", config=OracleConfig(
            sigma=sigma, n=N, criterion="single_draw", p_a=0.5, budget=d["budget"], seed=0),
            variant="plain")  # f: equal forward passes (rsviz.views.attack.compare_f_budget)
    raise ValueError(page)


def main() -> None:
    parser = harness.parser(__doc__)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--image", default="coffee")
    parser.add_argument("--pages", default=",".join(PAGES))
    parser.add_argument("--preset", default="quick")
    args = parser.parse_args()
    harness.start(args)
    model = harness.load(args.model)
    started = time.perf_counter()
    choice = engines.use_best_engine(model)
    print(f"{args.model} on {describe_device(model.device)}, tcmalloc {tcmalloc_loaded()}; "
          f"engine {choice.summary() if choice else 'eager fp32'} "
          f"({time.perf_counter() - started:.1f} s)")
    x = harness.image(model, f"sample:{args.image}")
    sigma = default_sigma(model.info)[0]
    rate = measured_rate(model)
    print(f"measured rate {rate:.1f} passes/s; sidebar σ {sigma:g}, n {N}; preset {args.preset}")
    print("\n| page | default | estimate s | actual s | actual / estimate | passes counted |")
    print("|---|---|---|---|---|---|")
    rows = []
    for page in args.pages.split(","):
        d = page_defaults(page, rate, args.preset, gpu=model.device.type == "cuda",
                          n=2 * N if page == "attack" else N)  # the compare: f gets equal passes
        request = request_for(page, d, model, x, sigma)
        estimate = seconds(request.cost(), rate)
        started = time.perf_counter()
        result = request.run(model, x)
        actual = time.perf_counter() - started
        counted = _passes(result)
        setting = ", ".join(f"{k} {v}" for k, v in d.items())
        print(f"| {page} | {setting} | {estimate:.1f} | {actual:.1f} | {actual / estimate:.2f} "
              f"| {counted} |", flush=True)
        rows.append({"page": page, "defaults": d, "estimate_s": estimate, "actual_s": actual,
                     "ratio": actual / estimate, "passes": counted})
    harness.save(args.json, "defaults", rows, model, preset=args.preset, image=args.image,
                 sigma=sigma, n=N, rate=rate)


def _passes(result) -> str:
    """Forward passes the run reports, where it reports them."""
    for obj in (result, *(result.values() if isinstance(result, dict) else ())):
        value = getattr(obj, "forward_passes", None)
        if value is None and isinstance(obj, dict):
            value = obj.get("forward_passes")
        if value is not None:
            return f"{int(value):,}"
    return "—"


if __name__ == "__main__":
    main()
