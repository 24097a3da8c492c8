"""Forward engines of the vote sampler, chosen by measurement (docs/engines.md).

    engine, choice = choose_engine(model)        # measured once per model and machine, cached
    attach(model, engine, choice)                 # the vote sampler now runs through it
    choice.summary()                              # "openvino: 60.1 passes/s at batch 16 (measured)"
    use_best_engine(model, force=None)            # both steps; $RSVIZ_ENGINE forces one

Only no-grad label forwards use the attached engine (`rsviz.smoothing.batching.vote_forward`):
the vote sampler's, and the fp32 queries of attacks against f when the engine runs fp32;
gradients and clean labels keep the fp32 module.
Importing this package is cheap: torch loads with the first selection.
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Any

from rsviz.engines.attached import attach, choice_of, detach, engine_of

log = logging.getLogger(__name__)
_LOCK = threading.Lock()

ENGINE_NAMES = ("eager", "eager_nchw", "eager_bf16", "eager_fp16", "compile", "openvino")
_LAZY = {"Engine": "candidates", "EngineUnavailable": "candidates",
         "CHECK_INPUTS": "select", "CHECK_SIGMA": "select", "MIN_AGREEMENT": "select",
         "CandidateReport": "select", "EngineChoice": "select", "choose_engine": "select",
         "cpu_flags": "select", "cached_choice": "select", "environment_force": "select", "machine_key": "select"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"rsviz.engines.{_LAZY[name]}"), name)
    raise AttributeError(name)


def precision_of(model, precision: str = "auto") -> str:
    """The arithmetic a forward pass of `model` runs at: `precision` when concrete; "auto" is
    the attached engine's own (eager fp32 without one). The one rule behind every "auto"."""
    if precision != "auto":
        return precision
    engine = engine_of(model)
    return engine.precision if engine is not None else "fp32"


def forward_of(model, precision: str = "auto"):
    """The `rsviz.identity.Forward` of the vote sampler's forward passes of `model` at
    `precision`: its device, the arithmetic that runs, the engine and versions. Settles the
    engine decision first (the cached or measured choice, `first_use`) when none is attached."""
    import torch

    from rsviz.identity import Forward
    if "rsviz_engine" not in model.__dict__:
        first_use(model)
    engine = engine_of(model)
    if engine is None:
        base = Forward(model.device.type, "fp32", "eager", "", torch.__version__)
    else:
        base = Forward(model.device.type, engine.precision, engine.identity_name,
                       engine.version, torch.__version__)
    return base.with_precision(precision_of(model, precision))


def match_forward(model, tag: str) -> str:
    """Make `model` run the forward identity `tag` under "auto" (a study task's, planned where
    the study started and checked for fidelity there): the engine of that identity is built
    and attached when the one attached differs. Returns `tag`; raises RsvizError when this
    process cannot run it (another device, version or engine)."""
    from rsviz.engines.candidates import candidates
    from rsviz.engines.select import _build
    from rsviz.errors import RsvizError
    from rsviz.identity import Forward
    wanted = Forward.parse(tag)
    if forward_of(model).tag() != tag:
        if (wanted.engine, wanted.precision) == ("eager", "fp32"):
            attach(model, None)
        found = [e for e in candidates(model, tuple(model.info.input_shape))
                 if (e.identity_name, e.precision) == (wanted.engine, wanted.precision)
                 and (e.identity_name, e.precision) != ("eager", "fp32")]
        if found and _build(found[0]) is None:
            attach(model, found[0])
        running = forward_of(model)
        if running.tag() != tag:
            raise RsvizError(f"This process runs {running.describe()} ({running.tag()}), not the "
                             f"task's {wanted.describe()} ({tag}).")
    return tag


def describe_forward(model, tag: str | None = None) -> str:
    """A forward identity in words (`tag`, else the model's own), with the attached engine's
    batch when that engine runs it: 'OpenVINO fp32, batch 4, CPU'."""
    from rsviz.identity import Forward
    forward = Forward.parse(tag) if tag else forward_of(model)
    engine = engine_of(model)
    served = engine is not None and (forward.engine, forward.precision) == (
        engine.identity_name, engine.precision)
    return forward.describe(engine.batch_size if served else None)


def use_best_engine(model, force: str | None = None, measure: bool = True, **kwargs):
    """Choose and attach the vote sampler's engine; returns the `EngineChoice` or None.

    `force` (else $RSVIZ_ENGINE) names an engine; None/"auto": the fastest measured one. A
    cached choice is used as is. Otherwise, with measure=False nothing is measured and eager
    fp32 stays (None is returned); models with small inputs (tests, toys) keep eager fp32
    unless an engine is forced: their forwards take microseconds.
    """
    import math

    from rsviz.device import LARGE_INPUT
    from rsviz.engines.select import cached_choice, choose_engine, environment_force
    force = force or environment_force()
    force = None if force in ("", "auto") else force
    if force == "eager":
        attach(model, None, None)
        return None
    if force is None and cached_choice(model) is None and (
            not measure or math.prod(model.info.input_shape) < LARGE_INPUT):
        attach(model, None, None)
        return None
    engine, choice = choose_engine(model, force=force, **kwargs)
    attach(model, engine, choice)
    return choice


def ensure_engine(model, force: str | None = None, report=None):
    """The engine for `force` ("auto"/None: measured) attached to `model`, selecting it only
    when no decision for that `force` is attached yet; returns the `EngineChoice` or None
    (eager fp32). The app's sidebar calls it on every rerun."""
    force = None if force in (None, "", "auto") else force
    with _LOCK:
        if "rsviz_engine" in model.__dict__ and model.__dict__.get("rsviz_engine_force") == force:
            return choice_of(model)
        choice = use_best_engine(model, force=force or "auto", report=report)
        model.__dict__["rsviz_engine_force"] = force
        return choice


def needs_measurement(model, force: str | None = None) -> bool:
    """True when `ensure_engine(model, force)` would measure engines (seconds to a minute)
    rather than read the cached choice or keep eager fp32 for a small input."""
    import math

    from rsviz.device import LARGE_INPUT
    from rsviz.engines.select import cached_choice
    force = None if force in (None, "", "auto") else force
    if "rsviz_engine" in model.__dict__ and model.__dict__.get("rsviz_engine_force") == force:
        return False
    if force == "eager":
        return False
    if force is None:
        return cached_choice(model) is None and math.prod(model.info.input_shape) >= LARGE_INPUT
    return True


def first_use(model) -> None:
    """Called by the vote sampler for a model without an engine decision: use the cached or
    freshly measured choice (`use_best_engine`); any failure leaves eager fp32, logged."""
    with _LOCK:
        if "rsviz_engine" in model.__dict__:
            return
        try:
            choice = use_best_engine(model, report=lambda message: log.warning(
                "rsviz engines (%s, once per model and machine): %s",
                model.info.model_id, message))
        except Exception as error:  # noqa: BLE001 - an engine problem must not stop sampling
            log.warning("rsviz engines: selection failed (%s); using eager fp32", error)
            attach(model, None, None)
            return
        if choice is not None and not choice.cached:
            log.warning("rsviz engines: %s", choice.summary())


__all__ = ["describe_forward", "forward_of", "match_forward", "precision_of", "ensure_engine", "first_use", "needs_measurement", "ENGINE_NAMES", "attach", "choice_of", "engine_of", "use_best_engine", *_LAZY]
