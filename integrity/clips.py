"""Clips in an export package: for each window the case links, an MP4 of that window carrying
Content Credentials (C2PA) signed with the agency's key.

A clip is a derived file: cut from the package's own copies of the evidence segments (already
checked against the signed log), never from anything changed, and never changing them. Each is
hashed and recorded in the custody log by one ``export.clip`` event (its file, SHA-256, size,
the hash of its manifest store, how it was cut, the window and the segments it covers), written
before the package's ledger part so that the package proves it.

``vigil-verify`` checks each clip against the segments' signed per-frame hashes over the window,
and its manifest's ``org.vigil.evidence`` assertion against the signed log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from catalog.repository import Catalog, Event
from integrity.clip_credentials import (
    CheckpointRef,
    ClipSigner,
    ClipSigningError,
    ClipSource,
    EvidenceAssertion,
    SegmentHash,
)
from integrity.logfacts import LogFacts
from store.base import sha256_file
from transcode.clips import ClipJob, ClipMethod, clip_method, cut_clip
from transcode.ffmpeg import Tools

logger = logging.getLogger(__name__)

CLIPS_FOLDER = "clips"
EDGE_S = 1e-6  # the same as vigil_verify.clips.EDGE_S: both sides list the same segments


class ClipEntry(BaseModel):
    """A clip in the package's manifest (and, as its detail, the ``export.clip`` event)."""

    file: str  # clips/<name>.mp4, inside the package
    recording: str
    from_s: float
    to_s: float
    method: ClipMethod  # "copy": packets as recorded; "h264": re-encoded whole
    sha256: str
    size: int
    manifest_sha256: str  # SHA-256 of the C2PA manifest store embedded in the clip
    signer: str  # the signing certificate's subject
    segments: list[SegmentHash]
    checkpoint_size: int | None  # the signed tree head the manifest names


@dataclass(frozen=True)
class ClipSegment:
    """A segment of the package the window covers, as the clip is cut from it."""

    index: int
    path: Path  # its copy in the package
    sha256: str  # as the signed log has it (else as copied)
    start_s: float  # recording timeline
    end_s: float
    pts_start_s: float  # its first timestamp, on the original's own timestamps
    keyframes: tuple[float, ...]  # recording timeline, its first frame's included


@dataclass(frozen=True)
class ClipWindow:
    """One linked window of one recording of the package."""

    recording_id: str
    original_name: str
    original_sha256: str | None
    original_path: Path | None  # the original in the package (a whole link), else None
    from_s: float | None
    to_s: float | None
    segments: tuple[ClipSegment, ...]


class _ExportedFile(Protocol):
    @property
    def path(self) -> str: ...


