"""The SHA-256 of each open upload's confirmed bytes, kept as its chunks are confirmed, so that
finishing an upload does not read the file again.

Chunks land strictly in order, each at the confirmed offset (``UploadService.put_chunk``, under
the upload's lock), so one running hash per upload is enough. A chunk is hashed into a *copy* of
the kept state (``hash_to``), and the copy replaces it (``keep``) only once the chunk is on disk
and its offset confirmed: a refused chunk (wrong hash, wrong offset, past the declared size), or
one whose write or confirmation fails, never touches the kept state. The copy takes a big chunk
in on a thread of its own while the chunk is written and fsynced, and while the answer goes
out (``append_hashing``, ``Taking``): the next chunk, or finish, waits for it.

The state lives in this process only. What survives a restart is what it was made from: the
staged file, fsynced before each confirmation, and the confirmed offset in the catalogue. So
whenever the kept state is missing (a restart, an expiry) or is not at the confirmed offset
(another process confirmed chunks, or a confirmation's outcome was lost), ``hash_to`` hashes the
staged file's first ``offset`` bytes again, and keeps that.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import BinaryIO, Protocol

from ingest.errors import IngestError

logger = logging.getLogger(__name__)

READ = 1 << 20
OVERLAP_FROM = 1 << 20
"""A chunk this big is hashed on a thread of its own while it is written."""


class Digest(Protocol):
    """What is used of a ``hashlib`` hash object."""

    def update(self, data: bytes, /) -> None: ...

    def copy(self) -> Digest: ...

    def hexdigest(self) -> str: ...


def hash_prefix(path: Path, length: int) -> Digest:
    """A SHA-256 state over the first ``length`` bytes of ``path`` (``IngestError`` if the file
    is shorter: confirmed bytes are missing)."""
    digest: Digest = hashlib.sha256()
    left = length
    with path.open("rb") as fh:
        while left:
            block = fh.read(min(READ, left))
            if not block:
                raise IngestError(
                    f"{path.name}: {length - left} bytes on disk, but {length} were confirmed"
                )
            digest.update(block)
            left -= len(block)
    return digest


class Taking:
    """A chunk being taken into a running hash on a thread of its own: hashlib lets go of the
    GIL, so it goes on while the chunk is written and fsynced, and after the answer."""

    def __init__(self, running: Digest, data: bytes) -> None:
        self._failed: BaseException | None = None
        self._thread = threading.Thread(
            target=self._take_in, args=(running, data), name="upload-hash", daemon=True
        )
        self._thread.start()

    def _take_in(self, running: Digest, data: bytes) -> None:
        try:
            running.update(data)
        except BaseException as exc:  # told by ``done``: the state is then made from the file
            self._failed = exc

    def done(self) -> bool:
        """Wait until the chunk is in: True, or False if taking it in failed."""
        self._thread.join()
        return self._failed is None


def append_hashing(fh: BinaryIO, offset: int, data: bytes, running: Digest) -> Taking | None:
    """Write ``data`` at ``offset`` of ``fh`` (cutting off what was written past it, never
    confirmed) and fsync, while ``running`` takes it in on a thread of its own, which may go on
    after this returns (``Taking``; ``RunningHashes.hash_to`` waits for it). A small chunk is
    hashed first, in line (None)."""
    if len(data) < OVERLAP_FROM:
        running.update(data)
        _write(fh, offset, data)
        return None
    taking = Taking(running, data)
    _write(fh, offset, data)  # if this fails, ``running`` is a copy nobody keeps
    return taking


def _write(fh: BinaryIO, offset: int, data: bytes) -> None:
    fh.truncate(offset)
    fh.seek(offset)
    fh.write(data)
    fh.flush()
    os.fsync(fh.fileno())


class RunningHashes:
    """The running SHA-256 of every open upload this process has seen a chunk of, by upload ID,
    with the offset it has reached. Callers hold the upload's lock; this only guards its map."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[int, Digest, Taking | None]] = {}
        self._guard = threading.Lock()
        self.rereads = 0
        """How often a state had to be made by reading the staged file again."""

    def hash_to(self, upload_id: str, offset: int, path: Path) -> Digest:
        """A state over the upload's first ``offset`` bytes that the caller may update: a copy
        of the kept one if it is at ``offset``, else made from ``path`` (and kept)."""
        with self._guard:
            kept = self._kept.get(upload_id)
        why = "none kept"
        if kept is not None:
            at, digest, taking = kept
            if at == offset and (taking is None or taking.done()):
                return digest.copy()
            why = f"kept at byte {at}" if at != offset else "its last chunk failed to hash"
        if offset:
            logger.info(
                "upload %s: no running hash at byte %d (%s); hashing the staged file again",
                upload_id,
                offset,
                why,
            )
            with self._guard:
                self.rereads += 1
        digest = hash_prefix(path, offset)
        self.keep(upload_id, offset, digest.copy())
        return digest

    def keep(
        self, upload_id: str, offset: int, digest: Digest, taking: Taking | None = None
    ) -> None:
        """``digest`` is the hash of the upload's first ``offset`` bytes, now confirmed, once
        ``taking`` (its last chunk, if still being taken in) is done. The caller hands it over
        and does not update it again."""
        with self._guard:
            self._kept[upload_id] = (offset, digest, taking)

    def drop(self, upload_id: str) -> None:
        with self._guard:
            self._kept.pop(upload_id, None)

    def __len__(self) -> int:
        with self._guard:
            return len(self._kept)
