"""Certification view: Cohen et al.'s CERTIFY on one image at one or more σ.

The image's label is f's own prediction (no ground truth for one image). Each σ uses a seed
derived from (seed, σ), as over an image set, so one image certified here and the same image
in a set run agree. Image sets go through rsviz.certification.run_certification (Cohen's TSV,
resumable). See docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rsviz.views.base import Cost, Request, progress_of


@dataclass(frozen=True, kw_only=True)
class CertifyRequest(Request):
    """CERTIFY at every σ of `sigmas` with n0 selection votes and n votes for the bound."""

    NAME = "certify"
    VERSION = "1"
    NOT_IN_KEY = ("batch_size", "name")

    sigmas: tuple[float, ...] = (0.25,)
    n0: int = 64
    n: int = 512
    alpha: float = 0.001
    seed: int = 0
    batch_size: int | None = None
    precision: str = "auto"
    name: str = ""

    def __post_init__(self) -> None:
        self.config()

    def config(self) -> Any:
        from rsviz.certification import CertificationConfig

        return CertificationConfig(sigmas=tuple(self.sigmas), n0=self.n0, n=self.n,
                                   alpha=self.alpha, seed=self.seed, batch_size=self.batch_size,
                                   precision=self.precision)

    def cost(self) -> Cost:
        return Cost(1 + len(self.sigmas) * (self.n0 + self.n + 1), "exact")

    def run(self, model: Any, x: Any, progress: Any = None, cancel: Any = None) -> list[Any]:
        from rsviz.certification import certify_image, derive_seed
        from rsviz.smoothing import forward_labels

        progress = progress_of(progress, cancel)
        label = int(forward_labels(model, x[None])[0])
        return [certify_image(model, x, label, sigma, self.n0, self.n, self.alpha,
                              derive_seed(self.seed, f"{sigma:g}", 0), 0, self.name,
                              self.batch_size, self.precision, progress)
                for sigma in self.sigmas]

    def summary(self, rows: list[Any], class_name: Callable[[int], str] = str) -> dict[str, Any]:
        out = [{"sigma": sigma, "predict": row.predict, "predict_name": class_name(row.predict),
                "radius": row.radius, "p_lower": row.p_lower,
                "forward_passes": row.forward_passes, "time": row.time,
                "f_predict": row.f_predict} for sigma, row in zip(self.sigmas, rows)]
        return {"n0": self.n0, "n": self.n, "alpha": self.alpha, "seed": self.seed, **out[0],
                "runs": out}
