"""Where a recording lies on the wall clock, and when it reached us: the device's clock, the
server's correction of it, and the upload delay (a domain rule that processing, metrics and
reports all use)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from catalog.models import Recording

Clock = Literal["server", "device", "received"]
LATE_UPLOAD_S = 24 * 3600.0
"""An upload received more than this after its recording ended is late (flagged, alerted)."""


def wall_clock(recording: Recording, at_s: float, *, corrected: bool) -> datetime | None:
    """When ``at_s`` into the recording happened, by the device's clock or, with
    ``corrected``, by the server's (device clock plus the offset measured at handover)."""
    if recording.device_start is None:
        return None
    if corrected and recording.clock_offset_s is None:
        return None
    offset = recording.clock_offset_s if corrected and recording.clock_offset_s else 0.0
    return recording.device_start + timedelta(seconds=at_s + offset)


@dataclass(frozen=True)
class FootageSpan:
    """Where a recording lies on the wall clock (UTC)."""

    start: datetime
    end: datetime
    clock: Clock


def footage_span(recording: Recording) -> FootageSpan | None:
    """The recording on the wall clock; None while its duration is unknown."""
    if recording.duration_s is None:
        return None
    length = timedelta(seconds=max(recording.duration_s, 0.0))
    clock: Clock
    if recording.device_start is not None:
        start = recording.device_start
        if recording.clock_offset_s is not None:
            start += timedelta(seconds=recording.clock_offset_s)
            clock = "server"
        else:
            clock = "device"
    else:
        start = recording.received_at - length
        clock = "received"
    start = start.astimezone(UTC)
    return FootageSpan(start, start + length, clock)


def upload_delay_s(recording: Recording) -> float | None:
    """Seconds from the recording's end to its receipt (at least 0); None when its end is not
    known from the device (no duration yet, or no device start time)."""
    span = footage_span(recording)
    if span is None or span.clock == "received":
        return None
    return max(0.0, (recording.received_at - span.end).total_seconds())
