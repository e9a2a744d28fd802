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
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import BinaryIO, TypeVar, cast

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.retention import Retention
from urllib3.util import Retry, Timeout

from store.base import CHUNK, Bucket, StoredObject, require_aware
from store.errors import (
    ObjectConflict,
    ObjectMissing,
    RetentionActive,
    StoreError,
    StoreRefused,
    StoreUnavailable,
)
from store.retention import DEFAULT_RETENTION, RetentionPolicy

logger = logging.getLogger(__name__)

T = TypeVar("T")

SHA256_META = "x-amz-meta-sha256"
PART_SIZE = 16 << 20
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchObject"})
# "no retention / no legal hold on this version", as S3, MinIO and SeaweedFS spell it
# (SeaweedFS answers ObjectLockConfigurationNotFoundError for a version without retention)
_NO_LOCK_CODES = frozenset(
    {"NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError"}
)
_NO_RETENTION_CODES = _NO_LOCK_CODES | {"NoSuchObjectRetention"}
_NO_HOLD_CODES = _NO_LOCK_CODES | {"NoSuchObjectLegalHold"}
_TRANSIENT_CODES = frozenset(
    {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "RequestTimeTooSkewed"}
)


@dataclass(frozen=True)
class _Version:
    """One stored version of a key, as the store describes it."""

    version_id: str | None
    sha256: str | None
    size: int


@dataclass(frozen=True)
class _Listed:
    """One entry of a key's version listing (a version or a delete marker)."""

    version_id: str | None
    delete_marker: bool
    last_modified: datetime | None
    index: int  # position in the listing, which is newest first

    @property
    def age_order(self) -> tuple[datetime, int]:
        return (self.last_modified or datetime.max.replace(tzinfo=UTC), -self.index)


def _ceil_second(value: datetime) -> datetime:
    """Round up to a whole second: S3 keeps retain-until dates to the second or millisecond;
    asking for a whole second means what is read back is what was asked, never earlier."""
    whole = value.replace(microsecond=0)
    return whole if whole == value else whole + timedelta(seconds=1)


class _HashingReader:
    """Reads ``length`` bytes of ``source`` for the uploader, hashing them on the way.

    When the last byte has been read (before the uploader sends the last part, or the only
    part), a hash that differs from ``expected`` raises, so the upload is abandoned.
    """

    def __init__(self, source: BinaryIO, length: int, expected: str, what: str) -> None:
        self.source = source
        self.remaining = length
        self.expected = expected
        self.what = what
        self.digest = hashlib.sha256()
        self._checked = False
        if length == 0:
            self._check()

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        want = self.remaining if size < 0 else min(size, self.remaining)
        data = self.source.read(want)
        self.digest.update(data)
        self.remaining -= len(data)
        if self.remaining == 0:
            self._check()
        return data

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        read = self.digest.hexdigest()
        if read != self.expected:
            raise StoreError(
                f"{self.what}: the file does not have the hash given for it (expected"
                f" {self.expected[:16]}…, read {read[:16]}…); nothing stored"
            )


def _check_key(key: str) -> None:
    if not key or key.startswith("/") or ".." in PurePosixPath(key).parts:
        raise StoreError(f"invalid object key {key!r}")


def is_transient(exc: BaseException) -> bool:
    """An outage worth waiting out (connection trouble, 5xx), not a refusal."""
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, ServerError):
        return exc.status_code >= 500
    if isinstance(exc, S3Error):
        return exc.response.status >= 500 or exc.code in _TRANSIENT_CODES
    if isinstance(exc, InvalidResponseError):  # a non-XML answer, e.g. a proxy's 502 page
        status = getattr(exc, "_code", None)
        return isinstance(status, int) and status >= 500
    return False


def _describe(exc: BaseException) -> str:
    if isinstance(exc, S3Error):
        return f"{exc.code} (HTTP {exc.response.status})"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}"


