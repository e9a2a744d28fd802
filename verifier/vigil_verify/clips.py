"""Clips in a package (``clips/*.mp4``, from ``vigil export --clip``): is each a faithful
derivative of logged segments, and does its C2PA manifest say what the signed log proves?

For each clip the package's manifest lists:

- **the log**: an ``export.clip`` event of the case, proved in the signed log, names the clip
  with its SHA-256, its window and the segments it covers; the file must hash to it;
- **the manifest** (read with ``c2pa-python`` when it is installed; the report says so when it
  is not): its C2PA validation state, and its ``org.vigil.evidence`` assertion: the recording,
  the window (one the case links, and the one the log recorded), each segment's SHA-256 as the
  log signed it, and a tree head the package proves (its own, or one of its history);
- **the pictures**: the clip decoded on its own timeline from the window's start, hashed as
  the server hashes (PDQ per frame), compared with the segments' signed per-frame hashes over
  the window (``vigil_verify.compare.match_recording``): same everywhere, nothing added, or the
  clip is not faithful (an overlay drawn over the picture, another window, footage cut out);
- **the sound**: every audio track fingerprinted on the same timeline, compared with each
  covered segment's signed fingerprints (``<segment>.vgat``) over the window, less
  ``SOUND_EDGE_S`` at the clip's ends (``vigil_verify.audio_tracks.segment_audio``): muted,
  replaced, cut or shifted sound makes the clip not faithful, as an overlay does.

The clip is judged on the window its manifest claims when the manifest can be read, else on the
one the log recorded. c2pa-python is optional: the verifier's own dependencies stay numpy and
cryptography.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vigil_verify.audio import FRAME, RATE
from vigil_verify.audio_tracks import AudioUndecodable, decode_tracks, segment_audio, subprocess_run
from vigil_verify.compare import MatchReport, SegmentReference, match_recording
from vigil_verify.facts import LedgerCheck, SignedClip, SignedRecording, SignedSegment
from vigil_verify.footage import (
    DECODE_TIMEOUT_S,
    FootageChecker,
    segment_frame_hashes,
    sha256_file,
)
from vigil_verify.frames import FrameHashes
from vigil_verify.names import shown

EVIDENCE_LABEL = "org.vigil.evidence"
WINDOW_TOLERANCE_S = 1e-3
EDGE_S = 1e-6  # a segment that only touches a window (float sums of times) is not in it
SOUND_EDGE_S = FRAME / RATE / 2 + 0.1
"""The clip's sound is judged this far in from its ends: half an audio fingerprint frame, and
0.1 s for a cut's first audio packet starting late or an encoder's priming."""
MIN_SOUND_S = 0.3
"""Less than this of a segment's sound in a clip is not judged (too few frames to align)."""


@dataclass
class ClipFinding:
    """What was found of one clip: ``faithful`` when every check passed."""

    file: str
    recording: str | None
    faithful: bool
    detail: str
    c2pa: str  # the C2PA validation state, or why it was not read
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Claim:
    """The ``org.vigil.evidence`` assertion, as far as the verifier reads it."""

    recording: str
    from_s: float
    to_s: float
    segments: tuple[tuple[int, str], ...]
    checkpoint: tuple[int, str] | None  # (size, root hex)


def _reader_json(path: Path, trust_pem: str | None) -> str:
    """c2pa-python's report on ``path`` (ImportError: c2pa-python is not installed)."""
    import c2pa  # type: ignore[import-untyped,unused-ignore]

    config: dict[str, object] = {"verify": {"verify_trust": trust_pem is not None}}
    if trust_pem is not None:
        config["trust"] = {"trust_anchors": trust_pem}
    with (
        c2pa.Context(c2pa.Settings.from_dict(config)) as context,
        path.open("rb") as fh,
        c2pa.Reader("video/mp4", fh, None, context) as reader,
    ):
        return str(reader.json())


