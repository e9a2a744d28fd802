"""``vigil match``: compare an outside copy with the catalogued recording it claims to be.

The copy is decoded whole on the same fixed-rate 64x64 grid as the catalogue's hashes, then
aligned segment by segment by timestamp (see ``vigil_verify.compare``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel
from vigil_verify.compare import MatchReport, SegmentReference, Thresholds, match_recording
from vigil_verify.errors import ErrorKind

from catalog.repository import Catalog, Event
from integrity.errors import ProofError
from integrity.frames import copy_hashes
from integrity.phash import FrameHashes
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


def references(catalog: Catalog, recording_id: str) -> list[SegmentReference]:
    refs: list[SegmentReference] = []
    for segment in catalog.segments(recording_id):
        if segment.phash is None:
            raise MatchError(f"{recording_id} segment {segment.index} has no perceptual hash yet")
        refs.append(
            SegmentReference(
                segment.index, segment.start_s, segment.end_s, FrameHashes.from_bytes(segment.phash)
            )
        )
    if not refs:
        raise MatchError(f"{recording_id} has no catalogued segments")
    return refs


def _reason(exc: FfmpegFailed, copy: Path) -> str:
    """ffmpeg's own complaint, without its per-frame log or the folder the copy is in."""
    lines = [
        line.strip()
        for line in exc.stderr_tail.splitlines()
        if line.strip() and "showinfo" not in line and "Conversion failed" not in line
    ]
    return (lines[-1] if lines else f"exit status {exc.returncode}").replace(str(copy), copy.name)


def match_copy(
    catalog: Catalog,
    tools: Tools,
    recording_id: str,
    copy: Path,
    *,
    actor: str,
    thresholds: Thresholds = Thresholds(),
) -> MatchReport:
    rec = catalog.recording(recording_id)
    refs = references(catalog, rec.id)
    try:
        hashed = copy_hashes(tools, copy, rate=rec.phash_fps or None)
    except FfmpegFailed as exc:
        raise MatchError(
            f"{copy.name}: ffmpeg cannot decode its video ({_reason(exc, copy)})"
        ) from exc
    if not len(hashed):
        raise MatchError(f"{copy.name}: no video frames could be decoded")
    report = match_recording(refs, hashed, thresholds)
    detail = MatchDetail(
        file_name=copy.name,
        clean=report.clean,
        edited=[v.index for v in report.segments if v.status == "edited"],
        missing=[v.index for v in report.segments if v.status == "missing"],
        extra_s=sum(e.end - e.start for e in report.extra),
    )
    catalog.add_event(Event("match", actor, rec.id, detail=detail))
    return report
