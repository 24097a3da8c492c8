"""Study view: certification and attacks over an image set (paper Fig. 4 and Fig. 5).

A study's store is its results folder (one JSON per task, resumable), not the disk cache:
the CLI and the page open the same folder. `StudyRequest.key()` still names the run for the
job manager. The engine is rsviz.study; this module only adapts it to the view interface.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsviz.views.base import Cost, Request, progress_of

COLUMNS = ("model", "sigma", "n", "criterion", "p_a", "attack", "variant", "images", "accuracy",
           "success_rate", "mean_l2", "median_l2", "mean_linf", "mean_queries",
           "mean_forward_passes", "median_ratio")


@dataclass(frozen=True, kw_only=True)
class StudyRequest(Request):
    """Run (or resume) `plan` into folder `out`. `images` (an ImageSet) replaces the plan's
    image block when given; its entries are keyed by `fingerprint`; `base` is the folder that
    relative image paths of the plan start from."""

    NAME = "study"
    VERSION = "1"
    NEEDS_FORWARD = False  # each task records the forward identity that ran it

    plan: Any
    out: str
    base: str | None = None
    fingerprint: tuple = ()
    runner: str = field(default="local", compare=False)
    address: str | None = field(default=None, compare=False)
    images: Any = field(default=None, compare=False, repr=False)

    def n_images(self) -> int:
        if self.images is not None:
            return len(self.images)
        return self.plan.images.subset or 0

    def cost(self) -> Cost:
        """At most: every attack spends its budget × the largest n, plus CERTIFY's votes, for
        every model of the plan (0 images when the plan's image set is not resolved yet)."""
        plan = self.plan
        configs = plan.configurations()
        per_model = len(configs) * len(plan.attacks) * plan.budget * max(
            [c.n or 1 for c in configs] or [1])
        if plan.certify:
            per_model += len(plan.sigmas) * (plan.certify.n0 + plan.certify.n)
        return Cost(self.n_images() * len(plan.models) * per_model, "at most")

    def run(self, model: Any, x: Any = None, progress: Any = None, cancel: Any = None) -> Any:
        from rsviz.study import make_runner, run_study

        device = model.device if model is not None else self.device
        return run_study(self.plan, self.out, model=model, images=self.images, device=device,
                         runner=make_runner(self.runner, self.address),
                         progress=progress_of(progress, cancel), base=self.base)

    def summary(self, study: Any) -> dict[str, Any]:
        rows = [{k: r[k] for k in COLUMNS} for r in study.summary()]
        return {"plan": self.plan.name, "out": str(self.out), "images": len(study.images),
                "tasks": len(study.results), "executed": study.executed,
                "reused": study.reused, "rows": rows, "certification": study.accuracy_drop()}


def request_for(plan: Any, out: str, model: Any = None, images: Any = None,
                base: str | None = None, device: str = "cpu", runner: str = "local",
                address: str | None = None) -> StudyRequest:
    """A study request; `model` is the loaded model the plan names (it is keyed by its model
    id, weights included), None when the plan's models are loaded when it runs."""
    fingerprint = tuple((e.ref, e.label) for e in images.entries) if images is not None else ()
    return StudyRequest(model_id=models_id(plan, model), image_hash="", device=device,
                        plan=plan, out=str(out), base=base, fingerprint=fingerprint,
                        images=images, runner=runner, address=address)


def _is_loaded(ref: str, model: Any) -> bool:
    """Whether the plan's model reference `ref` is the loaded `model` (its name or its id)."""
    return model is not None and ref in (model.info.name, model.info.model_id)


def names_model(plan: Any, model: Any) -> bool:
    """Whether `plan` names the loaded `model` (by its name or its id): the plan then runs on
    it, and its images are resolved against its classes."""
    return any(_is_loaded(ref, model) for ref in plan.models)


def models_id(plan: Any, model: Any = None) -> str:
    """The plan's models as one string, the loaded `model` by its id (not its name)."""
    return "+".join(model.info.model_id if _is_loaded(ref, model) else ref
                    for ref in plan.models)


def results_name(plan: Any, model: Any, key: str) -> str:
    """A results folder name for the app: plan name, model id(s), end of the request key."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", f"{plan.name}-{models_id(plan, model)}-{key[-12:]}")


def app_request(plan: Any, root: Any, model: Any = None, images: Any = None,
                device: str = "cpu", runner: str = "local",
                address: str | None = None) -> StudyRequest:
    """The app's study request, its results folder under `root` named (`results_name`) by the
    key of the same request without a folder: the same plan, models and images land in the
    same folder, so a stopped run resumes there, whatever runner continues it."""
    unplaced = request_for(plan, "", model=model, images=images, device=device,
                           runner=runner, address=address)
    out = Path(root) / results_name(plan, model, unplaced.key())
    return dataclasses.replace(unplaced, out=str(out))
