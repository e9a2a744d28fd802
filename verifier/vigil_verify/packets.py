"""A recording's packets, each hashed in one canonical form that survives remuxing (issue 18).

Storage near 1.0x needs a segment identity computed from the original itself: a hash over the
original's own packets in the segment's range, that a verifier can recompute from the
original, or from an honest remux of it, with any ffmpeg. The raw bytes of a packet are not
that: the same H.264 picture is length-prefixed in MP4/MOV/MKV and start-coded in MPEG-TS
(with the parameter sets and an access unit delimiter added in-band), and the same AAC frame
has an ADTS header in MPEG-TS and none in MP4. So each stream is first put through the bitstream
filters that bring every container to one form (``CANONICAL``), and ffmpeg's ``framehash``
muxer hashes each packet (SHA-256):

* H.264: ``h264_mp4toannexb`` (start codes; a no-op on MPEG-TS input), then ``filter_units``
  drops SPS, PPS and access unit delimiters (types 7, 8, 9), which muxers add or move; the
  units are written back by ffmpeg's coded-bitstream layer, so start codes come out alike.
* HEVC: ``hevc_mp4toannexb``, then drops VPS, SPS, PPS and AUD (32-35).
* AAC: ``aac_adtstoasc`` (raw frames; a no-op on MP4 input).
* Anything else: the packet as it is.

SEI and every slice stay in. What the parameter sets say is covered by the original's own
SHA-256 and by decoding (the perceptual hashes). A packet's side data (``S=`` in framehash:
AAC priming "skip samples", new extradata) is not part of its identity: containers carry it
differently (an MP4 edit list, for one).

Measured (``tests/integration/test_packet_identity.py``, and ``docs/storage.md``): the
per-stream digests of an H.264/AAC MP4 are the same for the file and its ``-c copy`` remuxes
to MKV, MPEG-TS, MOV (faststart) and MPEG-TS back to MP4, under ffmpeg 5.1 (Debian 12) and 9.0
(imageio-ffmpeg), and for an HEVC MP4 and its MKV and TS remuxes; a byte flipped inside one
video sample changes that one packet's hash and no other.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CANONICAL: dict[str, str] = {
    "h264": "h264_mp4toannexb,filter_units=remove_types=7|8|9",
    "hevc": "hevc_mp4toannexb,filter_units=remove_types=32|33|34|35",
    "aac": "aac_adtstoasc",
}

_TB = re.compile(r"^#tb (\d+): (\d+)/(\d+)\s*$")
_CODEC = re.compile(r"^#codec_id (\d+): (\S+)\s*$")
_LINE = re.compile(
    r"^\s*(\d+),\s*(-?\d+),\s*(-?\d+),\s*(-?\d+),\s*(\d+),\s*([0-9a-fA-F]{64})"
    r"(?:,\s*S=\d+,.*)?\s*$"  # the packet's side data (skip samples...): not its identity
)


@dataclass(frozen=True)
class Stream:
    """A stream of the input to hash: its index in the file and its codec as ffmpeg names
    it (``h264``, ``hevc``, ``aac``...)."""

    index: int
    codec: str


@dataclass(frozen=True)
class Packet:
    """One packet in its canonical form: which of the hashed streams (0-based, in the order
    asked for), its decode and presentation times (seconds) and duration, size and SHA-256."""

    stream: int
    dts_s: float
    pts_s: float
    duration_s: float
    size: int
    sha256: str


def packet_hash_args(source: Path, streams: Sequence[Stream]) -> list[str]:
    """ffmpeg arguments (after the binary) that write every packet of ``streams`` of
    ``source``, in canonical form, as ``framehash`` lines (SHA-256) on stdout."""
    args = ["-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(source)]
    return [*args, *packet_hash_output(streams), "pipe:1"]


def packet_hash_output(streams: Sequence[Stream]) -> list[str]:
    """The options of an output (of input 0) that lists every packet of ``streams`` in
    canonical form as ``framehash`` lines; its destination follows them."""
    args: list[str] = []
    for stream in streams:
        args += ["-map", f"0:{stream.index}"]
    args += ["-c", "copy"]
    for out, stream in enumerate(streams):
        bsf = CANONICAL.get(stream.codec)
        if bsf is not None:
            args += [f"-bsf:{out}", bsf]
    return [*args, "-f", "framehash", "-hash", "sha256"]


class FramehashError(ValueError):
    """ffmpeg's framehash output is not what was asked for."""


def parse_framehash(text: str) -> list[Packet]:
    """The packets of a ``framehash`` document, times in seconds by each stream's ``#tb``.

    A time is ``ticks * num / den`` in integers, rounded once to the nearest float: what
    ``float(Fraction(ticks) * tb)`` gives, without a ``Fraction`` per value (a 5-minute
    recording lists 23,000 packets)."""
    bases: dict[int, tuple[int, int]] = {}
    packets: list[Packet] = []
    for line in text.splitlines():
        if line.startswith("#"):
            base = _TB.match(line)
            if base is not None:
                bases[int(base.group(1))] = (int(base.group(2)), int(base.group(3)))
            continue
        got = _LINE.match(line)
        if got is None:
            if not line.strip():
                continue
            raise FramehashError(f"not a framehash line: {line[:80]!r}")
        stream, dts, pts, duration, size, sha = got.groups()
        tb = bases.get(int(stream))
        if tb is None:
            raise FramehashError(f"stream {stream} has no time base")
        num, den = tb
        packets.append(
            Packet(
                int(stream), int(dts) * num / den, int(pts) * num / den,
                int(duration) * num / den, int(size), sha.lower(),
            )
        )  # fmt: skip
    return packets


