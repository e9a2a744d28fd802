"""``vigil export``: a case's footage as a package anyone can verify offline (``vigil-verify``).

Layout of ``DIR/<case>/``:

- ``manifest.json``: every recording, segment, hash, chain link, gap and metadata;
- per recording ``<id>/original.*``, ``<id>/segments/index.m3u8``, ``<id>/segments/*.ts`` with
  the ``*.pdq`` per-frame perceptual hashes beside them, and the ``*.vgat`` audio fingerprints;
- ``clips/`` (with ``--clip``): for each linked window an MP4 of it carrying C2PA Content
  Credentials signed with the agency's key (``integrity.clips``), each logged by ``export.clip``;
- ``ledger/``: the custody events the package relies on (their exact leaf bytes) each with its
  inclusion proof (``events.jsonl``), the signed tree head they are proved against
  (``checkpoint.json``), every earlier signed head with a consistency proof to it
  (``history.json``), the ledger's public key and, with a TSA, the certificates that vouch for it.

The export is itself a custody event, recorded (with its reason) before anything is copied, so
the package carries the proof of its own export. Every file is re-hashed after it is written; a
mismatch aborts the export.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel
from vigil_verify.checkpoint import parse_checkpoint
from vigil_verify.ledger import SignedSegment
from vigil_verify.recovered import RECOVERED_STEM

from catalog.ids import require_case_id, require_reason
from catalog.models import Recording, Segment
from catalog.repository import Catalog, Event, now
from catalog.scopes import is_whole
from integrity.clips import ClipEntry, ClipExporter
from integrity.errors import LedgerError, ProofError
from integrity.export_files import FileEntry, SegmentSource, copy_object
from integrity.ledger import CheckpointObject, Ledger, canonical_event
from integrity.logfacts import ProvedRecording, prove
from integrity.segment_files import SegmentFiles, plan_from_rows
from integrity.timeline import RecordingView, SegmentView, case_timeline
from store.base import ObjectStore, sha256_file

MANIFEST_FORMAT = "vigil-export/2"


logger = logging.getLogger(__name__)


class ExportError(ProofError):
    """The export could not be written; nothing is claimed about a partial folder."""


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
    phash_sha256: str | None
    phash_frames: int | None
    audio_file: str | None = None  # the audio fingerprints (``.vgat``; None: none stored)
    audio_sha256: str | None = None
    audio_tracks: int | None = None
    # the file's own SHA-256 when it is not the signed bytes but the segment cut again from the
    # original by another ffmpeg: its signed packets at the original's times (``sha256`` is
    # then the signed one, what the segment is; ``vigil_verify.recut``)
    recut_sha256: str | None = None
    integrity: str


class GapEntry(BaseModel):
    kind: str
    start_s: float
    seconds: float
    where: str


class RecordingEntry(BaseModel):
    id: str
    original: FileEntry | None  # None: the case links a window; the original is whole footage
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
    # the footage recovered from an unfinalised original (``original.recovered``), kept with
    # the original: ``<id>/recovered.<ext>``
    recovered: FileEntry | None = None
    segments: list[SegmentEntry]
    gaps: list[GapEntry]
    continuous: bool


class DeviceGapEntry(BaseModel):
    kind: str
    after: str
    before: str
    start: datetime
    seconds: float


class LedgerEntry(BaseModel):
    events: str
    checkpoint: str
    history: str
    public_key: str
    key_fingerprint: str
    tree_size: int
    tsa_certs: str | None


class Manifest(BaseModel):
    format: str = MANIFEST_FORMAT
    case_id: str
    exported_at: datetime
    exported_by: str
    reason: str
    recordings: list[RecordingEntry]
    device_gaps: list[DeviceGapEntry]
    continuous: bool
    ledger: LedgerEntry
    clips: list[ClipEntry] = []


class ExportDetail(BaseModel):
    folder: str
    recordings: list[str]
    clips: bool = False  # clips with Content Credentials asked for


class ExportedDetail(BaseModel):
    folder: str
    manifest_sha256: str
    files: int
    tree_size: int


class HistoryEntry(BaseModel):
    """An earlier signed head, and the proof that the package's head extends it."""

    object_key: str
    checkpoint: CheckpointObject
    consistency: list[str]  # hex


