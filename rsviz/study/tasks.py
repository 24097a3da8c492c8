"""Study tasks: CERTIFY of one image at one σ, or one attack on one image against one
configuration — each a pure function of its inputs and its derived seed, identified by a
content key (`task_id`) that names the model by its id (weights included), never its name,
and the forward identity that runs it (`rsviz.identity`: device, arithmetic, engine), so a
GPU bf16 result and a CPU fp32 result of the same task never share an id.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from rsviz.cache import make_key
from rsviz.certification import (CertificationConfig, certify_image, certify_seed,
                                 derive_seed)
from rsviz.config import RS_AWARE_REVISION
from rsviz.engines import forward_of, match_forward
from rsviz.images import tensor_hash
from rsviz.imagesets import ImageSet
from rsviz.progress import Progress
from rsviz.models import Classifier
from rsviz.smoothing import forward_labels, make_generator, sample_votes
from rsviz.study.plan import Configuration, StudyPlan

AttackFn = Callable[..., Any]  # rsviz.attacks.run_attack's signature


@dataclass(frozen=True)
class ImageRef:
    """An image of the set as a task sees it: where to load it, its label, its content hash
    (of the tensor preprocessed for the task's model)."""

    idx: int
    name: str
    ref: str
    label: int
    hash: str
    model: str = ""


@dataclass(frozen=True)
class CertifyTask:
    """CERTIFY one image at one σ with the plan's settings (n0, n, α, the plan's base seed),
    through rsviz.certification's one CERTIFY and its seed rule."""

    model: str
    image: ImageRef
    sigma: float
    settings: CertificationConfig
    forward: str = ""  # rsviz.identity tag; "" only for tasks built before identities

    kind = "certify"

    @property
    def seed(self) -> int:
        """The seed of this image's noise at σ (certify_seed: what certify_one uses)."""
        return certify_seed(self.settings.seed, self.sigma, self.image.hash)

    @property
    def cost(self) -> int:
        return self.settings.n0 + self.settings.n

    @property
    def task_id(self) -> str:
        s = self.settings
        return make_key("certify", self.model, self.image.hash, self.image.label, self.sigma,
                        s.n0, s.n, s.alpha, self.seed, *_identity(self.forward))


@dataclass(frozen=True)
class AttackTask:
    """One attack on one image against one configuration."""

    model: str
    image: ImageRef
    config: Configuration
    attack: str
    budget: int
    seed: int
    start_seed: int
    params: tuple[tuple[str, Any], ...] = ()
    variant: str = "plain"
    forward: str = ""  # rsviz.identity tag; "" only for tasks built before identities

    kind = "attack"

    @property
    def cost(self) -> int:
        return self.budget * (self.config.n or 1)

    @property
    def task_id(self) -> str:
        # plain ids unchanged; RS-aware ids carry the variant's revision (2: the final push);
        # attacks on f run through the fp32 engine since 2026-12-07 (were eager, same tag)
        variant = [] if self.variant == "plain" else [self.variant, RS_AWARE_REVISION]
        variant += [] if self.config.defended else ["f-engine"]
        return make_key("attack", self.model, self.image.hash, self.image.label, self.config,
                        self.attack, self.budget, self.seed, self.start_seed, list(self.params),
                        *variant, *_identity(self.forward))


Task = CertifyTask | AttackTask


def _identity(forward: str) -> list[str]:
    """The forward identity's part of a task id (none for tasks without one: the ids of
    results stored before identities, which open as "legacy")."""
    return [f"forward={forward}"] if forward else []


def image_refs(images: ImageSet, tensors: Sequence[torch.Tensor],
               model_id: str = "") -> list[ImageRef]:
    return [ImageRef(i, e.name, e.ref, e.label, tensor_hash(x), model_id)
            for i, (e, x) in enumerate(zip(images.entries, tensors))]


def build_tasks(plan: StudyPlan, refs: Sequence[ImageRef], model_id: str,
                forward: str = "") -> list[Task]:
    """Every task of the plan for one model run with forward identity `forward`, image by
    image (so partial results cover every configuration early): CERTIFY at each σ, then each
    configuration × attack."""
    tasks: list[Task] = []
    for image in refs:
        if plan.certify is not None:
            for sigma in plan.sigmas:
                tasks.append(CertifyTask(model_id, image, float(sigma), plan.certify, forward))
        for config in plan.configurations():
            for attack in plan.attacks:
                params = tuple(sorted(plan.attack_params.get(attack, {}).items()))
                tasks.append(AttackTask(model_id, image, config, attack, plan.budget,
                                        derive_seed(plan.seed, image.hash, config.label(), attack),
                                        derive_seed(plan.seed, image.hash, config.label(), "start"),
                                        params, plan.variant, forward))
    return tasks


def describe(task: Task) -> str:
    if isinstance(task, CertifyTask):
        return f"certify {task.image.name} at σ={task.sigma:g}"
    return f"{task.attack} on {task.image.name} vs {task.config.label()}"


def _start_correct(model: Classifier, x: torch.Tensor, y: int, config: Configuration,
                   seed: int) -> tuple[bool, int, int]:
    """Is the attacked classifier right at x_o? f: its label; g_{σ,n}: one vote of n
    (random tie-break). Returns (correct, decision, forward passes)."""
    if not config.defended:
        label = int(forward_labels(model, x[None])[0])
        return label == y, label, 1
    record = sample_votes(model, x[None], config.sigma, config.n,  # type: ignore[arg-type]
                          make_generator(seed, model.device))
    rng = np.random.default_rng(seed)
    decision = int(record.g_draws(config.n, rng)[0, 0])  # type: ignore[arg-type]
    return decision == y, decision, record.forward_passes


def execute_task(task: Task, model: Classifier, x: torch.Tensor,
                 attack_fn: AttackFn | None = None,
                 progress: Progress | None = None) -> dict[str, Any]:
    """Run one task; the result is a JSON-ready dict (a pure function of task and x). The model
    first runs the task's forward identity (`rsviz.engines.match_forward`), which the result
    records."""
    started = time.perf_counter()
    forward = match_forward(model, task.forward) if task.forward else forward_of(model).tag()
    base = {"task_id": task.task_id, "kind": task.kind, "model": task.model, "forward": forward,
            "image": task.image.name, "image_idx": task.image.idx, "image_hash": task.image.hash,
            "label": task.image.label, "seed": task.seed}
    if isinstance(task, CertifyTask):
        row = certify_image(model, x, task.image.label, task.sigma, task.settings,
                            task.image.idx, task.image.name, progress)
        s = task.settings
        return {**base, "sigma": task.sigma, "n0": s.n0, "n": s.n, "alpha": s.alpha,
                "predict": row.predict, "radius": row.radius, "correct": bool(row.correct),
                "p_lower": row.p_lower, "f_predict": row.f_predict,
                "forward_passes": row.forward_passes, "seconds": time.perf_counter() - started}
    config = task.config
    y = task.image.label
    correct, decision, passes = _start_correct(model, x, y, config, task.start_seed)
    out = {**base, "sigma": config.sigma, "n": config.n, "criterion": config.criterion,
           "p_a": config.p_a, "configuration": config.label(), "attack": task.attack,
           "budget": task.budget, "variant": task.variant, "start_correct": correct, "start_label": decision,
           "l2": 0.0, "linf": 0.0, "queries": 0, "forward_passes": passes, "success": None}
    if correct:  # a misclassified image needs no attack (distortion 0, as foolbox counts it)
        if attack_fn is None:
            from rsviz.attacks import run_attack as attack_fn  # noqa: N813
        variant = {} if task.variant == "plain" else {"variant": task.variant}
        trace = attack_fn(model, x, y, task.attack, config.oracle_config(task.budget, task.seed),
                          task.seed, progress=progress, params=dict(task.params) or None,
                          **variant)
        success = bool(getattr(trace, "success"))
        l2, linf = (float(trace.l2), float(trace.linf)) if success else (None, None)
        x_adv = getattr(trace, "x_adv", None)
        if success and isinstance(x_adv, torch.Tensor):  # the oracle's closest accepted point
            delta = (x_adv.detach().cpu().float() - x.detach().cpu().float()).flatten()
            l2, linf = float(delta.norm()), float(delta.abs().max())
        out.update(l2=l2, linf=linf,
                   queries=int(trace.queries), success=success,
                   p_a_empirical=getattr(trace, "p_a_empirical", None),
                   forward_passes=passes + int(getattr(trace, "forward_passes", 0) or 0))
    out["seconds"] = time.perf_counter() - started
    return out
