"""Decoding uploads: every format and mode, EXIF orientation, and bad files refused clearly."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from rsviz.errors import ImageError
from rsviz.images import (MAX_UPLOAD_BYTES, SAMPLES, decode_image, load_sample, preprocess,
                          tensor_hash, to_pil)


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def _gradient(w=64, h=48) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.uint8)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.uint8)[:, None].repeat(w, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], -1))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_formats_decode_to_rgb(fmt):
    loaded = decode_image(_encode(_gradient(), fmt), f"img.{fmt.lower()}")
    assert loaded.original.mode == "RGB" and loaded.original.size == (64, 48)
    array = np.asarray(loaded.original, dtype=float)
    assert abs(array[0, -1, 0] - 255) < 20 and abs(array[-1, 0, 1] - 255) < 20


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "CMYK", "LA", "1"])
def test_modes_convert_to_rgb(mode):
    img = _gradient().convert(mode)
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode == "1" else "PNG")
    loaded = decode_image(_encode(img, fmt))
    assert loaded.original.mode == "RGB"


def test_rgba_transparency_composited_on_white():
    img = Image.new("RGBA", (16, 16), (255, 0, 0, 0))
    loaded = decode_image(_encode(img, "PNG"))
    assert loaded.original.getpixel((3, 3)) == (255, 255, 255)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_images_keep_their_range(fmt):
    array = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    img = Image.fromarray(array)  # uint16 -> mode I;16
    loaded = decode_image(_encode(img, fmt))
    out = np.asarray(loaded.original)
    assert out.dtype == np.uint8 and out.min() <= 1 and out.max() >= 254


def test_exif_orientation_applied():
    img = _gradient(64, 32)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    loaded = decode_image(_encode(img, "JPEG", exif=exif.tobytes()))
    assert loaded.original.size == (32, 64)


@pytest.mark.parametrize("data,match", [
    (b"", "empty"),
    (b"hello, this is not an image", "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image|corrupt"),
])
def test_bad_files_refused(data, match):
    with pytest.raises(ImageError, match=match):
        decode_image(data)


def test_truncated_jpeg_refused():
    data = _encode(_gradient(256, 256), "JPEG")
    with pytest.raises(ImageError, match="corrupt|truncated"):
        decode_image(data[: len(data) // 3])


def test_huge_upload_refused_without_decoding():
    with pytest.raises(ImageError, match="MB"):
        decode_image(b"\xff" * (MAX_UPLOAD_BYTES + 1))


def test_decompression_bomb_refused():
    # A tiny PNG whose header claims 20000×20000 pixels.
    bomb = _encode(Image.new("L", (20000, 20000)), "PNG")
    assert len(bomb) < MAX_UPLOAD_BYTES
    with pytest.raises(ImageError, match="too large"):
        decode_image(bomb)


def test_tiny_image_refused():
    with pytest.raises(ImageError, match="only"):
        decode_image(_encode(Image.new("RGB", (4, 4)), "PNG"))


def test_preprocess_shape_range_and_centre_crop():
    img = _gradient(300, 200)
    x = preprocess(img, 224, 256)
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1
    # centre crop of a horizontal gradient keeps the middle: mean red ≈ 0.5
    assert abs(float(x[0].mean()) - 0.5) < 0.05


def test_round_trip_and_hash():
    x = preprocess(_gradient(), 32, 32)
    back = preprocess(to_pil(x), 32, 32)
    assert float((back - x).abs().max()) < 1 / 255 + 1e-6
    assert tensor_hash(x) == tensor_hash(x.clone()) != tensor_hash(x + 1e-3)


def test_samples_are_offline():
    for name in SAMPLES:
        img = load_sample(name).original
        assert img.mode == "RGB" and min(img.size) >= 256
    with pytest.raises(ImageError):
        load_sample("no such sample")
