"""Aggregation of task results: the Fig. 5 rows (accuracy against mean/median distortion per
model and configuration, with bootstrap confidence intervals), the Fig. 4 certification runs
per model, and the ratio of each distortion to the image's certified radius.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from rsviz.certification import CertRow, accuracy_drop_table
from rsviz.identity import LEGACY, describe_tag
from rsviz.study.plan import StudyPlan

BOOTSTRAP_REPS = 2000
CI_LEVEL = 0.95


def _stat(values: list[float], fn: Callable[[np.ndarray], float]) -> float | None:
    return float(fn(np.asarray(values, dtype=np.float64))) if values else None


def bootstrap_ci(values: Sequence[float], statistic: str = "mean", reps: int = BOOTSTRAP_REPS,
                 level: float = CI_LEVEL, seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean or median (seeded: the same values give the
    same interval). None for fewer than two values."""
    data = np.asarray(values, dtype=np.float64)
    if data.size < 2:
        return None
    fn = {"mean": np.mean, "median": np.median}[statistic]
    idx = np.random.default_rng(seed).integers(0, data.size, size=(reps, data.size))
    stats = fn(data[idx], axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(low), float(high)


def _ci_columns(prefix: str, values: list[float], statistic: str) -> dict[str, float | None]:
    ci = bootstrap_ci(values, statistic)
    return {f"{prefix}_lo": ci[0] if ci else None, f"{prefix}_hi": ci[1] if ci else None}


def summarize(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, variant, σ, n, criterion, P_a, attack): the Fig. 5 scatter (plain
    and RS-aware attacks never share a row).

    accuracy: fraction of images the attacked classifier got right at the start (f's label,
    or one vote of g_{σ,n}); mean/median L2 and L∞ over the successful attacks on those images,
    with 95 % bootstrap intervals (`*_lo`, `*_hi`); success_rate among them; ratio: median of
    L2 / certified radius at that σ where certified.
    """
    radii = certified_radii(results)
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in results:
        if r.get("kind") == "attack":
            key = (r["model"], variant_of(r), r["sigma"], r["n"], r["criterion"], r["p_a"],
                   r["attack"])
            groups.setdefault(key, []).append(r)
    rows = []
    for (model, variant, sigma, n, criterion, p_a, attack), group in groups.items():
        attacked = [r for r in group if r["start_correct"]]
        won = [r for r in attacked if r["success"]]
        l2 = [r["l2"] for r in won]
        ratios = [r["l2"] / radii[_radius_key(r)] for r in won if _radius_key(r) in radii]
        rows.append({
            "model": model, "sigma": sigma, "n": n, "criterion": criterion, "p_a": p_a,
            "attack": attack, "variant": variant, "configuration": group[0]["configuration"],
            "forward": forward_of_result(group[0]),
            "images": len(group), "accuracy": float(np.mean([r["start_correct"] for r in group])),
            "attacked": len(attacked),
            "success_rate": len(won) / len(attacked) if attacked else None,
            "mean_l2": _stat(l2, np.mean), **_ci_columns("mean_l2", l2, "mean"),
            "median_l2": _stat(l2, np.median), **_ci_columns("median_l2", l2, "median"),
            "mean_linf": _stat([r["linf"] for r in won], np.mean),
            "mean_queries": _stat([r["queries"] for r in attacked], np.mean),
            "mean_forward_passes": _stat([r["forward_passes"] for r in group], np.mean),
            "median_ratio": _stat(ratios, np.median), "ratios": len(ratios),
        })
    rows.sort(key=lambda r: (r["model"], r["variant"], r["attack"], r["sigma"] is not None,
                             r["sigma"] or 0,
                             r["n"] or 0, r["criterion"] or "", r["p_a"] or 0))
    return rows


def forward_of_result(r: dict[str, Any]) -> str:
    """A result's forward identity tag ("legacy" for results stored before identities)."""
    return r.get("forward") or LEGACY


def separate_identities(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results of one model computed with several forward identities (a CPU fp32 folder opened
    with a GPU bf16 one, or a folder resumed after identities were recorded) never share a row
    or a certification run: their "model" becomes 'MODEL_ID [identity in words]', the id
    itself moves to "model_id". Results of a model with one identity are left as they are."""
    plain = [{**{k: v for k, v in r.items() if k != "model_id"}, "model": r["model_id"]}
             if "model_id" in r else r for r in results]  # labelled by an earlier call
    seen: dict[str, set[str]] = {}
    for r in plain:
        seen.setdefault(r["model"], set()).add(forward_of_result(r))
    out = []
    for r in plain:
        if len(seen[r["model"]]) > 1:
            words = describe_tag(r.get("forward", ""))
            r = {**r, "model_id": r["model"], "model": f"{r['model']} [{words}]"}
        out.append(r)
    return out


def variant_of(r: dict[str, Any]) -> str:
    """An attack result's variant ("plain" for results stored before variants existed)."""
    return r.get("variant") or "plain"


def _radius_key(r: dict[str, Any]) -> tuple[Any, Any, Any]:
    return (r.get("model", ""), r.get("image_hash", ""), r.get("sigma"))


def certified_radii(results: Sequence[dict[str, Any]]) -> dict[tuple[Any, Any, Any], float]:
    """Certified radius by (model, image hash, σ), for images certified with the right class."""
    return {_radius_key(r): r["radius"] for r in results
            if r.get("kind") == "certify" and r["correct"] and r["radius"] > 0}


def ratio_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """L2 distortion / certified radius per successful attack on a certified image."""
    radii = certified_radii(results)
    out = []
    for r in results:
        key = _radius_key(r)
        if r.get("kind") == "attack" and r.get("success") and key in radii:
            out.append({"model": r["model"], "image": r["image"],
                        "configuration": r["configuration"], "attack": r["attack"],
                        "variant": variant_of(r), "sigma": r["sigma"], "n": r["n"], "l2": r["l2"], "radius": radii[key],
                        "ratio": r["l2"] / radii[key]})
    return out


Runs = dict[float, list[CertRow]]


def certification_by_model(results: Sequence[dict[str, Any]]) -> dict[str, Runs]:
    """Cohen rows per model id and σ from the CERTIFY tasks (ordered by image index)."""
    runs: dict[str, dict[float, list[CertRow]]] = {}
    for r in results:
        if r.get("kind") == "certify":
            runs.setdefault(r["model"], {}).setdefault(float(r["sigma"]), []).append(CertRow(
                idx=r["image_idx"], label=r["label"], predict=r["predict"], radius=r["radius"],
                correct=r["correct"], time=r["seconds"], name=r["image"], p_lower=r["p_lower"],
                forward_passes=r["forward_passes"], f_predict=r["f_predict"]))
    return {model: {s: sorted(rows, key=lambda row: row.idx) for s, rows in sorted(by.items())}
            for model, by in runs.items()}


def certification_runs(results: Sequence[dict[str, Any]]) -> dict[float, list[CertRow]]:
    """Cohen rows per σ of the first model (studies of one model)."""
    by_model = certification_by_model(results)
    return next(iter(by_model.values()), {})


def accuracy_drops(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The accuracy-drop table of every model, with a `model` column."""
    return [{"model": model, **row} for model, runs in certification_by_model(results).items()
            for row in accuracy_drop_table(runs)]


@dataclass
class StudyResults:
    """A study's plan(s), images and task results, with its tables. Several results folders
    opened together give one StudyResults with every plan and every result."""

    plan: StudyPlan
    images: list[dict[str, Any]]
    results: list[dict[str, Any]]
    folder: str = ""
    executed: int = 0
    reused: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    plans: list[StudyPlan] = field(default_factory=list)
    merged_expected: int | None = None

    def __post_init__(self) -> None:
        self.results = separate_identities(self.results)

    @property
    def expected(self) -> int:
        """Number of tasks the plan has for these images (image refs are per model)."""
        if self.merged_expected is not None:
            return self.merged_expected
        return self.plan.tasks_per_image() // len(self.plan.models) * len(self.images)

    @property
    def models(self) -> list[str]:
        """Model ids in the results (first seen first)."""
        return list(dict.fromkeys(r["model"] for r in self.results))

    def summary(self) -> list[dict[str, Any]]:
        return summarize(self.results)

    def metadata(self) -> dict[str, Any]:
        """What exported figures carry: the plan(s), the model ids, the folder(s)."""
        plans = self.plans or [self.plan]
        return {"plans": [p.to_dict() for p in plans], "model_ids": self.models,
                "forwards": sorted({forward_of_result(r) for r in self.results}),
                "folder": self.folder, "tasks": len(self.results)}

    def certification(self) -> dict[float, list[CertRow]]:
        return certification_runs(self.results)

    def certification_by_model(self) -> dict[str, dict[float, list[CertRow]]]:
        return certification_by_model(self.results)

    def accuracy_drop(self) -> list[dict[str, Any]]:
        return accuracy_drops(self.results)

    def ratios(self) -> list[dict[str, Any]]:
        return ratio_rows(self.results)
