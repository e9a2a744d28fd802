"""Limits before work: request bodies are capped before anything authenticates or parses them.

``BodyLimit`` is an ASGI middleware: a ``Content-Length`` over the cap is refused with 413 before
the application sees the request, and a body sent without one (chunked) is refused as soon as
more than the cap has arrived, so that no request makes the server hold more than its cap. The
cap is per route (``BodyCap``): an upload chunk may be as large as a chunk may be, a CSV import
as large as its schema allows, every other body (JSON) small.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


@dataclass(frozen=True)
class BodyCap:
    """The largest body ``method`` requests to paths matching ``path`` may carry."""

    method: str
    path: re.Pattern[str]
    limit: int


class BodyLimit:
    """Caps every request body (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, default: int, caps: Sequence[BodyCap] = ()) -> None:
        self.app = app
        self.default = default
        self.caps = tuple(caps)

    def limit_for(self, method: str, path: str) -> int:
        for cap in self.caps:
            if cap.method == method and cap.path.fullmatch(path):
                return cap.limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(scope, receive, send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) <= 20 else None
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = JSONResponse(
        {"detail": BodyTooLarge(limit).detail},
        status_code=413,
        headers={"Connection": "close"},  # the rest of the body is not read
    )
    await response(scope, receive, send)
