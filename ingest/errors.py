"""The ingest package's root error."""

from __future__ import annotations

from vigil_verify.errors import ErrorKind, VigilError


class IngestError(VigilError):
    """Root of the errors raised while taking in a recording."""

    kind = ErrorKind.INVALID


class NotVideo(IngestError):
    """The input is not a video or audio recording; nothing was stored."""
