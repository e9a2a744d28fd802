"""``vigil export``: a case's footage copied to a folder with a manifest that lists every hash.

Layout of ``DIR/<case>/``: ``manifest.json``, and per recording ``<id>/original.*``,
``<id>/index.m3u8``, ``<id>/segments/*.ts`` with ``*.pdq`` per-frame perceptual hashes beside
them. Every file is re-hashed after it is written; a mismatch aborts the export.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from catalog.repository import Catalog, Event, now
from catalog.timeline import case_timeline
from ingest.store import Bucket, ObjectStore, sha256_file

MANIFEST_FORMAT = "vigil-export/1"


class ExportError(Exception):
    """The export could not be written; nothing is claimed about a partial folder."""


class FileEntry(BaseModel):
    path: str
    sha256: str
    size: int


class SegmentEntry(BaseModel):
    index: int
    file: str
    sha256: str
    size: int
    start_s: float
    end_s: float
    pts_start_s: float  # the segment's first timestamp in the original's own time base
    wall_start: datetime | None
    wall_start_server: datetime | None
    chain: str
    phash_digest: str | None
    phash_file: str | None
    phash_frames: int | None
    integrity: str


class GapEntry(BaseModel):
    kind: str
    start_s: float
    seconds: float
    where: str


class RecordingEntry(BaseModel):
    id: str
    original: FileEntry
    original_name: str
    device_id: str
    officer_id: str | None
    category: str | None
    device_start: datetime | None
    received_at: datetime
    clock_offset_s: float | None
    gps_track: str | None
    damage: str | None
    playback: str | None
    window_from_s: float | None
    window_to_s: float | None
    chain_anchor: str
    chain_head: str | None
    playlist: FileEntry | None
    segments: list[SegmentEntry]
    gaps: list[GapEntry]
    continuous: bool


class DeviceGapEntry(BaseModel):
    kind: str
    after: str
    before: str
    start: datetime
    seconds: float


class Manifest(BaseModel):
    format: str = MANIFEST_FORMAT
    case_id: str
    exported_at: datetime
    exported_by: str
    reason: str
    recordings: list[RecordingEntry]
    device_gaps: list[DeviceGapEntry]
    continuous: bool


class ExportDetail(BaseModel):
    folder: str
    manifest_sha256: str
    files: int


def _copy(store: ObjectStore, bucket: Bucket, key: str, target: Path, expected: str) -> FileEntry:
    target.parent.mkdir(parents=True, exist_ok=True)
    with store.open(bucket, key) as src, target.open("wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    sha, size = sha256_file(target)
    if sha != expected:
        raise ExportError(
            f"{bucket}/{key} does not match its catalogued hash ({sha[:16]}… vs"
            f" {expected[:16]}…); run `vigil verify` — export stopped"
        )
    return FileEntry(path="", sha256=sha, size=size)


def export_case(
    catalog: Catalog,
    store: ObjectStore,
    case_id: str,
    folder: Path,
    *,
    actor: str,
    reason: str,
    tolerance_frames: float,
    device_tolerance_s: float,
) -> Path:
    timeline = case_timeline(
        catalog, case_id, tolerance_frames=tolerance_frames, device_tolerance_s=device_tolerance_s
    )
    root = folder / case_id
    if root.exists() and any(root.iterdir()):
        raise ExportError(f"{root} exists and is not empty; choose another folder")
    entries: list[RecordingEntry] = []
    files = 0
    for view in timeline.recordings:
        rec = view.recording
        base = root / rec.id
        suffix = Path(rec.original_key).suffix
        original = _copy(
            store, "originals", rec.original_key, base / f"original{suffix}", rec.sha256
        )
        original.path = f"{rec.id}/original{suffix}"
        playlist = None
        if rec.playlist_key and rec.playlist_sha256:
            playlist = _copy(
                store, "derived", rec.playlist_key, base / "segments" / "index.m3u8",
                rec.playlist_sha256,
            )  # fmt: skip
            playlist.path = f"{rec.id}/segments/index.m3u8"
        by_index = {s.index: s for s in catalog.segments(rec.id)}
        segments: list[SegmentEntry] = []
        for seg_view in view.segments:
            seg = by_index[seg_view.index]
            name = seg.key.rpartition("/")[2]
            copied = _copy(store, "derived", seg.key, base / "segments" / name, seg.sha256)
            phash_file = None
            if seg.phash is not None:
                phash_path = base / "segments" / (Path(name).stem + ".pdq")
                phash_path.write_bytes(seg.phash)
                phash_file = f"{rec.id}/segments/{phash_path.name}"
            segments.append(
                SegmentEntry(
                    index=seg.index,
                    file=f"{rec.id}/segments/{name}",
                    sha256=copied.sha256,
                    size=copied.size,
                    start_s=seg.start_s,
                    end_s=seg.end_s,
                    pts_start_s=(rec.origin_s or 0.0) + seg.start_s,
                    wall_start=seg_view.wall_start,
                    wall_start_server=seg_view.wall_start_server,
                    chain=seg.chain,
                    phash_digest=seg.phash_digest,
                    phash_file=phash_file,
                    phash_frames=seg.phash_frames,
                    integrity=seg_view.integrity,
                )
            )
        files += 1 + len(segments) + (1 if playlist else 0)
        entries.append(
            RecordingEntry(
                id=rec.id,
                original=original,
                original_name=rec.original_name,
                device_id=rec.device_id,
                officer_id=rec.officer_id,
                category=rec.category,
                device_start=rec.device_start,
                received_at=rec.received_at,
                clock_offset_s=rec.clock_offset_s,
                gps_track=rec.gps_track,
                damage=rec.damage,
                playback=rec.playback,
                window_from_s=view.window[0],
                window_to_s=view.window[1],
                chain_anchor=rec.anchor,
                chain_head=rec.chain_head,
                playlist=playlist,
                segments=segments,
                gaps=[
                    GapEntry(kind=g.kind, start_s=g.start, seconds=g.seconds, where=g.after)
                    for g in view.gaps
                ],
                continuous=view.continuous,
            )
        )
    manifest = Manifest(
        case_id=case_id,
        exported_at=now(),
        exported_by=actor,
        reason=reason,
        recordings=entries,
        device_gaps=[
            DeviceGapEntry(
                kind=g.kind, after=g.after, before=g.before, start=g.start, seconds=g.seconds
            )
            for g in timeline.device_gaps
        ],
        continuous=timeline.continuous,
    )
    root.mkdir(parents=True, exist_ok=True)
    target = root / "manifest.json"
    tmp = root / ".manifest.json.tmp"
    tmp.write_text(manifest.model_dump_json(indent=2))
    tmp.replace(target)
    sha, _ = sha256_file(target)
    catalog.add_event(
        Event(
            "export",
            actor,
            case_id=case_id,
            reason=reason,
            detail=ExportDetail(folder=str(root), manifest_sha256=sha, files=files),
        )
    )
    return root
