"""Frame records of ffmpeg's ``showinfo`` and ``ashowinfo`` filters, read from its stderr.

One decode can run both filters: the worker reads a segment's pictures and its sound in one
process, and the audio decode reads one picture to learn when the video starts. Since ffmpeg 7
every filter graph runs in its own thread, and a filter writes one frame's record in several
log calls: the first holds ``n: pts: pts_time:`` and that frame's own fields (``s:WxH i:``
for a picture, ``nb_samples:`` for sound); checksums and colour follow in later calls. Each
call is written whole, but ffmpeg prints the ``[Parsed_x @ ...]`` prefix only at the start of
a line, so one filter's record can land in the middle of the other's unfinished line, after
the other's prefix. ffmpeg 9.0 did both: a picture's record after an ``ashowinfo`` prefix, and
a sound record glued to ``color_trc:unknown`` with no space between.

So a record is found anywhere in a line and told apart by its own fields, never by the line's
prefix (reading by prefix lost a picture in about one decode in two and signed wrong frame
times). ffmpeg 5.1, which runs filters on one thread, writes the same records one per line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

_RECORD = re.compile(r"n:\s*(\d+)\s+pts:\s*(\S+)\s+pts_time:\s*(\S+)")
_SOUND = re.compile(r"\bnb_samples:\s*\d")

Kind = Literal["video", "audio"]


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """One frame as a filter logged it: which filter, its number in that filter's output, and
    its presentation time in seconds (None: ffmpeg printed ``NOPTS`` or no finite number)."""

    kind: Kind
    number: int
    seconds: float | None


def frame_records(text: str) -> list[FrameRecord]:
    """Every frame record in one stderr line, in order. A record is ``ashowinfo``'s when its own
    fields (up to the next record) carry ``nb_samples:``, else ``showinfo``'s."""
    found = list(_RECORD.finditer(text))
    records: list[FrameRecord] = []
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        kind: Kind = "audio" if _SOUND.search(text, match.end(), end) else "video"
        records.append(FrameRecord(kind, int(match.group(1)), _seconds(match.group(3))))
    return records


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