def _state(store: dict[str, object], trust_pem: str | None) -> tuple[str, str | None]:
    """What C2PA says of the manifest, and the problem in it (None: none)."""
    state = store.get("validation_state")
    if state == "Trusted":
        return "valid, signer anchored in the given trust list", None
    if state == "Valid" and trust_pem is None:
        return "valid (signer not checked: no --c2pa-trust given)", None
    results = store.get("validation_results")
    active = results.get("activeManifest") if isinstance(results, dict) else None
    failed = active.get("failure") if isinstance(active, dict) else None
    codes = sorted({str(f.get("code")) for f in failed or [] if isinstance(f, dict)})
    if state == "Valid":
        return "untrusted", "its C2PA signer chains to no anchor of the given trust list"
    return "invalid", f"its C2PA manifest does not validate ({', '.join(codes) or shown(state)})"


def _read_manifest(path: Path, trust_pem: str | None) -> tuple[str, _Claim | None, str | None]:
    """(C2PA state, the Vigil claim, a problem) from ``path``'s manifest via c2pa-python."""
    try:
        store = json.loads(_reader_json(path, trust_pem))
    except ImportError:
        return "not read: c2pa-python is not installed (pip install c2pa-python)", None, None
    except Exception as exc:  # c2pa's C2paError: no manifest, or one that cannot be read
        return "invalid", None, f"its C2PA manifest cannot be read ({shown(str(exc)[:200])})"
    if not isinstance(store, dict):
        return "invalid", None, "its C2PA manifest store reads as no object"
    state, problem = _state(store, trust_pem)
    manifests = store.get("manifests")
    label = store.get("active_manifest")
    active = manifests.get(label, {}) if isinstance(manifests, dict) and label else {}
    for assertion in active.get("assertions", []) if isinstance(active, dict) else []:
        if isinstance(assertion, dict) and assertion.get("label") == EVIDENCE_LABEL:
            try:
                return state, _claim(assertion.get("data")), problem
            except (TypeError, ValueError, KeyError) as exc:
                return state, None, f"its {EVIDENCE_LABEL} assertion is malformed ({exc})"
    return state, None, problem or f"its C2PA manifest has no {EVIDENCE_LABEL} assertion"


def _claim(data: object) -> _Claim:
    if not isinstance(data, dict):
        raise TypeError("not an object")
    point = data.get("checkpoint")
    return _Claim(
        recording=str(data["recording"]),
        from_s=float(data["from_s"]),
        to_s=float(data["to_s"]),
        segments=tuple((int(s["index"]), str(s["sha256"])) for s in data["segments"]),
        checkpoint=(int(point["size"]), str(point["root"])) if isinstance(point, dict) else None,
    )


def _covered(rec: SignedRecording, lo: float, hi: float) -> list[SignedSegment]:
    """The signed segments the window ``[lo, hi)`` covers, in order."""
    found = (s for s in rec.segments.values() if s.end_s > lo + EDGE_S and s.start_s < hi - EDGE_S)
    return sorted(found, key=lambda s: s.index)


def _linked(rec: SignedRecording, lo: float, hi: float) -> bool:
    """Is ``[lo, hi]`` inside a window the signed log links to the case?"""
    for a, b in rec.windows:
        starts = a is None or lo >= a - WINDOW_TOLERANCE_S
        if starts and (b is None or hi <= b + WINDOW_TOLERANCE_S):
            return True
    return False


def _claim_problems(claim: _Claim, signed: SignedClip | None, check: LedgerCheck) -> list[str]:
    """Where the manifest's assertion differs from what the signed log proves."""
    problems: list[str] = []
    rec = check.facts.get(claim.recording)
    if rec is None:
        return [f"its manifest names recording {shown(claim.recording)}, not in the signed log"]
    if not _linked(rec, claim.from_s, claim.to_s):
        problems.append(
            f"its manifest names the window {claim.from_s:.3f}-{claim.to_s:.3f} s, which the case"
            " does not link"
        )
    if signed is not None and (
        abs(signed.from_s - claim.from_s) > WINDOW_TOLERANCE_S
        or abs(signed.to_s - claim.to_s) > WINDOW_TOLERANCE_S
        or signed.recording != claim.recording
    ):
        problems.append(
            f"its manifest names the window {claim.from_s:.3f}-{claim.to_s:.3f} s of"
            f" {shown(claim.recording)}; the log recorded {signed.from_s:.3f}-{signed.to_s:.3f} s"
            f" of {signed.recording}"
        )
    for index, sha in claim.segments:
        seg = rec.segments.get(index)
        if seg is None or seg.sha256 != sha:
            problems.append(f"its manifest's segment {index} hash is not the one the log signed")
    covered = {s.index for s in _covered(rec, claim.from_s, claim.to_s)}
    if covered != {i for i, _ in claim.segments}:
        problems.append("its manifest does not list the segments its window covers")
    if claim.checkpoint is None:
        problems.append("its manifest names no signed tree head")
    elif check.heads.get(claim.checkpoint[0], b"").hex() != claim.checkpoint[1]:
        problems.append(
            f"its manifest names a tree head (size {claim.checkpoint[0]}) the package does not"
            " prove"
        )
    return problems