def _write_ledger(
    ledger: Ledger,
    catalog: Catalog,
    root: Path,
    case_id: str,
    recording_ids: Sequence[str],
    worm_checkpoints: Sequence[str],
    tsa_certs: bytes | None,
) -> LedgerEntry:
    """The ledger part of the package: proofs of every event about the case and its footage."""
    head = ledger.checkpoint()
    ledger.witness_latest()  # the package carries what witnesses cosigned (never waits long)
    folder = root / "ledger"
    folder.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for event in catalog.events(recording_ids=recording_ids, case_id=case_id):
        try:
            position, proof = ledger.inclusion_proof(event.id, head.size)
        except LedgerError:
            continue  # written after the head was signed: the next export carries it
        lines.append(
            json.dumps(
                {
                    "position": position,
                    "event": canonical_event(event).decode(),
                    "proof": [p.hex() for p in proof],
                },
                ensure_ascii=False,
            )
        )
    (folder / "events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "checkpoint.json").write_text(
        CheckpointObject(
            note=head.note,
            timestamp_token=(
                base64.b64encode(head.timestamp_token).decode() if head.timestamp_token else None
            ),
            cosignatures=ledger.cosignatures(head.note),
        ).model_dump_json(indent=2)
    )
    history: list[HistoryEntry] = []
    seen = {head.note}
    earlier = [(h.object_key, ledger.read_checkpoint(h.object_key)) for h in ledger.heads()]
    earlier += [(key, ledger.read_checkpoint(key)) for key in worm_checkpoints]
    for object_key, checkpoint in earlier:
        if checkpoint.note in seen:
            continue
        seen.add(checkpoint.note)
        size = parse_checkpoint(checkpoint.note).size
        proof = ledger.consistency_proof(size, head.size) if size <= head.size else []
        history.append(
            HistoryEntry(
                object_key=object_key,
                checkpoint=checkpoint,
                consistency=[p.hex() for p in proof],
            )
        )
    (folder / "history.json").write_text(
        json.dumps([h.model_dump(mode="json") for h in history], indent=1)
    )
    (folder / "public-key.pem").write_bytes(ledger.verifying.public_pem)
    if tsa_certs:
        (folder / "tsa-certs.pem").write_bytes(tsa_certs)
    return LedgerEntry(
        events="ledger/events.jsonl",
        checkpoint="ledger/checkpoint.json",
        history="ledger/history.json",
        public_key="ledger/public-key.pem",
        key_fingerprint=ledger.verifying.fingerprint,
        tree_size=head.size,
        tsa_certs="ledger/tsa-certs.pem" if tsa_certs else None,
    )


def _export_segment(
    source: SegmentSource,
    rec: Recording,
    base: Path,
    seg: Segment,
    view: SegmentView,
    signed: SignedSegment | None,
) -> SegmentEntry:
    """Copy one segment (checked against the signed log) and write its per-frame perceptual
    hashes beside it."""
    name = seg.key.rpartition("/")[2]
    expected = signed.sha256 if signed is not None else None
    copied = source.copy(seg, base / "segments" / name, expected)
    recut = not seg.kept and expected is not None and copied.sha256 != expected
    phash_file, phash_sha256 = _beside(base, rec.id, name, ".pdq", seg.phash)
    audio_file, audio_sha256 = _beside(base, rec.id, name, ".vgat", seg.audio)
    return SegmentEntry(
        index=seg.index,
        file=f"{rec.id}/segments/{name}",
        sha256=expected if recut and expected is not None else copied.sha256,
        recut_sha256=copied.sha256 if recut else None,
        size=copied.size,
        start_s=seg.start_s,
        end_s=seg.end_s,
        pts_start_s=(rec.origin_s or 0.0) + seg.start_s,
        wall_start=view.wall_start,
        wall_start_server=view.wall_start_server,
        chain=seg.chain,
        phash_digest=seg.phash_digest,
        phash_file=phash_file,
        phash_sha256=phash_sha256,
        phash_frames=seg.phash_frames,
        audio_file=audio_file,
        audio_sha256=audio_sha256,
        audio_tracks=signed.audio_tracks if signed is not None else None,
        integrity=view.integrity,
    )


def _beside(
    base: Path, rec_id: str, name: str, suffix: str, blob: bytes | None
) -> tuple[str | None, str | None]:
    """Write ``blob`` beside segment ``name`` (its stem, ``suffix``); its package path and
    SHA-256 (None, None: no blob)."""
    if blob is None:
        return None, None
    path = base / "segments" / (Path(name).stem + suffix)
    path.write_bytes(blob)
    return f"{rec_id}/segments/{path.name}", hashlib.sha256(blob).hexdigest()


def _copy_recovered(
    store: ObjectStore, base: Path, rec_id: str, log: ProvedRecording
) -> FileEntry | None:
    """The recovered stream the signed log links to the original, copied beside it."""
    link = log.facts.recovered
    if link is None:
        return None
    name = f"{RECOVERED_STEM}{Path(link.file_name).suffix}"
    copied = copy_object(store, "derived", link.key, base / name, link.sha256)
    copied.path = f"{rec_id}/{name}"
    return copied


