"""Study plans: which models, images, defended configurations and attacks (YAML or JSON).

A plan expands into configurations (the undefended f, then σ × n × criterion × P_a) and, with
an image set, into tasks (`rsviz.study.tasks`). `check_plan` finds what would make a run fail
— an unknown model or attack, a missing image folder — before anything runs.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Sequence

from rsviz.attacks.oracle import CRITERIA, OracleConfig
from rsviz.certification import CertificationConfig
from rsviz.config import check_count, check_probability, check_sigma
from rsviz.errors import ConfigError, RsvizError
from rsviz.imagesets import ImageSetSpec
from rsviz.models.refs import check_model_ref

CERTIFY_KEYS = ("n0", "n", "alpha")  # what a plan says about CERTIFY; σ and seed are the plan's


@dataclass(frozen=True)
class Configuration:
    """One attacked classifier: f (sigma None) or g_{σ,n} with an adversarial criterion."""

    sigma: float | None = None
    n: int | None = None
    criterion: str | None = None
    p_a: float | None = None

    @property
    def defended(self) -> bool:
        return self.sigma is not None

    def oracle_config(self, budget: int, seed: int) -> OracleConfig:
        return OracleConfig(sigma=self.sigma, n=self.n or 1,
                            criterion=self.criterion or "single_draw", p_a=self.p_a or 0.5,
                            budget=budget, seed=seed)

    def label(self) -> str:
        if not self.defended:
            return "f (undefended)"
        text = f"σ={self.sigma:g}, n={self.n}, {self.criterion}"
        return text + (f", P_a={self.p_a:g}" if self.p_a is not None else "")


@dataclass(frozen=True)
class StudyPlan:
    """What to run. Every field has a default; see examples/plan_small.yaml.

    Attributes:
        name: a title for the study.
        models: the models, side by side: model references (registry names, torchvision:NAME,
            timm:NAME, hf-hub:REPO, checkpoint:PATH or ARCH:PATH; rsviz.models.refs).
        images: the image set (samples, or a folder with labels, subset, seed).
        sigmas, ns, criteria, p_as: the grid of defended configurations g_{σ,n}.
        attacks: registry names of the attacks (rsviz.attacks.REGISTRY).
        budget: queries per attack.
        seed: base seed; every task derives its own from it and its identity.
        include_undefended: also attack the base classifier f.
        certify: CERTIFY settings (n0, n, α; its σ values and seed are the plan's), or None.
        attack_params: per-attack hyper-parameters {attack: {name: value}}.
        variant: "plain" (the published attacks) or "rs-aware" (the attacks that know they
            face g_{σ,n}; rsviz.attacks.VARIANTS).
    """

    name: str = "study"
    models: tuple[str, ...] = ("efficientnet_lite0",)
    images: ImageSetSpec = ImageSetSpec()
    sigmas: tuple[float, ...] = (0.25,)
    ns: tuple[int, ...] = (10,)
    criteria: tuple[str, ...] = ("shortcut",)
    p_as: tuple[float, ...] = (0.5,)
    attacks: tuple[str, ...] = ("hsja",)
    budget: int = 500
    seed: int = 0
    include_undefended: bool = True
    certify: CertificationConfig | None = CertificationConfig()
    attack_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    variant: str = "plain"

    def __post_init__(self) -> None:
        from rsviz.attacks import check_variant
        check_variant(self.variant)
        if isinstance(self.models, str):
            object.__setattr__(self, "models", (self.models,))
        if not self.models:
            raise ConfigError("The plan names no model.")
        for sigma in self.sigmas:
            check_sigma(sigma)
        for n in self.ns:
            check_count("n", n)
        for p_a in self.p_as:
            check_probability("P_a", p_a)
        for criterion in self.criteria:
            if criterion not in CRITERIA:
                raise ConfigError(f"Unknown criterion {criterion!r}; use {', '.join(CRITERIA)}.")
        check_count("budget", self.budget)
        if not self.attacks:
            raise ConfigError("The plan names no attack.")
        if not self.configurations():
            raise ConfigError("The plan has no configuration: give sigmas/ns or "
                              "include_undefended.")
        if self.certify is not None:  # one source of truth for σ and the seed: the plan
            certify = (replace(self.certify, sigmas=tuple(self.sigmas), seed=self.seed)
                       if self.sigmas else None)
            object.__setattr__(self, "certify", certify)

    @property
    def model(self) -> str:
        """The first model (plans of one model)."""
        return self.models[0]

    def configurations(self) -> list[Configuration]:
        """f first (when included), then σ × n × criterion × P_a (P_a only where it matters)."""
        configs = [Configuration()] if self.include_undefended else []
        for sigma in self.sigmas:
            for n in self.ns:
                for criterion in self.criteria:
                    levels = [None] if criterion == "single_draw" else list(self.p_as)
                    configs += [Configuration(float(sigma), int(n), criterion, p_a)
                                for p_a in levels]
        return configs

    def tasks_per_image(self) -> int:
        """CERTIFY per σ plus every configuration × attack, for each model."""
        certify = len(self.sigmas) if self.certify is not None else 0
        return len(self.models) * (certify + len(self.configurations()) * len(self.attacks))

    def to_dict(self) -> dict[str, Any]:
        data = json.loads(json.dumps(asdict(self)))
        if self.certify is not None:
            data["certify"] = {k: data["certify"][k] for k in CERTIFY_KEYS}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StudyPlan":
        """Build and validate a plan from parsed YAML/JSON (unknown keys are an error)."""
        if not isinstance(data, dict):
            raise ConfigError("A plan is a mapping of keys (models, images, sigmas, ...).")
        values = dict(data)
        if "model" in values:  # `model: NAME` (one model) is the same as `models: [NAME]`
            if "models" in values:
                raise ConfigError("The plan gives both model and models; keep one.")
            values["models"] = values.pop("model")
        known = [f.name for f in fields(cls)]
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"Unknown plan key {key!r}{hint}; known: {', '.join(known)}.")
        images = values.get("images", {})
        if isinstance(images, str):
            images = {"source": "samples"} if images == "samples" else {"source": "folder",
                                                                         "folder": images}
        if isinstance(images, dict):
            images = {"source": "folder" if images.get("folder") else "samples", **images}
            values["images"] = _build(ImageSetSpec, images, "images")
        cert = values.get("certify", {})
        values["certify"] = None if cert in (None, False) else _build(
            CertificationConfig, {k: v for k, v in (cert or {}).items()}, "certify",
            allowed=CERTIFY_KEYS)
        for key, kind in (("sigmas", float), ("ns", int), ("p_as", float), ("criteria", str),
                          ("attacks", str), ("models", str)):
            if key in values:
                raw = values[key]
                try:
                    values[key] = tuple(kind(v) for v in (raw if isinstance(raw, list) else [raw]))
                except (TypeError, ValueError):
                    raise ConfigError(f"{key}: expected a list of {kind.__name__} "
                                      f"(got {raw!r}).") from None
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"Invalid plan: {exc}.") from exc


def _build(cls: type, values: Any, what: str, allowed: tuple[str, ...] | None = None) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{what}: expected a mapping of keys (got {values!r}).")
    names = allowed or tuple(f.name for f in fields(cls))
    unknown = [k for k in values if k not in names]
    if unknown:
        raise ConfigError(f"Unknown key {what}.{unknown[0]}; known: {', '.join(names)}.")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{what}: {exc}.") from exc


def load_plan(path: str | Path) -> StudyPlan:
    """Read a plan from a YAML (.yaml/.yml) or JSON file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RsvizError(f"{path}: cannot read the plan ({exc.strerror}).") from exc
    return parse_plan(text, path.suffix)


def parse_plan(text: str, suffix: str = ".yaml") -> StudyPlan:
    """Parse plan text (JSON when it starts with '{' or the suffix is .json, else YAML)."""
    try:
        if suffix == ".json" or text.lstrip().startswith("{"):
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - any parser error is the user's file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"The plan is not valid YAML/JSON: {first}") from exc
    return StudyPlan.from_dict(data or {})


# ------------------------------------------------------------------------ checks before a run


def check_plan(plan: StudyPlan, base: str | Path | None = None, attacks: bool = True,
               loaded: Sequence[str] = ()) -> None:
    """Fail with one line before anything runs: unknown model or attack, missing image folder.
    Models named in `loaded` (names or ids of models already in memory) are not checked."""
    for ref in plan.models:
        if ref not in loaded:
            check_model_ref(ref)
    if attacks:
        from rsviz.attacks import REGISTRY

        unknown = [a for a in plan.attacks if a not in REGISTRY]
        if unknown:
            raise ConfigError(f"Unknown attack(s) {', '.join(unknown)}; available: "
                              f"{', '.join(REGISTRY)}.")
    spec = plan.images
    if spec.source in ("folder", "cifar10"):
        folder = Path(spec.folder or "").expanduser()
        candidates = [folder] if folder.is_absolute() or base is None else [Path(base) / folder,
                                                                            folder]
        if spec.source == "folder" and not any(c.is_dir() for c in candidates):
            raise ConfigError(f"images.folder: no folder {spec.folder}.")
        if spec.source == "cifar10" and not any(c.exists() for c in candidates):
            raise ConfigError(f"images.folder: no CIFAR-10 batch file or folder {spec.folder}.")
