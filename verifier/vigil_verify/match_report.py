"""A ``vigil match`` result in the one vocabulary (``vigil_verify.verdicts``).

Per segment: **intact** (the same pictures, and the same sound where it has any),
**edited** (with the ranges changed: pictures that differ, content cut, frames dropped, a
freeze, footage inserted inside it), **truncated** (the copy ends or starts inside it, and the
rest matches), **missing** (the copy has nothing at its times). Beside it, the sound's own
verdict (same / edited / missing / extra / desync): a segment whose pictures are the same and
whose sound is not is **edited** at the sound's ranges. Footage in the copy that is in no
segment is **inserted**, its ranges in the copy's seconds. The JSON form uses the same
finding objects as ``vigil-verify --json``.
"""

from __future__ import annotations

from dataclasses import replace

from vigil_verify.audio_tracks import SegmentAudio
from vigil_verify.compare import Edit, MatchReport, SegmentVerdict
from vigil_verify.verdicts import Finding, Verdict

_WORDS = {
    "edited": "pictures differ",
    "cut": "content cut",
    "inserted": "footage inserted",
    "dropped": "frames dropped",
    "frozen": "picture frozen",
    "truncated": "copy ends",
}


def _describe(edit: Edit) -> str:
    what = _WORDS[edit.kind]
    if edit.kind == "inserted":
        return f"{what} at {edit.start:.2f} s ({edit.length_s:.2f} s)"
    if edit.kind == "cut":
        return f"{what}: {edit.start:.2f}-{edit.end:.2f} s ({edit.length_s:.2f} s)"
    return f"{what} {edit.start:.2f}-{edit.end:.2f} s"


def segment_finding(
    recording: str, verdict: SegmentVerdict, audio: SegmentAudio | None = None
) -> Finding:
    """The finding for one segment of a match: its pictures' verdict, with its sound's beside
    it. Pictures the same and the sound not is *edited* (the sound's ranges), never intact."""
    return with_audio(_picture_finding(recording, verdict), audio)


def with_audio(found: Finding, audio: SegmentAudio | None) -> Finding:
    """``found`` (a segment's pictures) with its sound's verdict beside it. Sound that is not
    the same makes an intact, re-encoded or truncated segment *edited* (at the sound's ranges
    too), but for sound that ends early where the pictures do; a missing segment, or one whose
    bytes were altered in place, keeps its word."""
    if audio is None:
        return found
    if audio.same or found.kind in (Verdict.MISSING, Verdict.UNVERIFIABLE):
        return replace(found, audio=audio.kind)
    if audio.kind == "truncated" and found.kind is Verdict.TRUNCATED:  # both end early
        return replace(found, audio=audio.kind, audio_ranges=audio.ranges)
    keep = found.kind in (Verdict.BYTES_ALTERED, Verdict.EDITED)
    return replace(
        found,
        kind=found.kind if keep else Verdict.EDITED,
        ranges=tuple(sorted({*found.ranges, *audio.ranges})),
        detail=f"{found.detail}; {audio.detail}",
        audio=audio.kind,
        audio_ranges=audio.ranges,
    )


def _picture_finding(recording: str, verdict: SegmentVerdict) -> Finding:
    if verdict.status == "missing":
        return Finding(
            kind=Verdict.MISSING,
            recording=recording,
            index=verdict.index,
            detail="the copy has nothing at this segment's times",
        )
    if verdict.status == "same":
        return Finding(
            kind=Verdict.INTACT,
            recording=recording,
            index=verdict.index,
            detail=f"the same pictures (mean {verdict.mean_bits:.1f} bits,"
            f" threshold {verdict.threshold_bits:.1f})",
        )
    truncated = all(e.kind == "truncated" for e in verdict.edits)
    return Finding(
        kind=Verdict.TRUNCATED if truncated else Verdict.EDITED,
        recording=recording,
        index=verdict.index,
        ranges=verdict.edited_ranges,
        detail="; ".join(_describe(e) for e in verdict.edits),
    )


def match_findings(recording: str, report: MatchReport) -> list[Finding]:
    """Every segment's finding, then each stretch of inserted footage (copy seconds)."""
    heard = {a.index: a for a in report.audio}
    findings = [segment_finding(recording, v, heard.get(v.index)) for v in report.segments]
    findings += [
        Finding(
            kind=Verdict.INSERTED,
            recording=recording,
            ranges=((e.start, e.end),),
            detail=f"{e.end - e.start:.2f} s of the copy is in no segment of the recording",
        )
        for e in report.extra
    ]
    return findings


def match_json(recording: str, file_name: str, report: MatchReport) -> dict[str, object]:
    """``vigil match --json``: the verdict and every finding."""
    findings = match_findings(recording, report)
    thresholds = {v.threshold_bits for v in report.segments if v.threshold_bits == v.threshold_bits}
    return {
        "recording": recording,
        "file": file_name,
        "clean": report.clean,
        "verdict": "same content" if report.clean else "differs",
        "threshold_bits": max(thresholds) if thresholds else None,
        "segments": [f.to_json() for f in findings if f.index is not None],
        "inserted": [f.to_json() for f in findings if f.index is None],
    }
