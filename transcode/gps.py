"""GPS positions a camera writes into a track of its own (issue 17), read out of the original.

Two forms are understood, both pure parsers here; the ffmpeg calls that pull a track's bytes
out are built by the two ``*_command`` functions and run by ``track_fixes``:

* **NMEA 0183 sentences in a subtitle track** (dash cameras and body cameras write one cue a
  second holding ``$GPRMC``/``$GPGGA`` lines). A sentence counts only if its checksum (when it
  has one) is right and it reports a fix: ``RMC`` with status ``A``, ``GGA`` with a quality
  above 0. ``GGA`` has no date: it takes the date of the last ``RMC`` before it, and is
  skipped when there is none. Each fix keeps the start of its cue (``media_s``).
* **GoPro GPMF** in a ``gpmd`` data track: KLV records (four-character key, type, struct
  size, repeat; payloads padded to 4 bytes). ``GPS5`` (lat, lon, alt, 2D and 3D speed) is
  scaled by the stream's ``SCAL`` and timed by ``GPSU`` (UTC of the payload); ``GPS9``
  (HERO11 and later) carries its own days-since-2000 and seconds. A payload whose ``GPSF``
  says no lock (0) gives no fixes. ``GPS5`` samples are spread over the payload's second
  (``GPSU + i/n`` s), the way GoPro's own tools time them.

Nothing here changes a byte of evidence: the tracks are read from the stored original.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from transcode.errors import TranscodeError
from transcode.ffmpeg import Tools
from transcode.tracks import ExtraTrack

GpsForm = Literal["gpmf", "nmea"]

# Text subtitle codecs ffmpeg can turn into SubRip (bitmap subtitles carry no sentences).
TEXT_SUBTITLES = frozenset({"mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text"})
GPMF_TAGS = frozenset({"gpmd"})
MAX_TRACK_BYTES = 256 << 20  # a day of GPMF is well under this


@dataclass(frozen=True)
class Fix:
    """One position: UTC as the receiver gave it, degrees, and where in the recording it was
    written (seconds from the track's start; None where the form does not say)."""

    t: datetime
    lat: float
    lon: float
    media_s: float | None = None


@dataclass(frozen=True)
class TrackFixes:
    """The fixes read out of one track, and how many records were passed over (no lock, a bad
    checksum, no date)."""

    index: int
    form: GpsForm
    fixes: tuple[Fix, ...]
    skipped: int = 0


# ---- NMEA 0183 -------------------------------------------------------------------------------

_SENTENCE = re.compile(
    r"\$(?P<body>[A-Z]{2}(?P<type>RMC|GGA),[^*$\r\n]*)(?:\*(?P<sum>[0-9A-Fa-f]{2}))?"
)
_CUE_TIME = re.compile(r"(\d+):(\d\d):(\d\d)[,.](\d{3})\s*-->")


def _checksum_ok(body: str, given: str | None) -> bool:
    if given is None:
        return True
    value = 0
    for char in body.encode("ascii", "replace"):
        value ^= char
    return value == int(given, 16)


def _degrees(value: str, hemisphere: str, width: int) -> float | None:
    """``ddmm.mmmm`` (``width`` 2) or ``dddmm.mmmm`` (3) with N/S or E/W, as signed degrees."""
    if len(value) < width + 2 or hemisphere not in ("N", "S", "E", "W"):
        return None
    try:
        degrees = int(value[:width]) + float(value[width:]) / 60
    except ValueError:
        return None
    limit = 90 if width == 2 else 180
    if degrees > limit:
        return None
    return -degrees if hemisphere in ("S", "W") else degrees


def _clock(value: str) -> tuple[int, int, int, int] | None:
    """``hhmmss[.sss]`` as (hours, minutes, seconds, microseconds)."""
    match = re.fullmatch(r"(\d\d)(\d\d)(\d\d)(?:\.(\d{1,6}))?", value)
    if match is None:
        return None
    micro = int((match.group(4) or "0").ljust(6, "0"))
    hours, minutes, seconds = int(match.group(1)), int(match.group(2)), int(match.group(3))
    if hours > 23 or minutes > 59 or seconds > 60:
        return None
    return hours, minutes, min(seconds, 59), micro


def _date(value: str) -> datetime | None:
    """``ddmmyy`` (two-digit years are 2000-2099) as midnight UTC."""
    match = re.fullmatch(r"(\d\d)(\d\d)(\d\d)", value)
    if match is None:
        return None
    try:
        return datetime(
            2000 + int(match.group(3)), int(match.group(2)), int(match.group(1)), tzinfo=UTC
        )
    except ValueError:
        return None


@dataclass
class _NmeaState:
    day: datetime | None = None
    fixes: list[Fix] = field(default_factory=list)
    skipped: int = 0
    seen: set[datetime] = field(default_factory=set)

    def add(self, t: datetime, lat: float, lon: float, media_s: float | None) -> None:
        if t in self.seen:  # RMC and GGA of the same instant: one fix
            return
        self.seen.add(t)
        self.fixes.append(Fix(t, lat, lon, media_s))


def _sentence(state: _NmeaState, kind: str, fields: list[str], media_s: float | None) -> None:
    if kind == "RMC":
        if len(fields) < 10:
            state.skipped += 1
            return
        day = _date(fields[9])
        if day is not None:
            state.day = day
        ok = fields[2] == "A"
        lat, lon, clock = (
            _degrees(fields[3], fields[4], 2),
            _degrees(fields[5], fields[6], 3),
            _clock(fields[1]),
        )
    else:  # GGA
        if len(fields) < 7:
            state.skipped += 1
            return
        ok = fields[6].isdigit() and int(fields[6]) > 0
        lat, lon, clock = (
            _degrees(fields[2], fields[3], 2),
            _degrees(fields[4], fields[5], 3),
            _clock(fields[1]),
        )
    if not ok or lat is None or lon is None or clock is None or state.day is None:
        state.skipped += 1
        return
    hours, minutes, seconds, micro = clock
    t = state.day + timedelta(hours=hours, minutes=minutes, seconds=seconds, microseconds=micro)
    state.add(t, lat, lon, media_s)


def nmea_fixes(cues: Sequence[tuple[float | None, str]]) -> tuple[tuple[Fix, ...], int]:
    """The fixes in ``(cue start, cue text)`` pairs, in order, and how many sentences were
    passed over. Text that holds no RMC/GGA sentence is not counted at all."""
    state = _NmeaState()
    for media_s, text in cues:
        for match in _SENTENCE.finditer(text):
            body = match.group("body")
            if not _checksum_ok(body, match.group("sum")):
                state.skipped += 1
                continue
            _sentence(state, match.group("type"), body.split(","), media_s)
    return tuple(state.fixes), state.skipped


def srt_cues(text: str) -> list[tuple[float | None, str]]:
    """The cues of a SubRip document: (start in seconds, text)."""
    cues: list[tuple[float | None, str]] = []
    for block in re.split(r"\r?\n\s*\r?\n", text):
        lines = block.strip().splitlines()
        start: float | None = None
        body: list[str] = []
        for line in lines:
            timing = _CUE_TIME.search(line)
            if timing is not None and start is None:
                h, m, s, ms = (int(g) for g in timing.groups())
                start = h * 3600 + m * 60 + s + ms / 1000
            elif start is not None:
                body.append(line)
        if start is not None:
            cues.append((start, "\n".join(body)))
    return cues


# ---- GoPro GPMF -----------------------------------------------------------------------------

_SIZES = {"b": 1, "B": 1, "c": 1, "s": 2, "S": 2, "l": 4, "L": 4, "f": 4, "d": 8, "j": 8, "J": 8}
_FORMATS = {
    "b": "b",
    "B": "B",
    "s": "h",
    "S": "H",
    "l": "i",
    "L": "I",
    "f": "f",
    "d": "d",
    "j": "q",
    "J": "Q",
}
_GPS_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Klv:
    key: str
    type: str  # "\0" for a nested container
    size: int  # struct size
    repeat: int
    data: bytes


def klv_records(data: bytes) -> Iterator[Klv]:
    """The records at one level of a GPMF payload. Stops at the first record that does not fit
    (a torn payload is read up to its last whole record)."""
    pos = 0
    while pos + 8 <= len(data):
        key = data[pos : pos + 4].decode("latin-1")
        kind = chr(data[pos + 4])
        size = data[pos + 5]
        repeat = int.from_bytes(data[pos + 6 : pos + 8], "big")
        length = size * repeat
        if pos + 8 + length > len(data) or not key.isprintable():
            return
        yield Klv(key, kind, size, repeat, data[pos + 8 : pos + 8 + length])
        pos += 8 + (length + 3) // 4 * 4


def _numbers(record: Klv, layout: str | None = None) -> list[tuple[float, ...]]:
    """A record's samples as tuples of numbers: a simple type's struct is ``size / width``
    values of it; a complex (``?``) record's struct is one of each of ``layout`` (its TYPE)."""
    if record.type == "?":
        if layout is None or any(c not in _FORMATS for c in layout):
            return []
        fmt = layout
    elif record.type in _FORMATS and record.size % _SIZES[record.type] == 0:
        fmt = record.type * (record.size // _SIZES[record.type])
    else:
        return []
    if not fmt or sum(_SIZES[c] for c in fmt) != record.size:
        return []
    unpack = struct.Struct(">" + "".join(_FORMATS[c] for c in fmt))
    return [
        tuple(float(v) for v in unpack.unpack_from(record.data, n * record.size))
        for n in range(record.repeat)
    ]


def _gpsu(record: Klv) -> datetime | None:
    try:
        return datetime.strptime(record.data[:16].decode("ascii"), "%y%m%d%H%M%S.%f").replace(
            tzinfo=UTC
        )
    except (UnicodeDecodeError, ValueError):
        return None


def _scaled(sample: tuple[float, ...], scales: list[float]) -> list[float]:
    if not scales:
        return list(sample)
    if len(scales) == 1:
        return [v / scales[0] if scales[0] else v for v in sample]
    return [v / s if s else v for v, s in zip(sample, scales, strict=False)]


def _stream_fixes(stream: bytes, payload_s: float) -> tuple[list[Fix], int]:
    """The fixes of one STRM: GPS5 timed by GPSU, or GPS9 with its own time."""
    scales: list[float] = []
    layout: str | None = None
    when: datetime | None = None
    lock = 3
    fixes: list[Fix] = []
    skipped = 0
    for rec in klv_records(stream):
        if rec.key == "SCAL":
            scales = [v for sample in _numbers(rec) for v in sample]
        elif rec.key == "TYPE":
            layout = rec.data.decode("latin-1").rstrip("\0")
        elif rec.key == "GPSU":
            when = _gpsu(rec)
        elif rec.key == "GPSF":
            got = _numbers(rec)
            lock = int(got[0][0]) if got else 0
        elif rec.key in ("GPS5", "GPS9"):
            samples = _numbers(rec, layout)
            if lock == 0 or not samples:
                skipped += len(samples) or 1
                continue
            for i, sample in enumerate(samples):
                values = _scaled(sample, scales)
                if rec.key == "GPS9" and len(values) >= 9 and values[8] == 0:
                    skipped += 1  # this sample's own fix field: no lock
                    continue
                if rec.key == "GPS9" and len(values) >= 7:
                    t = _GPS_EPOCH + timedelta(days=values[5], seconds=values[6])
                elif when is not None:
                    t = when + timedelta(seconds=payload_s * i / len(samples))
                else:
                    skipped += 1
                    continue
                lat, lon = values[0], values[1]
                if abs(lat) > 90 or abs(lon) > 180 or (lat == 0 and lon == 0):
                    skipped += 1
                    continue
                fixes.append(Fix(t, lat, lon))
    return fixes, skipped


def gpmf_fixes(data: bytes, payload_s: float = 1.0) -> tuple[tuple[Fix, ...], int]:
    """The fixes in a GPMF track's payloads (concatenated: each is a DEVC record), in order,
    and how many samples were passed over (no lock, no time, out of range)."""
    fixes: list[Fix] = []
    skipped = 0
    for device in klv_records(data):
        if device.key != "DEVC" or device.type != "\0":
            continue
        for stream in klv_records(device.data):
            if stream.key == "STRM" and stream.type == "\0":
                got, missed = _stream_fixes(stream.data, payload_s)
                fixes.extend(got)
                skipped += missed
    return tuple(fixes), skipped


# ---- reading a track out of the original ------------------------------------------------------


def gps_form(track: ExtraTrack) -> GpsForm | None:
    """The GPS form a track may hold, judged by its codec and tag (None: neither form)."""
    if track.kind == "data" and (track.tag in GPMF_TAGS or track.codec in GPMF_TAGS):
        return "gpmf"
    if track.kind == "subtitle" and track.codec in TEXT_SUBTITLES:
        return "nmea"
    return None


def subtitle_text_command(ffmpeg: str, source: Path, index: int) -> list[str]:
    """Stream ``index`` of ``source`` as SubRip text on stdout."""
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(source),
        "-map", f"0:{index}", "-c:s", "srt", "-f", "srt", "pipe:1",
    ]  # fmt: skip


def data_track_command(ffmpeg: str, source: Path, index: int) -> list[str]:
    """Stream ``index`` of ``source``, its packets' bytes as they are, on stdout."""
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(source),
        "-map", f"0:{index}", "-c", "copy", "-f", "data", "pipe:1",
    ]  # fmt: skip


