"""Turning an image name into the model's input: a file path, `sample:NAME` or a sample name."""

from __future__ import annotations

import os
from typing import Any

from rsviz.errors import ImageError


def load_image(spec: str, model: Any) -> tuple[Any, str]:
    """Image tensor [3,H,W] preprocessed for the model, and its display name."""
    from rsviz.images import SAMPLES, load_image_file, load_sample, model_input

    if spec.startswith("sample:"):
        loaded = load_sample(spec[len("sample:"):])
    elif not os.path.exists(spec) and spec in SAMPLES:
        loaded = load_sample(spec)
    else:
        if not os.path.exists(spec):
            raise ImageError(f"{spec}: no such file (samples: "
                             + ", ".join(f"sample:{s}" for s in SAMPLES) + ").")
        loaded = load_image_file(spec)
    return model_input(loaded.original, model), loaded.name
