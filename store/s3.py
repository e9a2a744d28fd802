"""The S3/MinIO object store: WORM buckets (Object Lock, COMPLIANCE retention, legal hold).

What makes it write-once, beyond what S3 itself enforces:

* Every object carries ``x-amz-meta-sha256``. ``put_file`` looks first: the same hash is a
  no-op, another hash is an ``ObjectConflict``; it never writes a new version over evidence.
* The *evidence version* of a key is its oldest version (delete markers ignored). Reads
  (``stat``, ``open``, ``local_path``, presigned URLs) and legal holds use that version, so a
  later version written past this class (a racing writer, a raw client) never stands in for
  the original, and a delete marker never hides it.
* The bytes are hashed while they are uploaded, from one read of the file; if they are not
  what the caller hashed, the upload is abandoned before it completes (nothing is stored).
* Originals (and, by default, derived files) get COMPLIANCE retention until now + the days
  of their footage category: nobody, root included, can delete or shorten it.
  ``extend_retention`` moves the evidence version's retain-until later (never earlier), and
  ``delete_expired`` removes every version of a key once none is retained or held; the store
  itself refuses the deletion before then, whatever our own check said.

An unreachable store is retried with bounded exponential backoff for ``outage_budget_s``
(connection errors and 5xx); the caller blocks meanwhile, which is the back-pressure. Real
refusals (403, Object Lock violations, ...) fail at once as ``StoreRefused``.

The S3 error codes, the upload's hash check, the HTTP pool and the single reads of a key's
versions, retention and hold are in ``store.s3_support``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import BinaryIO, TypeVar, cast

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import MinioException, S3Error
from minio.retention import Retention

from store.base import Bucket, StoredObject, require_aware
from store.errors import (
    ObjectConflict,
    ObjectMissing,
    RetentionActive,
    StoreError,
    StoreRefused,
    StoreUnavailable,
)
from store.retention import DEFAULT_RETENTION, RetentionPolicy
from store.s3_support import (
    MISSING_CODES,
    SHA256_META,
    HashingReader,
    Version,
    ceil_second,
    check_key,
    describe,
    download,
    evidence_version,
    http_client,
    is_transient,
    legal_hold_on,
    list_versions,
    part_size_for,
    retain_until,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = ["PART_SIZE", "S3ObjectStore", "http_client", "is_transient"]

PART_SIZE = 8 << 20  # at least; more for an object past 10,000 parts (``part_size_for``)
PARALLEL_PARTS = 4  # sent at once, this + 1 in memory (bench/distributed.py: 6.79 s -> 6.15 s)


class S3ObjectStore:
    """``ObjectStore`` on S3/MinIO buckets with Object Lock. No network call until used."""

    def __init__(
        self,
        client: Minio,
        *,
        originals_bucket: str = "vigil-originals",
        derived_bucket: str = "vigil-derived",
        retention: RetentionPolicy = DEFAULT_RETENTION,
        lock_derived: bool = True,
        outage_budget_s: float = 600.0,
        backoff_s: tuple[float, float] = (0.5, 10.0),
        part_size: int = PART_SIZE,
        parallel_parts: int = PARALLEL_PARTS,
        tmp_dir: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.buckets: Mapping[Bucket, str] = MappingProxyType(
            {"originals": originals_bucket, "derived": derived_bucket}
        )
        self.retention_policy = retention  # ``retention()`` reads an object's retention
        self.lock_derived = lock_derived
        self.outage_budget_s = outage_budget_s
        self.backoff_s = backoff_s
        self.part_size = part_size
        self.parallel_parts = parallel_parts
        self.tmp_dir = tmp_dir
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def connect(
        cls,
        endpoint: str,
        access_key: str,
        secret_key: str,
        *,
        secure: bool = True,
        region: str = "us-east-1",
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 120.0,
        originals_bucket: str = "vigil-originals",
        derived_bucket: str = "vigil-derived",
        retention: RetentionPolicy = DEFAULT_RETENTION,
        lock_derived: bool = True,
        outage_budget_s: float = 600.0,
        part_size: int = PART_SIZE,
        tmp_dir: Path | None = None,
    ) -> S3ObjectStore:
        """A store with its own minio client (short HTTP retries: ours do the waiting)."""
        client = Minio(
            endpoint,
            access_key,
            secret_key,
            secure=secure,
            region=region,
            http_client=http_client(connect_timeout_s, read_timeout_s),
        )
        return cls(
            client,
            originals_bucket=originals_bucket,
            derived_bucket=derived_bucket,
            retention=retention,
            lock_derived=lock_derived,
            outage_budget_s=outage_budget_s,
            part_size=part_size,
            tmp_dir=tmp_dir,
        )

    # -- retry -------------------------------------------------------------------------------

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        """``call()``, retried through outages for ``outage_budget_s``; refusals at once."""
        started = self._clock()
        delay, longest = self.backoff_s
        retries = 0
        while True:
            try:
                result = call()
            except StoreError:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    if isinstance(exc, S3Error):
                        raise StoreRefused(what, exc.code, exc.message or str(exc)) from exc
                    if isinstance(exc, MinioException):
                        raise StoreRefused(what, None, str(exc)) from exc
                    raise
                waited = self._clock() - started
                if waited + delay > self.outage_budget_s:
                    raise StoreUnavailable(
                        f"{what}: object store unreachable for {waited:.0f} s"
                        f" ({describe(exc)}); gave up after {retries} retries"
                    ) from exc
                retries += 1
                logger.warning(
                    "%s: object store unavailable (%s); retry %d in %.1f s (%.0f of %.0f s"
                    " outage budget used)",
                    what, describe(exc), retries, delay, waited, self.outage_budget_s,
                )  # fmt: skip
                self._sleep(delay)
                delay = min(delay * 2, longest)
            else:
                if retries:
                    logger.info("%s: done after %d retries", what, retries)
                return result

    # -- buckets -----------------------------------------------------------------------------

    def ensure_buckets(self) -> None:
        """Create both buckets with Object Lock (hence versioning); check existing ones."""
        for name in self.buckets.values():
            self._retrying(f"ensure bucket {name}", functools.partial(self._ensure_bucket, name))

    def _ensure_bucket(self, name: str) -> None:
        if not self.client.bucket_exists(name):
            try:
                self.client.make_bucket(name, object_lock=True)
                logger.info("created bucket %s with Object Lock", name)
            except S3Error as exc:
                if exc.code != "BucketAlreadyOwnedByYou":  # else: made by a concurrent worker
                    raise
        try:
            self.client.get_object_lock_config(name)
        except S3Error as exc:
            if exc.code in ("ObjectLockConfigurationNotFoundError", "InvalidRequest"):
                raise StoreError(
                    f"bucket {name} exists without Object Lock; evidence cannot be kept"
                    " write-once there (Object Lock can only be enabled when a bucket is made)"
                ) from exc
            raise
        status = self.client.get_bucket_versioning(name).status
        if status != "Enabled":
            raise StoreError(f"bucket {name} has versioning {status!r}, not Enabled")

    def _name(self, bucket: Bucket) -> str:
        return self.buckets[bucket]

    # -- versions ----------------------------------------------------------------------------

    def _evidence_version(self, bucket: Bucket, key: str) -> Version | None:
        """The oldest live version of the key: the one that was written first."""
        return evidence_version(self.client, self._name(bucket), key)

    def _require(self, bucket: Bucket, key: str) -> Version:
        check_key(key)
        name = self._name(bucket)
        version = self._retrying(
            f"look up {name}/{key}", lambda: self._evidence_version(bucket, key)
        )
        if version is None:
            raise ObjectMissing(bucket, key)
        return version

    # -- ObjectStore -------------------------------------------------------------------------

    def retention_until(self, bucket: Bucket, category: str | None) -> datetime | None:
        if bucket == "derived" and not self.lock_derived:
            return None
        return datetime.now(UTC) + timedelta(days=self.retention_policy.days_for(category))

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
        """Upload once, hash-checked, locked; same content again is a no-op. The bytes are
        hashed as they are sent, ``verified`` or not."""
        check_key(key)
        name = self._name(bucket)
        size = path.stat().st_size
        return self._retrying(
            f"put {name}/{key} ({size} bytes)",
            lambda: self._put_once(bucket, key, path, sha256, size, category, retain),
        )

    def _put_once(
        self,
        bucket: Bucket,
        key: str,
        path: Path,
        sha256: str,
        size: int,
        category: str | None,
        retain: bool = True,
    ) -> StoredObject:
        """One attempt; safe to repeat (an earlier attempt may have completed unseen)."""
        name = self._name(bucket)
        existing = self._evidence_version(bucket, key)
        if existing is not None:
            return self._same_or_conflict(bucket, key, existing, sha256)
        until = self.retention_until(bucket, category) if retain else None
        with path.open("rb") as fh:
            result = self.client.put_object(
                name,
                key,
                cast(BinaryIO, HashingReader(fh, size, sha256, f"{name}/{key}")),
                size,
                metadata={SHA256_META: sha256},
                part_size=part_size_for(size, self.part_size),
                # read in order (the hash sees every byte once), sent a few at once
                num_parallel_uploads=self.parallel_parts,
                retention=Retention(COMPLIANCE, until) if until is not None else None,
            )
        first = self._evidence_version(bucket, key)
        if first is None:
            raise StoreError(f"{name}/{key}: uploaded, yet the store does not list it")
        if first.version_id != result.version_id:  # a concurrent writer got there first
            logger.warning(
                "%s/%s: a concurrent writer stored version %s first; ours (%s) is kept but"
                " is not the evidence version",
                name, key, first.version_id, result.version_id,
            )  # fmt: skip
            return self._same_or_conflict(bucket, key, first, sha256)
        return StoredObject(bucket, key, sha256, size)

    def _same_or_conflict(
        self, bucket: Bucket, key: str, existing: Version, sha256: str
    ) -> StoredObject:
        if existing.sha256 != sha256:
            raise ObjectConflict(bucket, key, existing.sha256 or "(no sha256 recorded)", sha256)
        return StoredObject(bucket, key, sha256, existing.size)

    def stat(self, bucket: Bucket, key: str) -> StoredObject | None:
        """The evidence version's recorded hash and size; None if the key was never written."""
        check_key(key)
        name = self._name(bucket)
        version = self._retrying(f"stat {name}/{key}", lambda: self._evidence_version(bucket, key))
        if version is None:
            return None
        if version.sha256 is None:
            raise StoreError(f"{name}/{key} has no recorded sha256: not written by Vigil")
        return StoredObject(bucket, key, version.sha256, version.size)

    @contextlib.contextmanager
    def local_path(self, bucket: Bucket, key: str) -> Iterator[Path]:
        """Download (hash-checked) into a private temporary folder; removed afterwards."""
        version = self._require(bucket, key)
        name = self._name(bucket)
        folder = Path(tempfile.mkdtemp(prefix="vigil-s3-", dir=self.tmp_dir))
        target = folder / PurePosixPath(key).name  # keeps the extension for ffmpeg
        try:
            self._retrying(
                f"download {name}/{key}",
                lambda: download(self.client, bucket, name, key, version, target),
            )
            target.chmod(0o444)
            yield target
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @contextlib.contextmanager
    def open(self, bucket: Bucket, key: str) -> Iterator[BinaryIO]:
        """A streaming read of the evidence version; the connection is released afterwards."""
        version = self._require(bucket, key)
        name = self._name(bucket)

        def get() -> urllib3.BaseHTTPResponse:
            try:
                return self.client.get_object(name, key, version_id=version.version_id)
            except S3Error as exc:
                if exc.code in MISSING_CODES:
                    raise ObjectMissing(bucket, key) from exc
                raise

        response = self._retrying(f"open {name}/{key}", get)
        try:
            yield cast(BinaryIO, response)
        finally:
            response.close()
            response.release_conn()

    @contextlib.contextmanager
    def open_range(self, bucket: Bucket, key: str, start: int, length: int) -> Iterator[BinaryIO]:
        """An S3 ranged GET of the evidence version."""
        version = self._require(bucket, key)
        name = self._name(bucket)

        def get() -> urllib3.BaseHTTPResponse:
            return self.client.get_object(
                name, key, offset=start, length=length, version_id=version.version_id
            )

        response = self._retrying(f"open {name}/{key} [{start}+{length}]", get)
        try:
            yield cast(BinaryIO, response)
        finally:
            response.close()
            response.release_conn()

    # -- WORM controls -----------------------------------------------------------------------

    def list_keys(self, bucket: Bucket, prefix: str) -> list[str]:
        name = self._name(bucket)

        def call() -> list[str]:
            listed = self.client.list_objects(name, prefix=prefix, recursive=True)
            return sorted(str(o.object_name) for o in listed if o.object_name)

        return self._retrying(f"list {name}/{prefix}", call)

    def set_legal_hold(self, bucket: Bucket, key: str, on: bool) -> None:
        """Legal hold on the evidence version: no deletion while on, whatever the retention."""
        version = self._require(bucket, key)
        name = self._name(bucket)

        def call() -> None:
            if on:
                self.client.enable_object_legal_hold(name, key, version_id=version.version_id)
            else:
                self.client.disable_object_legal_hold(name, key, version_id=version.version_id)

        self._retrying(f"legal hold {'on' if on else 'off'} {name}/{key}", call)

    def legal_hold(self, bucket: Bucket, key: str) -> bool:
        """Whether the evidence version's legal hold is on."""
        version = self._require(bucket, key)
        name = self._name(bucket)
        return self._retrying(
            f"read legal hold {name}/{key}",
            lambda: legal_hold_on(self.client, name, key, version.version_id),
        )

    def retention(self, bucket: Bucket, key: str) -> datetime | None:
        """The evidence version's retain-until date, or None if it has none."""
        version = self._require(bucket, key)
        name = self._name(bucket)
        return self._retrying(
            f"read retention {name}/{key}",
            lambda: retain_until(self.client, name, key, version.version_id),
        )

    def extend_retention(self, bucket: Bucket, key: str, until: datetime) -> datetime:
        """COMPLIANCE retain-until of the evidence version moved to ``until`` (rounded up to
        the second) if that is later; never earlier (the store would refuse). Returns the
        retain-until the store holds afterwards."""
        until = ceil_second(require_aware(until, f"retention of {bucket}/{key}"))
        version = self._require(bucket, key)
        name = self._name(bucket)
        vid = version.version_id

        def call() -> datetime:
            current = retain_until(self.client, name, key, vid)
            if current is not None and current >= until:
                return current
            self.client.set_object_retention(
                name, key, Retention(COMPLIANCE, until), version_id=vid
            )
            effective = retain_until(self.client, name, key, vid)
            if effective is None or effective < until:
                raise StoreError(
                    f"{name}/{key}: asked to retain until {until.isoformat()}, the store now"
                    f" says {effective.isoformat() if effective else 'no retention'}"
                )
            return effective

        return self._retrying(f"extend retention of {name}/{key} to {until.isoformat()}", call)

    def delete_expired(self, bucket: Bucket, key: str, now: datetime) -> None:
        """Delete every version (and delete marker) of the key, the evidence version last.

        Refused with ``RetentionActive`` if any version is retained past ``now`` or held. The
        store checks again against its own clock: a deletion it refuses (``now`` given too
        late, a hold set meanwhile) fails as ``StoreRefused``, evidence version untouched.
        A key with no versions left is a no-op, so an interrupted deletion can be repeated.
        """
        check_key(key)
        now = require_aware(now, f"deletion of {bucket}/{key}")
        name = self._name(bucket)
        listing = self._retrying(
            f"list versions of {name}/{key}", lambda: list_versions(self.client, name, key)
        )
        versions = [entry for entry in listing if not entry.delete_marker]
        if any(entry.version_id is None for entry in listing):
            raise StoreError(f"{name}/{key}: a version without ID; is the bucket versioned?")
        for entry in versions:
            until = self._retrying(
                f"read retention {name}/{key}",
                functools.partial(retain_until, self.client, name, key, entry.version_id),
            )
            held = self._retrying(
                f"read legal hold {name}/{key}",
                functools.partial(legal_hold_on, self.client, name, key, entry.version_id),
            )
            if held or (until is not None and until > now):
                raise RetentionActive(bucket, key, retain_until=until, legal_hold=held, now=now)
        evidence = min(versions, key=lambda e: e.age_order) if versions else None
        order = [e for e in listing if e is not evidence] + ([evidence] if evidence else [])
        for entry in order:
            self._retrying(
                f"delete {name}/{key} version {entry.version_id}",
                functools.partial(
                    self.client.remove_object, name, key, version_id=entry.version_id
                ),
            )
        logger.info("%s/%s: deleted %d version(s) after retention", name, key, len(versions))

    def presigned_get_url(self, bucket: Bucket, key: str, expires: timedelta) -> str:
        """A time-limited GET URL for the evidence version."""
        version = self._require(bucket, key)
        name = self._name(bucket)
        return self._retrying(
            f"presign {name}/{key}",
            lambda: self.client.presigned_get_object(
                name, key, expires=expires, version_id=version.version_id
            ),
        )
