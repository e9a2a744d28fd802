"""The subtitle, data and timecode tracks of a recording, and where custody keeps each (issue 17).

The segments are MPEG-TS with the video and audio stream-copied: they cannot carry a mov_text
subtitle or a QuickTime timecode, so such a track is kept only in the original (stored
byte-exact). Each is listed in the recording's ``segment`` custody event (signed, in the log)
and on its catalogue row (``Recording.extra_tracks``, the same list as JSON), saying where it
is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
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


class TracksListed(BaseModel):
    """The ``tracks`` of a recording's ``segment`` custody event, as the log holds it (None:
    written before tracks were listed)."""

    model_config = ConfigDict(extra="ignore")
    tracks: tuple[KeptTrack, ...] | None = None


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