class _ExportedSegment(Protocol):
    @property
    def index(self) -> int: ...
    @property
    def file(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def start_s(self) -> float: ...
    @property
    def end_s(self) -> float: ...
    @property
    def pts_start_s(self) -> float: ...


class ExportedRecording(Protocol):
    """What clips need of a recording's entry in the package (``integrity.export``)."""

    @property
    def id(self) -> str: ...
    @property
    def original_name(self) -> str: ...
    @property
    def original(self) -> _ExportedFile | None: ...
    @property
    def window_from_s(self) -> float | None: ...
    @property
    def window_to_s(self) -> float | None: ...
    @property
    def segments(self) -> Sequence[_ExportedSegment]: ...


def clip_windows(
    catalog: Catalog, root: Path, entries: Sequence[ExportedRecording], facts: LogFacts
) -> list[ClipWindow]:
    """Each exported window with video, as it is cut: the segments in the package (``root``),
    their signed hashes and their keyframes' times."""
    windows: list[ClipWindow] = []
    for entry in entries:
        if catalog.recording(entry.id).video_codec is None:
            continue  # an audio-only recording: no picture to clip
        rows = {s.index: s for s in catalog.segments(entry.id)}
        signed = facts.of(entry.id).facts
        segments = tuple(
            ClipSegment(
                index=s.index,
                path=root / s.file,
                sha256=signed.segments[s.index].sha256 if s.index in signed.segments else s.sha256,
                start_s=s.start_s,
                end_s=s.end_s,
                pts_start_s=s.pts_start_s,
                keyframes=keyframe_times(s.start_s, rows[s.index].keyframes),
            )
            for s in entry.segments
        )
        original = root / entry.original.path if entry.original else None
        windows.append(
            ClipWindow(
                entry.id,
                entry.original_name,
                signed.original_sha256,
                original,
                entry.window_from_s,
                entry.window_to_s,
                segments,
            )
        )
    return windows


def keyframe_times(start_s: float, keyframes_json: str | None) -> tuple[float, ...]:
    """A segment's keyframe times (recording timeline) from its catalogue row's JSON; its start
    is one whatever the row holds (every segment starts on a keyframe)."""
    times = {round(start_s, 6)}
    try:
        listed = json.loads(keyframes_json) if keyframes_json else []
    except ValueError:
        listed = []
    for item in listed if isinstance(listed, list) else []:
        t = item.get("t") if isinstance(item, dict) else None
        if isinstance(t, int | float):
            times.add(float(t))
    return tuple(sorted(times))


def clip_bounds(window: ClipWindow) -> tuple[float, float, tuple[ClipSegment, ...]]:
    """The window's start and end (open ends closed on its segments) and its segments."""
    segments = window.segments
    lo = max(window.from_s or 0.0, segments[0].start_s)
    hi = min(window.to_s if window.to_s is not None else segments[-1].end_s, segments[-1].end_s)
    # Stored times are sums of floats: a segment that only touches the window is not in it.
    covered = tuple(s for s in segments if s.end_s > lo + EDGE_S and s.start_s < hi - EDGE_S)
    return lo, hi, covered


def clip_name(recording_id: str, lo: float, hi: float) -> str:
    return f"{recording_id}_{lo:.3f}-{hi:.3f}.mp4"


@dataclass(frozen=True)
class ClipExporter:
    """Cuts, signs, hashes and logs the clips of an export."""

    tools: Tools
    signer: ClipSigner

    @classmethod
    def configured(cls, tools: Tools, cert: Path | None, key: Path | None) -> ClipExporter:
        """With the agency's C2PA signing certificate and key (``VIGIL_C2PA_SIGN_CERT``,
        ``_KEY``), read and checked now; a ``ClipSigningError`` says what is missing or wrong."""
        if cert is None or key is None:
            raise ClipSigningError(
                "clips need the agency's C2PA signing certificate and key: set"
                " VIGIL_C2PA_SIGN_CERT and VIGIL_C2PA_SIGN_KEY (docs/c2pa.md)"
            )
        return cls(tools, ClipSigner.load(cert, key))

    def export_package(
        self, catalog: Catalog, root: Path, entries: Sequence[ExportedRecording], facts: LogFacts,
        *, case_id: str, actor: str, reason: str,
    ) -> list[ClipEntry]:  # fmt: skip
        """The clips of the package at ``root`` whose recordings are ``entries``."""
        windows = clip_windows(catalog, root, entries, facts)
        return self.export(
            catalog, root, windows, facts, case_id=case_id, actor=actor, reason=reason
        )

    def export(
        self,
        catalog: Catalog,
        root: Path,
        windows: Sequence[ClipWindow],
        facts: LogFacts,
        *,
        case_id: str,
        actor: str,
        reason: str,
    ) -> list[ClipEntry]:
        """The clips of ``windows`` under ``root/clips/``, each with its ``export.clip`` event."""
        folder = root / CLIPS_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        checkpoint = None
        if facts.head is not None:
            head = facts.head.checkpoint
            checkpoint = CheckpointRef(origin=head.origin, size=head.size, root=head.root.hex())
        entries: list[ClipEntry] = []
        for window in windows:
            if not window.segments:
                logger.info("export: %s has no segment in its window, no clip", window.recording_id)
                continue
            entry = self._one(folder, window, checkpoint, case_id)
            catalog.add_event(
                Event(
                    "export.clip",
                    actor,
                    recording_id=window.recording_id,
                    case_id=case_id,
                    reason=reason,
                    detail=entry,
                )
            )
            entries.append(entry)
        return entries

    def _one(
        self, folder: Path, window: ClipWindow, checkpoint: CheckpointRef | None, case_id: str
    ) -> ClipEntry:
        lo, hi, covered = clip_bounds(window)
        first = covered[0]
        matroska = any(s.path.suffix == ".mkv" for s in covered)
        keyframes = [t for s in covered for t in s.keyframes]
        # Matroska segments hold codecs an MP4 may not carry: they are re-encoded.
        method: ClipMethod = "h264" if matroska else clip_method(lo, keyframes)
        name = clip_name(window.recording_id, lo, hi)
        unsigned = folder / f".{name}.unsigned.mp4"
        dest = folder / name
        job = ClipJob(
            sources=tuple(s.path for s in covered),
            dest=unsigned,
            seek_s=first.pts_start_s + (lo - first.start_s),
            length_s=hi - lo,
            method=method,
            matroska=matroska,
            concat_list=folder / f".{name}.concat" if matroska else None,
        )
        evidence = EvidenceAssertion(
            recording=window.recording_id,
            case=case_id,
            from_s=round(lo, 6),
            to_s=round(hi, 6),
            method=method,
            original_sha256=window.original_sha256,
            segments=tuple(SegmentHash(index=s.index, sha256=s.sha256) for s in covered),
            checkpoint=checkpoint,
        )
        source = ClipSource(
            window.recording_id, window.original_name, window.original_sha256, window.original_path
        )
        try:
            cut_clip(self.tools, job)
            manifest_sha256 = self.signer.sign(unsigned, dest, source, evidence)
        finally:
            unsigned.unlink(missing_ok=True)
        sha, size = sha256_file(dest)
        logger.info("export: clip %s (%s, %.3f-%.3f s) sha256 %s", name, method, lo, hi, sha)
        return ClipEntry(
            file=f"{CLIPS_FOLDER}/{name}",
            recording=window.recording_id,
            from_s=evidence.from_s,
            to_s=evidence.to_s,
            method=method,
            sha256=sha,
            size=size,
            manifest_sha256=manifest_sha256,
            signer=self.signer.subject,
            segments=list(evidence.segments),
            checkpoint_size=checkpoint.size if checkpoint else None,
        )
