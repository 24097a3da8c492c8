"""Forward engines of the vote sampler, chosen by measurement (docs/engines.md).

    engine, choice = choose_engine(model)        # measured once per model and machine, cached
    attach(model, engine, choice)                 # the vote sampler now runs through it
    choice.summary()                              # "openvino: 60.1 passes/s at batch 16 (measured)"
    use_best_engine(model, force=None)            # both steps; $RSVIZ_ENGINE forces one

Only the no-grad label forwards of the vote sampler (`rsviz.smoothing.batching.vote_forward`)
use the attached engine; gradients, attacks against f and clean labels keep the fp32 module.
Importing this package is cheap: torch loads with the first selection.
"""

from __future__ import annotations

import importlib
from typing import Any

ENGINE_NAMES = ("eager", "eager_nchw", "eager_bf16", "eager_fp16", "compile", "openvino")
_LAZY = {"Engine": "candidates", "EngineUnavailable": "candidates", "candidates": "candidates",
         "CHECK_INPUTS": "select", "CHECK_SIGMA": "select", "MIN_AGREEMENT": "select",
         "CandidateReport": "select", "EngineChoice": "select", "choose_engine": "select",
         "cpu_flags": "select", "environment_force": "select", "machine_key": "select"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"rsviz.engines.{_LAZY[name]}"), name)
    raise AttributeError(name)


def attach(model, engine, choice=None) -> None:
    """Route the vote sampler's forwards of `model` through `engine` (None: eager fp32)."""
    from rsviz.device import resolve_precision
    model.__dict__["rsviz_engine"] = engine
    model.__dict__["rsviz_engine_choice"] = choice
    model.__dict__["rsviz_engine_precision"] = resolve_precision("auto", model.device)


def engine_of(model):
    """The engine attached to `model` (None: eager fp32)."""
    return model.__dict__.get("rsviz_engine")


def choice_of(model):
    """The measured choice attached with the engine (None before any selection)."""
    return model.__dict__.get("rsviz_engine_choice")


def use_best_engine(model, force: str | None = None, **kwargs):
    """Choose (measured, cached on disk) and attach the engine; $RSVIZ_ENGINE forces one.

    Returns the `EngineChoice` (its `summary()` and `reports` are what the page shows)."""
    from rsviz.engines.select import choose_engine, environment_force
    engine, choice = choose_engine(model, force=force or environment_force(), **kwargs)
    attach(model, engine, choice)
    return choice


__all__ = ["ENGINE_NAMES", "attach", "choice_of", "engine_of", "use_best_engine", *_LAZY]
