"""Vigil's HTTP API (FastAPI): devices upload, reviewers review, supervisors approve, auditors
audit. ``create_api`` wires it from the app's collaborators; ``vigil api`` serves it.

Every request carries a bearer token (``Authorization: Bearer vgl_…``); media links are
short-lived signed URLs instead, so that a ``<video>`` element or an HLS player can follow them.
Every read is a custody event (``view``), and so is every denial of an identified principal
(``access.denied``); a request that proves no principal is counted and summarised by the guard
(``guard``), at most one custody event per address and window. Bodies are capped before anything
reads them (``limits``). See docs/security.md.

The routes are in ``interfaces.api.routes``, one module per resource; what they depend on in
``deps``, their models in ``schemas``, the signed media links in ``links``, and the mapping of
Vigil's errors to HTTP statuses in ``errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI
from vigil_verify.errors import VigilError

from ingest.uploads import MAX_CHUNK, UploadService
from interfaces.api.background import Background, _in_thread
from interfaces.api.deps import API, Services
from interfaces.api.errors import vigil_error
from interfaces.api.guard import AuthGuard
from interfaces.api.headers import SecurityHeaders
from interfaces.api.limits import BodyCap, BodyLimit
from interfaces.api.priority import PeopleFirst
from interfaces.api.routes import (
    cases,
    custody,
    docs,
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
from workers.secrets import link_secret

logger = logging.getLogger(__name__)

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
    docs.router,
)
"""Every route module's router, in the order of the OpenAPI document."""

BODY_CAPS = (
    BodyCap("PUT", re.compile(rf"{API}/uploads/[^/]+"), MAX_CHUNK),
    BodyCap("POST", re.compile(rf"{API}/stats/reconcile"), stats.MAX_CSV_BYTES),
)
"""Routes whose bodies may be larger than ``api_max_body_bytes``: upload chunks, CSV imports."""


def create_api(vigil: Vigil, *, secret: bytes | None = None, background: bool = True) -> FastAPI:
    """The API over ``vigil``. With ``background`` (the default) its process also processes
    uploads and signs ledger heads (see ``Background``), for as long as it serves.

    ``secret`` signs media links; without one (or empty), ``VIGIL_API_SECRET``, or in
    development the deployment's generated secret (``workers.secrets.link_secret``, which
    refuses production without one)."""
    settings = vigil.settings
    if not secret:
        found = link_secret(settings)
        if found.notice:
            logger.warning("%s", found.notice)
        secret = found.value
    worker = None
    if background:
        sign_every = settings.ledger_interval_s if vigil.bus is not None else None
        worker = Background(vigil, sign_every_s=sign_every)
    guard = AuthGuard(
        record=vigil.catalog.add_event,
        registry=vigil.metrics.registry,
        limit=settings.api_auth_failure_limit,
        window_s=settings.api_auth_log_window_s,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if worker is not None:
            worker.start()
        flusher = asyncio.create_task(_flush_every(guard, min(60.0, guard.window_s)))
        sweeper = asyncio.create_task(
            _expire_every(vigil.uploads, min(600.0, vigil.uploads.limits.expire_s / 4))
        )
        try:
            yield
        finally:
            flusher.cancel()
            sweeper.cancel()
            await _in_thread(guard.flush, everything=True)
            if worker is not None:
                await _in_thread(worker.stop, settings.shutdown_grace_s)

    api = FastAPI(
        title="Vigil",
        version="1.0.0",
        description="Video evidence: device uploads, case review, custody log, exports.",
        lifespan=lifespan,
        docs_url=None,  # ours (routes/docs.py): Swagger UI's files served here, not from a CDN
        redoc_url=None,
    )
    api.state.services = Services(
        vigil, vigil.access, vigil.uploads, vigil.exports, secret, guard, background=worker
    )
    api.add_middleware(BodyLimit, default=settings.api_max_body_bytes, caps=BODY_CAPS)
    api.add_middleware(SecurityHeaders)
    api.add_middleware(PeopleFirst, lane=api.state.services.uploads_lane)

    api.exception_handler(VigilError)(vigil_error)
    for router in ROUTERS:
        api.include_router(router)
    web.mount_static(api)
    docs.mount_docs(api)
    return api


async def _flush_every(guard: AuthGuard, every_s: float) -> None:
    """Write the guard's closed summaries even when no request comes to do it."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await _in_thread(guard.flush)
        except Exception:
            logger.exception("failed authentication: summaries not written; retrying")


async def _expire_every(uploads: UploadService, every_s: float) -> None:
    """Expire stale uploads even when no new upload starts to do it."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await _in_thread(uploads.expire)
        except Exception:
            logger.exception("uploads: stale uploads not expired; retrying")
