"""Sets of labelled images for certification curves and studies (paper Fig. 4 and Fig. 5).

Four sources, one `ImageSet`:

- a folder of images whose labels come from a CSV (`filename,class_index[,wnid,name]`, as the
  `labels.csv` of `imagenet-sample/`), either given explicitly or found as `labels.csv` inside
  the folder; or from ImageNet wnid file names (`n01491361_*.JPEG`, or `n01491361/*.JPEG`)
  mapped to a class index by a wnid order. torchvision ships the ImageNet class *names* but no
  wnid list, so the wnid order comes from the labels file: either a CSV with `wnid` and
  `class_index` columns, or a synset mapping text file (one `wnid [names]` line per class in
  index order, e.g. ImageNet's `LOC_synset_mapping.txt`);
- a zip upload, extracted safely (size and member limits, no path traversal, no links, every
  image decoded with `rsviz.images.decode_image` before it is kept, other members skipped);
- the bundled sample photos, labelled by matching their description to the ImageNet names;
- the official CIFAR-10 python batches (`cifar-10-batches-py/`: `data_batch_1..5`,
  `test_batch`, pickled dicts with b'data' uint8 [N, 3072] and b'labels'), read with an
  unpickler that allows numpy arrays only (`from_cifar10`). A folder of 32×32 PNGs works as any
  folder; images in sub-folders named after a class (`airplane/0001.png`) are labelled by it.

`ImageSet.subset(k, seed)` draws a seeded random subset (same seed, same images).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import pickle
import re
import stat
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image

from rsviz.config import check_count
from rsviz.errors import ConfigError, ImageError, RsvizError
from rsviz.images import SAMPLES, decode_image, load_image_file, load_sample, preprocess

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
WNID = re.compile(r"^(n\d{8})")
MAX_ZIP_BYTES = 512 * 2**20  # uncompressed total
MAX_ZIP_MEMBERS = 5000
MAX_MEMBER_BYTES = 50 * 2**20


class ImageSetError(RsvizError):
    """An image set cannot be built (missing labels, unsafe archive, empty folder...)."""


@dataclass(frozen=True)
class ImageEntry:
    """One labelled image.

    Attributes:
        name: display name (file name or sample name).
        ref: where to load it from: a file path, or "sample:<name>".
        label: true class index.
        class_name: name of the true class when known ("" otherwise).
    """

    name: str
    ref: str
    label: int
    class_name: str = ""

    def load(self) -> Image.Image:
        """The decoded RGB image."""
        if self.ref.startswith("sample:"):
            return load_sample(self.ref[len("sample:"):]).original
        if self.ref.startswith("cifar10:"):
            path, _, index = self.ref[len("cifar10:"):].rpartition("#")
            return cifar10_image(path, int(index))
        return load_image_file(self.ref).original


@dataclass(frozen=True)
class ImageSet:
    """An ordered, labelled set of images (a description; images are decoded on demand)."""

    name: str
    entries: tuple[ImageEntry, ...]
    source: str = ""  # a description of where the set came from
    notes: tuple[str, ...] = field(default=())  # skipped files and the like, for the user

    def __len__(self) -> int:
        return len(self.entries)

    def subset(self, k: int | None, seed: int = 0) -> "ImageSet":
        """A seeded random subset of k images (kept in the set's order); all when k is None or
        at least the set's size."""
        if k is None or k >= len(self.entries):
            return self
        check_count("subset size", k)
        pick = np.sort(np.random.default_rng(seed).choice(len(self.entries), k, replace=False))
        return ImageSet(f"{self.name}[{k} of {len(self.entries)}, seed {seed}]",
                        tuple(self.entries[i] for i in pick), self.source, self.notes)

    def tensors(self, size: int, resize: int | None = None,
                interpolation: str = "bicubic") -> list[torch.Tensor]:
        """The preprocessed [3, size, size] tensors of every image, in order."""
        return [preprocess(e.load(), size, resize, interpolation) for e in self.entries]


# ------------------------------------------------------------------------------ labels files


def _read_rows(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ImageSetError(f"{path}: cannot read the labels file ({exc.strerror}).") from exc
    return [row for row in csv.reader(io.StringIO(text)) if row and any(c.strip() for c in row)]


@dataclass(frozen=True)
class Labels:
    """What a labels file says: labels by file name and/or class index by wnid."""

    by_file: dict[str, tuple[int, str]]  # file name -> (class index, class name)
    by_wnid: dict[str, tuple[int, str]]  # wnid -> (class index, class name)


def read_labels(path: str | Path) -> Labels:
    """Read a labels CSV (`filename,class_index[,wnid,name]`, header optional) or a synset
    mapping file (one `wnid [names]` per line, in class-index order)."""
    path = Path(path)
    rows = _read_rows(path)
    if not rows:
        raise ImageSetError(f"{path}: the labels file is empty.")
    if re.match(r"^n\d{8}(\s|$)", rows[0][0].strip()):  # synset mapping: `wnid names`
        by_wnid = {}
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8-sig").splitlines()]
        for index, line in enumerate(ln for ln in lines if ln):
            wnid, _, names = line.partition(" ")
            by_wnid[wnid] = (index, names.split(",")[0].strip())
        return Labels({}, by_wnid)
    header = [c.strip().lower() for c in rows[0]]
    if "filename" in header or "class_index" in header:
        body = rows[1:]
        col = {name: header.index(name) for name in header}
    else:
        body = rows
        col = {"filename": 0, "class_index": 1, "wnid": 2, "name": 3}
    if "filename" not in col or "class_index" not in col:
        raise ImageSetError(f"{path}: expected columns filename,class_index[,wnid,name].")
    by_file, by_wnid = {}, {}
    for line, row in enumerate(body, start=2 if body is not rows else 1):
        cell = lambda key: row[col[key]].strip() if key in col and col[key] < len(row) else ""  # noqa: E731
        try:
            index = int(cell("class_index"))
        except ValueError:
            raise ImageSetError(f"{path}, line {line}: class_index {cell('class_index')!r} "
                                "is not an integer.") from None
        by_file[cell("filename")] = (index, cell("name"))
        if cell("wnid"):
            by_wnid[cell("wnid")] = (index, cell("name"))
    return Labels(by_file, by_wnid)


def _wnid_of(path: Path, root: Path) -> str | None:
    match = WNID.match(path.name)
    if match:
        return match.group(1)
    parent = path.parent
    if parent != root:
        match = WNID.match(parent.name)
        if match and match.group(1) == parent.name:
            return match.group(1)
    return None


def from_folder(folder: str | Path, labels: str | Path | None = None,
                class_names: tuple[str, ...] | None = None) -> ImageSet:
    """The labelled images of a folder (and its sub-folders), sorted by relative path.

    Labels come from `labels` (a CSV or synset mapping file), else from `labels.csv` in the
    folder; a file absent from the CSV's file names is labelled by its wnid (file name prefix
    or parent folder) when the labels file gives a wnid order. Images without a label are
    skipped and listed in `notes`; a folder where no image has a label is an error.

    Args:
        folder: the image folder.
        labels: labels file; None looks for `labels.csv` in the folder.
        class_names: names of the model's classes, to name classes the file does not name.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ImageSetError(f"{root}: no such folder.")
    labels_path = Path(labels).expanduser() if labels else root / "labels.csv"
    if labels and not labels_path.is_file():
        raise ImageSetError(f"{labels_path}: no such labels file.")
    known = read_labels(labels_path) if labels_path.is_file() else Labels({}, {})
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    by_class = {name.lower(): (i, name) for i, name in enumerate(class_names or ())}
    entries, notes = [], []
    for path in files:
        rel = path.relative_to(root).as_posix()
        hit = known.by_file.get(rel) or known.by_file.get(path.name)
        if hit is None:
            wnid = _wnid_of(path, root)
            hit = known.by_wnid.get(wnid) if wnid else None
        if hit is None and path.parent != root:  # `airplane/0001.png`: a class-named folder
            hit = by_class.get(path.parent.name.lower())
        if hit is None:
            notes.append(f"{rel}: no label (not in the labels file, no known wnid or "
                         "class-named folder)")
            continue
        index, name = hit
        if not name and class_names and 0 <= index < len(class_names):
            name = class_names[index]
        entries.append(ImageEntry(rel, str(path), index, name))
    if not files:
        raise ImageSetError(f"{root}: no image files in this folder or below "
                            f"({', '.join(IMAGE_SUFFIXES)}).")
    if not entries:
        how = (f"{labels_path.name} lists none of them" if labels_path.is_file() else
               "give a labels CSV (filename,class_index[,wnid,name]) with --labels, or put "
               "labels.csv in the folder")
        raise ImageSetError(f"{root}: found {len(files)} image(s) but no labels: {how}.")
    return ImageSet(root.name, tuple(entries), f"folder {root}", tuple(notes))


def shared_folder(name: str) -> Path:
    """`shared/<name>` beside the checkout (or beside one of its parent folders): where the
    bench and training scripts look for their ImageNet folders by default."""
    here = Path(__file__).resolve().parent.parent
    for folder in [here, *here.parents]:
        if (folder / "shared" / name).is_dir():
            return folder / "shared" / name
    return here.parent / "shared" / name


# ---------------------------------------------------------------------------------- samples


def from_samples(class_names: tuple[str, ...] | None = None) -> ImageSet:
    """The bundled sample photos whose description is an ImageNet class name."""
    if class_names is None:
        from rsviz.models import imagenet_classes

        class_names = imagenet_classes()
    lookup = {name.lower(): i for i, name in enumerate(class_names)}
    entries, notes = [], []
    for name, (_, description) in SAMPLES.items():
        index = lookup.get(description.lower())
        if index is None:
            notes.append(f"sample {name}: {description!r} is not an ImageNet class, skipped")
            continue
        entries.append(ImageEntry(name, f"sample:{name}", index, class_names[index]))
    return ImageSet("samples", tuple(entries), "bundled sample photos", tuple(notes))


# ---------------------------------------------------------------------------------- CIFAR-10

CIFAR10_BATCHES = ("test_batch", "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                   "data_batch_5")


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays, dicts, lists and scalars; refuses every other global (a pickle can
    run code)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's signature
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


@lru_cache(maxsize=4)
def read_cifar10_batch(path: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """The images [N, 32, 32, 3] uint8 and labels of one CIFAR-10 python batch file."""
    try:
        with open(path, "rb") as handle:
            batch = _ArraysOnly(handle, encoding="bytes").load()
    except OSError as exc:
        raise ImageSetError(f"{path}: cannot read the CIFAR-10 batch ({exc.strerror}).") from exc
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign pickle is one line
        raise ImageSetError(f"{path}: not a CIFAR-10 python batch ({exc}).") from exc
    if not isinstance(batch, dict):
        raise ImageSetError(f"{path}: not a CIFAR-10 python batch (no dict inside).")
    get = lambda key: batch.get(key.encode(), batch.get(key))  # noqa: E731 - bytes or str keys
    data, labels = get("data"), get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072 or labels is None or len(labels) != len(data):
        raise ImageSetError(f"{path}: not a CIFAR-10 python batch (expected b'data' uint8 "
                            "[N, 3072] and N b'labels').")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), tuple(int(v) for v in labels)


def cifar10_image(path: str, index: int) -> Image.Image:
    """Image `index` of a CIFAR-10 batch file, as a 32×32 RGB PIL image."""
    images, _ = read_cifar10_batch(path)
    if not 0 <= index < len(images):
        raise ImageSetError(f"{path}: no image {index} (the batch holds {len(images)}).")
    return Image.fromarray(images[index], "RGB")


def from_cifar10(path: str | Path, class_names: tuple[str, ...] | None = None) -> ImageSet:
    """The images of a CIFAR-10 python batch file, or of `test_batch` in a folder such as
    `cifar-10-batches-py/` (give `data_batch_N` itself for training images)."""
    from rsviz.models.cifar import CIFAR10_CLASSES

    root = Path(path).expanduser()
    file = root / "test_batch" if root.is_dir() else root
    if not file.is_file():
        raise ImageSetError(f"{root}: no CIFAR-10 batch here (expected a file such as test_batch "
                            "or data_batch_1, or the cifar-10-batches-py folder).")
    _, labels = read_cifar10_batch(str(file))
    names = class_names if class_names and len(class_names) == 10 else CIFAR10_CLASSES
    entries = tuple(ImageEntry(f"{file.name}#{i}", f"cifar10:{file}#{i}", label, names[label]
                               if 0 <= label < len(names) else "")
                    for i, label in enumerate(labels))
    return ImageSet(f"cifar10-{file.name}", entries, f"CIFAR-10 batch {file}")


def export_pngs(images: ImageSet, folder: str | Path) -> Path:
    """Write a set's images as PNGs with a labels.csv (filename,class_index,,name) into
    `folder`, e.g. CIFAR-10 test images for the sidebar's upload or the CLI's IMAGE."""
    out = Path(folder).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    rows = ["filename,class_index,wnid,name"]
    for i, entry in enumerate(images.entries):
        name = f"{i:05d}_{entry.class_name or entry.label}.png".replace(" ", "_")
        entry.load().save(out / name)
        rows.append(f"{name},{entry.label},,{entry.class_name}")
    (out / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


# -------------------------------------------------------------------------------- zip upload


def _safe_member(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The member's relative path, or None when it must be refused (traversal, absolute,
    link, device)."""
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name):
        return None
    mode = info.external_attr >> 16
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return None  # symlinks, devices, fifos
    parts = [p for p in path.parts if p not in ("", ".")]
    return PurePosixPath(*parts) if parts else None


def extract_zip(data: bytes, dest: str | Path, name: str = "upload.zip") -> tuple[Path, list[str]]:
    """Extract an uploaded zip of images (and an optional labels file) safely into `dest`.

    Refuses archives over the size or member limits and members that escape `dest`
    (absolute paths, `..`, links); keeps only members that `decode_image` accepts as images,
    plus `.csv`/`.txt` labels files; skips the rest (macOS `__MACOSX/` included) with a note.

    Returns:
        The folder the images were written to and the notes on skipped members.
    """
    dest = Path(dest)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ImageSetError(f"{name}: not a zip archive.") from exc
    members = archive.infolist()
    if len(members) > MAX_ZIP_MEMBERS:
        raise ImageSetError(f"{name}: {len(members)} members; the limit is {MAX_ZIP_MEMBERS}.")
    total = sum(m.file_size for m in members)
    if total > MAX_ZIP_BYTES:
        raise ImageSetError(f"{name}: {total / 2**20:.0f} MB uncompressed; the limit is "
                            f"{MAX_ZIP_BYTES // 2**20} MB.")
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    notes: list[str] = []
    kept = 0
    for info in members:
        if info.is_dir():
            continue
        rel = _safe_member(info)
        if rel is None:
            raise ImageSetError(f"{name}: refused, member {info.filename!r} points outside the "
                                "archive (absolute path, '..' or link).")
        target = (root / rel).resolve()
        if root not in target.parents:
            raise ImageSetError(f"{name}: refused, member {info.filename!r} escapes the folder.")
        if rel.parts[0] == "__MACOSX" or rel.name.startswith("."):
            continue
        if info.file_size > MAX_MEMBER_BYTES:
            notes.append(f"{rel}: skipped, larger than {MAX_MEMBER_BYTES // 2**20} MB")
            continue
        with archive.open(info) as handle:
            payload = handle.read(MAX_MEMBER_BYTES + 1)
        suffix = rel.suffix.lower()
        if suffix in (".csv", ".txt"):
            pass
        elif suffix in IMAGE_SUFFIXES:
            try:
                decode_image(payload, str(rel))
            except ImageError as exc:
                notes.append(f"skipped: {exc}")
                continue
            kept += 1
        else:
            notes.append(f"{rel}: skipped, not an image")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload)
    if kept == 0:
        raise ImageSetError(f"{name}: the archive holds no image we can read.")
    return dest, notes


