"""An HLS (VOD) playlist over a recording's MPEG-TS segments, so a browser can play it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class PlaylistEntry:
    uri: str
    start_s: float  # recording timeline
    end_s: float


def playlist(
    entries: Sequence[PlaylistEntry], *, wall_start: datetime | None, gap_tolerance_s: float
) -> str:
    """RFC 8216 media playlist; a discontinuity tag marks each gap in the footage.

    With a wall-clock start, every segment carries EXT-X-PROGRAM-DATE-TIME, so a player
    shows when each moment was recorded.
    """
    target = max((math.ceil(e.end_s - e.start_s) for e in entries), default=1)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{max(target, 1)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]
    previous_end: float | None = None
    for entry in entries:
        if previous_end is not None and entry.start_s - previous_end > gap_tolerance_s:
            lines.append("#EXT-X-DISCONTINUITY")
        if wall_start is not None:
            at = wall_start + timedelta(seconds=entry.start_s)
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{at.isoformat(timespec='milliseconds')}")
        lines.append(f"#EXTINF:{entry.end_s - entry.start_s:.6f},")
        lines.append(entry.uri)
        previous_end = entry.end_s
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
