"""What a segment whose bytes are not the signed ones is: the one decision ``vigil-verify``
(``vigil_verify.footage``) and the server's ``vigil verify`` (``integrity.verify``) both make, in
the words of ``vigil_verify.verdicts``.

In this order:

- **reordered** / **foreign** (``placed``): the bytes are those of another signed segment, of
  this recording or of another one;
- **bytes altered**: the same size as signed. No re-encode keeps the exact size, so the bytes
  were changed in place, whatever the pictures show (they are still compared, to say where the
  picture changed, if it did);
- otherwise the pictures decide (re-decoded and hashed with PDQ, compared by timestamp with the
  signed per-frame hashes): **truncated** when what is there matches but ends early;
  **re-encoded** when it all matches; **edited** with the time ranges where it differs;
  **missing** when none of the segment's pictures is found, or nothing decodes;
  **unverifiable** when the pictures cannot be compared here (no signed per-frame hashes, no
  decoder that runs).

Beside the pictures, the sound (``hear``): where the segment has signed audio fingerprints, the
stand-in's audio is compared with them where its pictures sit; sound that is not the same makes
a re-encoded or truncated segment *edited* (``vigil_verify.match_report.with_audio``).

Each side decodes in its own way (the package's ffmpeg, the server's tools) and hands the result
in through ``decode``; ``NoDecoder`` and ``Undecodable`` say why there is none.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from vigil_verify.audio_tracks import (
    AudioTracks,
    AudioUndecodable,
    Run,
    SegmentAudio,
    decode_tracks,
    segment_audio,
)
from vigil_verify.compare import SegmentVerdict, Thresholds, compare_segment
from vigil_verify.facts import SignedSegment
from vigil_verify.frames import FrameHashes
from vigil_verify.match_report import with_audio
from vigil_verify.verdicts import Finding, Verdict

__all__ = [
    "NoDecoder",
    "Undecodable",
    "changed_segment",
    "original_finding",
    "placed",
    "stand_in_hearing",
]


class NoDecoder(Exception):
    """The pictures cannot be compared here: no decoder, or one that does not run or finish."""


class Undecodable(Exception):
    """The file does not decode to pictures."""


@dataclass(frozen=True)
class _Picture:
    kind: Verdict
    ranges: tuple[tuple[float, float], ...]
    detail: str
    offset: float | None = None  # where the stand-in's pictures sit (None: not compared)


def placed(
    recording: str, index: int, owner: tuple[str, int] | None, file: str | None
) -> Finding | None:
    """*reordered* or *foreign* when the bytes standing in for segment ``index`` are those of
    the signed segment ``owner`` (recording, index); None when they are no signed segment's."""
    if owner is None:
        return None
    if owner[0] == recording:
        return Finding(
            kind=Verdict.REORDERED,
            recording=recording,
            index=index,
            detail=f"holds segment {owner[1]}'s content",
            file=file,
        )
    return Finding(
        kind=Verdict.FOREIGN,
        recording=recording,
        index=index,
        detail=f"holds segment {owner[1]} of recording {owner[0]}, not this chain's",
        file=file,
    )


def changed_segment(
    recording: str,
    signed: SignedSegment,
    *,
    size: int,
    file: str | None,
    reference: FrameHashes | None,
    decode: Callable[[FrameHashes], FrameHashes],
    thresholds: Thresholds,
    hear: Callable[[float], SegmentAudio | None] | None = None,
) -> Finding:
    """The verdict on signed segment ``signed`` of ``recording`` whose stand-in (``file``,
    ``size`` bytes) has another SHA-256 than the signed one and is no other signed segment.

    ``reference``: the signed per-frame hashes (None: none whose SHA-256 is the signed one);
    ``decode(reference)``: the stand-in's per-frame hashes on the reference's footing, raising
    ``NoDecoder`` or ``Undecodable``; ``hear(offset)``: the stand-in's sound against the signed
    audio fingerprints, its pictures ``offset`` s from the segment's (None: none signed)."""
    picture = _picture(signed, reference, decode, thresholds)
    heard = hear(picture.offset) if hear is not None and picture.offset is not None else None
    if heard is None and picture.offset is not None and signed.audio_tracks:
        silent = reference is not None and len(reference) == 0  # the sound was all there was
        picture = replace(
            picture,
            kind=Verdict.UNVERIFIABLE if silent else picture.kind,
            detail=f"{picture.detail}; sound not compared: no signed fingerprints here",
        )
    return with_audio(_finding(recording, signed, picture, size=size, file=file), heard)


def _finding(
    recording: str, signed: SignedSegment, picture: _Picture, *, size: int, file: str | None
) -> Finding:
    if size == signed.size:
        return Finding(
            kind=Verdict.BYTES_ALTERED,
            recording=recording,
            index=signed.index,
            ranges=picture.ranges if picture.kind is not Verdict.RE_ENCODED else (),
            detail=f"sha256 differs at the signed size ({size} bytes): changed in place;"
            f" {picture.detail}",
            file=file,
        )
    return Finding(
        kind=picture.kind,
        recording=recording,
        index=signed.index,
        ranges=picture.ranges,
        detail=f"sha256 differs ({size} bytes, {signed.size} signed); {picture.detail}",
        file=file,
    )


