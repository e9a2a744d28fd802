"""Taking in a recording: stage it while hashing, refuse what is not video, store, catalogue.

Order of work, which is what makes a crash at any point lose nothing and duplicate nothing:
1. stream the bytes into the staging folder, hashing them as they arrive (nothing else has
   touched them yet) and fsync;
2. if the catalogue knows this hash, the recording is already in: re-announce it if its
   processing never finished, and stop;
3. ask ffmpeg whether it is video at all; refuse it (and delete the staged copy) if not;
4. store the original write-once under a key derived from its hash (a file ingested whole,
   with a custody path given, has its segments cut, hashed and stored from the staged bytes
   meanwhile: objects only, catalogued after step 6, before the result returns);
5. read the C2PA manifest a device signed at capture, if the original carries one, and judge it
   against the trust list (``integrity/credentials.py``): whatever it finds, ingest goes on;
6. catalogue the recording with its custody event (and the ``original.c2pa`` event with the
   finding, when there is a manifest), in one transaction.
The result says whether the recording still needs processing (``announce``); the caller (the
runtime, ``workers``) puts that on the bus. Replaying from any step repeats only idempotent
work.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, Field, field_validator
from vigil_verify.errors import VigilError

from catalog.ids import require_device_id, require_file_name, require_officer_id
from catalog.models import Recording
from catalog.repository import Catalog, Event, now, recording_id_for
from ingest.errors import IngestError, NotVideo
from ingest.segmenting import CustodyPath, Segmented, StagedCut
from integrity.credentials import CaptureCredentials, CredentialsReader
from store.base import CHUNK, ObjectStore
from transcode.ffmpeg import ProcessRunner
from transcode.probe import NO_MEDIA, sniff

logger = logging.getLogger(__name__)


def _require_zone(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("give a time zone (e.g. 2026-11-27T10:15:00+08:00)")
    return value


class GpsFix(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    t: datetime
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)

    _aware = field_validator("t")(_require_zone)


class RecordingMetadata(BaseModel):
    """What the device (or the person ingesting) says about the recording."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    device_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    officer_id: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    device_start: datetime | None = None
    device_clock_at_handover: datetime | None = None
    category: str | None = Field(None, max_length=64)
    gps_track: tuple[GpsFix, ...] = ()
    original_name: str = Field("recording", max_length=255)

    _aware = field_validator("device_start", "device_clock_at_handover")(_require_zone)

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str) -> str:
        return require_device_id(value)

    @field_validator("officer_id")
    @classmethod
    def _officer_id(cls, value: str | None) -> str | None:
        return None if value is None else require_officer_id(value)

    @field_validator("original_name")
    @classmethod
    def _original_name(cls, value: str) -> str:
        return require_file_name(value)


class IngestDetail(BaseModel):
    sha256: str
    size: int
    original_key: str
    clock_offset_s: float | None


@dataclass(frozen=True)
class IngestResult:
    recording_id: str
    sha256: str
    size: int
    created: bool
    resumed: bool
    original_key: str = ""
    announce: bool = False
    """The recording's processing is not finished: the caller must announce it (again)."""


# Container signatures: a file with one of these is a recording even if ffmpeg cannot read it
# (a body camera that lost power leaves an MP4 without its index; an audio recorder, a WAV
# with a bad header).
_MAGIC: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"free"), (4, b"wide"),
    (0, b"\x1a\x45\xdf\xa3"), (0, b"FLV"), (8, b"AVI "), (0, b"\x00\x00\x01\xba"),
    (0, b"OggS"), (8, b"WAVE"), (0, b"ID3"), (0, b"fLaC"), (0, b"#!AMR"),
)  # fmt: skip


def credentials_event(found: CaptureCredentials, actor: str, recording_id: str) -> Event:
    """The ``original.c2pa`` custody event: what the original's C2PA manifest says and how it
    was judged ("signed at capture by ...: valid" as its reason, the finding as its detail)."""
    return Event("original.c2pa", actor, recording_id, reason=found.describe(), detail=found)


def looks_like_container(head: bytes) -> bool:
    if any(head[at : at + len(sig)] == sig for at, sig in _MAGIC):
        return True
    return len(head) >= 377 and head[0] == head[188] == head[376] == 0x47  # MPEG-TS sync


def _discard(cut: Future[StagedCut | None]) -> None:
    """Remove the files of a cut that will not be catalogued (its objects stay: stored
    write-once, the same cut of the same original stores them again under the same keys)."""
    if not cut.cancelled() and cut.exception() is None and (done := cut.result()) is not None:
        shutil.rmtree(done.cut.work, ignore_errors=True)


