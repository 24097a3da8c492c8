"""Profile view: probability of being adversarial along x_a − x_o, with SORM (paper Fig. 1)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rsviz.views.base import Cost, Request, progress_of


@dataclass(frozen=True, kw_only=True)
class ProfileRequest(Request):
    """One profile: the engine's ProfileConfig. The result is {"profile": ProfileResult,
    "seconds": wall time}."""

    NAME = "profile"
    VERSION = "3"  # 2: the default window is drawn around ∂g_σ, searched first; 3: points
    # dense where p̂_y falls when ∂g_σ is far, the window past the search bracket's far end

    config: Any

    def cost(self) -> Cost:
        """An estimate: the votes are exact (points × N); the white-box attack's passes
        depend on the image."""
        return Cost(self.config.estimated_passes(), "about")

    def run(self, model: Any, x: Any, progress: Any = None, cancel: Any = None) -> dict:
        from rsviz.profile import compute_profile

        started = time.perf_counter()
        result = compute_profile(model, x, self.config, progress=progress_of(progress, cancel))
        return {"profile": result, "seconds": time.perf_counter() - started}

    def summary(self, result: dict) -> dict[str, Any]:
        from rsviz.config import to_dict
        from rsviz.profile import summary

        return {"config": to_dict(self.config), **summary(result["profile"]),
                "seconds": result["seconds"]}
