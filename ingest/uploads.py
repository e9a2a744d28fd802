"""Resumable chunked uploads from devices.

A device starts an upload with what it knows about the recording and its size; sends chunks,
each with its own SHA-256 and the offset it starts at; after a dropped connection asks for the
offset confirmed so far and goes on from there; and finishes with the SHA-256 of the whole file.
Only when that hash matches the bytes received is the recording ingested, and only then is the
device told it may delete its copy.

Durability, at any crash: a chunk is appended and fsynced before the confirmed offset moves
(a conditional UPDATE, so two requests for the same offset cannot both land); bytes on disk past
the confirmed offset (written, not confirmed) are cut off before the next chunk. Requests for
one upload are serialized by its lock in this process and by a lock on its staged file
(``flock``) across processes, and the confirmed offset is read only once both are held: the
staged file's first ``offset`` bytes are exactly the confirmed chunks, in order.

Hashing: each chunk is checked against its own hash before anything is written, and the whole
file is hashed as its chunks are confirmed (``ingest/upload_hash.py``): finish compares that
running hash with the one the device declares without reading the file again. The staged file
is read again only when this process holds no running hash at the confirmed offset (after a
restart: once, at the next chunk or at finish). The ingest that follows takes the hash, and the
store links the file in without reading it back.

Limits before work (``UploadLimits``): a start is refused unless its declared size fits in the
uploads folder's free space, less a margin and less what every open upload has declared and not
yet sent (the space is reserved for it); a device may have only so many uploads open at once; and
an open upload that has had no chunk for ``expire_s`` is expired (``expire``: at each start, and
from the API's own timer): closed as ``expired``, its ``.part`` file deleted, and one custody
event ``upload.expired`` written.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Protocol

from pydantic import BaseModel
from sqlalchemy import select, update
from vigil_verify.errors import ErrorKind

from catalog.errors import NotFound
from catalog.group_commit import GroupCommit
from catalog.models import Upload
from catalog.repository import SYSTEM_ACTOR, Catalog, Event, now
from ingest.errors import IngestError
from ingest.service import IngestResult, RecordingMetadata
from ingest.upload_hash import RunningHashes, append_hashing

MAX_CHUNK = 64 << 20
MAX_UPLOAD = 1 << 40


@dataclass(frozen=True)
class UploadLimits:
    """What uploads may hold (``VIGIL_UPLOAD_*``): open uploads per device (per principal),
    seconds without a chunk before an open upload expires, and free space kept on the uploads
    folder beyond what open uploads have reserved."""

    max_open_per_device: int = 4
    expire_s: float = 86400.0
    free_margin_bytes: int = 1 << 30


class Intake(Protocol):
    """Takes in a finished upload (``IngestService``, or the runtime's wrapper of it that also
    announces the recording for processing)."""

    def ingest_staged(
        self,
        staged: Path,
        *,
        sha256: str,
        size: int,
        metadata: RecordingMetadata,
        actor: str,
        received_at: datetime,
        handover_at: datetime | None = None,
    ) -> IngestResult: ...


class UploadError(IngestError):
    """The request cannot be applied to this upload; the message names why."""


class OffsetMismatch(UploadError):
    kind = ErrorKind.CONFLICT

    def __init__(self, upload_id: str, offset: int, expected: int) -> None:
        super().__init__(
            f"upload {upload_id}: chunk starts at byte {offset}, but {expected} bytes are"
            f" confirmed; resume from {expected}"
        )
        self.expected = expected


class ChunkHashMismatch(UploadError):
    pass


class UploadNotOpen(UploadError):
    kind = ErrorKind.CONFLICT


class StagedFileGone(UploadNotOpen):
    """The upload's staged file is gone: another process closed the upload meanwhile."""


class NoRoomForUpload(UploadError):
    """The declared size does not fit in the free space left for uploads (422)."""


class TooManyOpenUploads(UploadError):
    """The device has as many uploads open as it may (409: finish one, or let it expire)."""

    kind = ErrorKind.CONFLICT


class UploadExpiredDetail(BaseModel):
    upload_id: str
    principal: str
    size: int
    received: int
    last_chunk_at: datetime


