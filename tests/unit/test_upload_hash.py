"""The running hash of an upload (``ingest/upload_hash.py`` and ``UploadService``): the hash
given to ingest is exactly the SHA-256 of the bytes confirmed, kept as the chunks arrive so that
finish reads nothing again; a refused chunk never changes it; after a restart, or when another
process confirmed chunks, it is made again from the staged file.

The catalogue is a real SQLite one and the files are real; only the intake behind the upload is
this test's own: it records the hash it is handed and hashes the staged file it is given.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

import ingest.upload_hash
from catalog.access import AccessService
from catalog.db import make_engine
from catalog.repository import Catalog
from ingest.errors import IngestError
from ingest.service import IngestResult, RecordingMetadata
from ingest.upload_hash import OVERLAP_FROM, RunningHashes, append_hashing, hash_prefix
from ingest.uploads import (
    ChunkHashMismatch,
    OffsetMismatch,
    UploadError,
    UploadService,
)

DEVICE = "dev-1"


@dataclass
class Taken:
    sha256: str  # the hash ingest was handed
    staged_sha256: str  # the staged file's own, read here
    size: int


@dataclass
class RecordingIntake:
    taken: list[Taken] = field(default_factory=list)
    fail_next: bool = False  # after taking the file over (read-only), as a store would

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
        staged.chmod(0o444)
        if self.fail_next:
            self.fail_next = False
            raise IngestError("the catalogue is not answering")
        self.taken.append(Taken(sha256, hashlib.sha256(staged.read_bytes()).hexdigest(), size))
        return IngestResult(f"rec{len(self.taken)}", sha256, size, created=True, resumed=False)


@dataclass
class Site:
    catalog: Catalog
    folder: Path
    intake: RecordingIntake

    def service(self) -> UploadService:
        """An upload service as a (re)started process makes it: nothing in memory."""
        return UploadService(catalog=self.catalog, ingest=self.intake, folder=self.folder)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    catalog = Catalog(make_engine(f"sqlite:///{tmp_path / 'catalog.sqlite3'}"))
    catalog.migrate()
    AccessService(catalog).add_principal(
        DEVICE, "device", display_name=DEVICE, actor="test", device_id="BC-0001"
    )
    return Site(catalog, tmp_path / "uploads", RecordingIntake())


def footage(size: int, seed: int = 7) -> bytes:
    return hashlib.shake_256(seed.to_bytes(4, "big")).digest(size)


def start(uploads: UploadService, data: bytes) -> str:
    return uploads.start(DEVICE, RecordingMetadata(device_id="BC-0001"), len(data)).id


def send(uploads: UploadService, upload_id: str, data: bytes, offset: int, end: int) -> int:
    chunk = data[offset:end]
    state = uploads.put_chunk(
        upload_id, DEVICE, offset=offset, data=chunk, sha256=hashlib.sha256(chunk).hexdigest()
    )
    return state.offset


def finish(uploads: UploadService, upload_id: str, data: bytes) -> str | None:
    state, _ = uploads.finish(
        upload_id, DEVICE, sha256=hashlib.sha256(data).hexdigest(), actor=DEVICE
    )
    assert state.status == "complete" and state.may_delete
    return state.sha256


# Big chunks are hashed on another thread while written; small ones in line: both kinds.
CUTS = (0, OVERLAP_FROM + 3, OVERLAP_FROM + 1000, 3 * OVERLAP_FROM + 17)


def test_the_hash_handed_to_ingest_is_the_file_s_and_finish_reads_nothing_again(
    site: Site,
) -> None:
    data = footage(CUTS[-1])
    uploads = site.service()
    upload_id = start(uploads, data)
    for at, end in pairwise(CUTS):
        assert send(uploads, upload_id, data, at, end) == end
    assert finish(uploads, upload_id, data) == hashlib.sha256(data).hexdigest()
    [taken] = site.intake.taken
    assert taken.sha256 == taken.staged_sha256 == hashlib.sha256(data).hexdigest()
    assert taken.size == len(data)
    assert uploads.hashes.rereads == 0  # kept as the chunks came: the file was not read again
    assert len(uploads.hashes) == 0  # and let go once the upload closed


def test_refused_chunks_leave_the_running_hash_as_it_was(site: Site) -> None:
    data = footage(CUTS[-1], seed=8)
    uploads = site.service()
    upload_id = start(uploads, data)
    first = CUTS[1]
    send(uploads, upload_id, data, 0, first)
    nxt = data[first : CUTS[2]]
    with pytest.raises(ChunkHashMismatch):  # its own hash does not match
        uploads.put_chunk(upload_id, DEVICE, offset=first, data=nxt, sha256="0" * 64)
    with pytest.raises(OffsetMismatch):  # not at the confirmed offset
        send(uploads, upload_id, data, first + 1, CUTS[2])
    with pytest.raises(OffsetMismatch):  # already confirmed: a replay
        send(uploads, upload_id, data, 0, first)
    junk = b"\x00" * (len(data) - first + 1)  # past the declared size
    with pytest.raises(UploadError, match="past the declared size"):
        uploads.put_chunk(
            upload_id, DEVICE, offset=first, data=junk, sha256=hashlib.sha256(junk).hexdigest()
        )
    path = site.folder / f"{upload_id}.part"
    kept = uploads.hashes.hash_to(upload_id, first, path)
    assert kept.hexdigest() == hashlib.sha256(data[:first]).hexdigest()
    assert uploads.hashes.rereads == 0
    for at, end in pairwise(CUTS[1:]):
        send(uploads, upload_id, data, at, end)
    assert finish(uploads, upload_id, data) == hashlib.sha256(data).hexdigest()
    assert site.intake.taken[0].staged_sha256 == hashlib.sha256(data).hexdigest()


def test_a_chunk_whose_write_fails_leaves_the_running_hash_as_it_was(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = footage(CUTS[-1], seed=9)
    uploads = site.service()
    upload_id = start(uploads, data)
    send(uploads, upload_id, data, 0, CUTS[1])

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(ingest.upload_hash.os, "fsync", full_disk)
        with pytest.raises(OSError, match="No space"):
            send(uploads, upload_id, data, CUTS[1], CUTS[2])
    assert uploads.state(upload_id, DEVICE).offset == CUTS[1]  # not confirmed
    for at, end in pairwise(CUTS[1:]):
        send(uploads, upload_id, data, at, end)  # sent again, the unconfirmed bytes cut off
    assert finish(uploads, upload_id, data) == hashlib.sha256(data).hexdigest()
    assert uploads.hashes.rereads == 0


def test_after_a_restart_the_next_chunk_hashes_the_staged_file_again(site: Site) -> None:
    data = footage(CUTS[-1], seed=10)
    before = site.service()
    upload_id = start(before, data)
    send(before, upload_id, data, 0, CUTS[1])
    send(before, upload_id, data, CUTS[1], CUTS[2])
    # The process dies after writing part of the next chunk, before confirming it.
    with (site.folder / f"{upload_id}.part").open("ab") as fh:
        fh.write(b"written, never confirmed")
    after = site.service()
    assert after.state(upload_id, DEVICE).offset == CUTS[2]
    send(after, upload_id, data, CUTS[2], CUTS[3])
    assert after.hashes.rereads == 1  # the confirmed bytes, once, at the first chunk
    assert finish(after, upload_id, data) == hashlib.sha256(data).hexdigest()
    assert after.hashes.rereads == 1
    assert site.intake.taken[0].staged_sha256 == hashlib.sha256(data).hexdigest()


def test_after_a_restart_finish_hashes_the_staged_file_again(site: Site) -> None:
    data = footage(CUTS[-1], seed=11)
    before = site.service()
    upload_id = start(before, data)
    for at, end in pairwise(CUTS):
        send(before, upload_id, data, at, end)
    after = site.service()
    assert finish(after, upload_id, data) == hashlib.sha256(data).hexdigest()
    assert after.hashes.rereads == 1
    [taken] = site.intake.taken
    assert taken.sha256 == taken.staged_sha256


def test_chunks_confirmed_by_another_process_are_read_from_the_file(site: Site) -> None:
    """Two processes serving one upload (a device's retry reaching another API process): each
    holds its own running hash; one that is behind the confirmed offset is not trusted."""
    data = footage(CUTS[-1], seed=12)
    one, other = site.service(), site.service()
    upload_id = start(one, data)
    send(one, upload_id, data, 0, CUTS[1])
    send(other, upload_id, data, CUTS[1], CUTS[2])  # other has no state: reads CUTS[1] bytes
    send(one, upload_id, data, CUTS[2], CUTS[3])  # one's state is at CUTS[1]: reads again
    assert (one.hashes.rereads, other.hashes.rereads) == (1, 1)
    assert finish(one, upload_id, data) == hashlib.sha256(data).hexdigest()


def test_a_finish_that_failed_after_the_store_took_the_file_over_is_retried(
    site: Site,
) -> None:
    data = footage(OVERLAP_FROM * 2, seed=14)
    uploads = site.service()
    upload_id = start(uploads, data)
    send(uploads, upload_id, data, 0, len(data))
    site.intake.fail_next = True
    with pytest.raises(IngestError, match="not answering"):
        finish(uploads, upload_id, data)
    assert uploads.state(upload_id, DEVICE).status == "open"
    restarted = site.service()
    assert finish(restarted, upload_id, data) == hashlib.sha256(data).hexdigest()
    assert site.intake.taken[0].staged_sha256 == hashlib.sha256(data).hexdigest()


def test_a_wrong_declared_hash_fails_the_upload_and_nothing_is_ingested(site: Site) -> None:
    data = footage(OVERLAP_FROM * 2, seed=13)
    uploads = site.service()
    upload_id = start(uploads, data)
    send(uploads, upload_id, data, 0, len(data))
    with pytest.raises(UploadError, match="keep your copy"):
        uploads.finish(upload_id, DEVICE, sha256="a" * 64, actor=DEVICE)
    state = uploads.state(upload_id, DEVICE)
    assert state.status == "failed" and not state.may_delete
    assert site.intake.taken == []
    assert not (site.folder / f"{upload_id}.part").exists()


def test_a_kept_state_handed_out_is_a_copy(tmp_path: Path) -> None:
    staged = tmp_path / "x.part"
    staged.write_bytes(b"confirmed" + b"unconfirmed tail")
    hashes = RunningHashes()
    first = hashes.hash_to("u", 9, staged)  # nothing kept: made from the file's first 9 bytes
    assert first.hexdigest() == hashlib.sha256(b"confirmed").hexdigest()
    first.update(b" and a refused chunk")  # never kept
    assert hashes.hash_to("u", 9, staged).hexdigest() == hashlib.sha256(b"confirmed").hexdigest()
    assert hashes.rereads == 1
    with pytest.raises(IngestError, match="were confirmed"):
        hash_prefix(staged, 1000)


class Unhashable:
    """A hash state whose update fails (as on running out of memory)."""

    def update(self, data: bytes, /) -> None:
        raise MemoryError

    def copy(self) -> Unhashable:
        return self

    def hexdigest(self) -> str:
        raise AssertionError("never read out")


def test_a_chunk_that_failed_to_hash_is_hashed_again_from_the_file(tmp_path: Path) -> None:
    staged = tmp_path / "x.part"
    data = footage(OVERLAP_FROM + 5, seed=15)
    with staged.open("w+b") as fh:
        running = Unhashable()
        taking = append_hashing(fh, 0, data, running)
    assert taking is not None and not taking.done()
    hashes = RunningHashes()
    hashes.keep("u", len(data), running, taking)  # confirmed, but its hash is not to be had
    assert hashes.hash_to("u", len(data), staged).hexdigest() == hashlib.sha256(data).hexdigest()
    assert hashes.rereads == 1
