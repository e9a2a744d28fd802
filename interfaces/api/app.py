"""Vigil's HTTP API (FastAPI): devices upload, reviewers review, supervisors approve, auditors
audit. ``create_api`` wires it from the app's collaborators; ``vigil api`` serves it.

Every request carries a bearer token (``Authorization: Bearer vgl_…``); media links are
short-lived signed URLs instead, so that a ``<video>`` element or an HLS player can follow them.
Every read is a custody event (``view``), and so is every denial (``access.denied``).

The routes are in ``interfaces.api.routes``, one module per resource; what they depend on in
``deps``, their models in ``schemas``, the signed media links in ``links``, and the mapping of
Vigil's errors to HTTP statuses in ``errors``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from vigil_verify.errors import VigilError

from interfaces.api.background import Background, _in_thread
from interfaces.api.deps import API, Services
from interfaces.api.errors import vigil_error
from interfaces.api.routes import (
    cases,
    custody,
    exports,
    ledger,
    me,
    media,
    metrics,
    recordings,
    stats,
    uploads,
    web,
)
from workers.app import Vigil

ROUTERS: tuple[APIRouter, ...] = (
    me.router,
    uploads.router,
    cases.router,
    custody.router,
    recordings.router,
    media.router,
    exports.router,
    ledger.router,
    metrics.router,
    web.router,
    stats.router,
)
"""Every route module's router, in the order of the OpenAPI document."""


def create_api(vigil: Vigil, *, secret: bytes, background: bool = True) -> FastAPI:
    """The API over ``vigil``. With ``background`` (the default) its process also processes
    uploads and signs ledger heads (see ``Background``), for as long as it serves."""
    worker = None
    if background:
        sign_every = vigil.settings.ledger_interval_s if vigil.bus is not None else None
        worker = Background(vigil, sign_every_s=sign_every)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                await _in_thread(worker.stop, vigil.settings.shutdown_grace_s)

    api = FastAPI(
        title="Vigil",
        version="1.0.0",
        description="Video evidence: device uploads, case review, custody log, exports.",
        lifespan=lifespan,
    )
    api.state.services = Services(
        vigil, vigil.access, vigil.uploads, vigil.exports, secret, background=worker
    )

    @api.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if not request.url.path.startswith(API):
            response.headers.setdefault("Content-Security-Policy", web.PAGE_CSP)
        return response

    api.exception_handler(VigilError)(vigil_error)
    for router in ROUTERS:
        api.include_router(router)
    web.mount_static(api)
    return api
