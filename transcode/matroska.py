"""A minimal Matroska writer for one video track: what a recovered stream is first written as
(issue 17), because a Matroska block carries its picture's presentation time, which a raw
H.264/HEVC stream cannot, and its samples keep the length-prefixed form they had in the MP4.
ffmpeg then copies it into an MP4 (``transcode.recover``).

EBML elements (RFC 8794) and the Matroska ones of RFC 9559 that a player needs: the EBML
header, a Segment of unknown size, Info (the timestamp scale), Tracks (one video track with
its codec private data: the ``avcC`` or ``hvcC`` of the reference) and Clusters of
SimpleBlocks. Pure: it builds bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

TIMESTAMP_SCALE_NS = 100_000
"""A block's time unit: 0.1 ms (a cluster's blocks lie within ±3.2 s of its own time)."""
CLUSTER_SPAN = 30_000  # units: a new cluster at most every 3 s, and at every keyframe

CODEC_IDS = {"h264": "V_MPEG4/ISO/AVC", "hevc": "V_MPEGH/ISO/HEVC"}
_UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"


def size_vint(n: int) -> bytes:
    """An EBML element data size: the shortest VINT that holds ``n`` (all ones is reserved)."""
    for length in range(1, 9):
        if n < (1 << (7 * length)) - 1:
            return (n | (1 << (7 * length))).to_bytes(length, "big")
    raise ValueError(f"{n} is too large for an EBML size")


def element(eid: int, payload: bytes) -> bytes:
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + size_vint(len(payload)) + payload


def uint(eid: int, value: int) -> bytes:
    return element(eid, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def text(eid: int, value: str) -> bytes:
    return element(eid, value.encode("ascii"))


@dataclass(frozen=True)
class Frame:
    pts: int  # in ``TIMESTAMP_SCALE_NS`` units
    key: bool
    data: bytes  # the sample as the MP4 held it: length-prefixed NAL units


def header(codec: str, codec_private: bytes, width: int, height: int, frame_ns: int) -> bytes:
    """The EBML header, the Segment's start (size unknown), Info and Tracks."""
    ebml = element(
        0x1A45DFA3,
        uint(0x4286, 1) + uint(0x42F7, 1) + uint(0x42F2, 4) + uint(0x42F3, 8)
        + text(0x4282, "matroska") + uint(0x4287, 4) + uint(0x4285, 2),
    )  # fmt: skip
    info = element(
        0x1549A966,
        uint(0x2AD7B1, TIMESTAMP_SCALE_NS) + text(0x4D80, "vigil") + text(0x5741, "vigil"),
    )
    video = element(0xE0, uint(0xB0, width) + uint(0xBA, height))
    track = element(
        0xAE,
        uint(0xD7, 1) + uint(0x73C5, 1) + uint(0x83, 1) + uint(0x9C, 0)
        + text(0x86, CODEC_IDS[codec]) + element(0x63A2, codec_private)
        + uint(0x23E383, frame_ns) + video,
    )  # fmt: skip
    return ebml + bytes.fromhex("18538067") + _UNKNOWN_SIZE + info + element(0x1654AE6B, track)


def write(out: BinaryIO, head: bytes, frames: Iterable[Frame]) -> None:
    """The header, then the frames in decoding order in clusters of ``CLUSTER_SPAN``."""
    out.write(head)
    cluster_at: int | None = None
    blocks: list[bytes] = []
    for frame in frames:
        if cluster_at is None or frame.key or abs(frame.pts - cluster_at) > CLUSTER_SPAN:
            if cluster_at is not None:
                out.write(_cluster(cluster_at, blocks))
            cluster_at, blocks = max(frame.pts, 0), []
        relative = (frame.pts - cluster_at).to_bytes(2, "big", signed=True)
        flags = b"\x80" if frame.key else b"\x00"
        blocks.append(element(0xA3, b"\x81" + relative + flags + frame.data))
    if cluster_at is not None:
        out.write(_cluster(cluster_at, blocks))


def _cluster(at: int, blocks: list[bytes]) -> bytes:
    return element(0x1F43B675, uint(0xE7, at) + b"".join(blocks))
