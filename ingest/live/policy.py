"""What a caller asks of a live recording and gets back: the source (``LiveSource``), how long
to record and how to ride out the camera's disconnects (``LivePolicy``), and the outcome
(``LiveResult``, with why it ended: ``StopReason``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SourceMode = Literal["pull", "push"]
StopReason = Literal["end of stream", "stopped", "time limit", "camera lost", "failed"]
"""Why a live recording ended: its one session ended (``max_outage_s=0``); the caller's stop
event; ``LivePolicy.max_s``; no camera for ``max_outage_s``; an error (the footage received so
far is still stored)."""


@dataclass(frozen=True)
class LiveSource:
    """Where a live stream comes from: ``pull`` reads ``url``; ``push`` listens on it
    (``rtmp://HOST:PORT/APP/KEY``) for the camera to publish."""

    url: str
    mode: SourceMode = "pull"

    def __post_init__(self) -> None:
        if self.mode == "push" and not self.url.lower().startswith("rtmp://"):
            raise ValueError(f"a push is received on rtmp://HOST:PORT/APP/KEY, not {self.url!r}")


@dataclass(frozen=True)
class LivePolicy:
    """How long to record and how to ride out the camera's disconnects.

    ``max_outage_s`` is how long the camera may be away (counted from the last packet
    received, or from the start before the first) before the recording ends; 0 means no
    reconnect: the first session's end ends the recording (a listener still waits up to
    ``max_s`` for its one publisher). ``retry_s``: a pull that finds no stream is tried again
    this often. ``io_timeout_s``: a session that receives nothing for this long is lost (given
    to ffmpeg as its I/O timeout, and watched by the recorder too, so that a camera that went
    silent without closing its connection is noticed); a session still connecting when the
    outage budget runs out gets this long too (ffmpeg probes up to 5 s of a new stream before
    it writes anything).
    """

    max_s: float = 24 * 3600.0
    max_outage_s: float = 300.0
    retry_s: float = 2.0
    io_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_s <= 0 or self.max_outage_s < 0 or self.retry_s <= 0:
            raise ValueError("max_s and retry_s must be positive, max_outage_s not negative")
        if self.io_timeout_s <= 0:
            raise ValueError("io_timeout_s must be positive")

    @property
    def reconnect(self) -> bool:
        return self.max_outage_s > 0


@dataclass(frozen=True)
class LiveResult:
    recording_id: str
    segments: int
    sha256: str
    stopped_by: str  # "end of stream", or why the recording ended (``reason`` and detail)
    reason: StopReason = "end of stream"
    sessions: int = 1
    outages_s: tuple[float, ...] = ()  # the gaps between sessions on the timeline
