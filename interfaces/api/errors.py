"""Vigil's errors as HTTP answers, in one place: every error derives from ``VigilError``, whose
``kind`` says what the caller can do about it; ``STATUS`` maps each kind to a status, and
``vigil_error`` answers with it and the error's message as ``detail``, with no path of the
server's in it (``redact_paths``)."""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path

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


def redact_paths(text: str, data_dir: Path) -> str:
    """``text`` without the server's file paths (those under the data folder or the temporary
    folder): a tool's "PATH: why" keeps only the why, any other such path becomes "a server
    file". What a device sent is named by the name it gave, never where it was kept."""
    roots = {str(data_dir), str(data_dir.resolve()), tempfile.gettempdir()}
    for root in sorted((r for r in roots if len(r) > 1), key=len, reverse=True):
        text = re.sub(re.escape(root) + r"[^\s'\"]*?: ", "", text)
        text = re.sub(re.escape(root) + r"[^\s'\"]*", "a server file", text)
    return text


async def vigil_error(request: Request, exc: VigilError) -> JSONResponse:
    """Any of Vigil's errors: the status of its ``kind``, its message (without server paths) as
    ``detail``. Work that failed, or a service that is down, is the operator's business too:
    logged with its trace."""
    if exc.kind in (ErrorKind.FAILED, ErrorKind.UNAVAILABLE):
        logger.warning("%s: %s", type(exc).__name__, exc, exc_info=exc)
    detail = redact_paths(str(exc), request.app.state.services.vigil.settings.data_dir)
    return JSONResponse({"detail": detail}, status_code=STATUS[exc.kind])