def stream_codecs(text: str) -> dict[int, str]:
    """The codec of each hashed stream, as the ``framehash`` header names it."""
    codecs: dict[int, str] = {}
    for line in text.splitlines():
        got = _CODEC.match(line)
        if got is not None:
            codecs[int(got.group(1))] = got.group(2)
    return codecs


def digest(packets: Iterable[Packet]) -> str:
    """SHA-256 over packets, in the order given: one line ``stream size sha256`` each. Times
    are left out: they are in each container's own time base, and a remux may change them."""
    h = hashlib.sha256()
    for p in packets:
        h.update(f"{p.stream} {p.size} {p.sha256}\n".encode())
    return h.hexdigest()


def stream_digests(packets: Sequence[Packet]) -> dict[int, str]:
    """Each stream's digest over all its packets, in decode order."""
    return {
        s: digest(p for p in packets if p.stream == s) for s in sorted({p.stream for p in packets})
    }


@dataclass(frozen=True)
class PacketRange:
    """A segment's packets of one stream of the original: ``count`` packets from the
    ``first``-th (0-based, in that stream's decode order) and their ``digest``. What
    ``segment.stored`` signs of a segment, beside its file's SHA-256 (issue 18)."""

    stream: int  # the stream's index in the original
    codec: str
    first: int
    count: int
    sha256: str

    def line(self) -> str:
        return f"{self.stream} {self.codec} {self.first} {self.count} {self.sha256}\n"


@dataclass(frozen=True)
class SourceBytes:
    """A live segment's bytes in the original (issue 18): the segment as received is the
    original's ``size`` bytes from ``offset``, whose SHA-256 is ``sha256``; the segment file is
    those very bytes when ``shift_s`` is 0, else them with every timestamp moved by ``shift_s``
    (a later session put on the recording's timeline)."""

    offset: int
    size: int
    sha256: str
    shift_s: float = 0.0


def ranges_digest(ranges: Sequence[PacketRange]) -> str:
    """One SHA-256 over a segment's ranges: what its link in the hash chain covers."""
    return hashlib.sha256("".join(r.line() for r in ranges).encode()).hexdigest()


def split_ranges(
    packets: Sequence[Packet], streams: Sequence[Stream], starts: Sequence[int]
) -> list[tuple[PacketRange, ...]]:
    """Each segment's ranges, from every packet of ``streams`` in the order ffmpeg listed them.

    The first stream hashed (the video, or an audio-only recording's first audio track) is
    cut before its packets numbered ``starts`` (0-based, ascending, > 0): segment k + 1
    starts at ``starts[k]``. Every other packet goes to the segment in force when it is
    listed: the order the segment muxer receives them in. A stream with no packet in a
    segment has a range of 0 packets there."""
    bounds = list(starts)
    if any(b <= a for a, b in zip([0, *bounds], bounds, strict=False)):
        raise ValueError(f"segment starts must ascend from above 0: {bounds[:5]}...")
    groups: list[list[list[Packet]]] = [[[] for _ in streams] for _ in range(len(bounds) + 1)]
    segment, primary = 0, 0
    for p in packets:
        if p.stream == 0:
            while segment < len(bounds) and primary >= bounds[segment]:
                segment += 1
            primary += 1
        if 0 <= p.stream < len(streams):
            groups[segment][p.stream].append(p)
    if primary < (bounds[-1] + 1 if bounds else 1):
        raise ValueError(f"{primary} packets of the first stream, cut at {bounds[-1:]}")
    out: list[tuple[PacketRange, ...]] = []
    seen = [0] * len(streams)
    for group in groups:
        ranges = []
        for s, (stream, mine) in enumerate(zip(streams, group, strict=True)):
            ranges.append(PacketRange(stream.index, stream.codec, seen[s], len(mine), digest(mine)))
            seen[s] += len(mine)
        out.append(tuple(ranges))
    return out


@dataclass(frozen=True)
class RangeFinding:
    """What a file's packets say of one signed segment: ``same`` (every signed packet, in
    order, unchanged), ``differs`` (the packets there, another content: the streams named),
    ``short`` (the file ends before the signed packets do)."""

    index: int
    status: str
    streams: tuple[int, ...] = ()  # the streams (original's indexes) that differ or fall short

    @property
    def same(self) -> bool:
        return self.status == "same"


def check_ranges(
    packets: Sequence[Packet],
    streams: Sequence[Stream],
    signed: Mapping[int, Sequence[PacketRange]],
) -> tuple[list[RangeFinding], int]:
    """Each signed segment's ranges against ``packets`` (hashed with ``streams``, the signed
    streams in order), and how many packets the file has past the last signed one."""
    per_stream: list[list[Packet]] = [[] for _ in streams]
    for p in packets:
        if 0 <= p.stream < len(per_stream):
            per_stream[p.stream].append(p)
    position = {s.index: n for n, s in enumerate(streams)}
    found: list[RangeFinding] = []
    used = [0] * len(streams)
    for index in sorted(signed):
        bad: list[int] = []
        short = False
        for r in signed[index]:
            n = position.get(r.stream)
            mine = per_stream[n][r.first : r.first + r.count] if n is not None else []
            if n is not None:
                used[n] = max(used[n], r.first + r.count)
            if len(mine) < r.count:
                short = True
                bad.append(r.stream)
            elif digest(mine) != r.sha256:
                bad.append(r.stream)
        status = "same" if not bad else "short" if short else "differs"
        found.append(RangeFinding(index, status, tuple(bad)))
    extra = sum(max(len(got) - n, 0) for got, n in zip(per_stream, used, strict=True))
    return found, extra
