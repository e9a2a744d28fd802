"""Errors of the object stores: one root, ``StoreError``, and small subclasses with context."""

from __future__ import annotations

from datetime import datetime

from vigil_verify.errors import ErrorKind, VigilError

from store.base import Bucket


class StoreError(VigilError):
    """Root of the errors raised by object stores."""

    kind = ErrorKind.FAILED


class ObjectConflict(StoreError):
    """An object exists under this key with other content; it is never overwritten."""

    kind = ErrorKind.CONFLICT

    def __init__(self, bucket: Bucket, key: str, existing: str, offered: str) -> None:
        super().__init__(
            f"{bucket}/{key} already holds sha256 {existing[:16]}…; refusing to overwrite it"
            f" with {offered[:16]}…"
        )
        self.bucket, self.key, self.existing, self.offered = bucket, key, existing, offered


class ObjectMissing(StoreError):
    kind = ErrorKind.NOT_FOUND

    def __init__(self, bucket: Bucket, key: str) -> None:
        super().__init__(f"{bucket}/{key} is not in the store")
        self.bucket, self.key = bucket, key


class RetentionActive(StoreError):
    """``delete_expired`` refused: the object is still retained, or under legal hold."""

    kind = ErrorKind.CONFLICT

    def __init__(
        self,
        bucket: Bucket,
        key: str,
        *,
        retain_until: datetime | None,
        legal_hold: bool,
        now: datetime,
    ) -> None:
        reasons = []
        if retain_until is not None and retain_until > now:
            reasons.append(f"retained until {retain_until.isoformat()}")
        if legal_hold:
            reasons.append("under legal hold")
        super().__init__(
            f"{bucket}/{key} is still protected ({' and '.join(reasons)}, checked at"
            f" {now.isoformat()}); not deleted"
        )
        self.bucket, self.key = bucket, key
        self.retain_until, self.legal_hold, self.now = retain_until, legal_hold, now


class StoreUnavailable(StoreError):
    """The store stayed unreachable for the whole outage budget; nothing was dropped."""

    kind = ErrorKind.UNAVAILABLE


class StoreRefused(StoreError):
    """The store answered and refused (access denied, Object Lock, missing bucket, ...)."""

    kind = ErrorKind.FAILED

    def __init__(self, what: str, code: str | None, message: str) -> None:
        super().__init__(f"{what}: refused by the object store ({code}): {message}")
        self.code = code
