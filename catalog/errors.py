"""The catalogue's root error and its general subclasses."""

from __future__ import annotations

from vigil_verify.errors import ErrorKind, VigilError


class CatalogError(VigilError):
    """Root of the errors raised by the catalogue (rows, cases, access, reports, retention)."""

    kind = ErrorKind.INVALID


class NotFound(CatalogError):
    """No row of that name (or none the caller may see)."""

    kind = ErrorKind.NOT_FOUND
