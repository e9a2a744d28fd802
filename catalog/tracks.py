"""The subtitle, data and timecode tracks of a recording, and where custody keeps each (issue 17).

The segments are MPEG-TS with the video and audio stream-copied: they cannot carry a mov_text
subtitle or a QuickTime timecode, so such a track is kept only in the original (stored
byte-exact). Each is listed in the recording's ``segment`` custody event (signed, in the log)
and on its catalogue row (``Recording.extra_tracks``, the same list as JSON), saying where it
is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

TrackKind = Literal["subtitle", "data", "timecode"]
Keeper = Literal["original", "segments"]  # where custody keeps a track

_WHERE: dict[Keeper, str] = {
    "original": "kept in the original only, not in the segments",
    "segments": "kept in the segments and the original",
}


class KeptTrack(BaseModel):
    """A track that is neither video nor audio: its stream index in the original, its codec as
    ffmpeg names it, its kind and where custody keeps it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    index: int = Field(ge=0)
    codec: str = Field(min_length=1)
    kind: TrackKind
    kept: Keeper


GpsForm = Literal["gpmf", "nmea"]
_FORMS: dict[GpsForm, str] = {
    "gpmf": "GoPro GPMF in a data track",
    "nmea": "NMEA sentences in a subtitle track",
}


class TrackGps(BaseModel):
    """The GPS positions read out of one track of the original (``transcode.gps``): its stream
    index, form, how many fixes and the UTC span they cover, and the derived object holding
    them (JSON, stored write-once, its SHA-256 signed in the ``segment`` event)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    index: int = Field(ge=0)
    form: GpsForm
    fixes: int = Field(ge=0)
    skipped: int = Field(ge=0)  # records passed over: no lock, a bad checksum, no date
    first: datetime | None = None
    last: datetime | None = None
    key: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)

    def describe(self) -> str:
        """ "GPS from stream 2 (NMEA sentences in a subtitle track): 12 fixes, 2026-12-06
        10:15:00 to 10:15:11 UTC" (or that it held no fix)."""
        where = f"GPS from stream {self.index} ({_FORMS[self.form]})"
        if self.fixes == 0 or self.first is None or self.last is None:
            return f"{where}: no fix ({self.skipped} records without one)"
        span = f"{self.first:%Y-%m-%d %H:%M:%S} to {self.last:%H:%M:%S} UTC"
        if self.last.date() != self.first.date():
            span = f"{self.first:%Y-%m-%d %H:%M:%S} to {self.last:%Y-%m-%d %H:%M:%S} UTC"
        return f"{where}: {self.fixes} fixes, {span}"


class GpsPoint(BaseModel):
    """One fix of a track's GPS object: UTC as the receiver gave it, degrees, and where in the
    recording it was written (seconds from the track's start; None: the form does not say)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    t: datetime
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    media_s: float | None = None


_POINTS = TypeAdapter(tuple[GpsPoint, ...])


def gps_points_json(points: Sequence[GpsPoint]) -> bytes:
    """A GPS object's bytes: the fixes as a JSON array (what its signed SHA-256 is over)."""
    return _POINTS.dump_json(tuple(points))


def parse_gps_points(data: bytes) -> tuple[GpsPoint, ...]:
    """The fixes of a GPS object. Raises ``ValueError`` (pydantic's) on anything else."""
    return _POINTS.validate_json(data)


class TracksListed(BaseModel):
    """The ``tracks`` of a recording's ``segment`` custody event, as the log holds it (None:
    written before tracks were listed), and the GPS read out of them (none: no such track, or
    written before GPS was read)."""

    model_config = ConfigDict(extra="ignore")
    tracks: tuple[KeptTrack, ...] | None = None
    gps: tuple[TrackGps, ...] = ()


_LIST = TypeAdapter(tuple[KeptTrack, ...])


def tracks_json(tracks: Sequence[KeptTrack]) -> str:
    """The catalogue column's text: the tracks as a JSON array."""
    return _LIST.dump_json(tuple(tracks)).decode()


def parse_tracks(text: str | None) -> tuple[KeptTrack, ...] | None:
    """The tracks of a catalogue column (None: not listed). Raises ``ValueError`` (pydantic's
    ``ValidationError``) on text that is not such a list."""
    return None if text is None else _LIST.validate_json(text)


def describe_tracks(tracks: Sequence[KeptTrack] | None) -> str:
    """ "subtitle mov_text (stream 2), timecode tmcd (stream 3): kept in the original only, not
    in the segments"; "none besides video and audio"; "not listed" (None)."""
    if tracks is None:
        return "not listed (catalogued before such tracks were)"
    if not tracks:
        return "none besides video and audio"
    parts: list[str] = []
    for keeper, where in _WHERE.items():
        kept = [f"{t.kind} {t.codec} (stream {t.index})" for t in tracks if t.kept == keeper]
        if kept:
            parts.append(f"{', '.join(kept)}: {where}")
    return "; ".join(parts)
