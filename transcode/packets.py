"""A recording's packets hashed in their canonical form (``vigil_verify.packets``), by one
ffmpeg pass over the original that decodes nothing, and split into its segments' ranges: the
identity ``segment.stored`` signs of each segment in the original itself (issue 18)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from vigil_verify.packets import (
    FramehashError,
    Packet,
    PacketRange,
    Stream,
    packet_hash_args,
    parse_framehash,
    split_ranges,
)

from transcode.errors import TranscodeError
from transcode.ffmpeg import Tools
from transcode.probe import ProbeResult

logger = logging.getLogger(__name__)


def packet_streams(probed: ProbeResult) -> tuple[Stream, ...]:
    """The streams the segments carry, the one they are cut on first: the video, then every
    audio track; an audio-only recording's first audio track with packets, then the rest."""
    primary = probed.primary.stream
    audio = [s for s in probed.streams if s.media_type == "audio" and s.index != primary.index]
    return tuple(Stream(s.index, s.codec) for s in (primary, *audio))


def packet_hash_command(ffmpeg: str, source: Path, streams: Sequence[Stream]) -> list[str]:
    """The ffmpeg run that lists every packet of ``streams`` of ``source`` with its SHA-256."""
    return [ffmpeg, *packet_hash_args(source, streams)]


def hash_packets(tools: Tools, source: Path, streams: Sequence[Stream]) -> list[Packet] | None:
    """Every packet of ``streams`` in ``source``, hashed; None when ffmpeg cannot read it all
    (a damaged original: its segments are then signed by their files alone)."""
    try:
        ran = tools.runner.run(
            packet_hash_command(tools.ffmpeg, source, streams),
            timeout_s=tools.timeout_s,
            capture_stdout=True,
            check=False,
        )
    except TranscodeError as exc:
        logger.warning("%s: packets not hashed: %s", source.name, exc)
        return None
    if ran.returncode != 0:
        logger.warning("%s: packets not hashed: ffmpeg exited %d", source.name, ran.returncode)
        return None
    try:
        return parse_framehash(ran.stdout.decode("ascii", "replace"))
    except FramehashError as exc:
        logger.warning("%s: packets not hashed: %s", source.name, exc)
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
