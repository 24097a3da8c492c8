"""The base classifier's forward pass and the choice of its batch size.

`forward` is the one function through which every vote, lazy vote and clean label of the
engine runs f (`forward_labels`, `rsviz.smoothing.votes`). `BatchTuner` picks the forward
batch size by measuring throughput on the real work; the batch size changes only the
arithmetic of the forward pass, never which noise a sample gets (`rsviz.smoothing.noise`).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from rsviz.device import LARGE_INPUT, autocast, default_batch_size, tcmalloc_loaded
from rsviz.engines import precision_of
from rsviz.progress import NullProgress, Progress
from rsviz.models import Classifier
from rsviz.smoothing.noise import make_generator


def uses_channels_last(model: Classifier) -> bool:
    """Convert a convnet to channels_last once (faster on CPU with oneDNN and on CUDA)."""
    flag = getattr(model, "_rsviz_channels_last", None)
    if flag is None:
        flag = any(isinstance(m, nn.Conv2d) for m in model.modules())
        if flag:
            model.to(memory_format=torch.channels_last)
        model._rsviz_channels_last = flag  # type: ignore[attr-defined]
    return flag


def prepare(model: Classifier, points: torch.Tensor,
            precision: str) -> tuple[torch.Tensor, str, bool]:
    """(points as float32 on the model's device, the concrete precision, whether the model
    runs channels_last): the common start of every vote sampler. "auto" is the attached
    engine's arithmetic (`rsviz.engines.precision_of`), settled here at first use."""
    points = points.to(device=model.device, dtype=torch.float32)
    if "rsviz_engine" not in model.__dict__:  # first use: measured choice (rsviz.engines)
        from rsviz.engines import first_use
        first_use(model)
    return points, precision_of(model, precision), uses_channels_last(model)


def forward(model: Classifier, x: torch.Tensor, precision: str) -> torch.Tensor:
    """Logits (float32) of f on a batch, without gradients, in a concrete precision."""
    with torch.inference_mode(), autocast(x.device, precision):
        return model(x).float()


def vote_engine(model: Classifier, precision: str):
    """The engine attached by `rsviz.engines.attach` when it runs this precision, else None
    (the same rule as `rsviz.identity.Forward.with_precision`)."""
    engine = model.__dict__.get("rsviz_engine")
    if engine is not None and precision_of(model, precision) == engine.precision:
        return engine
    return None


def vote_forward(model: Classifier, x: torch.Tensor, precision: str) -> torch.Tensor:
    """Logits of f for the vote sampler: through the attached engine (`rsviz.engines`, chosen
    for its fidelity to eager fp32) when there is one, else `forward`. Attacks against f come
    here at fp32 (`forward_labels(..., engine=True)`); gradients and clean labels never do."""
    engine = vote_engine(model, precision)
    return forward(model, x, precision) if engine is None else engine.logits(x)


def timed_forward(model: Classifier, x: torch.Tensor, precision: str) -> tuple[torch.Tensor, float]:
    """(labels, seconds) of one forward batch, synchronised on CUDA."""
    started = time.perf_counter()
    labels = forward(model, x, precision).argmax(1)
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    return labels, time.perf_counter() - started