def from_zip(data: bytes, dest_root: str | Path, labels: str | Path | None = None,
             name: str = "upload.zip", class_names: tuple[str, ...] | None = None) -> ImageSet:
    """Extract a zip upload under `dest_root/<content hash>/` and read it as a folder (its
    labels from `labels`, or a `labels.csv` at the archive's top level or in its single
    top-level folder)."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder, marker = Path(dest_root) / digest, Path(dest_root) / f"{digest}.notes"
    if marker.is_file() and folder.is_dir():  # the same archive was extracted before
        notes = [n for n in marker.read_text(encoding="utf-8").splitlines() if n]
    else:
        folder, notes = extract_zip(data, folder, name)
        marker.write_text("\n".join(notes) + "\n", encoding="utf-8")
    if labels is None and not (folder / "labels.csv").is_file():
        inner = [p for p in folder.iterdir() if p.is_dir() and p.name != "__MACOSX"]
        if len(inner) == 1 and (inner[0] / "labels.csv").is_file():
            folder = inner[0]
    found = from_folder(folder, labels, class_names)
    return ImageSet(Path(name).stem, found.entries, f"zip {name}", tuple(notes) + found.notes)


# ----------------------------------------------------------------------------- by description


@dataclass(frozen=True)
class ImageSetSpec:
    """How a study names its images (the `images:` block of a plan).

    Attributes:
        source: "samples", "folder" or "cifar10".
        folder: the image folder (source "folder"), or a CIFAR-10 batch file or the folder
            holding `test_batch` (source "cifar10").
        labels: labels file; None uses `labels.csv` in the folder.
        subset: number of images drawn at random (None = all).
        seed: seed of the subset.
    """

    source: str = "samples"
    folder: str | None = None
    labels: str | None = None
    subset: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.source not in ("samples", "folder", "cifar10"):
            raise ConfigError("images.source must be 'samples', 'folder' or 'cifar10' "
                              f"(got {self.source!r}).")
        if self.source in ("folder", "cifar10") and not self.folder:
            raise ConfigError(f"images.folder is required when images.source is {self.source!r}.")
        if self.subset is not None:
            check_count("images.subset", self.subset)

    def resolve(self, class_names: tuple[str, ...] | None = None,
                base: str | Path | None = None) -> ImageSet:
        """Build the image set; relative folders are taken from `base` (e.g. the plan's folder)
        when they exist there, else from the working directory."""
        if self.source == "samples":
            images = from_samples(None if class_names is None or len(class_names) != 1000
                                  else class_names)
        elif self.source == "cifar10":
            images = from_cifar10(_relative(self.folder, base), class_names)
        else:
            folder = _relative(self.folder, base)
            labels = _relative(self.labels, base) if self.labels else None
            images = from_folder(folder, labels, class_names)
        return images.subset(self.subset, self.seed)


def _relative(path: str | None, base: str | Path | None) -> str:
    assert path is not None
    expanded = os.path.expanduser(path)
    if base is not None and not os.path.isabs(expanded):
        candidate = Path(base) / expanded
        if candidate.exists():
            return str(candidate)
    return expanded