def _frames_verdict(
    checker: FootageChecker, rec: SignedRecording, lo: float, hi: float
) -> tuple[bool, str, list[SegmentReference]]:
    """Compare the clip (decoded later by the caller) with the segments over ``[lo, hi)``: the
    references (per-frame hashes sliced to the window), or why there are none."""
    covered = _covered(rec, lo, hi)
    if not covered:
        return False, f"no signed segment covers {lo:.3f}-{hi:.3f} s", []
    refs: list[SegmentReference] = []
    for seg in covered:
        frames = checker.signed_frames(rec, seg)
        if frames is None:
            return False, f"segment {seg.index} has no signed per-frame hashes in the package", []
        refs.append(SegmentReference(seg.index, seg.start_s, seg.end_s, frames.slice_time(lo, hi)))
    return True, "", refs


def _clip_hashes(
    ffmpeg: str, path: Path, first: SignedSegment, lo: float, rate: float
) -> FrameHashes:
    """The clip's per-frame hashes on the recording timeline (its time 0 at ``lo``), sampled as
    the first segment it covers was."""
    return segment_frame_hashes(ffmpeg, path, dataclasses.replace(first, start_s=lo), rate)


def _at(ranges: tuple[tuple[float, float], ...]) -> str:
    return f" at {', '.join(f'{a:.2f}-{b:.2f} s' for a, b in ranges)}" if ranges else ""


def _picture_problems(
    checker: FootageChecker, path: Path, rec: SignedRecording, lo: float, hi: float
) -> tuple[list[str], str, MatchReport | None]:
    """Problems with the clip's pictures over ``[lo, hi)``; the segments it is faithful to;
    the comparison (None: the pictures could not be compared)."""
    ok, why, refs = _frames_verdict(checker, rec, lo, hi)
    if not ok:
        return [why], "", None
    if checker.ffmpeg is None:
        return ["no ffmpeg: its pictures cannot be decoded"], "", None
    first = rec.segments[refs[0].index]
    try:
        copy = _clip_hashes(checker.ffmpeg, path, first, lo, refs[0].frames.rate)
    except (OSError, ValueError) as exc:
        return [f"it cannot be decoded ({shown(str(exc)[:200])})"], "", None
    report = match_recording(refs, copy, checker.thresholds)
    problems = [
        f"segment {v.index} {v.status}" + _at(v.edited_ranges)
        for v in report.segments
        if v.status != "same"
    ]
    problems += [f"footage in no segment at clip {x.start:.2f}-{x.end:.2f} s" for x in report.extra]
    span = f"{refs[0].index}–{refs[-1].index}" if len(refs) > 1 else f"{refs[0].index}"
    return problems, span, report


def sound_span(
    seg: SignedSegment, lo: float, hi: float, edge_s: float = SOUND_EDGE_S
) -> tuple[float, float]:
    """Where a clip of ``[lo, hi)`` is heard against segment ``seg``: the part of the segment
    in the window, less ``edge_s`` at each end of the clip (an audio frame there reaches past
    the clip's first or last sample; a cut's first audio packet starts up to one frame late)."""
    start = seg.start_s if seg.start_s > lo + edge_s else lo + edge_s
    end = seg.end_s if seg.end_s < hi - edge_s else hi - edge_s
    return start, end


