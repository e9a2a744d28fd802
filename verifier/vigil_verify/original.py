"""An original whose bytes are not the signed ones, judged by its packets (issue 18).

Each ``segment.stored`` event since issue 18 signs the segment's packets in the original, per
stream (``vigil_verify.packets``). An original whose SHA-256 differs is hashed packet by
packet (one ffmpeg pass, nothing decoded) and each segment's ranges are compared with the
signed ones, so the verdict says where in the footage the change is:

* every signed packet there, unchanged and in order, nothing after them: still **bytes
  altered** (the archived bytes must be the signed ones), said to be the footage as signed:
  a remux through ffmpeg keeps every packet, and so do bytes added outside them;
* the packets as signed up to a point, then none: **truncated**, from the first segment that
  falls short to the end;
* else **bytes altered**, with the time ranges of the segments whose packets differ (a byte
  flipped in a sample, packets swapped, cut out or added), and the packets found past the
  last signed one.

Without signed packet ranges (events logged before), or without ffmpeg, the bytes alone decide,
as before (``vigil_verify.changed.original_finding``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from vigil_verify.audio_tracks import Run
from vigil_verify.facts import SignedSegment
from vigil_verify.packets import (
    FramehashError,
    RangeFinding,
    Stream,
    check_ranges,
    packet_hash_args,
    parse_framehash,
)
from vigil_verify.verdicts import Finding, Verdict


def signed_streams(segments: Mapping[int, SignedSegment]) -> tuple[Stream, ...]:
    """The streams whose packets are signed, in the order the first signed segment lists them
    (the one the segments are cut on first)."""
    for index in sorted(segments):
        if segments[index].packets:
            return tuple(Stream(r.stream, r.codec) for r in segments[index].packets)
    return ()


def check_packets(
    run: Run, ffmpeg: str, path: Path, segments: Mapping[int, SignedSegment]
) -> tuple[list[RangeFinding], int]:
    """Each segment's signed packet ranges against the packets of ``path`` (one ffmpeg pass,
    nothing decoded), and how many packets it has past the last signed one. Raises
    ``FramehashError`` (or the runner's error) when its packets cannot be read."""
    streams = signed_streams(segments)
    out = run([ffmpeg, *packet_hash_args(path, streams)], lambda _line: None)
    signed = {i: s.packets for i, s in segments.items() if s.packets}
    return check_ranges(parse_framehash(out.decode("ascii", "replace")), streams, signed)


def packets_finding(
    run: Run,
    ffmpeg: str,
    path: Path,
    segments: Mapping[int, SignedSegment],
    bytes_finding: Finding,
) -> Finding:
    """``bytes_finding`` (an original whose SHA-256 differs from the signed one) told more
    precisely by its packets; as it is when no segment signs any."""
    return judge_packets(run, ffmpeg, path, segments, bytes_finding)[0]


def judge_packets(
    run: Run,
    ffmpeg: str,
    path: Path,
    segments: Mapping[int, SignedSegment],
    bytes_finding: Finding,
) -> tuple[Finding, dict[int, RangeFinding] | None]:
    """``packets_finding``, and what the packets say of each signed segment (None: no packet
    is signed, or they could not be read): what a segment with no copy kept is judged by."""
    if not signed_streams(segments):
        return bytes_finding, None
    try:
        found, extra = check_packets(run, ffmpeg, path, segments)
    except (OSError, subprocess.SubprocessError, FramehashError) as exc:
        more = f"; its packets could not be read ({exc})"
        return replace(bytes_finding, detail=bytes_finding.detail + more), None
    return _judged(bytes_finding, found, extra, segments), {f.index: f for f in found}


def _judged(
    bytes_finding: Finding,
    found: Sequence[RangeFinding],
    extra: int,
    segments: Mapping[int, SignedSegment],
) -> Finding:
    bad = [f for f in found if not f.same]
    count = len(found)
    if not bad and not extra:  # the footage as signed; the archived bytes are still not
        more = (
            f"; every signed packet of its {count} segment(s) is there, unchanged and in"
            " order: the container's bytes changed (re-muxed, or bytes outside the packets),"
            " the footage as signed"
        )
        return replace(bytes_finding, detail=bytes_finding.detail + more)
    first_short = next((f.index for f in found if f.status == "short"), None)
    if (
        first_short is not None
        and not extra
        and all(f.status == "short" for f in found if f.index >= first_short)
        and all(f.same for f in found if f.index < first_short)
    ):
        gone = (segments[first_short].start_s, max(s.end_s for s in segments.values()))
        return Finding(
            kind=Verdict.TRUNCATED,
            recording=bytes_finding.recording,
            ranges=(gone,),
            detail=f"{bytes_finding.detail}; its packets are as signed until segment"
            f" {first_short}, then end: segments {first_short}-{found[-1].index} are gone or"
            " cut short",
            file=bytes_finding.file,
        )
    named = ", ".join(_named(f) for f in bad) or "none"
    more = f"; {extra} packet(s) past the last signed one" if extra else ""
    return Finding(
        kind=Verdict.BYTES_ALTERED,
        recording=bytes_finding.recording,
        ranges=tuple((segments[f.index].start_s, segments[f.index].end_s) for f in bad),
        detail=f"{bytes_finding.detail}; its packets differ from the signed ones in"
        f" segment(s) {named}{more}",
        file=bytes_finding.file,
    )


def _named(found: RangeFinding) -> str:
    streams = ", ".join(str(s) for s in found.streams)
    how = "cut short" if found.status == "short" else "changed"
    return f"{found.index} ({how}: stream {streams})"