class IngestService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        runner: ProcessRunner,
        ffmpeg: str,
        staging_dir: Path,
        probe_timeout_s: float = 60,
        clock_drift_flag_s: float = 3.0,
        on_received: Callable[[str, int], None] | None = None,
        credentials: CredentialsReader | None = None,
        on_credentials: Callable[[CaptureCredentials], None] | None = None,
        custody: CustodyPath | None = None,
        on_segmented: Callable[[Segmented], None] | None = None,
    ) -> None:
        """``on_received(device_id, size)``: told of every new recording (e.g. metrics).
        ``credentials`` reads the C2PA manifest an original carries (None: not looked for);
        ``on_credentials`` is told of each finding on a new recording.
        ``custody``: a file ingested whole (``ingest_file``, ``ingest_stream``) is cut, hashed
        and its segments stored from its staged bytes while the original is stored, then
        catalogued, before this returns (for a store the original travels to; None: the
        segment stage does it all, from the store); ``on_segmented`` is told of each."""
        self.custody = custody
        self.on_segmented = on_segmented
        self.on_received = on_received
        self.credentials = credentials
        self.on_credentials = on_credentials
        self.catalog = catalog
        self.store = store
        self.runner = runner
        self.ffmpeg = ffmpeg
        self.staging_dir = staging_dir
        self.probe_timeout_s = probe_timeout_s
        self.clock_drift_flag_s = clock_drift_flag_s

    def ingest_file(
        self,
        path: Path,
        metadata: RecordingMetadata,
        *,
        actor: str,
        on_bytes: Callable[[int], None] | None = None,
    ) -> IngestResult:
        if not path.is_file():
            raise IngestError(f"{path}: no such file")
        with path.open("rb") as fh:
            return self.ingest_stream(fh, metadata, actor=actor, on_bytes=on_bytes)

    def ingest_stream(
        self,
        stream: BinaryIO,
        metadata: RecordingMetadata,
        *,
        actor: str,
        on_bytes: Callable[[int], None] | None = None,
    ) -> IngestResult:
        received_at = now()
        staged, sha256, size = self._stage(stream, on_bytes)
        try:
            return self._ingest_staged(
                staged, sha256, size, metadata, actor, received_at, cut_here=True
            )
        finally:
            staged.unlink(missing_ok=True)

    def _stage(
        self, stream: BinaryIO, on_bytes: Callable[[int], None] | None
    ) -> tuple[Path, str, int]:
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.staging_dir, prefix="upload-")
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                    if on_bytes is not None:
                        on_bytes(size)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name), digest.hexdigest(), size

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
    ) -> IngestResult:
        """Ingest a file already in the staging area and already hashed (a finished upload):
        it is not hashed again, nor read back by the store that links it in. The caller hashed
        its bytes as it wrote them, under a lock that keeps every writer out until this returns,
        and keeps the file (the store may link it).

        ``handover_at``: the server's time when the device read its clock
        (``metadata.device_clock_at_handover``), if not ``received_at``.
        """
        return self._ingest_staged(
            staged, sha256, size, metadata, actor, received_at, handover_at or received_at,
            verified=True,
        )  # fmt: skip

    def _ingest_staged(
        self,
        staged: Path,
        sha256: str,
        size: int,
        metadata: RecordingMetadata,
        actor: str,
        received_at: datetime,
        handover_at: datetime | None = None,
        *,
        verified: bool = False,
        cut_here: bool = False,
    ) -> IngestResult:
        """``cut_here``: cut the segments from ``staged`` while the original is stored (when
        this service has a ``custody`` path)."""
        if size == 0:
            raise NotVideo(f"{metadata.original_name}: the file is empty; nothing was stored")
        known = self.catalog.recording_by_sha(sha256)
        if known is not None:
            return self._already_known(known)
        reason = self._unreadable(staged, metadata.original_name)
        recording_id = recording_id_for(sha256)
        suffix = Path(metadata.original_name).suffix.lower()[:8]
        key = f"{recording_id}/original{suffix}"
        offset = None
        if metadata.device_clock_at_handover is not None:
            offset = (
                (handover_at or received_at) - metadata.device_clock_at_handover
            ).total_seconds()
        gps = None
        if metadata.gps_track:
            gps = "[" + ",".join(fix.model_dump_json() for fix in metadata.gps_track) + "]"

        def row() -> Recording:
            return Recording(
                id=recording_id,
                sha256=sha256,
                size=size,
                original_key=key,
                original_name=metadata.original_name,
                device_id=metadata.device_id,
                officer_id=metadata.officer_id,
                category=metadata.category,
                device_start=metadata.device_start,
                device_clock_at_handover=metadata.device_clock_at_handover,
                received_at=received_at,
                clock_offset_s=offset,
                gps_track=gps,
                status="stored",
                damage=f"unreadable: {reason}" if reason is not None else None,
            )

        early = self.custody if cut_here and reason is None else None
        with ThreadPoolExecutor(1, thread_name_prefix="custody") as pool:
            # the segments are cut from the staged bytes while the original is stored (its
            # own row: the catalogue's session may expire the other's attributes meanwhile)
            cut = pool.submit(early.cut_staged, row(), staged) if early else None
            try:
                self.store.put_file(
                    "originals", key, staged, sha256, category=metadata.category,
                    verified=verified,
                )  # fmt: skip
                result = self._catalogue(row(), staged, metadata, actor, offset)
            except BaseException:
                if cut is not None:
                    cut.add_done_callback(_discard)
                raise
            if early is not None and cut is not None:
                self._record_cut(early, recording_id, cut, new=result.created)
        return result

    def _record_cut(
        self, custody: CustodyPath, recording_id: str, cut: Future[StagedCut | None], *, new: bool
    ) -> None:
        """Catalogue the segments cut at ingest, now that the original and its row are on
        record. Whatever fails here is left to the segment stage, which cuts the original
        from the store as it does any other (the announcement still goes out)."""
        try:
            done = cut.result()
            if done is None:
                return
            if not new:  # another ingest of the same bytes got there first: it catalogues
                _discard(cut)
                return
            segmented = custody.record_staged(recording_id, done)
        except (VigilError, OSError) as exc:
            logger.warning("%s: segments not cut at ingest, left to the segment stage: %s",
                           recording_id, exc)  # fmt: skip
            return
        if self.on_segmented is not None:
            self.on_segmented(segmented)

    def _catalogue(
        self,
        row: Recording,
        staged: Path,
        metadata: RecordingMetadata,
        actor: str,
        offset: float | None,
    ) -> IngestResult:
        """The recording's row with its ``ingest`` custody event (and what the C2PA manifest
        it carries says), once its original is stored."""
        recording_id, sha256, size, key = row.id, row.sha256, row.size, row.original_key
        detail = IngestDetail(sha256=sha256, size=size, original_key=key, clock_offset_s=offset)
        found = self.credentials.read(staged) if self.credentials is not None else None
        stored, created = self.catalog.add_recording(
            row,
            Event("ingest", actor, recording_id, detail=detail),
            also=[] if found is None else [credentials_event(found, actor, recording_id)],
        )
        if created and self.on_received is not None:
            self.on_received(metadata.device_id, size)
        if created and found is not None and self.on_credentials is not None:
            self.on_credentials(found)
        if created and offset is not None and abs(offset) > self.clock_drift_flag_s:
            self.catalog.add_event(
                Event(
                    "flag.clock_drift",
                    actor,
                    recording_id,
                    reason=f"device clock is {offset:+.1f} s from the server's at handover"
                    f" (flagged beyond ±{self.clock_drift_flag_s:g} s)",
                )
            )
        return IngestResult(
            stored.id, sha256, size, created=created, resumed=not created, original_key=key,
            announce=True,
        )  # fmt: skip

    def _unreadable(self, staged: Path, name: str) -> str | None:
        """Why ffmpeg cannot read the staged file ``name`` (None: it can): a recording
        damaged, to be kept as evidence. Raises ``NotVideo`` when it is no recording at all
        (nothing in it to keep, or no container signature)."""
        reason = sniff(self.runner, self.ffmpeg, staged, timeout_s=self.probe_timeout_s)
        if reason is None:
            return None
        reason = reason.replace(str(staged), name)  # the device's name, never the staging path
        if reason == NO_MEDIA:  # it opens, and there is nothing in it to keep as footage
            raise NotVideo(f"{name}: {NO_MEDIA}; nothing was stored")
        with staged.open("rb") as fh:
            head = fh.read(512)
        if not looks_like_container(head):
            raise NotVideo(f"{name}: not a video or audio recording ({reason}); nothing was stored")
        logger.warning(
            "%s: unreadable container (%s); storing it as damaged evidence", name, reason
        )
        return reason

    def _already_known(self, known: Recording) -> IngestResult:
        # A crash stopped its processing if it is not finished; the stages are idempotent.
        resumed = known.status not in ("complete", "unreadable")
        return IngestResult(
            known.id, known.sha256, known.size, created=False, resumed=resumed,
            original_key=known.original_key, announce=resumed,
        )  # fmt: skip