def _sound_problems(
    checker: FootageChecker,
    path: Path,
    rec: SignedRecording,
    window: tuple[float, float],
    report: MatchReport,
) -> tuple[list[str], str]:
    """Problems with the clip's sound against the covered segments' signed fingerprints,
    heard where its pictures were found; and what was heard, for the report."""
    lo, hi = window
    if checker.ffmpeg is None:
        return [], "sound not judged (no ffmpeg)"
    references = {
        v.index: checker.signed_audio(rec, rec.segments[v.index]) for v in report.segments
    }
    if all(r is None for r in references.values()):
        return [], "no signed sound"  # footage without sound, or an older package
    try:
        run = subprocess_run(DECODE_TIMEOUT_S)
        heard = decode_tracks(run, checker.ffmpeg, path, origin=None, first_video=True)
    except AudioUndecodable as exc:
        return [f"its sound does not decode ({shown(str(exc)[:200])})"], ""
    except (OSError, subprocess.SubprocessError) as exc:
        return [f"its sound cannot be decoded ({shown(str(exc)[:200])})"], ""
    copy = heard.shifted(lo)
    problems: list[str] = []
    judged = 0
    for verdict in report.segments:
        reference = references[verdict.index]
        span = sound_span(rec.segments[verdict.index], lo, hi)
        if reference is None or span[1] - span[0] < MIN_SOUND_S:
            continue
        offset = verdict.offset_s if math.isfinite(verdict.offset_s) else 0.0
        found = segment_audio(verdict.index, span, reference.between(*span), copy, offset)
        judged += 1
        if found is not None and not found.same:
            problems.append(f"segment {verdict.index} {found.detail}")
    if not judged:
        return problems, f"sound not judged (under {MIN_SOUND_S:.1f} s away from its ends)"
    return problems, "sound as signed"


def _in_clips(package: Path, rel: str) -> bool:
    """Does ``rel`` name a file in the package's ``clips/`` (no link leading out of it)?"""
    try:
        base = (package / "clips").resolve()
        return (package / rel).resolve().is_relative_to(base) and (package / rel).is_file()
    except (OSError, ValueError, RuntimeError):
        return False


def check_clip(
    checker: FootageChecker,
    entry: Mapping[str, object],
    check: LedgerCheck,
    trust_pem: str | None = None,
) -> ClipFinding:
    """One clip the package's manifest lists (``entry``); ``trust_pem``: the C2PA trust anchors
    its signer must chain to (None: its signature is checked, its signer is not)."""
    rel = str(entry.get("file", ""))
    name = Path(rel).name
    path = checker.package / rel
    rec_id = entry.get("recording")
    rec = check.facts.get(rec_id) if isinstance(rec_id, str) else None
    signed = rec.clips.get(rel) if rec is not None else None
    finding = ClipFinding(rel, rec_id if isinstance(rec_id, str) else None, False, "", "not read")
    if not rel.startswith("clips/") or not _in_clips(checker.package, rel):
        finding.detail = f"clip {shown(name)}: not in the package"
        return finding
    sha, _ = sha256_file(path)
    if signed is None:
        finding.problems.append("no signed export.clip event of the case names it")
    elif sha != signed.sha256:
        finding.problems.append("its bytes are not the clip the log recorded (sha256 differs)")
    finding.c2pa, claim, problem = _read_manifest(path, trust_pem)
    if problem:
        finding.problems.append(problem)
    if claim is not None:
        finding.problems += _claim_problems(claim, signed, check)
        rec = check.facts.get(claim.recording, rec)
        lo, hi = claim.from_s, claim.to_s
    elif signed is not None:
        lo, hi = signed.from_s, signed.to_s
    else:
        finding.detail = f"clip {shown(name)}: NOT checked (no window from its manifest or the log)"
        return finding
    if rec is None:
        finding.detail = f"clip {shown(name)}: NOT checked (its recording is not in the log)"
        return finding
    pictures, span, report = _picture_problems(checker, path, rec, lo, hi)
    finding.problems += pictures
    note = ""
    if report is not None:
        sound, note = _sound_problems(checker, path, rec, (lo, hi), report)
        finding.problems += sound
    finding.faithful = not finding.problems
    if finding.faithful:
        finding.detail = (
            f"clip {name}: faithful to segments {span} ({lo:.3f}-{hi:.3f} s): pictures as signed"
        )
        finding.detail += f", {note}" if note else ""
    else:
        finding.detail = f"clip {shown(name)}: NOT faithful: " + "; ".join(finding.problems)
    return finding
