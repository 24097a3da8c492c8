"""The engine decision attached to a model: which engine runs the vote sampler's forwards of
it, and the measured choice behind it (attributes of the model's `__dict__`, torch-free)."""

from __future__ import annotations


def attach(model, engine, choice=None) -> None:
    """Route the vote sampler's forwards of `model` through `engine` (None: eager fp32)."""
    model.__dict__["rsviz_engine"] = engine
    model.__dict__["rsviz_engine_choice"] = choice


def detach(model) -> dict:
    """Remove the engine decision attached to `model` (the vote sampler chooses again at first
    use); returns the removed attributes, so a caller can put them back."""
    return {k: model.__dict__.pop(k) for k in list(model.__dict__) if k.startswith("rsviz_engine")}


def engine_of(model):
    """The engine attached to `model` (None: eager fp32)."""
    return model.__dict__.get("rsviz_engine")


def choice_of(model):
    """The measured choice attached with the engine (None before any selection)."""
    return model.__dict__.get("rsviz_engine_choice")
