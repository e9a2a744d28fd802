"""A recording's packets hashed in their canonical form (``vigil_verify.packets``), listed by
the run that cuts its segments (``transcode.commands.segment_command``: the original is read
once for both), and split into its segments' ranges: the identity ``segment.stored`` signs of
each segment in the original itself (issue 18)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from vigil_verify.packets import (
    FramehashError,
    Packet,
    PacketRange,
    Stream,
    parse_framehash,
    split_ranges,
)

from transcode.probe import ProbeResult

logger = logging.getLogger(__name__)


def packet_streams(probed: ProbeResult) -> tuple[Stream, ...]:
    """The streams the segments carry, the one they are cut on first: the video, then every
    audio track; an audio-only recording's first audio track with packets, then the rest."""
    primary = probed.primary.stream
    audio = [s for s in probed.streams if s.media_type == "audio" and s.index != primary.index]
    return tuple(Stream(s.index, s.codec) for s in (primary, *audio))


def read_packets(path: Path) -> list[Packet] | None:
    """The packets a segmenting run listed in ``path`` (``framehash``); None when it wrote
    none or they cannot be read."""
    try:
        return parse_framehash(path.read_text(encoding="ascii", errors="replace"))
    except (OSError, FramehashError) as exc:
        logger.warning("%s: packets not read: %s", path.name, exc)
        return None


def segment_ranges(
    packets: Sequence[Packet] | None,
    streams: Sequence[Stream],
    starts: Sequence[int] | None,
    segments: int,
    primary_packets: int,
) -> list[tuple[PacketRange, ...]] | None:
    """Each of ``segments`` segments' packet ranges: the first stream cut before its packets
    numbered ``starts``; None when that cannot be said exactly (no packets, no starts, or
    the pass saw another number of packets of the first stream than the probe did,
    ``primary_packets``)."""
    if packets is None or starts is None or len(starts) + 1 != segments:
        return None
    seen = sum(1 for p in packets if p.stream == 0)
    if seen != primary_packets:
        logger.warning("packets not split: %d of the first stream, the probe saw %d",
                       seen, primary_packets)  # fmt: skip
        return None
    try:
        return split_ranges(packets, streams, starts)
    except ValueError as exc:
        logger.warning("packets not split: %s", exc)
        return None
