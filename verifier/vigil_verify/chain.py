"""The hash chain over a recording's segments, anchored on the original's SHA-256.

link[i] = SHA-256(link[i-1] ‖ i ‖ start_us ‖ end_us ‖ sha256(segment i) [‖ packets(segment i)]),
link[-1] = sha256 of the original. ``packets`` is the digest of the segment's signed packet
ranges in the original (``vigil_verify.packets.ranges_digest``, issue 18), in every link made
since; links made before it have none. Any change to a segment's bytes, packets, position or
time changes every later link.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ChainEntry:
    index: int
    start_s: float
    end_s: float
    sha256: str
    packets: str | None = None  # the digest of its packet ranges (None: none signed)


def link(previous: str, entry: ChainEntry) -> str:
    payload = bytes.fromhex(previous) + struct.pack(
        ">qqq", entry.index, round(entry.start_s * 1e6), round(entry.end_s * 1e6)
    )
    packets = bytes.fromhex(entry.packets) if entry.packets is not None else b""
    return hashlib.sha256(payload + bytes.fromhex(entry.sha256) + packets).hexdigest()


def build_chain(anchor: str, entries: Iterable[ChainEntry]) -> list[str]:
    links: list[str] = []
    previous = anchor
    for entry in entries:
        previous = link(previous, entry)
        links.append(previous)
    return links


def first_break(anchor: str, entries: Sequence[ChainEntry], recorded: Sequence[str]) -> int | None:
    """Index (position in ``entries``) of the first link that differs from ``recorded``."""
    for position, (computed, stored) in enumerate(
        zip(build_chain(anchor, entries), recorded, strict=True)
    ):
        if computed != stored:
            return position
    return None
