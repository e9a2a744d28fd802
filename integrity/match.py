"""``vigil match``: compare an outside copy with the catalogued recording it claims to be.

The copy is decoded whole (every frame at its own time, and every audio track) on its own
timeline, then aligned segment by segment by timestamp (``vigil_verify.compare`` for the
pictures, ``vigil_verify.audio_tracks`` for the sound). What it is compared against are the
segments' per-frame hashes and audio fingerprints whose SHA-256 the signed log holds: a row
someone rewrote is refused, never believed.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from pydantic import BaseModel
from vigil_verify.audio_tracks import AudioTracks, AudioUndecodable, match_audio
from vigil_verify.compare import (
    MatchReport,
    SegmentReference,
    SegmentVerdict,
    Thresholds,
    match_recording,
)
from vigil_verify.errors import ErrorKind
from vigil_verify.original import check_packets
from vigil_verify.packets import FramehashError

from catalog.models import Segment
from catalog.repository import Catalog, Event
from integrity.audio import copy_audio, tools_run
from integrity.errors import ProofError
from integrity.frames import copy_hashes
from integrity.ledger import Ledger
from integrity.logfacts import ProvedRecording, prove
from integrity.phash import FrameHashes
from transcode.errors import TranscodeError
from transcode.ffmpeg import FfmpegFailed, Tools


class MatchError(ProofError):
    """The copy cannot be compared with this recording."""

    kind = ErrorKind.INVALID


class MatchDetail(BaseModel):
    file_name: str
    clean: bool
    edited: list[int]
    missing: list[int]
    extra_s: float
    audio_edited: list[int] = []
    by_packets: bool = False  # every signed packet found unchanged: nothing decoded


def _sha(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def _signed_segments(
    catalog: Catalog, recording_id: str, log: ProvedRecording | None
) -> list[Segment]:
    """The recording's segments, each with per-frame hashes; with ``log``, only as signed."""
    segments = catalog.segments(recording_id)
    if not segments:
        raise MatchError(f"{recording_id} has no catalogued segments")
    for segment in segments:
        if segment.phash is None:
            raise MatchError(f"{recording_id} segment {segment.index} has no perceptual hash yet")
        signed = log.facts.segments.get(segment.index) if log is not None else None
        if log is not None and (signed is None or signed.phash_sha256 != _sha(segment.phash)):
            raise MatchError(
                f"{recording_id} segment {segment.index}: its per-frame hashes are not the ones"
                " the signed log holds (run vigil verify on the recording)"
            )
    return segments


def references(catalog: Catalog, recording_id: str) -> list[SegmentReference]:
    return [_reference(s) for s in _signed_segments(catalog, recording_id, None)]


def _reference(segment: Segment) -> SegmentReference:
    assert segment.phash is not None
    frames = FrameHashes.from_bytes(segment.phash)
    return SegmentReference(segment.index, segment.start_s, segment.end_s, frames)


def audio_references(
    segments: list[Segment], log: ProvedRecording | None
) -> dict[int, AudioTracks]:
    """Each segment's audio fingerprints, where there are some. With ``log``, only where the
    log signed some, and only those: a blob the log signed that the row lost or rewrote is
    refused (its sound would otherwise go uncompared)."""
    found: dict[int, AudioTracks] = {}
    for segment in segments:
        blob = segment.audio
        if log is not None:
            signed = log.facts.segments.get(segment.index)
            if signed is None or signed.audio_sha256 is None:
                continue
            if blob is None or _sha(blob) != signed.audio_sha256:
                raise MatchError(
                    f"{segment.recording_id} segment {segment.index}: its audio fingerprints are"
                    " not the ones the signed log holds (run vigil verify on the recording)"
                )
        if blob is not None:
            found[segment.index] = AudioTracks.from_bytes(blob)
    return found


def _reason(exc: FfmpegFailed, copy: Path) -> str:
    """ffmpeg's own complaint, without its per-frame log or the folder the copy is in."""
    lines = [
        line.strip()
        for line in exc.stderr_tail.splitlines()
        if line.strip() and "showinfo" not in line and "Conversion failed" not in line
    ]
    return (lines[-1] if lines else f"exit status {exc.returncode}").replace(str(copy), copy.name)


