"""What ``store.s3.S3ObjectStore`` is built on: the S3 error codes it tells apart, which errors
are an outage (``is_transient``), the HTTP pool it talks through (``http_client``), the
hash-checking upload reader, and single calls on one key: its versions, retention and legal
hold read, and a hash-checked download.

None of these retries: ``S3ObjectStore`` wraps each call in its outage retry.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import certifi
import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError
from urllib3.util import Retry, Timeout

from store.base import CHUNK, Bucket, require_aware
from store.errors import ObjectMissing, StoreError

SHA256_META = "x-amz-meta-sha256"
MISSING_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchObject"})
# "no retention / no legal hold on this version", as S3, MinIO and SeaweedFS spell it
# (SeaweedFS answers ObjectLockConfigurationNotFoundError for a version without retention)
_NO_LOCK_CODES = frozenset(
    {"NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError"}
)
NO_RETENTION_CODES = _NO_LOCK_CODES | {"NoSuchObjectRetention"}
NO_HOLD_CODES = _NO_LOCK_CODES | {"NoSuchObjectLegalHold"}
_TRANSIENT_CODES = frozenset(
    {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "RequestTimeTooSkewed"}
)


@dataclass(frozen=True)
class Version:
    """One stored version of a key, as the store describes it."""

    version_id: str | None
    sha256: str | None
    size: int


@dataclass(frozen=True)
class Listed:
    """One entry of a key's version listing (a version or a delete marker)."""

    version_id: str | None
    delete_marker: bool
    last_modified: datetime | None
    index: int  # position in the listing, which is newest first

    @property
    def age_order(self) -> tuple[datetime, int]:
        return (self.last_modified or datetime.max.replace(tzinfo=UTC), -self.index)


def ceil_second(value: datetime) -> datetime:
    """Round up to a whole second: S3 keeps retain-until dates to the second or millisecond;
    asking for a whole second means what is read back is what was asked, never earlier."""
    whole = value.replace(microsecond=0)
    return whole if whole == value else whole + timedelta(seconds=1)


MAX_PARTS = 10_000  # S3's limit per multipart upload


def part_size_for(size: int, least: int) -> int:
    """The part size for an object of ``size`` bytes: ``least``, or whole MiB large enough
    that it fits in S3's 10,000 parts."""
    needed = -(-size // MAX_PARTS)
    return max(least, -(-needed // (1 << 20)) << 20)


class HashingReader:
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


def check_key(key: str) -> None:
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


def describe(exc: BaseException) -> str:
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


# -- one key's versions, retention and legal hold (bucket ``name``) ----------------------------


def stat_version(client: Minio, name: str, key: str, version_id: str | None) -> Version | None:
    try:
        st = client.stat_object(name, key, version_id=version_id)
    except S3Error as exc:
        if exc.code in MISSING_CODES:
            return None
        raise
    sha = st.metadata.get(SHA256_META) if st.metadata is not None else None
    return Version(st.version_id or version_id, sha, st.size or 0)


def evidence_version(client: Minio, name: str, key: str) -> Version | None:
    """The oldest live version of the key: the one that was written first.

    Ordered by modification time, and within one time (listings may give whole seconds)
    by listing order: S3 lists the versions of a key newest first.
    """
    listed = [
        (obj.last_modified or datetime.max.replace(tzinfo=UTC), -index, obj.version_id)
        for index, obj in enumerate(client.list_objects(name, prefix=key, include_version=True))
        if obj.object_name == key and not obj.is_delete_marker
    ]
    if not listed:
        return None
    _when, _order, version_id = min(listed)
    return stat_version(client, name, key, version_id)


def list_versions(client: Minio, name: str, key: str) -> list[Listed]:
    """Every version and delete marker of the key, newest first."""
    return [
        Listed(obj.version_id, bool(obj.is_delete_marker), obj.last_modified, index)
        for index, obj in enumerate(client.list_objects(name, prefix=key, include_version=True))
        if obj.object_name == key
    ]


def retain_until(client: Minio, name: str, key: str, version_id: str | None) -> datetime | None:
    """The version's retain-until date, or None if it has none."""
    try:
        retention = client.get_object_retention(name, key, version_id=version_id)
    except S3Error as exc:
        if exc.code in NO_RETENTION_CODES:
            return None
        raise
    if retention is None or retention.retain_until_date is None:
        return None
    return require_aware(retention.retain_until_date, f"retention of {name}/{key}")


def legal_hold_on(client: Minio, name: str, key: str, version_id: str | None) -> bool:
    """Whether the version's legal hold is on."""
    try:
        return client.is_object_legal_hold_enabled(name, key, version_id=version_id)
    except S3Error as exc:
        if exc.code in NO_HOLD_CODES:
            return False
        raise


def download(
    client: Minio, bucket: Bucket, name: str, key: str, version: Version, target: Path
) -> None:
    """Write ``version`` of ``key`` (in bucket ``name``, Vigil's ``bucket``) to ``target``;
    raise if its bytes do not hash to the recorded sha256."""
    try:
        response = client.get_object(name, key, version_id=version.version_id)
    except S3Error as exc:
        if exc.code in MISSING_CODES:
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