def _export_recording(
    catalog: Catalog,
    store: ObjectStore,
    root: Path,
    view: RecordingView,
    log: ProvedRecording,
    segment_files: SegmentFiles | None,
) -> RecordingEntry:
    """Copy one recording's original, playlist and segments (in the case's window) under
    ``root/<id>/``; its manifest entry."""
    rec = view.recording
    base = root / rec.id
    suffix = Path(rec.original_key).suffix
    # A case that links a window of a recording discloses that window only: its segments, not
    # the original nor the whole playlist (whose signed hash covers every segment).
    whole = is_whole(view.window, rec.duration_s)
    original = None
    if whole:
        original = copy_object(
            store, "originals", rec.original_key, base / f"original{suffix}",
            log.facts.original_sha256,
        )  # fmt: skip
        original.path = f"{rec.id}/original{suffix}"
    playlist = None
    if whole and rec.playlist_key and rec.playlist_sha256:
        playlist = copy_object(
            store, "derived", rec.playlist_key, base / "segments" / "index.m3u8",
            log.playlist_sha256,
        )  # fmt: skip
        playlist.path = f"{rec.id}/segments/index.m3u8"
    recovered = _copy_recovered(store, base, rec.id, log) if whole else None
    rows = catalog.segments(rec.id)
    by_index = {s.index: s for s in rows}
    source = SegmentSource(store, segment_files, plan_from_rows(rec, rows))
    segments = [
        _export_segment(
            source,
            rec,
            base,
            by_index[seg_view.index],
            seg_view,
            log.facts.segments.get(seg_view.index),
        )
        for seg_view in view.segments
    ]
    return RecordingEntry(
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
        recovered=recovered,
        segments=segments,
        gaps=[
            GapEntry(kind=g.kind, start_s=g.start, seconds=g.seconds, where=g.after)
            for g in view.gaps
        ],
        continuous=view.continuous,
    )


def _write_manifest(root: Path, manifest: Manifest) -> str:
    """Write ``manifest.json`` (whole or not at all); its SHA-256."""
    root.mkdir(parents=True, exist_ok=True)
    target = root / "manifest.json"
    tmp = root / ".manifest.json.tmp"
    tmp.write_text(manifest.model_dump_json(indent=2))
    tmp.replace(target)
    sha, _ = sha256_file(target)
    return sha


def _new_root(folder: Path, case_id: str) -> Path:
    """``folder/<case>``, which must be new or empty and stay inside ``folder``."""
    root = folder / case_id
    if root.is_symlink() or root.resolve().parent != folder.resolve():
        raise ExportError(f"{root} is a link or leads outside {folder}; choose another folder")
    if root.exists() and any(root.iterdir()):
        raise ExportError(f"{root} exists and is not empty; choose another folder")
    return root


def _files(entry: RecordingEntry) -> int:
    """How many files of the package a recording's entry names."""
    return (
        (1 if entry.original else 0) + len(entry.segments) + (1 if entry.playlist else 0)
        + (1 if entry.recovered else 0)
    )  # fmt: skip


def export_case(
    catalog: Catalog,
    store: ObjectStore,
    ledger: Ledger,
    case_id: str,
    folder: Path,
    *,
    actor: str,
    reason: str,
    tolerance_frames: float,
    device_tolerance_s: float,
    segment_files: SegmentFiles | None,
    worm_checkpoints: Sequence[str] = (),
    tsa_certs: bytes | None = None,
    clips: ClipExporter | None = None,
) -> Path:
    """Write the package of case ``case_id`` to ``folder/<case>/`` (which must be new or
    empty), between the ``export`` and ``export.written`` custody events; return its folder.
    With ``clips``, each linked window also as a clip with Content Credentials;
    ``segment_files`` cuts the segments whose copies are not kept from their originals (None:
    a recording with such a segment cannot be exported)."""
    timeline = case_timeline(
        catalog, case_id, tolerance_frames=tolerance_frames, device_tolerance_s=device_tolerance_s
    )
    case_id, reason = require_case_id(case_id), require_reason(reason)
    root = _new_root(folder, case_id)
    recording_ids = [view.recording.id for view in timeline.recordings]
    catalog.add_event(
        Event(
            "export",
            actor,
            case_id=case_id,
            reason=reason,
            detail=ExportDetail(folder=str(root), recordings=recording_ids, clips=bool(clips)),
        )
    )
    if ledger.can_sign:
        ledger.checkpoint()
    facts = prove(ledger, ledger.public_key, recording_ids)
    entries = [
        _export_recording(catalog, store, root, view, facts.of(view.recording.id), segment_files)
        for view in timeline.recordings
    ]
    clip_entries = [] if clips is None else clips.export_package(
        catalog, root, entries, facts, case_id=case_id, actor=actor, reason=reason
    )  # fmt: skip
    files = len(clip_entries) + sum(_files(e) for e in entries)
    ledger_entry = _write_ledger(
        ledger, catalog, root, case_id, recording_ids, worm_checkpoints, tsa_certs
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
        ledger=ledger_entry,
        clips=clip_entries,
    )
    sha = _write_manifest(root, manifest)
    catalog.add_event(
        Event(
            "export.written",
            actor,
            case_id=case_id,
            reason=reason,
            detail=ExportedDetail(
                folder=str(root), manifest_sha256=sha, files=files, tree_size=ledger_entry.tree_size
            ),
        )
    )
    return root
