"""``vigil recover``: the footage of a recording stored as damaged because its container was
never finalised (issue 17), recovered as a derived object and put on record.

1. The original stays as it was stored: byte-exact, the recording's original, never modified.
2. The codec setup comes from a reference: the recording the user names (``--like``), else the
   nearest earlier recordings of the same device whose segments are on record.
3. ``transcode.recover`` finds the video in the original's ``mdat`` and ffmpeg wraps it; the
   result is hashed and stored write-once in the derived bucket.
4. The ``original.recovered`` custody event links it to the original (both SHA-256s, the
   reference and its original's SHA-256, the method, the frames, what was not recovered), in
   one transaction with the recording's new status.
5. The custody path segments the recovered stream as the recording's segments (their chain
   anchored on the original's SHA-256); the runtime announces them to the stages that follow.

When recovery is impossible the error says why and names the file as the user gave it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from catalog.models import Recording
from catalog.recovered import RECOVERED, RecoveredDetail, recovered_detail
from catalog.repository import Catalog, Event
from ingest.segmenting import CustodyPath, Segmented
from store.base import ObjectStore, sha256_file
from transcode.ffmpeg import Tools
from transcode.recover import METHOD, RecoveredStream, RecoveryImpossible, recover_mp4

MAX_REFERENCES = 3
"""Earlier recordings of the device tried, nearest first, when the user names none."""

_MATROSKA = b"\x1a\x45\xdf\xa3"


@dataclass(frozen=True)
class Recovery:
    recording: Recording
    detail: RecoveredDetail
    segmented: Segmented | None
    created: bool  # False: it was recovered before (this call resumed or repeated nothing)


class RecoveryService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        tools: Tools,
        work_dir: Path,
        custody: CustodyPath,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.tools = tools
        self.work_dir = work_dir
        self.custody = custody

    def recover(self, recording_id: str, *, like: str | None, actor: str, name: str) -> Recovery:
        """Recover recording ``recording_id`` (``name``: how the user gave it) with the codec
        setup of recording ``like`` (None: an earlier one of the same device). Idempotent: a
        recording recovered before is (re-)segmented and returned."""
        rec = self.catalog.recording(recording_id)
        done = recovered_detail(self.catalog, rec.id)
        if done is not None:
            return Recovery(rec, done, self.custody.segment(rec.id), created=False)
        self._require_damaged(rec, name)
        references = self._references(rec, like, name)
        work = self.work_dir / f"{rec.id}-recover"
        try:
            stream, reference = self._recover(rec, references, work, name, like is not None)
            detail = self._store(rec, stream, reference, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        damage = f"{rec.damage}; " if rec.damage else ""
        self.catalog.update_recording_with(
            rec.id,
            Event(RECOVERED, actor, rec.id, reason=detail.describe(), detail=detail),
            status="stored",
            damage=f"{damage}{detail.describe()}",
        )
        rec = self.catalog.recording(rec.id)
        return Recovery(rec, detail, self.custody.segment(rec.id), created=True)

    def _require_damaged(self, rec: Recording, name: str) -> None:
        if rec.segment_count is not None or rec.status != "unreadable":
            raise RecoveryImpossible(
                f"{name}: ffmpeg reads it (recording {rec.id}, status {rec.status},"
                f" {rec.segment_count or 0} segments): it is not damaged; nothing to recover"
            )
        with self.store.open("originals", rec.original_key) as fh:
            head = fh.read(4)
        if head == _MATROSKA:
            raise RecoveryImpossible(
                f"{name}: a Matroska file that ffmpeg cannot read ({rec.damage or 'unreadable'});"
                " a Matroska without its index (Cues) is read as it is, so there is nothing"
                " more to recover from this one"
            )

    def _references(self, rec: Recording, like: str | None, name: str) -> list[Recording]:
        """The reference named, or the device's earlier recordings on record, nearest first."""
        if like is not None:
            reference = self.catalog.recording(like)
            if reference.id == rec.id:
                raise RecoveryImpossible(f"{name}: --like names the damaged recording itself")
            return [reference]
        when = rec.device_start or rec.received_at
        earlier = [
            r
            for r in self.catalog.recordings(rec.device_id)
            if r.id != rec.id and r.segment_count and (r.device_start or r.received_at) <= when
            and recovered_detail(self.catalog, r.id) is None
        ]  # fmt: skip
        earlier.sort(key=lambda r: r.device_start or r.received_at, reverse=True)
        if not earlier:
            raise RecoveryImpossible(
                f"{name}: no earlier recording of device {rec.device_id} is on record to take"
                " the codec setup from; give one made with the same settings: --like REC"
            )
        return earlier[:MAX_REFERENCES]

    def _recover(
        self, rec: Recording, references: list[Recording], work: Path, name: str, named: bool
    ) -> tuple[RecoveredStream, Recording]:
        failures: list[str] = []
        with self.store.local_path("originals", rec.original_key) as damaged:
            for reference in references:
                with self.store.local_path("originals", reference.original_key) as ref_path:
                    try:
                        stream = recover_mp4(
                            self.tools, damaged, ref_path, work, name=name,
                            reference_name=reference.id,
                        )  # fmt: skip
                    except RecoveryImpossible as exc:
                        if named:
                            raise
                        failures.append(str(exc))
                        continue
                return stream, reference
        raise RecoveryImpossible(
            f"{name}: none of device {rec.device_id}'s earlier recordings gives a codec setup"
            f" that fits it ({'; '.join(failures)})"
        )

    def _store(
        self, rec: Recording, stream: RecoveredStream, reference: Recording, work: Path
    ) -> RecoveredDetail:
        """Hash and store the recovered stream write-once; the custody event's detail."""
        sha, size = sha256_file(stream.path)
        key = f"{rec.id}/recovered-{sha[:12]}.mp4"
        self.store.put_file("derived", key, stream.path, sha, category=rec.category)
        return RecoveredDetail(
            original_sha256=rec.sha256,
            original_size=rec.size,
            key=key,
            sha256=sha,
            size=size,
            reference_recording=reference.id,
            reference_sha256=reference.sha256,
            method=METHOD,
            codec=stream.codec,
            width=stream.width,
            height=stream.height,
            frame_rate=stream.rate,
            frames=stream.frames,
            mdat_bytes=stream.mdat_bytes,
            video_bytes=stream.video_bytes,
            not_recovered=list(stream.not_recovered),
        )
