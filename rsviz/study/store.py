"""Where study results live: one JSON file per finished task under `<folder>/tasks/`, written
atomically (temporary file, then rename) and mirrored in the disk cache, so a run that stops
at any moment resumes without redoing a stored task — whichever runner wrote it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from rsviz.cache import default_cache, make_key
from rsviz.storage import write_json_atomic, write_text_atomic


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Rows of dicts as CSV (header from the first row), written atomically."""
    import csv
    import io

    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return write_text_atomic(path, buffer.getvalue(), newline="")


class ResultStore:
    """One JSON file per finished task under `<folder>/tasks/`, mirrored in the disk cache."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.tasks_dir = self.folder / "tasks"

    def _path(self, task_id: str) -> Path:
        return self.tasks_dir / f"{task_id}.json"

    def load(self, task_id: str) -> dict[str, Any] | None:
        """A finished task's result (from its file, else from the disk cache), or None."""
        path = self._path(task_id)
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                pass  # a torn or corrupt file: recompute
        cached = default_cache().get(make_key("study-task", task_id))
        if cached is not None:
            write_json_atomic(path, cached)
        return cached

    def save(self, task_id: str, result: dict[str, Any]) -> None:
        write_json_atomic(self._path(task_id), result)
        default_cache().set(make_key("study-task", task_id), result)

    def save_failures(self, failures: Sequence[dict[str, Any]]) -> None:
        """`failed.json`: the tasks that raised in the last run (none: the file is removed)."""
        path = self.folder / "failed.json"
        if failures:
            write_json_atomic(path, list(failures))
        elif path.exists():
            path.unlink()

    def results(self) -> list[dict[str, Any]]:
        """Every stored result (in file-name order)."""
        out = []
        for path in sorted(self.tasks_dir.glob("*.json")):
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return out