class GpsTrackUnreadable(TranscodeError):
    """A track that should hold GPS could not be read out of the original."""


def track_fixes(tools: Tools, source: Path, track: ExtraTrack) -> TrackFixes | None:
    """The fixes of ``track`` of ``source``; None when it is no GPS track (a subtitle track
    with no NMEA sentence, or a track of neither form). Raises ``GpsTrackUnreadable``."""
    form = gps_form(track)
    if form is None:
        return None
    build = subtitle_text_command if form == "nmea" else data_track_command
    result = tools.runner.run(
        build(tools.ffmpeg, source, track.index),
        timeout_s=tools.timeout_s,
        capture_stdout=True,
        check=False,
    )
    if result.returncode != 0:
        last = result.stderr_tail.strip().splitlines()[-1:] or ["no output"]
        raise GpsTrackUnreadable(f"stream {track.index}: ffmpeg could not read it ({last[0]})")
    if len(result.stdout) > MAX_TRACK_BYTES:
        raise GpsTrackUnreadable(f"stream {track.index}: over {MAX_TRACK_BYTES >> 20} MiB")
    if form == "nmea":
        fixes, skipped = nmea_fixes(srt_cues(result.stdout.decode("utf-8", "replace")))
        if not fixes and not skipped:
            return None  # subtitles, not positions
    else:
        fixes, skipped = gpmf_fixes(result.stdout)
    return TrackFixes(track.index, form, fixes, skipped)
