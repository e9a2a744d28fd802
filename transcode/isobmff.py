"""A small ISO base media file (MP4, MOV) box walker: enough to find a moov-less file's ``mdat``
and to read a reference recording's video sample description (issue 17, recovery).

Reads box headers only where it must (``boxes``), never trusts a size beyond the file: a box
that claims more than is left ends at the end of the file, which is what a recording cut off
before it was finalised looks like (its ``mdat`` header still says 0, or the size it would
have had). Pure: it takes bytes (a ``bytes`` or an ``mmap``) and returns typed values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from transcode.errors import TranscodeError

Codec = Literal["h264", "hevc"]

_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf"})
_VIDEO_ENTRIES: dict[bytes, Codec] = {
    b"avc1": "h264", b"avc3": "h264", b"hvc1": "hevc", b"hev1": "hevc",
}  # fmt: skip
VISUAL_ENTRY_HEADER = 78
"""Bytes of a VisualSampleEntry before its child boxes (ISO 14496-12 §12.1.3)."""


class Buffer(Protocol):
    def __len__(self) -> int: ...

    def __getitem__(self, index: slice, /) -> bytes: ...


class BoxError(TranscodeError):
    """What an ISO BMFF file holds cannot be read as its format requires."""


@dataclass(frozen=True)
class Box:
    kind: bytes  # the four-character type, e.g. b"mdat"
    start: int  # offset of its header
    body: int  # offset of its payload
    end: int  # offset after it (at most the end of what was read)
    truncated: bool = False  # its header claims more than the file holds


@dataclass(frozen=True)
class VideoSetup:
    """A video track's decoder setup, as a reference recording's ``stsd`` gives it."""

    codec: Codec
    length_size: int  # bytes of each NAL unit's length prefix in the samples
    parameter_sets: tuple[bytes, ...]  # VPS (HEVC), SPS, PPS: NAL units without prefix
    config: bytes  # the avcC or hvcC itself (a Matroska track's codec private data)
    width: int
    height: int
    timescale: int  # the track's clock (mdhd)
    sample_delta: int  # its most common frame duration on that clock (stts)

    @property
    def rate(self) -> str:
        """The frame rate as ffmpeg takes it: ``timescale/sample_delta``."""
        return f"{self.timescale}/{self.sample_delta}"


@dataclass(frozen=True)
class Track:
    handler: bytes  # b"vide", b"soun", ...
    entry: bytes  # the first sample entry's type: b"avc1", b"mp4a", ...
    video: VideoSetup | None


def _u32(data: Buffer, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "big")


def boxes(data: Buffer, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """The boxes between ``start`` and ``end``, in order. A size of 0 ("to the end") or one
    beyond ``end`` makes the box end at ``end``, marked ``truncated`` when it claimed more;
    a header that cannot be a box ends the walk with ``BoxError``."""
    end = len(data) if end is None else end
    at = start
    while at + 8 <= end:
        size, kind = _u32(data, at), data[at + 4 : at + 8]
        body = at + 8
        if size == 1:
            if at + 16 > end:
                raise BoxError(f"a {_name(kind)} box at byte {at} is cut in its header")
            size, body = int.from_bytes(data[at + 8 : at + 16], "big"), at + 16
        claimed = end - at if size == 0 else size
        if claimed < body - at or not _printable(kind):
            raise BoxError(f"no box at byte {at} (size {size}, type {kind!r})")
        yield Box(kind, at, body, min(at + claimed, end), truncated=at + claimed > end)
        at += claimed


def _printable(kind: bytes) -> bool:
    return len(kind) == 4 and all(32 <= c < 127 or c == 0xA9 for c in kind)


def _name(kind: bytes) -> str:
    return kind.decode("latin-1")


def top_level(data: Buffer) -> list[Box]:
    """The file's top-level boxes, as far as they can be read (a walk that meets bytes that
    are no box stops there: what came before is still returned)."""
    found: list[Box] = []
    walk = boxes(data)
    while True:
        try:
            found.append(next(walk))
        except (StopIteration, BoxError):
            return found


def find(
    data: Buffer, path: tuple[bytes, ...], start: int = 0, end: int | None = None
) -> Box | None:
    """The first box at ``path`` (e.g. ``(b"moov", b"mvhd")``) within ``start``..``end``."""
    for box in boxes(data, start, end):
        if box.kind == path[0]:
            return box if len(path) == 1 else find(data, path[1:], box.body, box.end)
    return None


def tracks(data: Buffer) -> list[Track]:
    """Every track of the file's ``moov``: its handler, first sample entry and, for H.264 or
    HEVC video, its decoder setup. ``BoxError`` when there is no ``moov``."""
    moov = next((b for b in top_level(data) if b.kind == b"moov" and not b.truncated), None)
    if moov is None:
        raise BoxError("it has no complete moov box (no index of its samples)")
    return [_track(data, b) for b in boxes(data, moov.body, moov.end) if b.kind == b"trak"]


def _track(data: Buffer, trak: Box) -> Track:
    mdia = find(data, (b"mdia",), trak.body, trak.end)
    if mdia is None:
        return Track(b"", b"", None)
    hdlr = find(data, (b"hdlr",), mdia.body, mdia.end)
    handler = data[hdlr.body + 8 : hdlr.body + 12] if hdlr is not None else b""
    stbl = find(data, (b"minf", b"stbl"), mdia.body, mdia.end)
    stsd = find(data, (b"stsd",), stbl.body, stbl.end) if stbl is not None else None
    if stbl is None or stsd is None or stsd.end - stsd.body < 16:
        return Track(handler, b"", None)
    entry = next(boxes(data, stsd.body + 8, stsd.end), None)
    if entry is None:
        return Track(handler, b"", None)
    codec = _VIDEO_ENTRIES.get(entry.kind)
    if handler != b"vide" or codec is None:
        return Track(handler, entry.kind, None)
    timescale = _timescale(data, mdia)
    delta = _common_delta(data, stbl)
    setup = _video_setup(data, entry, codec, timescale, delta)
    return Track(handler, entry.kind, setup)


def _timescale(data: Buffer, mdia: Box) -> int:
    mdhd = find(data, (b"mdhd",), mdia.body, mdia.end)
    if mdhd is None:
        raise BoxError("its video track has no mdhd (no clock)")
    version = data[mdhd.body : mdhd.body + 1]
    return _u32(data, mdhd.body + (20 if version == b"\x01" else 12))


def _common_delta(data: Buffer, stbl: Box) -> int:
    """The most common sample duration of the ``stts`` (the frame duration of a constant
    frame rate recording); ``BoxError`` when there is none."""
    stts = find(data, (b"stts",), stbl.body, stbl.end)
    if stts is None:
        raise BoxError("its video track has no stts (no frame durations)")
    count = _u32(data, stts.body + 4)
    tally: Counter[int] = Counter()
    for i in range(min(count, (stts.end - stts.body - 8) // 8)):
        at = stts.body + 8 + 8 * i
        if (delta := _u32(data, at + 4)) > 0:
            tally[delta] += _u32(data, at)
    if not tally:
        raise BoxError("its video track's stts gives no frame duration")
    return tally.most_common(1)[0][0]


def _video_setup(data: Buffer, entry: Box, codec: Codec, timescale: int, delta: int) -> VideoSetup:
    width = int.from_bytes(data[entry.body + 24 : entry.body + 26], "big")
    height = int.from_bytes(data[entry.body + 26 : entry.body + 28], "big")
    config_kind = b"avcC" if codec == "h264" else b"hvcC"
    config = find(data, (config_kind,), entry.body + VISUAL_ENTRY_HEADER, entry.end)
    if config is None:
        raise BoxError(f"its {_name(entry.kind)} sample entry has no {_name(config_kind)}")
    raw = data[config.body : config.end]
    length_size, sets = avc_config(raw) if codec == "h264" else hevc_config(raw)
    return VideoSetup(codec, length_size, sets, raw, width, height, timescale, delta)


def avc_config(raw: bytes) -> tuple[int, tuple[bytes, ...]]:
    """An ``avcC`` (ISO 14496-15 §5.3.3): the NAL length size and the SPS and PPS units."""
    if len(raw) < 7 or raw[0] != 1:
        raise BoxError("its avcC is not an AVCDecoderConfigurationRecord version 1")
    length_size = (raw[4] & 3) + 1
    sets: list[bytes] = []
    at = 5
    for mask in (0x1F, 0xFF):  # the SPS count (5 bits), then the PPS count
        if at >= len(raw):
            raise BoxError("its avcC is cut short")
        at = _units(raw, at + 1, raw[at] & mask, sets, "avcC")
    return length_size, tuple(sets)


def hevc_config(raw: bytes) -> tuple[int, tuple[bytes, ...]]:
    """An ``hvcC`` (ISO 14496-15 §8.3.3): the NAL length size and its VPS, SPS, PPS units."""
    if len(raw) < 23 or raw[0] != 1:
        raise BoxError("its hvcC is not an HEVCDecoderConfigurationRecord version 1")
    length_size = (raw[21] & 3) + 1
    sets: list[bytes] = []
    at = 23
    for _ in range(raw[22]):
        if at + 3 > len(raw):
            raise BoxError("its hvcC is cut short")
        at = _units(raw, at + 3, int.from_bytes(raw[at + 1 : at + 3], "big"), sets, "hvcC")
    return length_size, tuple(sets)


def _units(raw: bytes, at: int, count: int, into: list[bytes], box: str) -> int:
    """``count`` parameter-set units from ``at``, each a 16-bit size and its bytes, appended to
    ``into``; the offset after them."""
    for _ in range(count):
        size = int.from_bytes(raw[at : at + 2], "big")
        unit = raw[at + 2 : at + 2 + size]
        if len(unit) != size or size == 0:
            raise BoxError(f"its {box} is cut short")
        into.append(unit)
        at += 2 + size
    return at