def http_client(
    connect_timeout_s: float = 10.0, read_timeout_s: float = 120.0
) -> urllib3.PoolManager:
    """An HTTP pool for the minio client that gives up on a request within seconds.

    minio's own default retries a refused connection 5 times with growing pauses (about 15 s
    per multipart upload call, twice with the abort); here two quick retries are enough,
    because ``S3ObjectStore`` does the patient waiting, and logs it.
    """
    return urllib3.PoolManager(
        timeout=Timeout(connect=connect_timeout_s, read=read_timeout_s),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )


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
                        f" ({_describe(exc)}); gave up after {retries} retries"
                    ) from exc
                retries += 1
                logger.warning(
                    "%s: object store unavailable (%s); retry %d in %.1f s (%.0f of %.0f s"
                    " outage budget used)",
                    what, _describe(exc), retries, delay, waited, self.outage_budget_s,
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

    def _stat_version(self, name: str, key: str, version_id: str | None) -> _Version | None:
        try:
            st = self.client.stat_object(name, key, version_id=version_id)
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                return None
            raise
        sha = st.metadata.get(SHA256_META) if st.metadata is not None else None
        return _Version(st.version_id or version_id, sha, st.size or 0)

    def _evidence_version(self, bucket: Bucket, key: str) -> _Version | None:
        """The oldest live version of the key: the one that was written first.

        Ordered by modification time, and within one time (listings may give whole seconds)
        by listing order: S3 lists the versions of a key newest first.
        """
        name = self._name(bucket)
        listed = [
            (obj.last_modified or datetime.max.replace(tzinfo=UTC), -index, obj.version_id)
            for index, obj in enumerate(
                self.client.list_objects(name, prefix=key, include_version=True)
            )
            if obj.object_name == key and not obj.is_delete_marker
        ]
        if not listed:
            return None
        _when, _order, version_id = min(listed)
        return self._stat_version(name, key, version_id)

    def _require(self, bucket: Bucket, key: str) -> _Version:
        _check_key(key)
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
    ) -> StoredObject:
        """Upload once, hash-checked, locked; same content again is a no-op."""
        _check_key(key)
        name = self._name(bucket)
        size = path.stat().st_size
        return self._retrying(
            f"put {name}/{key} ({size} bytes)",
            lambda: self._put_once(bucket, key, path, sha256, size, category),
        )

    def _put_once(
        self, bucket: Bucket, key: str, path: Path, sha256: str, size: int, category: str | None
    ) -> StoredObject:
        """One attempt; safe to repeat (an earlier attempt may have completed unseen)."""
        name = self._name(bucket)
        existing = self._evidence_version(bucket, key)
        if existing is not None:
            return self._same_or_conflict(bucket, key, existing, sha256)
        until = self.retention_until(bucket, category)
        with path.open("rb") as fh:
            result = self.client.put_object(
                name,
                key,
                cast(BinaryIO, _HashingReader(fh, size, sha256, f"{name}/{key}")),
                size,
                metadata={SHA256_META: sha256},
                part_size=self.part_size,
                num_parallel_uploads=1,  # parts in order, one in memory at a time
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
        self, bucket: Bucket, key: str, existing: _Version, sha256: str
    ) -> StoredObject:
        if existing.sha256 != sha256:
            raise ObjectConflict(bucket, key, existing.sha256 or "(no sha256 recorded)", sha256)
        return StoredObject(bucket, key, sha256, existing.size)

    def stat(self, bucket: Bucket, key: str) -> StoredObject | None:
        """The evidence version's recorded hash and size; None if the key was never written."""
        _check_key(key)
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
                f"download {name}/{key}", lambda: self._download(bucket, key, version, target)
            )
            target.chmod(0o444)
            yield target
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _download(self, bucket: Bucket, key: str, version: _Version, target: Path) -> None:
        name = self._name(bucket)
        try:
            response = self.client.get_object(name, key, version_id=version.version_id)
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                raise ObjectMissing(bucket, key) from exc
            raise
        digest = hashlib.sha256()
        size = 0
        try:
            with target.open("wb") as out:
                for chunk in response.stream(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        finally:
            response.close()
            response.release_conn()
        if version.sha256 is not None and digest.hexdigest() != version.sha256:
            raise StoreError(
                f"{name}/{key}: downloaded bytes hash to {digest.hexdigest()[:16]}…, not the"
                f" recorded {version.sha256[:16]}… ({size} of {version.size} bytes)"
            )

    @contextlib.contextmanager
    def open(self, bucket: Bucket, key: str) -> Iterator[BinaryIO]:
        """A streaming read of the evidence version; the connection is released afterwards."""
        version = self._require(bucket, key)
        name = self._name(bucket)

        def get() -> urllib3.BaseHTTPResponse:
            try:
                return self.client.get_object(name, key, version_id=version.version_id)
            except S3Error as exc:
                if exc.code in _MISSING_CODES:
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

    def _retain_until(self, name: str, key: str, version_id: str | None) -> datetime | None:
        try:
            retention = self.client.get_object_retention(name, key, version_id=version_id)
        except S3Error as exc:
            if exc.code in _NO_RETENTION_CODES:
                return None
            raise
        if retention is None or retention.retain_until_date is None:
            return None
        return require_aware(retention.retain_until_date, f"retention of {name}/{key}")

    def _held(self, name: str, key: str, version_id: str | None) -> bool:
        try:
            return self.client.is_object_legal_hold_enabled(name, key, version_id=version_id)
        except S3Error as exc:
            if exc.code in _NO_HOLD_CODES:
                return False
            raise

    def legal_hold(self, bucket: Bucket, key: str) -> bool:
        """Whether the evidence version's legal hold is on."""
        version = self._require(bucket, key)
        name = self._name(bucket)
        return self._retrying(
            f"read legal hold {name}/{key}", lambda: self._held(name, key, version.version_id)
        )

    def retention(self, bucket: Bucket, key: str) -> datetime | None:
        """The evidence version's retain-until date, or None if it has none."""
        version = self._require(bucket, key)
        name = self._name(bucket)
        return self._retrying(
            f"read retention {name}/{key}",
            lambda: self._retain_until(name, key, version.version_id),
        )

    def extend_retention(self, bucket: Bucket, key: str, until: datetime) -> datetime:
        """COMPLIANCE retain-until of the evidence version moved to ``until`` (rounded up to
        the second) if that is later; never earlier (the store would refuse). Returns the
        retain-until the store holds afterwards."""
        until = _ceil_second(require_aware(until, f"retention of {bucket}/{key}"))
        version = self._require(bucket, key)
        name = self._name(bucket)
        vid = version.version_id

        def call() -> datetime:
            current = self._retain_until(name, key, vid)
            if current is not None and current >= until:
                return current
            self.client.set_object_retention(
                name, key, Retention(COMPLIANCE, until), version_id=vid
            )
            effective = self._retain_until(name, key, vid)
            if effective is None or effective < until:
                raise StoreError(
                    f"{name}/{key}: asked to retain until {until.isoformat()}, the store now"
                    f" says {effective.isoformat() if effective else 'no retention'}"
                )
            return effective

        return self._retrying(f"extend retention of {name}/{key} to {until.isoformat()}", call)

    def _listing(self, name: str, key: str) -> list[_Listed]:
        return [
            _Listed(obj.version_id, bool(obj.is_delete_marker), obj.last_modified, index)
            for index, obj in enumerate(
                self.client.list_objects(name, prefix=key, include_version=True)
            )
            if obj.object_name == key
        ]

    def delete_expired(self, bucket: Bucket, key: str, now: datetime) -> None:
        """Delete every version (and delete marker) of the key, the evidence version last.

        Refused with ``RetentionActive`` if any version is retained past ``now`` or held. The
        store checks again against its own clock: a deletion it refuses (``now`` given too
        late, a hold set meanwhile) fails as ``StoreRefused``, evidence version untouched.
        A key with no versions left is a no-op, so an interrupted deletion can be repeated.
        """
        _check_key(key)
        now = require_aware(now, f"deletion of {bucket}/{key}")
        name = self._name(bucket)
        listing = self._retrying(f"list versions of {name}/{key}", lambda: self._listing(name, key))
        versions = [entry for entry in listing if not entry.delete_marker]
        if any(entry.version_id is None for entry in listing):
            raise StoreError(f"{name}/{key}: a version without ID; is the bucket versioned?")
        for entry in versions:
            until = self._retrying(
                f"read retention {name}/{key}",
                functools.partial(self._retain_until, name, key, entry.version_id),
            )
            held = self._retrying(
                f"read legal hold {name}/{key}",
                functools.partial(self._held, name, key, entry.version_id),
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
