"""Object store boundary: write-once objects in two buckets, originals and derived files.

``ObjectStore`` is the interface every stage uses. ``LocalFolderStore`` is the embedded
default: one folder per bucket, objects made visible by an atomic hard link that fails if the
name is taken, so an object once written is never overwritten. The S3/MinIO store (Object
Lock, legal hold) implements the same interface.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

Bucket = Literal["originals", "derived"]
CHUNK = 1 << 20


class StoreError(Exception):
    """Root of the errors raised by object stores."""


class ObjectConflict(StoreError):
    """An object exists under this key with other content; it is never overwritten."""

    def __init__(self, bucket: Bucket, key: str, existing: str, offered: str) -> None:
        super().__init__(
            f"{bucket}/{key} already holds sha256 {existing[:16]}…; refusing to overwrite it"
            f" with {offered[:16]}…"
        )
        self.bucket, self.key, self.existing, self.offered = bucket, key, existing, offered


class ObjectMissing(StoreError):
    def __init__(self, bucket: Bucket, key: str) -> None:
        super().__init__(f"{bucket}/{key} is not in the store")
        self.bucket, self.key = bucket, key


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
        self, bucket: Bucket, key: str, path: Path, sha256: str, *, category: str | None = None
    ) -> StoredObject:
        """Store the file at ``path`` (whose SHA-256 the caller has computed) under ``key``.

        Idempotent for identical content; never overwrites. The caller owns ``path`` and does
        not change it afterwards: the store may take the file over instead of copying it.
        ``category`` (the footage category) chooses the retention period where the store
        enforces one.
        """
        ...

    def stat(self, bucket: Bucket, key: str) -> StoredObject | None: ...

    def local_path(self, bucket: Bucket, key: str) -> contextlib.AbstractContextManager[Path]:
        """A local, read-only path to the object for ffmpeg to read, for the block's length."""
        ...

    def open(self, bucket: Bucket, key: str) -> contextlib.AbstractContextManager[BinaryIO]: ...

    def set_legal_hold(self, bucket: Bucket, key: str, on: bool) -> None:
        """Put (``on``) or lift a legal hold: no deletion while it is on, whatever retention."""
        ...


class LocalFolderStore:
    """Objects as files under ``root/<bucket>/<key>``, written once, read-only on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for bucket in ("originals", "derived"):
            (root / bucket).mkdir(parents=True, exist_ok=True)

    def _path(self, bucket: Bucket, key: str) -> Path:
        if key.startswith("/") or ".." in Path(key).parts:
            raise StoreError(f"invalid object key {key!r}")
        return self.root / bucket / key

    def put_file(
        self, bucket: Bucket, key: str, path: Path, sha256: str, *, category: str | None = None
    ) -> StoredObject:
        """``category`` is ignored: this store keeps everything, it has no retention."""
        target = self._path(bucket, key)
        existing = self.stat(bucket, key)
        if existing is not None:
            if existing.sha256 != sha256:
                raise ObjectConflict(bucket, key, existing.sha256, sha256)
            return existing
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.stat().st_dev == target.parent.stat().st_dev:
            return self._link(bucket, key, path, sha256, target)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, path.open("rb") as src:
                shutil.copyfileobj(src, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            written, size = sha256_file(tmp)
            if written != sha256:
                raise StoreError(
                    f"{bucket}/{key}: content changed while storing (expected {sha256[:16]}…,"
                    f" read {written[:16]}…)"
                )
            tmp.chmod(0o444)
            try:
                os.link(tmp, target)  # atomic, and fails if another writer got there first
            except FileExistsError:
                return self._existing_or_conflict(bucket, key, sha256)
            _fsync_dir(target.parent)
        finally:
            tmp.unlink(missing_ok=True)
        return StoredObject(bucket, key, sha256, size)

    def _link(
        self, bucket: Bucket, key: str, path: Path, sha256: str, target: Path
    ) -> StoredObject:
        """Same file system: make the caller's file the object (read-only, atomic, no copy).

        Its hash is still checked first: what is stored is what the caller hashed.
        """
        written, _size = sha256_file(path)
        if written != sha256:
            raise StoreError(
                f"{bucket}/{key}: {path.name} does not have the hash given for it (expected"
                f" {sha256[:16]}…, read {written[:16]}…); nothing stored"
            )
        path.chmod(0o444)
        with path.open("rb") as fh:
            os.fsync(fh.fileno())
        try:
            os.link(path, target)
        except FileExistsError:
            return self._existing_or_conflict(bucket, key, sha256)
        _fsync_dir(target.parent)
        return StoredObject(bucket, key, sha256, target.stat().st_size)

    def _existing_or_conflict(self, bucket: Bucket, key: str, sha256: str) -> StoredObject:
        existing = self.stat(bucket, key)
        assert existing is not None
        if existing.sha256 != sha256:
            raise ObjectConflict(bucket, key, existing.sha256, sha256)
        return existing

    def stat(self, bucket: Bucket, key: str) -> StoredObject | None:
        """The object's hash and size as they are now (hashed from disk)."""
        target = self._path(bucket, key)
        if not target.exists():
            return None
        sha, size = sha256_file(target)
        return StoredObject(bucket, key, sha, size)

    @contextlib.contextmanager
    def local_path(self, bucket: Bucket, key: str) -> Iterator[Path]:
        target = self._path(bucket, key)
        if not target.exists():
            raise ObjectMissing(bucket, key)
        yield target

    @contextlib.contextmanager
    def open(self, bucket: Bucket, key: str) -> Iterator[BinaryIO]:
        target = self._path(bucket, key)
        if not target.exists():
            raise ObjectMissing(bucket, key)
        with target.open("rb") as fh:
            yield fh

    def set_legal_hold(self, bucket: Bucket, key: str, on: bool) -> None:
        """A no-op: the local store never deletes anything, so every object is always held."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
