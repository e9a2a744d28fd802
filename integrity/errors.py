"""The integrity package's root error."""

from __future__ import annotations

from vigil_verify.errors import ErrorKind, VigilError


class ProofError(VigilError):
    """Root of the errors raised while proving footage unchanged (ledger, timestamps, match,
    export packages)."""

    kind = ErrorKind.FAILED
