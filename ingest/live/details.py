"""The details of a live recording's custody events: ``ingest.live`` (``LiveDetail``),
``original.stored`` (``OriginalDetail``), ``live.disconnected``, ``live.reconnected`` and
``live.ended``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from ingest.live.policy import SourceMode, StopReason


class LiveDetail(BaseModel):
    """A live recording began: its hash chain starts from ``anchor``."""

    anchor: str
    source: str
    mode: SourceMode = "pull"


class OriginalDetail(BaseModel):
    """A live recording ended: the whole stream as received is stored with this hash."""

    sha256: str
    size: int
    original_key: str


class DisconnectedDetail(BaseModel):
    """The camera's session ``session`` ended (the connection closed, failed or went silent).

    ``last_frame_at`` is the end of its last frame by the server clock, and ``timeline_end_s``
    the same on the recording's timeline (both None if the session left no segment);
    ``detected_at`` is when the recorder saw the session end (after ``io_timeout_s`` of
    silence when the connection did not close)."""

    session: int
    segments: int
    last_frame_at: datetime | None
    timeline_end_s: float | None
    last_packet_at: datetime | None
    detected_at: datetime
    cause: str


class ReconnectedDetail(BaseModel):
    """The camera is back: session ``session`` begins.

    ``first_frame_at``/``timeline_start_s``: its first frame by the server clock and on the
    recording's timeline. ``outage_s``: from the end of the previous session's last frame to
    this first frame, i.e. the gap the timeline shows. ``silence_s``: between the last packet
    read before and the first packet read after (it includes ffmpeg's probing of the new
    stream). ``attempts``: ffmpeg sessions started to get it back (pulls, or listens).
    ``shift_s``: added to this session's own timestamps to put it on the timeline."""

    session: int
    first_frame_at: datetime | None
    timeline_start_s: float | None
    outage_s: float | None
    silence_s: float | None
    attempts: int
    shift_s: float | None


class LiveEndedDetail(BaseModel):
    """The live recording ended, and why."""

    reason: StopReason
    detail: str
    sessions: int
    segments: int
    outages_s: list[float]
