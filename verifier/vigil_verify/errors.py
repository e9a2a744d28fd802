"""The one root of every error Vigil raises, server and verifier alike.

``VigilError`` lives here, in the lowest layer, because every other package may import
``vigil_verify`` and none may import upwards (docs/architecture.md). Each package derives its
own root from it (``StoreError``, ``CatalogError``, ``TranscodeError``, ``ProofError``,
``IngestError``, ``WorkerError``, ``VerifyError``); the interfaces map ``kind`` to an HTTP
status and a CLI exit code, each in one place.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """What the caller can do about an error: the interfaces' mapping keys on this alone."""

    INVALID = "invalid"  # the request or input is wrong; fix it and try again
    NOT_FOUND = "not_found"  # nothing of that name (or nothing the caller may see)
    CONFLICT = "conflict"  # the state does not allow it now (offset, status, duplicate)
    FORBIDDEN = "forbidden"  # the caller may not do this
    UNAVAILABLE = "unavailable"  # a service or tool is missing or down; try again later
    FAILED = "failed"  # the work was attempted and failed (a tool, a check)


class VigilError(Exception):
    """Root of all of Vigil's errors. ``kind`` says what the caller can do about it."""

    kind: ErrorKind = ErrorKind.FAILED


class VerifyError(VigilError):
    """Root of the stand-alone verifier's errors: input that is not what it should be."""

    kind = ErrorKind.INVALID
