"""Decode fuzz: seeded byte mutations of small PNG, JPEG, BMP, TIFF, WebP and GIF files through
`rsviz.images.decode_image`, counting what comes out. Anything but an RsvizError escaping is a
bug (the app would show a traceback); it is printed with the seed that reproduces it.

    .venv/bin/python bench/decode_fuzz.py [--mutants 100000] [--seed 0] [--json out.json]

tests/test_faults.py runs a few thousand of the same mutants.
"""

from __future__ import annotations

import io
import random
import struct
import time
import zlib
from collections import Counter

from rsviz.errors import RsvizError
from rsviz.images import decode_image, synthetic_image

FORMATS = {"PNG": {}, "JPEG": {"quality": 90}, "BMP": {}, "TIFF": {"compression": "raw"},
           "WEBP": {"quality": 80}, "GIF": {}}
INTERESTING = (0, 1, 2, 3, 4, 5, 7, 8, 10, 12, 16, 0x7F, 0x80, 0xFF)  # incl. TIFF tag types
HEADER = 128


def seed_files(size: int = 16) -> dict[str, bytes]:
    """One small RGB image saved in every format (the mutation seeds)."""
    img = synthetic_image(size, seed=3)
    out = {}
    for fmt, options in FORMATS.items():
        buffer = io.BytesIO()
        img.save(buffer, format=fmt, **options)
        out[fmt] = buffer.getvalue()
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four edits, half of them in the headers: a byte set to a random or boundary value,
    a bit flipped, a 16/32-bit field set to an extreme, a range deleted or duplicated, or the
    tail cut off."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not out:
            break
        # half the edits in the first 128 bytes, where the headers and tag tables are
        at = rng.randrange(min(len(out), HEADER) if rng.random() < 0.5 else len(out))
        kind = rng.randrange(7)
        if kind == 0:
            out[at] = rng.randrange(256)
        elif kind == 1:
            out[at] = rng.choice(INTERESTING)
        elif kind == 2:
            out[at] ^= 1 << rng.randrange(8)
        elif kind == 3:
            width = rng.choice((2, 4))
            value = rng.choice((0, 1, 0x7F, 0x80, 0xFF)) if width == 2 else 0xFF
            out[at:at + width] = bytes([value] * width)[:len(out) - at]
        elif kind == 4:
            del out[at:at + rng.randint(1, 16)]
        elif kind == 5:
            end = min(len(out), at + rng.randint(1, 16))
            out[at:at] = out[at:end]
        else:
            del out[at:]
    return bytes(out)


def mutate_tiff_tag(data: bytes, rng: random.Random) -> bytes:
    """Set the type, count or value of one entry of a little-endian TIFF's first tag table
    (the bug class of a StripOffsets tag typed RATIONAL)."""
    out = bytearray(data)
    ifd = struct.unpack_from("<I", out, 4)[0]
    if out[:2] != b"II" or ifd + 2 > len(out):
        return mutate(data, rng)
    entries = struct.unpack_from("<H", out, ifd)[0]
    at = ifd + 2 + 12 * rng.randrange(max(entries, 1))
    if at + 12 > len(out):
        return mutate(data, rng)
    field = rng.randrange(3)
    if field == 0:
        struct.pack_into("<H", out, at + 2, rng.randint(0, 18))
    elif field == 1:
        struct.pack_into("<I", out, at + 4, rng.choice((0, 2, 3, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)))
    else:
        struct.pack_into("<I", out, at + 8, rng.choice((0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)))
    return bytes(out)


def fix_png_crcs(data: bytes) -> bytes:
    """Recompute the CRC of every PNG chunk that is still whole, so that mutants reach the
    chunk parsers instead of failing the checksum."""
    out = bytearray(data)
    at = 8
    while at + 12 <= len(out):
        length = struct.unpack_from(">I", out, at)[0]
        end = at + 8 + length
        if end + 4 > len(out):
            break
        struct.pack_into(">I", out, end, zlib.crc32(out[at + 4:end]))
        at = end + 4
    return bytes(out)


def mutant(fmt: str, data: bytes, rng: random.Random) -> bytes:
    """A mutant of a seed file: format-aware edits for TIFF tags and PNG checksums."""
    if fmt == "TIFF" and rng.random() < 0.5:
        return mutate_tiff_tag(data, rng)
    out = mutate(data, rng)
    return fix_png_crcs(out) if fmt == "PNG" and rng.random() < 0.8 else out


def run(mutants: int, seed: int = 0) -> tuple[Counter, list[tuple[str, int, str]]]:
    """Decode `mutants` mutants spread over the formats. Returns the outcome counts per format
    ("decoded" or "rsviz error") and the escapes: (format, mutant seed, exception)."""
    seeds = seed_files()
    counts: Counter = Counter()
    escapes: list[tuple[str, int, str]] = []
    names = list(seeds)
    for i in range(mutants):
        fmt = names[i % len(names)]
        mutant_seed = seed * 1_000_003 + i
        data = mutant(fmt, seeds[fmt], random.Random(mutant_seed))
        try:
            decode_image(data, f"{fmt.lower()}-{mutant_seed}")
            counts[fmt, "decoded"] += 1
        except RsvizError:
            counts[fmt, "rsviz error"] += 1
        except Exception as exc:  # noqa: BLE001 - what the fuzz is looking for
            counts[fmt, "ESCAPED"] += 1
            escapes.append((fmt, mutant_seed, f"{type(exc).__name__}: {exc}"))
    return counts, escapes


def main() -> None:
    import harness  # here, not above: tests/test_faults.py loads this file by its path

    parser = harness.parser(__doc__)
    parser.add_argument("--mutants", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    harness.start(args)
    started = time.perf_counter()
    counts, escapes = run(args.mutants, args.seed)
    seconds = time.perf_counter() - started
    print(f"{args.mutants:,} mutants (seed {args.seed}) in {seconds:.1f} s")
    print(f"{'format':<6} {'decoded':>9} {'rsviz error':>12} {'escaped':>8}")
    for fmt in FORMATS:
        print(f"{fmt:<6} {counts[fmt, 'decoded']:>9,} {counts[fmt, 'rsviz error']:>12,} "
              f"{counts[fmt, 'ESCAPED']:>8,}")
    for fmt, mutant_seed, error in escapes[:20]:
        print(f"escaped: {fmt} mutant seed {mutant_seed}: {error}")
    print(f"non-rsviz exceptions: {len(escapes)}")
    harness.save(args.json, "decode_fuzz", {
        "seconds": seconds, "counts": {f"{fmt} {outcome}": count
                                       for (fmt, outcome), count in sorted(counts.items())},
        "escapes": escapes}, mutants=args.mutants, seed=args.seed)


if __name__ == "__main__":
    main()
