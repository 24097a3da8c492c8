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


GPU_SLQ_STEPS = 10  # SLQ steps of the curvature's log-det on a GPU (ProfileConfig's on a CPU)


def page_config(p_a: float, gpu: bool, **fields: Any) -> Any:
    """The profile page's ProfileConfig from its widgets' `fields`: ProfileConfig's P_a levels
    plus the user's `p_a` (rounded to 4 digits, so 0.8000001 is 0.8), the n values sorted, and
    GPU_SLQ_STEPS SLQ steps on a GPU, where they are cheap."""
    from rsviz.profile import ProfileConfig

    levels = tuple(sorted({*ProfileConfig.p_levels, round(p_a, 4)}))
    if gpu:
        fields["slq_steps"] = GPU_SLQ_STEPS
    return ProfileConfig(**{**fields, "n_values": tuple(sorted(fields["n_values"]))},
                         p_levels=levels)