class UploadDetail(BaseModel):
    upload_id: str
    size: int
    chunks: int
    sha256: str
    handover_at: datetime


@dataclass(frozen=True)
class UploadState:
    id: str
    size: int
    offset: int
    chunks: int
    status: str
    recording_id: str | None
    sha256: str | None
    error: str | None

    @property
    def may_delete(self) -> bool:
        """The device may delete its copy: the recording is stored and catalogued."""
        return self.status == "complete" and self.recording_id is not None


def _state(row: Upload) -> UploadState:
    return UploadState(
        row.id, row.size, row.offset, row.chunks, row.status, row.recording_id, row.sha256,
        row.error,
    )  # fmt: skip


class UploadService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        ingest: Intake,
        folder: Path,
        limits: UploadLimits | None = None,
    ) -> None:
        self.catalog = catalog
        self.ingest = ingest
        self.folder = folder
        self.limits = limits or UploadLimits()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._starting = threading.Lock()  # check the limits and reserve, as one step
        self._reserved: dict[str, tuple[str, int]] = {}  # id -> (principal, size): uncommitted
        self._inserts = GroupCommit[Upload](self._insert)
        self.hashes = RunningHashes()

    def _lock(self, upload_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(upload_id, threading.Lock())

    def _path(self, upload_id: str) -> Path:
        return self.folder / f"{upload_id}.part"

    @contextlib.contextmanager
    def _held(self, upload_id: str, *, write: bool = True) -> Iterator[BinaryIO]:
        """The upload's staged file, open (for update, if ``write``) and locked against every
        other process (this process's own requests are serialized by ``_lock``); closing it
        unlocks it. Finish reads only: a file the store has taken over is read-only."""
        try:
            fh = self._path(upload_id).open("r+b" if write else "rb")
        except FileNotFoundError:
            raise StagedFileGone(f"upload {upload_id} was closed meanwhile") from None
        with fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            yield fh

    def _open_row(self, upload_id: str, principal_id: str) -> Upload:
        row = self._row(upload_id, principal_id)
        if row.status != "open":
            raise UploadNotOpen(f"upload {upload_id} is {row.status}")
        return row

    def _row(self, upload_id: str, principal_id: str) -> Upload:
        with self.catalog.session() as session:
            row = session.get(Upload, upload_id)
        # Another principal's upload is reported as absent, not as forbidden: IDs are not
        # confirmed to strangers.
        if row is None or row.principal_id != principal_id:
            raise NotFound(f"no upload {upload_id!r}")
        return row

    def start(self, principal_id: str, metadata: RecordingMetadata, size: int) -> UploadState:
        if not 0 < size <= MAX_UPLOAD:
            raise UploadError(f"size must be between 1 byte and {MAX_UPLOAD} bytes, got {size}")
        self.expire()
        upload_id = uuid.uuid4().hex
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._starting:  # reserved here; committed after, many starts in one commit
            self._check_room(principal_id, size)
            self._path(upload_id).touch()
            self._reserved[upload_id] = (principal_id, size)
        at = now()
        row = Upload(
            id=upload_id,
            principal_id=principal_id,
            metadata_json=metadata.model_dump_json(),
            size=size,
            offset=0,
            chunks=0,
            started_at=at,
            updated_at=at,
            status="open",
        )
        try:
            self._inserts.add(row)
        finally:
            with self._starting:
                del self._reserved[upload_id]
        return _state(row)

    def _insert(self, rows: Sequence[Upload]) -> None:
        """Uploads started at once, in one transaction (``catalog.group_commit``): fifty devices
        starting together otherwise queued for fifty commits, each at SQLite's one write lock."""
        with self.catalog.session() as session:
            session.add_all(rows)

    def _check_room(self, principal_id: str, size: int) -> None:
        """Refuse a start that would pass the device's cap on open uploads, or whose declared
        size does not fit in the free space left once the margin and every open upload's
        unsent rest are set aside."""
        with self.catalog.session() as session:
            rows = session.execute(
                select(Upload.id, Upload.principal_id, Upload.size, Upload.offset).where(
                    Upload.status == "open"
                )
            ).all()
        open_ = {row.id: (row.principal_id, row.size, row.offset) for row in rows}
        for reserved_id, (principal, declared) in self._reserved.items():  # not committed yet
            open_.setdefault(reserved_id, (principal, declared, 0))
        limit = self.limits.max_open_per_device
        mine = sum(1 for principal, _, _ in open_.values() if principal == principal_id)
        if mine >= limit:
            raise TooManyOpenUploads(
                f"{mine} uploads of this device are open, and at most {limit} may be"
                " (VIGIL_UPLOAD_MAX_OPEN_PER_DEVICE): finish one, or let it expire"
            )
        reserved = sum(max(0, declared - offset) for _, declared, offset in open_.values())
        margin = self.limits.free_margin_bytes
        room = max(0, shutil.disk_usage(self.folder).free - margin - reserved)
        if size > room:
            raise NoRoomForUpload(
                f"a declared size of {size} bytes does not fit: {room} bytes are free for"
                f" uploads (free space less a margin of {margin} bytes,"
                f" VIGIL_UPLOAD_FREE_MARGIN_BYTES, and {reserved} bytes reserved by open"
                " uploads)"
            )

    def expire(self) -> list[str]:
        """Expire every open upload that has had no chunk for ``limits.expire_s``: closed as
        ``expired``, with one ``upload.expired`` custody event each, its ``.part`` file deleted.
        Returns their IDs."""
        cutoff = now() - timedelta(seconds=self.limits.expire_s)
        with self.catalog.session() as session:
            stale = list(
                session.scalars(
                    select(Upload.id).where(Upload.status == "open", Upload.updated_at < cutoff)
                )
            )
        return [upload_id for upload_id in stale if self._expire_one(upload_id, cutoff)]

    def _expire_one(self, upload_id: str, cutoff: datetime) -> bool:
        with self._lock(upload_id):
            with self.catalog.session() as session:
                row = session.get(Upload, upload_id)
                if row is None or row.status != "open" or row.updated_at >= cutoff:
                    return False  # a chunk came in meanwhile, or it was closed
                detail = UploadExpiredDetail(
                    upload_id=upload_id,
                    principal=row.principal_id,
                    size=row.size,
                    received=row.offset,
                    last_chunk_at=row.updated_at,
                )
                row.status = "expired"
                row.error = (
                    f"no chunk for {self.limits.expire_s:.0f} s; nothing was stored: keep your"
                    " copy and upload it again"
                )
                row.updated_at = now()
                self.catalog.event_in(session, Event("upload.expired", SYSTEM_ACTOR, detail=detail))
            self._path(upload_id).unlink(missing_ok=True)
            self.hashes.drop(upload_id)
        with self._guard:
            self._locks.pop(upload_id, None)
        return True

    def state(self, upload_id: str, principal_id: str) -> UploadState:
        return _state(self._row(upload_id, principal_id))

    def put_chunk(
        self, upload_id: str, principal_id: str, *, offset: int, data: bytes, sha256: str
    ) -> UploadState:
        """Append ``data`` at ``offset`` if its hash is ``sha256``; returns the new state."""
        if len(data) == 0:
            raise UploadError("empty chunk")
        if len(data) > MAX_CHUNK:
            raise UploadError(f"chunk of {len(data)} bytes; at most {MAX_CHUNK} per request")
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256.lower():
            raise ChunkHashMismatch(
                f"upload {upload_id}: chunk at byte {offset} hashes to {actual[:16]}…, not the"
                f" {sha256[:16]}… sent with it; nothing was written, send it again"
            )
        with self._lock(upload_id):
            try:
                with self._held(upload_id) as fh:
                    return self._append(upload_id, principal_id, fh, offset, data)
            except StagedFileGone:
                self._open_row(upload_id, principal_id)  # absent, another's or closed: say so
                raise

    def _append(
        self, upload_id: str, principal_id: str, fh: BinaryIO, offset: int, data: bytes
    ) -> UploadState:
        """``put_chunk`` once the staged file is held: the row read now is the one on disk."""
        row = self._open_row(upload_id, principal_id)
        if offset != row.offset:
            raise OffsetMismatch(upload_id, offset, row.offset)
        if offset + len(data) > row.size:
            raise UploadError(
                f"upload {upload_id}: chunk ends at byte {offset + len(data)}, past the"
                f" declared size {row.size}"
            )
        running = self.hashes.hash_to(upload_id, offset, self._path(upload_id))
        taking = append_hashing(fh, offset, data, running)
        self._confirm(upload_id, principal_id, offset, len(data))
        self.hashes.keep(upload_id, offset + len(data), running, taking)
        return replace(_state(row), offset=offset + len(data), chunks=row.chunks + 1)

    def _confirm(self, upload_id: str, principal_id: str, offset: int, length: int) -> None:
        """Move the confirmed offset past a chunk now on disk, if it is still at ``offset`` and
        the upload still open (one conditional UPDATE)."""
        with self.catalog.session() as session:
            result = session.execute(
                update(Upload)
                .where(Upload.id == upload_id, Upload.offset == offset, Upload.status == "open")
                .values(offset=offset + length, chunks=Upload.chunks + 1, updated_at=now())
            )
            confirmed = bool(getattr(result, "rowcount", 0))
        if not confirmed:
            raise OffsetMismatch(upload_id, offset, self._open_row(upload_id, principal_id).offset)

    def finish(
        self, upload_id: str, principal_id: str, *, sha256: str, actor: str
    ) -> tuple[UploadState, IngestResult | None]:
        """Check the whole file's hash, then ingest it. Idempotent: a finished upload answers
        with its recording again."""
        with self._lock(upload_id):
            row = self._row(upload_id, principal_id)
            if row.status != "complete":
                try:
                    with self._held(upload_id, write=False):
                        result = self._finish_held(upload_id, principal_id, sha256, actor)
                except StagedFileGone:  # another process closed it meanwhile: as it left it
                    row = self._row(upload_id, principal_id)
                    if row.status != "complete":
                        raise UploadNotOpen(
                            f"upload {upload_id} is {row.status}: {row.error}"
                        ) from None
                else:
                    return self.state(upload_id, principal_id), result
            return _state(row), None

    def _finish_held(
        self, upload_id: str, principal_id: str, sha256: str, actor: str
    ) -> IngestResult | None:
        """``finish`` once the staged file is held: None when it was finished meanwhile."""
        row = self._row(upload_id, principal_id)
        if row.status == "complete":
            return None
        if row.status != "open":
            raise UploadNotOpen(f"upload {upload_id} is {row.status}: {row.error}")
        if row.offset != row.size:
            raise UploadError(
                f"upload {upload_id}: {row.offset} of {row.size} bytes received; send the"
                f" rest from byte {row.offset} first"
            )
        path = self._path(upload_id)
        if path.stat().st_size > row.size:  # bytes written after the last confirmation
            os.truncate(path, row.size)
        actual = self.hashes.hash_to(upload_id, row.size, path).hexdigest()
        if actual != sha256.lower():
            error = (
                f"the {row.size} bytes received hash to {actual}, not the {sha256} declared;"
                " nothing was stored: keep your copy and upload it again"
            )
            self._close(upload_id, "failed", error=error)
            path.unlink(missing_ok=True)
            raise UploadError(f"upload {upload_id}: {error}")
        metadata = RecordingMetadata.model_validate_json(row.metadata_json)
        result = self.ingest.ingest_staged(
            path,
            sha256=actual,
            size=row.size,
            metadata=metadata,
            actor=actor,
            received_at=now(),
            handover_at=row.started_at,
        )
        self.catalog.add_event(
            Event(
                "upload.finished",
                actor,
                result.recording_id,
                detail=UploadDetail(
                    upload_id=upload_id,
                    size=row.size,
                    chunks=row.chunks,
                    sha256=actual,
                    handover_at=row.started_at,
                ),
            )
        )
        self._close(upload_id, "complete", recording_id=result.recording_id, sha256=actual)
        path.unlink(missing_ok=True)
        return result

    def _close(
        self,
        upload_id: str,
        status: str,
        *,
        recording_id: str | None = None,
        sha256: str | None = None,
        error: str | None = None,
    ) -> None:
        self.hashes.drop(upload_id)
        with self.catalog.session() as session:
            session.execute(
                update(Upload)
                .where(Upload.id == upload_id)
                .values(
                    status=status,
                    recording_id=recording_id,
                    sha256=sha256,
                    error=error,
                    updated_at=now(),
                )
            )
