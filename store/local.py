"""The embedded object store: one folder per bucket, written once.

Objects are made visible by an atomic hard link that fails if the name is taken, so an object
once written is never overwritten. Deletion happens only through ``delete_expired``, which
refuses (``RetentionActive``) while an object is retained or held. Retention and legal holds
are sidecar files under ``root/.retention`` and ``root/.legal-hold``.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

from store.base import CHUNK, Bucket, StoredObject, require_aware, sha256_file
from store.errors import ObjectConflict, ObjectMissing, RetentionActive, StoreError

RETENTION_DIR = ".retention"  # LocalFolderStore: <root>/.retention/<bucket>/<key>.json
HOLD_DIR = ".legal-hold"  # LocalFolderStore: <root>/.legal-hold/<bucket>/<key>.json


class LocalFolderStore:
    """Objects as files under ``root/<bucket>/<key>``, written once, read-only on disk.

    It sets no retention of its own when storing (``category`` is ignored); retention set
    with ``extend_retention`` and legal holds are sidecar files beside the buckets.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        for bucket in ("originals", "derived"):
            (root / bucket).mkdir(parents=True, exist_ok=True)

    def _path(self, bucket: Bucket, key: str) -> Path:
        if key.startswith("/") or ".." in Path(key).parts:
            raise StoreError(f"invalid object key {key!r}")
        return self.root / bucket / key

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
        """``category`` and ``retain`` are ignored: this store sets no retention when
        storing. ``verified`` spares reading the file back when it is linked in, not checking a
        copy."""
        target = self._path(bucket, key)
        existing = self.stat(bucket, key)
        if existing is not None:
            if existing.sha256 != sha256:
                raise ObjectConflict(bucket, key, existing.sha256, sha256)
            return existing
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.stat().st_dev == target.parent.stat().st_dev:
            return self._link(bucket, key, path, sha256, target, verified=verified)
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
        self, bucket: Bucket, key: str, path: Path, sha256: str, target: Path, *, verified: bool
    ) -> StoredObject:
        """Same file system: make the caller's file the object (read-only, atomic, no copy).

        Its hash is checked first, unless the caller ``verified`` it: what is stored is what
        the caller hashed.
        """
        if not verified:
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

    @contextlib.contextmanager
    def open_range(self, bucket: Bucket, key: str, start: int, length: int) -> Iterator[BinaryIO]:
        with self.open(bucket, key) as fh:
            fh.seek(start)
            yield cast(BinaryIO, _Limited(fh, length))

    # -- retention and legal hold (sidecar files; honoured by delete_expired) ---------------

    def list_keys(self, bucket: Bucket, prefix: str) -> list[str]:
        base = self.root / bucket
        folder = self._path(bucket, prefix.rstrip("/")) if prefix.strip("/") else base
        if not folder.is_dir():
            return []
        keys = (p.relative_to(base).as_posix() for p in folder.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix) and not Path(k).name.startswith("."))

    def _sidecar(self, kind: str, bucket: Bucket, key: str) -> Path:
        self._path(bucket, key)  # validates the key
        return self.root / kind / bucket / f"{key}.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One lock for every retention, hold and delete operation on this store's folder, so
        a hold set by another process cannot slip between a deletion's check and its unlink."""
        lock = self.root / RETENTION_DIR / ".lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _require_object(self, bucket: Bucket, key: str) -> Path:
        target = self._path(bucket, key)
        if not target.exists():
            raise ObjectMissing(bucket, key)
        return target

    def _read_retention(self, bucket: Bucket, key: str) -> datetime | None:
        sidecar = self._sidecar(RETENTION_DIR, bucket, key)
        try:
            data = json.loads(sidecar.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"{bucket}/{key}: unreadable retention sidecar {sidecar}: {exc}"
            ) from exc
        try:
            return require_aware(datetime.fromisoformat(data["retain_until"]), str(sidecar))
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(
                f"{bucket}/{key}: malformed retention sidecar {sidecar}: {exc}"
            ) from exc

    def legal_hold(self, bucket: Bucket, key: str) -> bool:
        self._require_object(bucket, key)
        return self._sidecar(HOLD_DIR, bucket, key).exists()

    def retention(self, bucket: Bucket, key: str) -> datetime | None:
        self._require_object(bucket, key)
        return self._read_retention(bucket, key)

    def set_legal_hold(self, bucket: Bucket, key: str, on: bool) -> None:
        """Recorded as a sidecar file; ``delete_expired`` refuses while it exists."""
        sidecar = self._sidecar(HOLD_DIR, bucket, key)
        with self._locked():
            self._require_object(bucket, key)
            if on:
                if not sidecar.exists():
                    _write_atomic(sidecar, {"bucket": bucket, "key": key, "since": _stamp()})
            elif sidecar.exists():
                sidecar.unlink()
                _fsync_dir(sidecar.parent)

    def extend_retention(self, bucket: Bucket, key: str, until: datetime) -> datetime:
        """Recorded as a sidecar file (written atomically); the later of old and new wins."""
        until = require_aware(until, f"retention of {bucket}/{key}")
        with self._locked():
            self._require_object(bucket, key)
            current = self._read_retention(bucket, key)
            if current is not None and current >= until:
                return current
            _write_atomic(
                self._sidecar(RETENTION_DIR, bucket, key),
                {
                    "bucket": bucket,
                    "key": key,
                    "retain_until": until.isoformat(),
                    "set_at": _stamp(),
                },
            )
            return until

    def delete_expired(self, bucket: Bucket, key: str, now: datetime) -> None:
        """Remove the read-only file unless a sidecar still protects it at ``now``.

        This store trusts the caller's ``now`` (S3 checks against its own clock). An object
        with no retention sidecar has no retention here: the caller decides when it is due.
        """
        now = require_aware(now, f"deletion of {bucket}/{key}")
        target = self._path(bucket, key)
        retention_sidecar = self._sidecar(RETENTION_DIR, bucket, key)
        with self._locked():
            if target.exists():
                held = self._sidecar(HOLD_DIR, bucket, key).exists()
                until = self._read_retention(bucket, key)
                if held or (until is not None and until > now):
                    raise RetentionActive(bucket, key, retain_until=until, legal_hold=held, now=now)
                # unlinking needs write access to the folder, not to the read-only file
                target.unlink()
                _fsync_dir(target.parent)
            if retention_sidecar.exists():  # spent (also after a crash just after the unlink)
                retention_sidecar.unlink()
                _fsync_dir(retention_sidecar.parent)


class _Limited(io.RawIOBase):
    """At most ``length`` bytes of ``source`` from where it stands."""

    def __init__(self, source: BinaryIO, length: int) -> None:
        self.source = source
        self.left = length

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = self.left if size < 0 else min(size, self.left)
        data = self.source.read(n) if n > 0 else b""
        self.left -= len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _stamp() -> str:
    return datetime.now(UTC).isoformat()


def _write_atomic(path: Path, data: dict[str, str]) -> None:
    """Write JSON to ``path`` by rename: readers see the old file or the new, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
