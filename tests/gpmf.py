"""A small GPMF writer for tests: GoPro's KLV records, built as GoPro documents them (key,
type, struct size, repeat, payload padded to 4 bytes), so that ``transcode.gps`` is tested
against bytes laid out by the specification rather than by its own reader."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import datetime


def klv(key: str, kind: str, size: int, repeat: int, data: bytes) -> bytes:
    assert len(key) == 4 and len(data) == size * repeat
    head = key.encode("ascii") + kind.encode("latin-1") + bytes([size]) + repeat.to_bytes(2, "big")
    return head + data + b"\0" * (-len(data) % 4)


def nest(key: str, *children: bytes) -> bytes:
    """A container record (type 0): size 1, repeat = the children's length."""
    body = b"".join(children)
    return klv(key, "\0", 1, len(body), body)


def gps5_payload(when: datetime, fixes: Sequence[tuple[float, float]], *, lock: int = 3) -> bytes:
    """One second of a GoPro HERO (5-10) GPS stream: GPSU, GPSF, SCAL and GPS5 samples."""
    scales = (10_000_000, 10_000_000, 1000, 1000, 100)
    samples = b"".join(
        struct.pack(">5i", round(lat * 1e7), round(lon * 1e7), 123_456, 1500, 150)
        for lat, lon in fixes
    )
    stream = nest(
        "STRM",
        klv("STNM", "c", 1, 8, b"GPS (3D)"),
        klv("GPSU", "U", 16, 1, when.strftime("%y%m%d%H%M%S.%f")[:16].encode()),
        klv("GPSF", "L", 4, 1, struct.pack(">I", lock)),
        klv("SCAL", "l", 4, 5, struct.pack(">5i", *scales)),
        klv("GPS5", "l", 20, len(fixes), samples),
    )
    return nest("DEVC", klv("DVID", "L", 4, 1, struct.pack(">I", 1)), stream)


def gps9_payload(days: int, seconds: float, fix: tuple[float, float], *, lock: int = 3) -> bytes:
    """One GPS9 sample (HERO11 and later): its own time (days since 2000, seconds of day)."""
    scales = (10_000_000, 10_000_000, 1000, 1000, 100, 1, 1000, 100, 1)
    sample = struct.pack(
        ">7i2H", round(fix[0] * 1e7), round(fix[1] * 1e7), 5000, 100, 100, days,
        round(seconds * 1000), 150, lock,
    )  # fmt: skip
    stream = nest(
        "STRM",
        klv("SCAL", "l", 4, 9, struct.pack(">9i", *scales)),
        klv("TYPE", "c", 1, 9, b"lllllllSS"),
        klv("GPS9", "?", len(sample), 1, sample),
    )
    return nest("DEVC", stream)


def padded(payload: bytes, size: int) -> bytes:
    """``payload`` followed by a FREE record that makes it ``size`` bytes (equal packets)."""
    left = size - len(payload) - 8
    assert left >= 0 and left % 4 == 0, (len(payload), size)
    return payload + klv("FREE", "B", 1, left, b"\0" * left)
