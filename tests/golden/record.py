"""Re-record golden outputs: `python -m tests.golden.record [NAME ...]` (default: all cases).

Run it only after a change that is meant to change numbers, and say why in the commit.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from tests.golden.cases import CASES, golden_path, normalize, run_case


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"unknown case(s) {', '.join(unknown)}; cases: {', '.join(CASES)}", file=sys.stderr)
        return 2
    os.environ.setdefault("RSVIZ_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RSVIZ_CACHE_DIR"] = str(Path(tmp) / "cache")
        for name in names or list(CASES):
            result = normalize(run_case(name, Path(tmp)))
            golden_path(name).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
            print(f"recorded {golden_path(name).name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
