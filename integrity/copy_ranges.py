"""The packet ranges of a recording logged before its packets were signed (before issue 18),
read from its stored segment copies and its original (``vigil storage compact``).

Each stored copy's packets (in canonical form, ``vigil_verify.packets``) are listed, and so are
the original's: the segments are cut where each copy's first stream starts, every other packet
going to the segment in force when it is listed (``split_ranges``, the rule custody signs by),
and every copy must then hold exactly its range's packets, stream by stream. Anything else (a
copy that is not a stream copy of the original, packets of the original in no copy) is refused
with why: the copies stay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from vigil_verify.ledger import SignedSegment
from vigil_verify.packets import (
    FramehashError,
    Packet,
    PacketRange,
    Stream,
    digest,
    packet_hash_args,
    parse_framehash,
    split_ranges,
)

from integrity.audio import tools_run
from store.base import ObjectStore
from transcode.errors import TranscodeError
from transcode.ffmpeg import Tools
from transcode.packets import packet_streams
from transcode.probe import NotVideoError, probe

Ranges = dict[int, tuple[PacketRange, ...]]


def _packets(tools: Tools, path: Path, streams: Sequence[Stream]) -> list[Packet]:
    out = tools_run(tools)([tools.ffmpeg, *packet_hash_args(path, streams)], lambda _line: None)
    return parse_framehash(out.decode("ascii", "replace"))


def copy_ranges(
    tools: Tools, store: ObjectStore, original: Path, signed: Mapping[int, SignedSegment]
) -> Ranges | str:
    """Each signed segment's packet ranges in ``original``, or why they cannot be said."""
    try:
        streams = packet_streams(probe(tools.runner, tools.ffmpeg, original))
        whole = _packets(tools, original, streams)
        own = [Stream(n, s.codec) for n, s in enumerate(streams)]  # a copy's own stream order
        copies: list[list[Packet]] = []
        for index in sorted(signed):
            with store.local_path("derived", signed[index].key) as path:
                copies.append(_packets(tools, path, own))
    except (TranscodeError, NotVideoError, FramehashError, OSError) as exc:
        return f"its packets could not be read ({exc})"
    firsts = [sum(1 for p in c if p.stream == 0) for c in copies]
    starts = [sum(firsts[: k + 1]) for k in range(len(firsts) - 1)]
    try:
        ranges = split_ranges(whole, streams, starts)
    except ValueError as exc:
        return f"its copies do not partition the original's packets ({exc})"
    for k, (index, copy) in enumerate(zip(sorted(signed), copies, strict=True)):
        for n, wanted in enumerate(ranges[k]):
            mine = [p for p in copy if p.stream == n]
            if len(mine) != wanted.count or digest(mine) != wanted.sha256:
                return f"segment {index}'s copy is not the original's packets (stream {n})"
    return {index: ranges[k] for k, index in enumerate(sorted(signed))}
