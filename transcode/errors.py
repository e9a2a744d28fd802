"""The transcode package's root error."""

from __future__ import annotations

from vigil_verify.errors import ErrorKind, VigilError


class TranscodeError(VigilError):
    """Root of the errors raised by the transcode package (ffmpeg, probing, segmenting)."""

    kind = ErrorKind.FAILED
