"""Cohen et al.'s CERTIFY over an image set, per σ: Cohen's TSV and the curves of paper Fig. 4.

For each σ, every image gets CERTIFY (n0 votes to pick ĉ_A, n votes for the one-sided
Clopper–Pearson bound p̲_A, radius R = σ Φ^{-1}(p̲_A) of eq. (2), or abstain). A run is written
as Cohen's TSV (`idx label predict radius correct time`, tab-separated, one header line, as
locuslab/smoothing's `certify.py` writes it), so their analysis scripts read it. From the rows:
certified accuracy(r) = fraction of images certified correct with radius ≥ r (Fig. 4), the clean
accuracy of g_σ (certified accuracy at r = 0, abstentions counted wrong) against that of the
base classifier f, and the accuracy drop per σ.

One CERTIFY for all of rsviz: `certify_one(model, x, σ, settings)` with the settings of
`CertificationConfig`, seeded by `certify_seed(seed, σ, x's content hash)`. The image page
(rsviz.views.image), the certification view, `rsviz certify` (one image or a set) and the
study's tasks all call it, so the same image, σ and base seed give the same votes, ĉ_A, p̲_A
and radius wherever it is certified.

Defaults: Cohen's n0 = 100, n = 100 000, α = 0.001 on a GPU; n0 = 64, n = 512 on a CPU so that
a run finishes (p̲_A ≤ (α)^{1/n} caps the radius at σ Φ^{-1}(0.001^{1/512}) ≈ 2.2 σ, against 3.8 σ: smaller
radii than the literature's, never larger ones).
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from rsviz.config import Precision, check_alpha, check_count, check_forward, check_sigma
from rsviz.errors import ConfigError, RsvizError
from rsviz.images import tensor_hash
from rsviz.imagesets import ImageSet
from rsviz.progress import NullProgress, Progress
from rsviz.models import Classifier
from rsviz.smoothing import CertifyResult, certify, forward_labels, make_generator
from rsviz.storage import write_text_atomic

TSV_HEADER = ("idx", "label", "predict", "radius", "correct", "time")


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any printable parts (the same parts, the same seed)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class CertificationConfig:
    """CERTIFY over a set, for each σ.

    Attributes:
        sigmas: noise levels (one run and one TSV each).
        n0: votes to select the class ĉ_A.
        n: votes to bound p_A from below.
        alpha: the bound holds with probability 1 − α.
        seed: base seed; image x at σ uses certify_seed(seed, σ, x's content hash).
        batch_size: forward batch size (None: from the device).
        precision: forward precision.
    """

    sigmas: tuple[float, ...] = (0.25,)
    n0: int = 64
    n: int = 512
    alpha: float = 0.001
    seed: int = 0
    batch_size: int | None = None
    precision: Precision = "auto"

    def __post_init__(self) -> None:
        if not self.sigmas:
            raise ConfigError("Give at least one σ.")
        for sigma in self.sigmas:
            check_sigma(sigma)
        check_count("n0", self.n0)
        check_count("n", self.n)
        check_alpha(self.alpha)
        check_forward(self.batch_size, self.precision)

    @classmethod
    def defaults_for(cls, device: torch.device | str, **changes: object) -> "CertificationConfig":
        """CPU defaults that finish (n0=64, n=512) or the literature's on a GPU (n0=100,
        n=100 000), α = 0.001 on both; `changes` override."""
        base = cls() if torch.device(device).type == "cpu" else cls(n0=100, n=100_000)
        return replace(base, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class CertRow:
    """One line of Cohen's TSV, plus what rsviz also knows about the image.

    Attributes:
        idx: index of the image in the set.
        label: true class.
        predict: ĉ_A, or −1 when CERTIFY abstains.
        radius: certified L2 radius (0 when abstaining).
        correct: predict == label.
        time: seconds spent on this image.
        name, p_lower, forward_passes, f_predict: not written to the TSV.
    """

    idx: int
    label: int
    predict: int
    radius: float
    correct: bool
    time: float
    name: str = ""
    p_lower: float = float("nan")
    forward_passes: int = 0
    f_predict: int | None = None


# ---------------------------------------------------------------------------- Cohen's TSV


def _format_time(seconds: float) -> str:
    return str(datetime.timedelta(seconds=float(seconds)))


def _parse_time(text: str) -> float:
    text = text.strip()
    match = re.fullmatch(r"(?:(\d+) days?, )?(\d+):(\d{2}):(\d{2}(?:\.\d+)?)", text)
    if match:
        days, hours, minutes, seconds = match.groups()
        return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return float(text)


def tsv_line(row: CertRow) -> str:
    """The TSV line of a row (radius written exactly, which Cohen's readers accept)."""
    return "\t".join([str(row.idx), str(row.label), str(row.predict), repr(float(row.radius)),
                      str(int(row.correct)), _format_time(row.time)])


def write_tsv(rows: Iterable[CertRow], path: str | Path) -> Path:
    """Write Cohen's TSV atomically (temporary file, then rename)."""
    text = "\t".join(TSV_HEADER) + "\n" + "".join(tsv_line(r) + "\n" for r in rows)
    return write_text_atomic(path, text)


def read_tsv(path: str | Path) -> list[CertRow]:
    """Read Cohen's TSV (ours or theirs: `time` as H:MM:SS.ffffff or seconds)."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:
            reader = csv.DictReader(handle, delimiter="\t")
            missing = set(TSV_HEADER) - set(reader.fieldnames or ())
            if missing:
                raise RsvizError(f"{path}: not a certification TSV (missing columns "
                                 f"{', '.join(sorted(missing))}).")
            return [CertRow(idx=int(r["idx"]), label=int(r["label"]), predict=int(r["predict"]),
                            radius=float(r["radius"]), correct=bool(int(r["correct"])),
                            time=_parse_time(r["time"])) for r in reader]
    except OSError as exc:
        raise RsvizError(f"{path}: cannot read ({exc.strerror}).") from exc
    except (KeyError, ValueError) as exc:
        raise RsvizError(f"{path}: malformed line ({exc}).") from exc


# ------------------------------------------------------------------------------- the curves


def certified_accuracy(rows: Sequence[CertRow], radii: np.ndarray | Sequence[float]) -> np.ndarray:
    """Certified accuracy at each radius r: fraction of rows correct with radius ≥ r (Cohen
    et al.'s `ApproximateAccuracy`; abstentions count as wrong)."""
    radii = np.asarray(radii, dtype=np.float64)
    if not rows:
        return np.zeros_like(radii)
    ok = np.array([r.correct for r in rows], dtype=bool)
    radius = np.array([r.radius for r in rows], dtype=np.float64)
    return (ok[None, :] & (radius[None, :] >= radii[:, None])).mean(1)


def curve(rows: Sequence[CertRow], points: int = 200,
          max_radius: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(radii, certified accuracy) on a regular grid from 0 to just past the largest radius."""
    top = max_radius if max_radius is not None else max([r.radius for r in rows] + [0.0])
    radii = np.linspace(0.0, top * 1.02 + 1e-9, points)
    return radii, certified_accuracy(rows, radii)


def accuracy_drop_table(runs: dict[float, Sequence[CertRow]],
                        radii: Sequence[float] = (0.25, 0.5)) -> list[dict[str, float | int | None]]:
    """One row per σ: clean accuracy of f and of g_σ, the drop, abstentions, radii.

    The accuracy of f needs `f_predict` on the rows (None where unknown).
    """
    table = []
    for sigma in sorted(runs):
        rows = runs[sigma]
        if not rows:
            continue
        f_known = [r for r in rows if r.f_predict is not None]
        acc_f = (float(np.mean([r.f_predict == r.label for r in f_known])) if f_known else None)
        acc_g = float(certified_accuracy(rows, [0.0])[0])
        good = [r.radius for r in rows if r.correct]
        entry: dict[str, float | int | None] = {
            "sigma": sigma, "images": len(rows), "accuracy_f": acc_f, "accuracy_g": acc_g,
            "drop": None if acc_f is None else acc_f - acc_g,
            "abstain_rate": float(np.mean([r.predict == -1 for r in rows])),
            "median_radius_correct": float(np.median(good)) if good else None,
            "mean_radius_correct": float(np.mean(good)) if good else None,
        }
        for r in radii:
            entry[f"cert_acc@{r:g}"] = float(certified_accuracy(rows, [r])[0])
        table.append(entry)
    return table


# ------------------------------------------------------- published results (Cohen's analyze.py)

DEFAULT_RADII = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)


@dataclass(frozen=True)
class TsvAnalysis:
    """Certified accuracy at chosen radii and the average certified radius of one TSV.

    Attributes:
        path: the file read.
        label: a short name (the file name, with its folder's σ when it is Cohen's layout).
        sigma: σ read from the path (`.../noise_0.25/test/sigma_0.50` -> 0.5), else None.
        images: rows in the file.
        radii: the radii of the table.
        certified_accuracy: fraction of rows correct with radius ≥ r, for each r, exactly as
            Cohen et al.'s analyze.py computes it (`(correct & (radius >= r)).mean()`).
        average_radius: the average certified radius (ACR, Zhai et al. 2020): the mean over
            all rows of the radius when correct, 0 otherwise.
        abstain_rate: share of rows where CERTIFY abstained (predict = −1).
    """

    path: str
    label: str
    sigma: float | None
    images: int
    radii: tuple[float, ...]
    certified_accuracy: tuple[float, ...]
    average_radius: float
    abstain_rate: float
    rows: tuple[CertRow, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "label": self.label, "sigma": self.sigma,
                "images": self.images, "average_radius": self.average_radius,
                "abstain_rate": self.abstain_rate,
                "certified_accuracy": {f"{r:g}": a for r, a in
                                       zip(self.radii, self.certified_accuracy)}}


def radii_grid(start: float, stop: float, step: float) -> tuple[float, ...]:
    """np.arange(start, stop + step, step), the grid of Cohen et al.'s tables (analyze.py)."""
    if step <= 0:
        raise ConfigError("The radius step must be positive.")
    return tuple(float(r) for r in np.arange(start, stop + step, step))


def sigma_of(path: str | Path) -> float | None:
    """σ of a TSV in Cohen et al.'s layout (`sigma_0.25`, or `_sigma0.25` as rsviz names its
    own files), else None."""
    match = re.search(r"sigma_?([0-9]*\.?[0-9]+)", Path(path).name)
    return float(match.group(1)) if match else None


def analyze_rows(rows: Sequence[CertRow], radii: Sequence[float] = DEFAULT_RADII, path: str = "",
                 label: str = "", sigma: float | None = None) -> TsvAnalysis:
    """The table of certified accuracy at `radii` and the average certified radius of rows."""
    radii = tuple(float(r) for r in radii)
    if not rows:
        raise RsvizError(f"{path or 'the results'}: no rows to analyse.")
    accuracy = certified_accuracy(rows, radii)
    acr = float(np.mean([r.radius if r.correct else 0.0 for r in rows]))
    abstain = float(np.mean([r.predict == -1 for r in rows]))
    return TsvAnalysis(path, label, sigma, len(rows), radii,
                       tuple(float(a) for a in accuracy), acr, abstain, tuple(rows))


def analyze_tsv(path: str | Path, radii: Sequence[float] = DEFAULT_RADII,
                label: str | None = None) -> TsvAnalysis:
    """Read a TSV in Cohen et al.'s format (theirs, rsviz's or any tool's: columns idx label
    predict radius correct time) and analyse it as their analyze.py does."""
    path = Path(path)
    sigma = sigma_of(path)
    if label is None:
        label = path.name
        noise = re.search(r"noise_([0-9.]+)", str(path))
        if noise and sigma is not None:
            label = f"trained σ = {float(noise.group(1)):g}, σ = {sigma:g}"
    return analyze_rows(read_tsv(path), radii, str(path), label, sigma)


def analysis_table(analyses: Sequence[TsvAnalysis], digits: int = 2) -> str:
    """A markdown table: one row per file, certified accuracy at each radius (formatted as
    analyze.py's tables, `{:.2f}`), then the ACR and the number of images."""
    radii = analyses[0].radii if analyses else ()
    head = "| | " + " | ".join(f"r = {r:.3}" for r in radii) + " | ACR | images |"
    lines = [head, "|---" * (len(radii) + 3) + "|"]
    for a in analyses:
        cells = [f"{v:.{digits}f}" for v in a.certified_accuracy]
        lines.append(f"| {a.label} | " + " | ".join(cells)
                     + f" | {a.average_radius:.3f} | {a.images} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ running it


def certify_seed(seed: int, sigma: float, image_hash: str) -> int:
    """The one seed rule of CERTIFY: the noise of image x at σ is seeded with
    derive_seed(seed, tensor_hash(x), "certify", float(σ)).

    It depends on the base seed, σ and the image's content (its tensor preprocessed for the
    model), never on where the image sits in a set, so one image gives the same votes alone
    (image page, certification view, `rsviz certify IMAGE`), in a set (`rsviz certify
    --images`) and in a study. It is the rule studies have always used, so their stored task
    ids (which hold the seed) stay valid.
    """
    return derive_seed(seed, image_hash, "certify", float(sigma))


def certify_one(model: Classifier, x: torch.Tensor, sigma: float,
                settings: CertificationConfig, progress: Progress | None = None) -> CertifyResult:
    """CERTIFY image x at σ with `settings` (n0, n, α, base seed, batch size, precision; its
    σ list is the caller's loop): every CERTIFY of rsviz goes through here, its noise seeded
    by `certify_seed` (a pure function of its arguments)."""
    generator = make_generator(certify_seed(settings.seed, sigma, tensor_hash(x)), model.device)
    return certify(model, x.to(model.device), sigma, settings.n0, settings.n, settings.alpha,
                   generator, settings.batch_size, settings.precision, progress)


def certify_image(model: Classifier, x: torch.Tensor, label: int, sigma: float,
                  settings: CertificationConfig, idx: int = 0, name: str = "",
                  progress: Progress | None = None) -> CertRow:
    """`certify_one` as a row of Cohen's TSV, with f's prediction on the clean image alongside
    (one more forward pass)."""
    result = certify_one(model, x, sigma, settings, progress)
    f_predict = int(forward_labels(model, x[None], precision=settings.precision)[0])
    return CertRow(idx=idx, label=int(label), predict=int(result.predict),
                   radius=float(result.radius), correct=result.predict == label,
                   time=float(result.seconds), name=name, p_lower=float(result.p_lower),
                   forward_passes=int(result.forward_passes) + 1, f_predict=f_predict)


@dataclass(frozen=True)
class CertificationRun:
    """Rows per σ, and the TSV written for each."""

    config: CertificationConfig
    runs: dict[float, list[CertRow]]
    paths: dict[float, str]

    def table(self) -> list[dict[str, float | int | None]]:
        return accuracy_drop_table(self.runs)


def tsv_path_for(out: str | Path, sigma: float, several: bool) -> Path:
    """`out` itself for a single σ; `<stem>_sigma<σ><suffix>` beside it for several."""
    out = Path(out)
    if not several:
        return out
    return out.with_name(f"{out.stem}_sigma{sigma:g}{out.suffix or '.tsv'}")


def run_certification(model: Classifier, images: ImageSet, config: CertificationConfig,
                      out: str | Path | None = None,
                      progress: Progress | None = None) -> CertificationRun:
    """CERTIFY every image at every σ; write one Cohen TSV per σ (rewritten after each image,
    so an interrupted run leaves the images done so far)."""
    progress = progress or NullProgress()
    info = model.info
    xs = images.tensors(info.input_size, info.resize, info.interpolation)
    total = len(xs) * len(config.sigmas) * (config.n0 + config.n)
    runs: dict[float, list[CertRow]] = {}
    paths: dict[float, str] = {}
    done = 0
    for sigma in config.sigmas:
        rows = runs.setdefault(float(sigma), [])
        path = tsv_path_for(out, sigma, len(config.sigmas) > 1) if out else None
        for idx, (entry, x) in enumerate(zip(images.entries, xs)):
            progress.check_cancel()
            rows.append(certify_image(model, x, entry.label, sigma, config, idx, entry.name))
            done += config.n0 + config.n
            progress.report(done, total, f"σ={sigma:g}: {idx + 1}/{len(xs)} images")
            if path is not None:
                write_tsv(rows, path)
        if path is not None:
            paths[float(sigma)] = str(path)
    return CertificationRun(config, runs, paths)


def radius_cap(sigma: float, n: int, alpha: float) -> float:
    """Largest radius CERTIFY can give with n votes (all n for ĉ_A): σ Φ^{-1}(α^{1/n})."""
    from scipy import stats

    return float(sigma * stats.norm.ppf(math.exp(math.log(alpha) / n)))
