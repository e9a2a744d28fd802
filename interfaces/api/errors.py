"""Vigil's errors as HTTP answers, in one place: every error derives from ``VigilError``, whose
``kind`` says what the caller can do about it; ``STATUS`` maps each kind to a status, and
``vigil_error`` answers with it and the error's message as ``detail``."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import JSONResponse
from vigil_verify.errors import ErrorKind, VigilError

logger = logging.getLogger(__name__)

STATUS: dict[ErrorKind, int] = {
    ErrorKind.INVALID: 422,  # fix the request or the input and send it again
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,  # not in this state: an offset to resume from, a decided export
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.FAILED: 409,  # attempted and failed (a tool, a check)
    ErrorKind.UNAVAILABLE: 503,  # a service or tool is missing or down; try again later
}


async def vigil_error(_request: Request, exc: VigilError) -> JSONResponse:
    """Any of Vigil's errors: the status of its ``kind``, its message as ``detail``. Work that
    failed, or a service that is down, is the operator's business too: logged with its trace."""
    if exc.kind in (ErrorKind.FAILED, ErrorKind.UNAVAILABLE):
        logger.warning("%s: %s", type(exc).__name__, exc, exc_info=exc)
    return JSONResponse({"detail": str(exc)}, status_code=STATUS[exc.kind])
