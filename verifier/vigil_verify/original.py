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

A live recording's original is its segments as received, one after the other: each
``segment.stored`` signs the segment's byte range in it (``SignedSegment.source``), and
``judge_bytes`` hashes those ranges again, with no ffmpeg.

Without signed packet ranges or byte ranges (events logged before), or without ffmpeg, the
bytes alone decide, as before (``vigil_verify.changed.original_finding``).
"""

from __future__ import annotations

import hashlib
import os
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


def judge_original(
    run: Run,
    ffmpeg: str | None,
    path: Path,
    segments: Mapping[int, SignedSegment],
    bytes_finding: Finding,
) -> tuple[Finding, dict[int, RangeFinding] | None]:
    """``bytes_finding`` (an original whose SHA-256 differs from the signed one) told more
    precisely, and what that says of each signed segment (None: nothing could): by the
    segments' signed bytes in it (a live recording's, no ffmpeg needed), else by their signed
    packets (with ``ffmpeg``); as it is when neither is signed."""
    if any(s.source is not None for s in segments.values()):
        return judge_bytes(path, segments, bytes_finding)
    if ffmpeg is None:
        return bytes_finding, None
    return judge_packets(run, ffmpeg, path, segments, bytes_finding)


def judge_packets(
    run: Run,
    ffmpeg: str,
    path: Path,
    segments: Mapping[int, SignedSegment],
    bytes_finding: Finding,
) -> tuple[Finding, dict[int, RangeFinding] | None]:
    """``bytes_finding`` told by the original's packets, and what they say of each signed
    segment (None: no packet is signed, or they could not be read)."""
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
    cut = _truncated(bytes_finding, found, extra, segments, "packets")
    if cut is not None:
        return cut
    more = f"; {extra} packet(s) past the last signed one" if extra else ""
    named = ", ".join(_named(f) for f in bad) or "none"
    return _altered(bytes_finding, bad, segments, f"its packets differ from the signed ones in"
                    f" segment(s) {named}{more}")  # fmt: skip


def _truncated(
    bytes_finding: Finding,
    found: Sequence[RangeFinding],
    extra: int,
    segments: Mapping[int, SignedSegment],
    what: str,
) -> Finding | None:
    """*Truncated* when the original's ``what`` are as signed up to a segment, then end."""
    first_short = next((f.index for f in found if f.status == "short"), None)
    if (
        first_short is None
        or extra
        or not all(f.status == "short" for f in found if f.index >= first_short)
        or not all(f.same for f in found if f.index < first_short)
    ):
        return None
    gone = (segments[first_short].start_s, max(s.end_s for s in segments.values()))
    return Finding(
        kind=Verdict.TRUNCATED,
        recording=bytes_finding.recording,
        ranges=(gone,),
        detail=f"{bytes_finding.detail}; its {what} are as signed until segment"
        f" {first_short}, then end: segments {first_short}-{found[-1].index} are gone or"
        " cut short",
        file=bytes_finding.file,
    )


def _named(found: RangeFinding) -> str:
    streams = ", ".join(str(s) for s in found.streams)
    how = "cut short" if found.status == "short" else "changed"
    return f"{found.index} ({how}: stream {streams})"


def judge_bytes(
    path: Path, segments: Mapping[int, SignedSegment], bytes_finding: Finding
) -> tuple[Finding, dict[int, RangeFinding] | None]:
    """A live original (its segments are its signed byte ranges, ``SignedSegment.source``)
    whose SHA-256 differs: each segment's range hashed again, so the verdict names where the
    change is; the per-segment results are what a segment with no copy is judged by. As it is
    (None) when no segment signs its bytes."""
    sourced = {i: s.source for i, s in segments.items() if s.source is not None}
    if not sourced:
        return bytes_finding, None
    found: list[RangeFinding] = []
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        for index, source in sorted(sourced.items()):
            if source.offset + source.size > size:
                found.append(RangeFinding(index, "short"))
                continue
            fh.seek(source.offset)
            digest = hashlib.sha256()
            left = source.size
            while left and (block := fh.read(min(left, 1 << 20))):
                digest.update(block)
                left -= len(block)
            same = digest.hexdigest() == source.sha256
            found.append(RangeFinding(index, "same" if same else "differs"))
    end = max(s.offset + s.size for s in sourced.values())
    return _bytes_judged(bytes_finding, found, max(0, size - end), segments), {
        f.index: f for f in found
    }


def _bytes_judged(
    bytes_finding: Finding,
    found: Sequence[RangeFinding],
    extra: int,
    segments: Mapping[int, SignedSegment],
) -> Finding:
    bad = [f for f in found if not f.same]
    more = f"; {extra} byte(s) past the last signed segment" if extra else ""
    if not bad:
        return replace(
            bytes_finding,
            detail=f"{bytes_finding.detail}; every signed segment's bytes in it are as signed"
            f"{more}",
        )
    cut = _truncated(bytes_finding, found, extra, segments, "bytes")
    if cut is not None:
        return cut
    named = ", ".join(
        f"{f.index} ({'cut short' if f.status == 'short' else 'changed'})" for f in bad
    )
    return _altered(bytes_finding, bad, segments, f"its bytes differ from the signed ones in"
                    f" segment(s) {named}{more}")  # fmt: skip


def _altered(
    bytes_finding: Finding,
    bad: Sequence[RangeFinding],
    segments: Mapping[int, SignedSegment],
    said: str,
) -> Finding:
    """*Bytes altered*, at the time ranges of the segments ``bad`` names."""
    return Finding(
        kind=Verdict.BYTES_ALTERED,
        recording=bytes_finding.recording,
        ranges=tuple((segments[f.index].start_s, segments[f.index].end_s) for f in bad),
        detail=f"{bytes_finding.detail}; {said}",
        file=bytes_finding.file,
    )