def _proved(ledger: Ledger | None, recording_id: str) -> ProvedRecording | None:
    if ledger is None:
        return None
    if ledger.can_sign:
        ledger.checkpoint()
    return prove(ledger, ledger.public_key, [recording_id]).of(recording_id)


def _match_pictures(
    tools: Tools,
    copy: Path,
    refs: list[SegmentReference],
    rate: float | None,
    thresholds: Thresholds,
) -> MatchReport:
    try:
        hashed = copy_hashes(tools, copy, rate=rate)
    except FfmpegFailed as exc:
        raise MatchError(
            f"{copy.name}: ffmpeg cannot decode its video ({_reason(exc, copy)})"
        ) from exc
    if not len(hashed):
        raise MatchError(f"{copy.name}: no video frames could be decoded")
    return match_recording(refs, hashed, thresholds)


def match_copy(
    catalog: Catalog,
    tools: Tools,
    recording_id: str,
    copy: Path,
    *,
    actor: str,
    thresholds: Thresholds = Thresholds(),
    ledger: Ledger | None = None,
    by_packets: bool = True,
) -> MatchReport:
    """Compare ``copy`` with the recording; with ``ledger``, against what its log signed.
    ``by_packets``: a copy that holds every signed packet is the same without a decode
    (False: the pictures and sound decide even then)."""
    rec = catalog.recording(recording_id)
    log = _proved(ledger, rec.id)
    segments = _signed_segments(catalog, rec.id, log)
    refs = [_reference(s) for s in segments]
    audio_refs = audio_references(segments, log)  # (a row the log disowns is refused first)
    exact = _same_packets(tools, copy, log) if by_packets else None
    if exact is not None:
        _record(catalog, rec.id, copy, exact, actor, by_packets=True)
        return exact
    if any(len(r.frames) for r in refs):
        report = _match_pictures(tools, copy, refs, rec.phash_fps or None, thresholds)
    else:  # an audio-only recording: its sound is all there is to compare
        report = MatchReport(tuple(SegmentVerdict(r.index, "same", 0.0) for r in refs), ())
    if audio_refs:
        try:
            heard = copy_audio(tools, copy)
        except AudioUndecodable as exc:
            raise MatchError(f"{copy.name}: {exc}") from exc
        spans = {r.index: (r.start, r.end) for r in refs}
        report = replace(report, audio=match_audio(report.segments, spans, audio_refs, heard))
    _record(catalog, rec.id, copy, report, actor)
    return report


def _record(
    catalog: Catalog,
    recording_id: str,
    copy: Path,
    report: MatchReport,
    actor: str,
    *,
    by_packets: bool = False,
) -> None:
    detail = MatchDetail(
        file_name=copy.name,
        clean=report.clean,
        edited=[v.index for v in report.segments if v.status == "edited"],
        missing=[v.index for v in report.segments if v.status == "missing"],
        extra_s=sum(e.end - e.start for e in report.extra),
        audio_edited=[a.index for a in report.audio if not a.same],
        by_packets=by_packets,
    )
    catalog.add_event(Event("match", actor, recording_id, detail=detail))


def _same_packets(tools: Tools, copy: Path, log: ProvedRecording | None) -> MatchReport | None:
    """Every segment "same" when the copy holds every packet the log signs of each, unchanged
    and in order, and nothing more (a remux of the original: issue 18); None otherwise, or
    when the log signs no packets of some segment (then the pictures and sound decide)."""
    if log is None or not log.facts.segments:
        return None
    signed = log.facts.segments
    if not all(s.packets for s in signed.values()):
        return None
    try:
        found, extra = check_packets(tools_run(tools), tools.ffmpeg, copy, signed)
    except (TranscodeError, FramehashError):
        return None
    if extra or not all(f.same for f in found):
        return None
    return MatchReport(tuple(SegmentVerdict(i, "same", 0.0) for i in sorted(signed)), ())
