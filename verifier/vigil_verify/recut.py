"""A segment cut again from its original by another ffmpeg (issue 18).

A segment whose copy is not kept is cut again from the original whenever it is wanted. The same
ffmpeg writes the same bytes, and the file is then the signed one. Another ffmpeg may write
the same packets into other container bytes: a Matroska cut of the same AVI by ffmpeg 5.1 and
by 9.0 differs in its header and cluster bytes, with every packet, and every packet's time,
the same. Such a cut is still the signed footage, and is judged so by what it holds:

* **packets**: for each signed stream, exactly the signed number of packets, whose digest in
  canonical form (``vigil_verify.packets``) is the signed one, each the very packet the
  original (whose own packets there are the signed ones) holds at that place;
* **times**: each packet presented at the time the original gives it, as the cut read it
  (``+genpts``, ``-copyts``), within ``TIME_TOLERANCE_S``, after one shift common to the whole
  segment of at most ``SHIFT_LIMIT_S``. Matroska keeps milliseconds, so a time is rounded by
  at most half of one; frames are at least 4 ms apart even at 240 fps, so a packet moved by a
  frame is never within it. The shift is the muxer's: ffmpeg moves a file's times so that its
  decode times do not start below zero, by an amount that depends on the run (measured: an
  OBS-style Matroska with B-frames, whose video starts at 21 ms, cut to MPEG-TS by ffmpeg 5.1
  starts at 0 ms with the packet listing of custody's run and at 67 ms without it). A
  segment moved further on the timeline is not within it.

Decode times are not compared: Matroska stores none, and its reader makes them up.

Anything else (a packet more or less, another packet, another time) is not the signed segment,
and is refused or judged as a changed file, as before.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from vigil_verify.audio_tracks import Run
from vigil_verify.packets import (
    FramehashError,
    Packet,
    PacketRange,
    Stream,
    digest,
    packet_hash_output,
    parse_framehash,
)

TIME_TOLERANCE_S = 0.001
"""How far a re-cut packet's presentation time may be from the original's, after the
segment's shift (one millisecond: Matroska's clock)."""

SHIFT_LIMIT_S = 0.2
"""The largest shift of a whole segment's times taken for the muxer's (above)."""

_NO_TIME_S = -1e9  # below this a time is ffmpeg's "no timestamp", not a time


def timed_packet_args(source: Path, streams: Sequence[Stream]) -> list[str]:
    """ffmpeg arguments (after the binary) that list every packet of ``streams`` of ``source``
    in canonical form, hashed, with the times a cut gives them (``+genpts`` fills the times
    an AVI leaves out, ``-copyts`` keeps the source's own)."""
    read = ["-hide_banner", "-nostdin", "-loglevel", "error", "-fflags", "+genpts", "-copyts"]
    return [*read, "-i", str(source), *packet_hash_output(streams), "pipe:1"]


def cut_streams(ranges: Sequence[PacketRange]) -> tuple[Stream, ...]:
    """The streams of a segment file to hash against its signed ``ranges``: the file holds the
    signed streams in their signed order, numbered from 0."""
    return tuple(Stream(n, r.codec) for n, r in enumerate(ranges))


def _time(p: Packet) -> float | None:
    return p.pts_s if p.pts_s > _NO_TIME_S else None


def recut_problem(
    original: Sequence[Packet], cut: Sequence[Packet], ranges: Sequence[PacketRange]
) -> str | None:
    """None when ``cut`` (a segment file's packets, hashed with ``cut_streams(ranges)``) is
    the signed segment in other container bytes (see the module); else what differs.
    ``original``: the original's packets, hashed with the signed streams in the order of
    ``ranges`` and timed by ``timed_packet_args``."""
    pairs: list[tuple[str, int, float, float]] = []  # each timed packet, in both files
    for n, signed in enumerate(ranges):
        mine = [p for p in cut if p.stream == n]
        theirs = [p for p in original if p.stream == n][signed.first : signed.first + signed.count]
        what = f"stream {signed.stream}"
        if len(theirs) != signed.count or digest(theirs) != signed.sha256:
            return f"{what}: the original's packets there are not the signed ones"
        if len(mine) != signed.count:
            return f"{what}: {len(mine)} packet(s), {signed.count} signed"
        if digest(mine) != signed.sha256:
            return f"{what}: its packets are not the signed ones"
        for k, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            ta, tb = _time(a), _time(b)
            if (ta is None) != (tb is None):
                return f"{what}: packet {signed.first + k} has a time in one and none in the other"
            if ta is not None and tb is not None:
                pairs.append((what, signed.first + k, ta, tb))
    return _retimed(pairs)


def _retimed(pairs: Sequence[tuple[str, int, float, float]]) -> str | None:
    """None when every timed packet (stream, number, its time in the cut, in the original) is
    at its original time plus one common shift."""
    if not pairs:
        return None
    shift = sorted(ta - tb for _w, _k, ta, tb in pairs)[len(pairs) // 2]
    if abs(shift) > SHIFT_LIMIT_S:
        return f"its times are {shift:+.3f} s from the original's"
    for what, k, ta, tb in pairs:
        if abs(ta - tb - shift) > TIME_TOLERANCE_S:
            return (
                f"{what}: packet {k} is presented at {ta:.3f} s, the original's at {tb:.3f} s"
                f" (the segment's shift {shift:+.3f} s)"
            )
    return None


class TimedOriginal:
    """An original whose bytes are the signed ones, against which cuts of it are judged by
    ``recut_problem``; its packets are read once (one stream-copy pass, nothing decoded), when
    a cut is first judged."""

    def __init__(self, run: Run, ffmpeg: str, original: Path) -> None:
        self.run = run
        self.ffmpeg = ffmpeg
        self.original = original
        self._read: dict[tuple[Stream, ...], list[Packet]] = {}

    def problem(self, cut: Path, ranges: Sequence[PacketRange]) -> str | None:
        """What keeps the file ``cut`` from being the segment ``ranges`` sign (None:
        nothing). Raises what ``run`` raises on a timeout or a stop."""
        streams = tuple(Stream(r.stream, r.codec) for r in ranges)
        try:
            if streams not in self._read:
                self._read[streams] = self._packets(self.original, streams)
            mine = self._packets(cut, cut_streams(ranges))
        except (OSError, subprocess.SubprocessError, FramehashError) as exc:
            return f"its packets could not be read ({exc})"
        return recut_problem(self._read[streams], mine, ranges)

    def _packets(self, path: Path, streams: Sequence[Stream]) -> list[Packet]:
        out = self.run([self.ffmpeg, *timed_packet_args(path, streams)], _quiet)
        return parse_framehash(out.decode("ascii", "replace"))


def _quiet(_line: str) -> None:
    return None
