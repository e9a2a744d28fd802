"""The object store boundary: what every store offers, and the types it speaks in.

``ObjectStore`` is the interface every stage uses: write-once objects in two buckets,
originals and derived files. ``LocalFolderStore`` (``store.local``) is the embedded default;
``S3ObjectStore`` (``store.s3``) keeps them under S3 Object Lock.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

Bucket = Literal["originals", "derived"]
CHUNK = 1 << 20


def require_aware(value: datetime, what: str) -> datetime:
    """``value`` in UTC; a naive datetime is refused (retention is never guessed)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what}: naive datetime {value.isoformat()}; give a UTC-aware one")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class StoredObject:
    bucket: Bucket
    key: str
    sha256: str
    size: int


def sha256_file(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class ObjectStore(Protocol):
    def put_file(
        self,
        bucket: Bucket,
        key: str,
        path: Path,
        sha256: str,
        *,
        category: str | None = None,
        verified: bool = False,
        retain: bool = True,
    ) -> StoredObject:
        """Store the file at ``path`` (whose SHA-256 the caller has computed) under ``key``.

        Idempotent for identical content; never overwrites. The caller owns ``path`` and does
        not change it afterwards: the store may take the file over instead of copying it.
        ``category`` (the footage category) chooses the retention period where the store
        enforces one. Whatever the store writes is checked against ``sha256``; a file it takes
        over as it is, only unless ``verified``: the caller hashed ``path``'s bytes itself, as
        it wrote them (or read them back), under a lock no writer of the file gets past.
        ``retain`` False: no retention, whatever the store enforces (a cache that may be
        deleted and made again: the review proxy kept as a cache).
        """
        ...

    def stat(self, bucket: Bucket, key: str) -> StoredObject | None: ...

    def local_path(self, bucket: Bucket, key: str) -> contextlib.AbstractContextManager[Path]:
        """A local, read-only path to the object for ffmpeg to read, for the block's length."""
        ...

    def open(self, bucket: Bucket, key: str) -> contextlib.AbstractContextManager[BinaryIO]: ...

    def open_range(
        self, bucket: Bucket, key: str, start: int, length: int
    ) -> contextlib.AbstractContextManager[BinaryIO]:
        """A read of ``length`` bytes from ``start`` (HTTP range playback)."""
        ...

    def list_keys(self, bucket: Bucket, prefix: str) -> list[str]:
        """Keys of the objects under ``prefix``, sorted."""
        ...

    def set_legal_hold(self, bucket: Bucket, key: str, on: bool) -> None:
        """Put (``on``) or lift a legal hold: no deletion while it is on, whatever retention."""
        ...

    def legal_hold(self, bucket: Bucket, key: str) -> bool:
        """Whether a legal hold is on (``ObjectMissing`` if the key is not stored)."""
        ...

    def retention(self, bucket: Bucket, key: str) -> datetime | None:
        """The object's retain-until (UTC), or None if it has none (``ObjectMissing`` if absent)."""
        ...

    def extend_retention(self, bucket: Bucket, key: str, until: datetime) -> datetime:
        """Keep the object until at least ``until``; never shortens. Returns the retain-until
        now in force (``until``, or a later one already set; stores may round up)."""
        ...

    def delete_expired(self, bucket: Bucket, key: str, now: datetime) -> None:
        """Delete the object (every version of it) if neither retained past ``now`` nor held.

        Raises ``RetentionActive`` if it is still protected; an absent key is a no-op.
        """
        ...
