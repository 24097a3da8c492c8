"""What every view request shares: identity of the inputs, cache key, cost, cached run.

A request names its model by `model_id`, its image by `image_hash`, the device type (noise
drawn on a GPU differs from noise drawn on the CPU) and its forward identity `forward` (the
arithmetic and engine that run f, `rsviz.identity`), plus the view's own parameters. A
precision left at "auto" in the request or its config is replaced by the identity's when the
request is built, so "auto" never reaches a key. `key()` hashes everything with the view's NAME
and VERSION: bump a view's VERSION when a change of the engine changes what that view
computes. See docs/architecture.md.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Literal

from rsviz.cache import DiskCache, default_cache, make_key
from rsviz.errors import Cancelled, ConfigError

CostKind = Literal["exact", "at most", "about"]


@dataclass(frozen=True)
class Cost:
    """Forward passes of the base classifier a request will spend.

    kind says how far to trust `passes`: "exact", "at most" (an upper bound) or "about"
    (an estimate; adaptive sampling depends on the image).
    """

    passes: int
    kind: CostKind = "exact"

    def describe(self) -> str:
        prefix = {"exact": "", "at most": "at most ", "about": "about "}[self.kind]
        return f"{prefix}{self.passes:,} forward passes"


class CancelProgress:
    """A Progress that also stops when `cancel()` returns true (a callable or an Event)."""

    def __init__(self, progress: Any, cancel: Callable[[], bool] | threading.Event | None):
        from rsviz.progress import NullProgress

        self.progress = progress or NullProgress()
        self.cancel = cancel.is_set if isinstance(cancel, threading.Event) else cancel

    def report(self, done: float, total: float | None = None, message: str = "",
               partial: Any = None) -> None:
        self.progress.report(done, total, message, partial)

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("cancelled")
        self.progress.check_cancel()


def progress_of(progress: Any, cancel: Any) -> Any:
    """The Progress engine functions receive: `progress` itself when there is no extra cancel."""
    from rsviz.progress import NullProgress

    if cancel is None:
        return progress or NullProgress()
    return CancelProgress(progress, cancel)


@dataclass(frozen=True, kw_only=True)
class Request:
    """Base of every view request. Subclasses set NAME and VERSION and add their fields.

    Fields listed in NOT_IN_KEY (summary-only parameters, batch sizes) do not change the
    cached result: `key()` leaves them out, so changing them reuses it. Fields declared with
    `field(compare=False)` (input tensors) are left out too; their hash is a key field.
    """

    NAME: ClassVar[str] = "view"
    VERSION: ClassVar[str] = "1"
    NOT_IN_KEY: ClassVar[tuple[str, ...]] = ()
    # False for views whose results carry their own identity (a study's, per task)
    NEEDS_FORWARD: ClassVar[bool] = True

    model_id: str
    image_hash: str
    device: str = "cpu"
    forward: str = ""  # rsviz.identity.Forward tag, from `inputs(model, x)`

    def __post_init__(self) -> None:
        """Settle every precision of the request on its forward identity: "auto" becomes the
        identity's arithmetic; an explicit other precision makes the identity eager torch at
        that precision (an engine serves only its own arithmetic)."""
        if not self.forward:
            return
        from rsviz.identity import Forward

        # the request itself (name None) and each config field that has a precision
        fields = {None: self, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}
        holders = {name: h for name, h in fields.items()
                   if isinstance(getattr(h, "precision", None), str)}
        wanted = {h.precision for h in holders.values()} - {"auto"}
        if len(wanted) > 1:
            raise ConfigError(f"One {self.NAME} request runs one precision, not "
                              f"{' and '.join(sorted(wanted))}.")
        forward = Forward.parse(self.forward).with_precision(wanted.pop() if wanted else "auto")
        object.__setattr__(self, "forward", forward.tag())
        for name, holder in holders.items():
            if holder.precision != "auto":
                continue
            if name is None:
                object.__setattr__(self, "precision", forward.precision)
            else:
                object.__setattr__(self, name, dataclasses.replace(holder,
                                                                   precision=forward.precision))

    def key(self) -> str:
        if not self.forward and self.NEEDS_FORWARD:
            raise ConfigError(f"This {self.NAME} request has no forward identity: build it "
                              "with rsviz.views.base.inputs(model, x).")
        parts = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                 if f.compare and f.name not in self.NOT_IN_KEY}
        return make_key(self.NAME, self.VERSION, parts)

    def cost(self) -> Cost:
        raise NotImplementedError

    def run(self, model: Any, x: Any, progress: Any = None, cancel: Any = None) -> Any:
        raise NotImplementedError

    def summary(self, result: Any) -> dict[str, Any]:
        raise NotImplementedError

    def running_forward(self, model: Any) -> Any:
        """The `Forward` that `run` would use on `model` now (views whose forwards bypass
        the vote sampler's engine override it)."""
        from rsviz.engines import forward_of
        from rsviz.identity import Forward

        return forward_of(model, Forward.parse(self.forward).precision)

    def check_inputs(self, model: Any, x: Any) -> None:
        """The model and image are the ones this request names (else its key would lie)."""
        from rsviz.images import tensor_hash

        if model.info.model_id != self.model_id:
            raise ConfigError(f"This {self.NAME} request is for model {self.model_id}, "
                              f"not {model.info.model_id}.")
        if x is not None and self.image_hash and tensor_hash(x) != self.image_hash:
            raise ConfigError(f"This {self.NAME} request is for another image.")
        if self.forward:
            from rsviz.identity import Forward

            running = self.running_forward(model)
            if running.tag() != self.forward:
                raise ConfigError(
                    f"This {self.NAME} request is for {Forward.parse(self.forward).describe()}; "
                    f"the model now runs {running.describe()}. Build the request again.")


def inputs(model: Any, x: Any) -> dict[str, str]:
    """The identity fields of a request on `model` and image `x`: model_id, image_hash, device
    and the forward identity (settling the model's engine decision if none is attached)."""
    from rsviz.engines import forward_of
    from rsviz.images import tensor_hash

    return {"model_id": model.info.model_id, "image_hash": tensor_hash(x) if x is not None else "",
            "device": model.device.type, "forward": forward_of(model).tag()}


def run_cached(request: Request, model: Any, x: Any, progress: Any = None, cancel: Any = None,
               cache: DiskCache | None = None) -> tuple[Any, bool]:
    """The request's result from the disk cache, else computed and stored: (result, cached)."""
    disk = cache or default_cache()
    key = request.key()
    hit = disk.get(key)
    if hit is not None:
        return hit, True
    request.check_inputs(model, x)
    result = timed_run(request, model, x, progress, cancel)
    disk.set(key, result)
    return result, False


def seconds(cost: Cost, rate: float) -> float:
    """Estimated wall time of a cost at a measured rate (forward passes per second)."""
    return cost.passes / max(rate, 1e-9)


def measured_rate(model: Any, precision: str = "auto") -> float:
    """Forward passes per second of the vote sampler of `model` on its real path (noise,
    engine, vote counting), measured here (a short probe the first time)."""
    from rsviz.smoothing import estimate_rate

    return estimate_rate(model, precision)


# -- estimates that hold: the view's own actual ÷ estimated time, learned on this machine ----

TIMINGS_KEPT = 5  # a view's factor is the median of its last runs here
MIN_TIMED_S = 2.0  # shorter runs are dominated by start-up noise: not learned from


@dataclass(frozen=True)
class Estimate:
    """Seconds a request will take here: its passes ÷ the sampler's measured rate × the view's
    factor (its actual ÷ estimated time, the median of its last runs on this model and
    forward identity; before any run, the prior measured by bench/defaults.py)."""

    seconds: float
    cost: Cost
    rate: float
    factor: float
    runs: int

    @property
    def passes(self) -> int:
        return self.cost.passes

    def describe(self) -> str:
        basis = (f"× {self.factor:.2f} learned from {self.runs} run{'s' * (self.runs > 1)} here"
                 if self.runs else f"× {self.factor:.2f} (prior)")
        return f"at the measured {self.rate:,.0f} passes/s {basis}"


def _timings_path():
    from rsviz.cache import cache_dir

    return cache_dir() / "timings.json"


def _timing_key(name: str, model: Any, forward: str) -> str:
    import torch

    return "|".join((name, model.info.model_id, forward or model.device.type,
                     str(torch.get_num_threads())))


def _prior(name: str) -> float:
    from rsviz.config import OVERHEAD

    page = {"image-votes": "image", "theory-vs-practice": "attack",
            "attack-compare": "attack"}.get(name, name)
    return OVERHEAD.get(page, 1.0)


def view_factor(name: str, model: Any, forward: str) -> tuple[float, int]:
    """(actual ÷ estimated time of view `name` on `model` run with `forward`, runs behind it):
    see `Estimate`."""
    import json
    import statistics

    try:
        stored = json.loads(_timings_path().read_text(encoding="utf-8"))
        ratios = [float(r) for r in stored.get(_timing_key(name, model, forward), [])]
    except (OSError, ValueError, TypeError, AttributeError):
        ratios = []
    ratios = [r for r in ratios if 0.05 < r < 50]
    return (statistics.median(ratios), len(ratios)) if ratios else (_prior(name), 0)


def estimate(request: Request, model: Any) -> Estimate:
    """How long `request` will take here (`Estimate`); the page and the CLI show it."""
    cost, rate = request.cost(), measured_rate(model)
    factor, runs = view_factor(request.NAME, model, request.forward)
    return Estimate(seconds(cost, rate) * factor, cost, rate, factor, runs)


def record_timing(request: Request, model: Any, elapsed: float) -> None:
    """Learn this view's factor from a finished run (`Estimate`); never fails the run."""
    import json

    from rsviz.storage import write_json_atomic

    if elapsed < MIN_TIMED_S:
        return
    try:
        base = seconds(request.cost(), measured_rate(model))
        if base <= 0:
            return
        path = _timings_path()
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            stored = stored if isinstance(stored, dict) else {}
        except (OSError, ValueError):
            stored = {}
        key = _timing_key(request.NAME, model, request.forward)
        stored[key] = [*stored.get(key, []), round(elapsed / base, 4)][-TIMINGS_KEPT:]
        write_json_atomic(path, stored)
    except Exception:  # noqa: BLE001 - a full disk or odd file only costs the learning
        pass


def timed_run(request: Request, model: Any, x: Any, progress: Any = None,
              cancel: Any = None) -> Any:
    """`request.run(...)` after `check_inputs` (the app's jobs share one model between
    sessions: an engine switched meanwhile must not be stored under this key), its wall time
    learned for later estimates (`record_timing`) unless the result says it reused cached
    parts ("reused")."""
    import time

    request.check_inputs(model, x)
    started = time.perf_counter()
    result = request.run(model, x, progress, cancel)
    if not (isinstance(result, dict) and result.get("reused")):
        record_timing(request, model, time.perf_counter() - started)
    return result
