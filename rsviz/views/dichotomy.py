"""Dichotomy view: where binary searches against g_{σ,n} land, per n (paper Fig. 3).

The segment [A, B] is chosen here and only here (`choose_segment`), for the page and the CLI.
See docs/architecture.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rsviz.errors import ConfigError, RsvizError
from rsviz.views.base import Cost, Request, progress_of

SEGMENTS = {"whitebox": "Past the white-box boundary point x_a of f",
            "towards": "Towards another image",
            "random": "Along a random direction"}
LINE_SEARCH_POINTS = 16  # coarse line search of the "towards" and "random" segments
DEFAULT_ATTACK_ITERS = 100  # white-box search iterations of the "whitebox" segment (CLI default)


@dataclass(frozen=True, kw_only=True)
class DichotomyRequest(Request):
    """Dichotomies on one segment. `kind` picks B (SEGMENTS); `other` is the image of
    "towards" (None: the first sample photo f labels differently), keyed by its hash;
    `attack_iters` bounds the white-box search of "whitebox" (gradient iterations);
    `past_gsigma` moves B past ∂g_σ (searched along the segment, `rsviz.gsigma`) by
    `extension`·σ, so the histograms straddle ∂g_σ (paper Fig. 3), instead of past ∂f.

    The result is {"result": DichotomyResult, "kind", "caption", "seconds"}.
    """

    NAME = "dichotomy"
    VERSION = "2"  # 2: B past ∂g_σ by default
    NOT_IN_KEY = ("other_name",)  # the image is keyed by its hash

    config: Any
    kind: str = "whitebox"
    extension: float = 3.0
    attack_iters: int = DEFAULT_ATTACK_ITERS
    past_gsigma: bool = True
    other_hash: str = ""
    other_name: str = ""
    other: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind == "auto":  # the CLI's old name of "whitebox"
            object.__setattr__(self, "kind", "whitebox")
        if self.kind not in SEGMENTS:
            raise ConfigError(f"Unknown segment {self.kind!r}; use {', '.join(SEGMENTS)}.")
        if self.extension < 0:
            raise ConfigError(f"The extension past ∂f must be ≥ 0 (got {self.extension}).")
        if self.attack_iters < 1:
            raise ConfigError("The white-box search needs at least 1 iteration "
                              f"(got {self.attack_iters}).")
        if self.kind != "whitebox":  # unused: one cache key whatever the field says
            object.__setattr__(self, "attack_iters", DEFAULT_ATTACK_ITERS)
        if self.other is not None and not self.other_hash:
            from rsviz.images import tensor_hash

            object.__setattr__(self, "other_hash", tensor_hash(self.other))
        super().__post_init__()

    def cost(self) -> Cost:
        """An estimate: the segment pass (grid × N votes) and the line search are exact; the
        white-box search of "whitebox" adds at most attack_iters iterations, each counted as
        WHITEBOX_ITERATION_PASSES; live trials add at most trials × k × Σn (lazy votes stop
        early); the ∂g_σ search its typical passes."""
        from rsviz.config import WHITEBOX_ITERATION_PASSES, GSigmaSearch

        c = self.config
        live = c.trials * c.steps * sum(c.n_values) if c.live else 0
        whitebox = self.attack_iters * WHITEBOX_ITERATION_PASSES if self.kind == "whitebox" else 0
        search = GSigmaSearch().typical_passes() if self.past_gsigma else 0
        return Cost(c.grid * c.n_samples + LINE_SEARCH_POINTS + 1 + whitebox + live + search,
                    "about")

    def run(self, model: Any, x: Any, progress: Any = None, cancel: Any = None) -> dict:
        from rsviz.dichotomy import run_dichotomy
        from rsviz.smoothing import forward_labels

        progress = progress_of(progress, cancel)
        started = time.perf_counter()
        y = int(forward_labels(model, x[None])[0])
        segment, note = choose_segment(model, x, y, self, progress)
        result = run_dichotomy(model, segment.a, segment.b, y, self.config, progress)
        return {"result": result, "kind": segment.kind, "caption": note + segment.caption,
                "seconds": time.perf_counter() - started}

    def summary(self, out: dict, class_name: Any = str) -> dict[str, Any]:
        from rsviz.config import to_dict

        result = out["result"]
        return {"config": to_dict(self.config), "class": result.y,
                "class_name": class_name(result.y), "segment": out["kind"],
                "segment_caption": out["caption"], **result.summary(),
                "seconds": out["seconds"]}


def choose_segment(model: Any, x: Any, y: int, request: DichotomyRequest,
                   progress: Any = None) -> tuple[Any, str]:
    """The segment of `request` and a note when it had to fall back.

    "whitebox" and "random" fall back to "towards" when they fail (no adversarial point
    found, white-box module missing); "towards" uses `request.other`, else the first sample
    photo that f labels differently from x. With `request.past_gsigma`, B then moves to
    `extension`·σ past ∂g_σ along the same ray (`past_gsigma`).
    """
    segment, note = _segment(model, x, y, request, progress)
    if request.past_gsigma:
        segment = past_gsigma(model, segment, request.config.sigma, request.extension,
                              request.config.seed, progress, request.config.precision)
    return segment, note


def past_gsigma(model: Any, segment: Any, sigma: float, extension: float, seed: int = 0,
                progress: Any = None, precision: str = "auto") -> Any:
    """The segment with B moved to `extension`·σ past ∂g_σ along A→B (the search starts at
    the old B's ∂f crossing); beyond the search's cap, B sits at the cap and the caption says
    so; a g_σ that already disagrees at A is one clear error."""
    from dataclasses import replace

    from rsviz.gsigma import AT_XO, find_gsigma

    a, b = segment.a, segment.b
    length = float((b - a).norm())
    u = (b - a) / max(length, 1e-12)
    crossing = find_gsigma(model, a, u, segment.y, sigma, start=max(length - extension * sigma,
                                                                    sigma),
                           seed=seed, progress=progress, precision=precision)
    if crossing.status == AT_XO:
        raise RsvizError(crossing.describe() + " Choose another image, a smaller σ, or the "
                         "class g_σ gives at x_o.")
    reach = crossing.t + extension * sigma if crossing.found else crossing.low
    new_b = a + reach * u  # not clamped: the search, like the votes, left the cube too
    where = (f"B moved to {extension:g}σ past ∂g_σ at {crossing.t:.3f} from A (searched with "
             f"{crossing.forward_passes:,} passes)" if crossing.found
             else crossing.describe() + " B sits at the search's cap")
    return replace(segment, b=new_b, caption=f"{segment.caption} {where}.")


def _segment(model: Any, x: Any, y: int, request: DichotomyRequest,
             progress: Any = None) -> tuple[Any, str]:
    """The segment of `request`'s kind, before B is moved past ∂g_σ."""
    from rsviz.dichotomy import segment_past_whitebox, segment_random

    sigma, extension = request.config.sigma, request.extension
    note = ""
    if request.kind != "towards":
        try:
            if request.kind == "random":
                return segment_random(model, x, y, sigma, extension, request.config.seed), note
            return segment_past_whitebox(model, x, y, sigma, extension, progress,
                                         request.attack_iters), note
        except RsvizError as exc:
            note = f"{SEGMENTS[request.kind]} failed ({exc}); fell back to another image. "
    return _towards(model, x, y, request), note


def _towards(model: Any, x: Any, y: int, request: DichotomyRequest) -> Any:
    from rsviz.dichotomy import segment_towards
    from rsviz.images import SAMPLES
    from rsviz.smoothing import forward_labels
    from rsviz.views.inputs import load_image

    sigma, extension = request.config.sigma, request.extension
    if request.other is not None:
        return segment_towards(model, x, y, request.other, sigma, extension,
                               request.other_name or "the other image")
    for name in SAMPLES:
        other, _ = load_image(f"sample:{name}", model)
        if int(forward_labels(model, other[None])[0]) != y:
            return segment_towards(model, x, y, other, sigma, extension, f"sample:{name}")
    raise RsvizError("No sample image is classified differently from this image: choose "
                     "another image for B, or a random segment.")