def _candidates(device: torch.device, input_numel: int) -> tuple[int, ...]:
    if device.type == "cuda":
        cap = 2 * default_batch_size(device, input_numel)
        return tuple(b for b in (64, 128, 256, 512, 1024, 2048) if b <= max(cap, 64))
    if input_numel >= LARGE_INPUT:
        return (8, 16, 32, 64, 128)
    base = default_batch_size(device, input_numel)
    return (max(1, base // 4), base, base * 4)


# measured forward rates (images/s) per (model id, device, precision, shape, threads, allocator)
_RATES: dict[tuple, dict[int, float]] = {}


class BatchTuner:
    """Picks the forward batch size by measuring throughput on the real work.

    While a (model, device, precision, input shape) is new, successive batches try the candidate
    sizes in increasing order (each timed on its second, warm, run) until the rate drops below
    85% of the best; afterwards the fastest size is used. Measurements persist for the process,
    so later calls start at the best size. Because noise is drawn in fixed chunks, the batch
    size never changes which noise a sample gets.
    """

    def __init__(self, model: Classifier, precision: str, input_shape: tuple[int, ...],
                 batch_size: int | None = None) -> None:
        self.device = model.device
        numel = int(np.prod(input_shape))
        engine = vote_engine(model, precision)
        self.fixed = batch_size or (engine.batch_size if engine is not None else None)
        self.key = (model.info.model_id, str(self.device), precision, tuple(input_shape),
                    torch.get_num_threads(), tcmalloc_loaded(), getattr(engine, "name", "eager"))
        self.candidates = _candidates(self.device, numel)
        self.rates = _RATES.setdefault(self.key, {})
        self._runs: dict[int, int] = {}
        self.fallback = default_batch_size(self.device, numel)

    @property
    def exploring(self) -> bool:
        if self.fixed is not None:
            return False
        tried = [b for b in self.candidates if b in self.rates]
        if len(tried) == len(self.candidates):
            return False
        best = max(self.rates.values(), default=0.0)
        return not (tried and self.rates[tried[-1]] < 0.85 * best)

    def best(self) -> int:
        """The fastest measured size (the heuristic one before any measurement)."""
        if self.fixed is not None:
            return self.fixed
        if not self.rates:
            return self.fallback
        return max(self.rates, key=self.rates.__getitem__)

    def next_size(self) -> int:
        if not self.exploring:
            return self.best()
        return next(b for b in self.candidates if b not in self.rates)

    def record(self, size: int, seconds: float) -> None:
        """Time of a forward batch of `size` (the first run of each size is a warm-up)."""
        if not self.exploring or size != self.next_size():
            return
        self._runs[size] = self._runs.get(size, 0) + 1
        if self._runs[size] >= 2:
            self.rates[size] = size / max(seconds, 1e-9)


def auto_batch_size(model: Classifier, precision: str = "auto", measure: bool = True,
                    input_shape: tuple[int, ...] | None = None) -> int:
    """The fastest forward batch size for `model` on its device, measured once per process.

    With measure=False, returns the best size measured so far (the heuristic before any).
    Measuring runs each candidate twice on noise images (~3 s for Lite0 on a 2-core CPU).
    """
    precision = precision_of(model, precision)
    shape = tuple(input_shape or model.info.input_shape)
    tuner = BatchTuner(model, precision, shape)
    if measure:
        channels_last = uses_channels_last(model)
        generator = make_generator(0, model.device)
        while tuner.exploring:
            size = tuner.next_size()
            x = torch.rand((size, *shape), generator=generator, device=model.device)
            if channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            tuner.record(size, timed_forward(model, x, precision)[1])
    return tuner.best()


def forward_labels(model: Classifier, points: torch.Tensor, batch_size: int | None = None,
                   precision: str = "auto", progress: Progress | None = None,
                   engine: bool = False) -> np.ndarray:
    """Labels f(x) of the base classifier for each of the m points (no noise); with `engine`,
    through the attached engine when it runs `precision` (`vote_forward`: the attacks on f,
    whose thousands of queries are the page's cost)."""
    device = model.device
    precision = precision_of(model, precision)
    channels_last = uses_channels_last(model)
    batch = batch_size or BatchTuner(model, precision, tuple(points.shape[1:])).best()
    progress = progress or NullProgress()
    out = []
    for start in range(0, len(points), batch):
        progress.check_cancel()
        chunk = points[start:start + batch].to(device=device, dtype=torch.float32)
        if channels_last and chunk.dim() == 4:
            chunk = chunk.contiguous(memory_format=torch.channels_last)
        out.append((vote_forward if engine else forward)(model, chunk, precision).argmax(1).cpu())
        progress.report(min(start + batch, len(points)), len(points), "base classifier f")
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def precision_agreement(model: Classifier, points: torch.Tensor, precision: str = "bf16",
                        batch_size: int | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """Top-1 agreement of f in `precision` (autocast) with fp32 on the same points.

    Returns (fraction of equal labels, fp32 labels, labels in `precision`).
    """
    reference = forward_labels(model, points, batch_size, "fp32")
    labels = forward_labels(model, points, batch_size, precision)
    return float((reference == labels).mean()) if len(labels) else 1.0, reference, labels
