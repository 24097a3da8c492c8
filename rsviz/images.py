"""Decoding uploads safely, preprocessing to [0,1]^{3xHxW}, and offline sample photos."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from rsviz.errors import ImageError

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 40_000_000  # refuse decompression bombs well before PIL's own limit

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "MPO")


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image: the RGB original for display and where it came from."""

    original: Image.Image
    name: str
    source: str  # "sample", "upload" or "file"


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode (RGBA, P, L, I;16, CMYK, ...) to 8-bit RGB."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or array.max() > 255 else 255.0
        array = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(array, mode="L").convert("RGB")
    if img.mode == "RGB":
        return img
    return img.convert("RGB")


def _reason(exc: BaseException) -> str:
    """A decoder's error in a few words: its first line, else its type."""
    first = (str(exc).splitlines() or [""])[0].strip()
    return first[:160] if first else type(exc).__name__


def decode_image(data: bytes, name: str = "upload") -> LoadedImage:
    """Decode untrusted bytes into an RGB image, or raise ImageError with a clear message.

    Handles JPEG, PNG, WebP, BMP, TIFF (8/16-bit), palette, grayscale, RGBA and CMYK images and
    applies the EXIF orientation. Refuses empty, huge, corrupt and non-image data: whatever
    Pillow raises on bad bytes (TypeError, OverflowError, struct.error...) becomes ImageError.
    """
    if not data:
        raise ImageError(f"{name}: the file is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError(
            f"{name}: the file is {len(data) / 2**20:.0f} MB; the limit is "
            f"{MAX_UPLOAD_BYTES // 2**20} MB."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a bad upload's decoder notes are not the log's
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.format not in SUPPORTED_FORMATS:
                raise ImageError(f"{name}: format {img.format} is not supported "
                                 f"(use JPEG, PNG, WebP, BMP or TIFF).")
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ImageError(f"{name}: {width}×{height} pixels is too large "
                                 f"(limit {MAX_PIXELS / 1e6:.0f} megapixels).")
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name}: refused, the image is too large to decode safely.") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name}: not an image file we can read.") from exc
    except Exception as exc:  # noqa: BLE001 - whatever a decoder raises on bad bytes is one line
        raise ImageError(f"{name}: the image is corrupt or truncated ({_reason(exc)}).") from exc
    if min(rgb.size) < 8:
        raise ImageError(f"{name}: the image is only {rgb.size[0]}×{rgb.size[1]} pixels.")
    return LoadedImage(original=rgb, name=name, source="upload")


def load_image_file(path: str) -> LoadedImage:
    """Read and decode an image file from disk."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_UPLOAD_BYTES + 1)
    except OSError as exc:
        raise ImageError(f"{path}: cannot read the file ({exc.strerror}).") from exc
    loaded = decode_image(data, name=path)
    return LoadedImage(original=loaded.original, name=path, source="file")


def preprocess(img: Image.Image, size: int, resize: int | None = None,
               interpolation: str = "bicubic") -> torch.Tensor:
    """Resize the short side to `resize` (default size·256/224), centre-crop `size`, to [0,1].

    Returns a float32 tensor [3, size, size] in pixel space (no normalisation).
    """
    resize = resize or int(round(size * 256 / 224))
    method = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[interpolation]
    width, height = img.size
    scale = resize / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    resized = img.resize((new_w, new_h), method)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    cropped = resized.crop((left, top, left + size, top + size))
    array = np.asarray(cropped, dtype=np.float32) / 255.0
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def model_input(img: Image.Image, model) -> torch.Tensor:
    """`img` as `model`'s input: `preprocess` at the size, resize and interpolation of its
    `info`, a [3,H,W] tensor in [0, 1]."""
    info = model.info
    return preprocess(img, info.input_size, info.resize, info.interpolation)


def to_pil(x: torch.Tensor) -> Image.Image:
    """[3,H,W] tensor in [0,1] (values outside are clipped) -> PIL RGB image."""
    array = x.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray((array * 255 + 0.5).astype(np.uint8))


def tensor_hash(x: torch.Tensor) -> str:
    """Stable content hash of a tensor (dtype, shape and bytes)."""
    array = x.detach().cpu().contiguous().numpy()
    digest = hashlib.sha256(str((array.dtype.str, array.shape)).encode())
    digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def _skimage(name: str) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        from skimage import data  # bundled with scikit-image, no download

        return Image.fromarray(getattr(data, name)()).convert("RGB")

    return load


# Offline sample photos shipped with scikit-image, with the ImageNet class they depict.
SAMPLES: dict[str, tuple[Callable[[], Image.Image], str]] = {
    "chelsea": (_skimage("chelsea"), "tiger cat"),
    "coffee": (_skimage("coffee"), "espresso"),
    "rocket": (_skimage("rocket"), "missile"),
    "astronaut": (_skimage("astronaut"), "—"),
}
DEFAULT_SAMPLE = "coffee"


def load_sample(name: str) -> LoadedImage:
    """Load one of the bundled sample photos by name."""
    if name not in SAMPLES:
        raise ImageError(f"Unknown sample image {name!r}; choose from {', '.join(SAMPLES)}.")
    return LoadedImage(original=SAMPLES[name][0](), name=name, source="sample")


def synthetic_image(size: int = 32, seed: int = 0) -> Image.Image:
    """A smooth random RGB image, for tests and tiny models."""
    rng = np.random.default_rng(seed)
    low = rng.random((4, 4, 3))
    img = Image.fromarray((low * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    return img