def _picture(
    signed: SignedSegment,
    reference: FrameHashes | None,
    decode: Callable[[FrameHashes], FrameHashes],
    thresholds: Thresholds,
) -> _Picture:
    whole = ((signed.start_s, signed.end_s),)  # none of it is there
    if reference is None:
        return _Picture(
            Verdict.UNVERIFIABLE, (), "pictures not compared: no signed per-frame hashes"
        )
    if len(reference) == 0 and signed.audio_sha256 is not None:
        # An audio-only recording: no picture was signed, its sound decides.
        return _Picture(Verdict.RE_ENCODED, (), "no pictures (an audio-only recording)", 0.0)
    try:
        fresh = decode(reference)
    except NoDecoder as exc:
        return _Picture(Verdict.UNVERIFIABLE, (), f"pictures not compared: {exc}")
    except Undecodable as exc:
        return _Picture(Verdict.MISSING, whole, f"no picture: {exc}")
    if len(fresh) == 0:
        return _Picture(Verdict.MISSING, whole, "no picture decodes")
    return _compared(signed, reference, fresh, thresholds)


def _compared(
    signed: SignedSegment, reference: FrameHashes, fresh: FrameHashes, thresholds: Thresholds
) -> _Picture:
    index, window = signed.index, thresholds.window_s
    gone = (fresh.end, reference.end)
    if fresh.end < reference.end - window:
        head = reference.slice_time(reference.start, fresh.end)
        prefix = compare_segment(head, fresh, thresholds, index=index)
        if prefix.status == "same" and abs(prefix.offset_s) < 1.5 / reference.rate:
            return _Picture(
                Verdict.TRUNCATED,
                (gone,),
                f"the picture ends {reference.end - fresh.end:.1f} s early, at {fresh.end:.1f} s"
                f" of {reference.end:.1f} s; what remains matches",
                offset=prefix.offset_s,
            )
    verdict = compare_segment(reference, fresh, thresholds, index=index)
    offset = verdict.offset_s if math.isfinite(verdict.offset_s) else 0.0
    return replace(_judged(signed, reference, fresh, verdict, window), offset=offset)


def _judged(
    signed: SignedSegment,
    reference: FrameHashes,
    fresh: FrameHashes,
    verdict: SegmentVerdict,
    window: float,
) -> _Picture:
    gone = (fresh.end, reference.end)
    if verdict.status == "same" and fresh.end >= reference.end - window:
        return _Picture(
            Verdict.RE_ENCODED, (), f"the picture matches (mean {verdict.mean_bits:.1f} bits)"
        )
    if verdict.status == "missing":
        return _Picture(
            Verdict.MISSING,
            ((signed.start_s, signed.end_s),),
            "the picture is another one: none of the segment's is found",
        )
    if verdict.edited_ranges:
        where = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in verdict.edited_ranges)
        return _Picture(Verdict.EDITED, verdict.edited_ranges, f"the picture changed at {where}")
    if fresh.end < reference.end:
        return _Picture(
            Verdict.EDITED,
            (gone,),
            f"{reference.end - fresh.end:.1f} s of frames gone, at {gone[0]:.1f}-{gone[1]:.1f} s",
        )
    return _Picture(
        Verdict.EDITED,
        ((signed.start_s, signed.end_s),),
        f"the picture differs (mean {verdict.mean_bits:.1f} bits)",
    )


def stand_in_hearing(
    run: Run, ffmpeg: str | None, path: Path, signed: SignedSegment, reference: AudioTracks | None
) -> Callable[[float], SegmentAudio | None] | None:
    """``changed_segment``'s ``hear``: the sound of the file at ``path`` standing in for
    ``signed`` against its signed fingerprints ``reference`` (None: none signed, nothing to
    hear). The file is heard on its own timeline (zero at its first picture, as its pictures
    are decoded), moved to the segment's start. A sound that does not decode is *missing*."""
    if reference is None or ffmpeg is None:
        return None
    span = (signed.start_s, signed.end_s)

    def hear(offset: float) -> SegmentAudio | None:
        try:
            copy = decode_tracks(run, ffmpeg, path, origin=None, first_video=None)
        except AudioUndecodable as exc:
            return SegmentAudio(signed.index, "missing", (span,), f"audio {exc}")
        except (OSError, subprocess.SubprocessError):
            return None  # no decoder that runs: the pictures say why
        return segment_audio(signed.index, span, reference, copy.shifted(signed.start_s), offset)

    return hear


def original_finding(
    recording: str, sha: str, size: int, signed_sha: str, signed_size: int | None, file: str
) -> Finding:
    """An original found at ``file`` (``sha``, ``size``) against its signed hash and size: it is
    checked by its bytes alone (nothing signed says what its pictures are)."""
    if sha == signed_sha:
        return Finding(
            kind=Verdict.INTACT,
            recording=recording,
            detail=f"sha256 as signed ({size} bytes)",
            file=file,
        )
    signed = "?" if signed_size is None else str(signed_size)
    return Finding(
        kind=Verdict.BYTES_ALTERED,
        recording=recording,
        detail=f"sha256 differs from the signed one ({size} bytes, {signed} signed)",
        file=file,
    )
