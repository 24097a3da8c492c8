"""Certification view: Cohen et al.'s CERTIFY on one image at one or more σ.

The image's label is f's own prediction (no ground truth for one image). Each σ runs
rsviz.certification.certify_one, seeded by its one rule (base seed, σ, the image's content),
so one image certified here, on the image page, in a set run and in a study agree. Image sets
go through rsviz.certification.run_certification (Cohen's TSV, resumable). See
docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from rsviz.views.base import Cost, Request, progress_of


@dataclass(frozen=True, kw_only=True)
class CertifyRequest(Request):
    """CERTIFY at every σ of `config.sigmas` (a CertificationConfig: n0 selection votes, n
    votes for the bound, α, seed, batch size, precision) on one image called `name`."""

    NAME = "certify"
    VERSION = "3"  # 2: the settings are one CertificationConfig; 3: certify_seed's rule
    NOT_IN_KEY = ("name",)

    config: Any
    name: str = ""

    def key(self) -> str:
        """The batch size does not change the votes: left out of the key."""
        return Request.key(replace(self, config=replace(self.config, batch_size=None)))

    def cost(self) -> Cost:
        c = self.config
        return Cost(1 + len(c.sigmas) * (c.n0 + c.n + 1), "exact")

    def run(self, model: Any, x: Any, progress: Any = None, cancel: Any = None) -> list[Any]:
        from rsviz.certification import certify_image
        from rsviz.smoothing import forward_labels

        progress = progress_of(progress, cancel)
        label = int(forward_labels(model, x[None])[0])
        return [certify_image(model, x, label, sigma, self.config, 0, self.name, progress)
                for sigma in self.config.sigmas]

    def summary(self, rows: list[Any], class_name: Callable[[int], str] = str) -> dict[str, Any]:
        out = [{"sigma": sigma, "predict": row.predict, "predict_name": class_name(row.predict),
                "radius": row.radius, "p_lower": row.p_lower,
                "forward_passes": row.forward_passes, "time": row.time,
                "f_predict": row.f_predict} for sigma, row in zip(self.config.sigmas, rows)]
        c = self.config
        return {"n0": c.n0, "n": c.n, "alpha": c.alpha, "seed": c.seed, **out[0],
                "runs": out}
