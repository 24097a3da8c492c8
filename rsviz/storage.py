"""Plain JSON values and atomic file writes: the one copy every module uses.

`to_jsonable` turns engine values (numpy and torch arrays or scalars, dataclasses, paths)
into JSON types; the writers put text in a temporary file beside the target and rename it
over the target, so a crash or a stop never leaves a torn file. Nothing here imports numpy,
torch or plotly: the CLI can use it before any heavy import.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Plain JSON types from numpy/torch values, dataclasses, paths; NaN -> None, ±inf -> str.

    Mappings get string keys; tuples and sets become lists; anything else unknown becomes
    its `str`.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "detach") and hasattr(value, "tolist"):  # torch.Tensor
        return to_jsonable(value.detach().cpu().tolist())
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy array or scalar
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def write_text_atomic(path: str | Path, text: str, newline: str | None = None) -> Path:
    """Write `text` (UTF-8) to a temporary file beside `path`, then rename it over `path`.

    Args:
        path: the target; missing parent folders are created.
        text: the whole content.
        newline: passed to `open` (use "" for CSV written with explicit line ends).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json_atomic(path: str | Path, payload: Any, indent: int | None = 1) -> Path:
    """Write `to_jsonable(payload)` as JSON to `path` atomically (see `write_text_atomic`)."""
    return write_text_atomic(path, json.dumps(to_jsonable(payload), indent=indent))
