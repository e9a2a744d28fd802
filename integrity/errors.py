"""The integrity package's root error."""

from __future__ import annotations

from vigil_verify.errors import ErrorKind, VigilError


class ProofError(VigilError):
    """Root of the errors raised while proving footage unchanged (ledger, timestamps, match,
    export packages)."""

    kind = ErrorKind.FAILED


class LedgerError(ProofError):
    """The ledger cannot do what was asked; the message names why."""

    kind = ErrorKind.CONFLICT


class SigningKeyError(LedgerError):
    """The signing key is missing, unreadable or of the wrong type."""
