"""Vigil's HTTP API (FastAPI): devices upload, reviewers review, supervisors approve, auditors
audit. ``create_api`` wires it from the app's collaborators; ``vigil api`` serves it.

Every request carries a bearer token (``Authorization: Bearer vgl_…``); media links are
short-lived signed URLs instead, so that a ``<video>`` element or an HLS player can follow them.
Every read is a custody event (``view``), and so is every denial (``access.denied``).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field, ValidationError

from catalog.access import AccessError, AccessService, Action, Caller, decide, visible_cases
from catalog.errors import CatalogError, NotFound
from catalog.exports import ExportRequestError, ExportService
from catalog.models import ExportRequest, Recording
from catalog.repository import Event, now
from catalog.stats.base import StatsError
from ingest.errors import IngestError, NotVideo
from ingest.service import GpsFix, RecordingMetadata
from ingest.uploads import (
    MAX_CHUNK,
    ChunkHashMismatch,
    OffsetMismatch,
    UploadError,
    UploadNotOpen,
    UploadService,
    UploadState,
)
from integrity.ledger import LedgerError, canonical_event
from integrity.timeline import CaseTimeline, case_timeline
from interfaces.api.stats import router as stats_router
from store.errors import ObjectMissing, StoreError
from workers.app import Vigil

logger = logging.getLogger(__name__)

API = "/api/v1"
WEB = Path(__file__).with_name("web")
MEDIA_TTL_S = 300
HEAD_MAX_AGE_S = 5.0  # the custody log signs a fresh head at most this often
PAGE_CSP = (
    "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; object-src 'none';"
    " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
    ".ts": "video/mp2t",
    ".flv": "video/x-flv",
}
_HEX64 = r"^[0-9a-fA-F]{64}$"
_ID = r"^[A-Za-z0-9._:-]{1,64}$"


class ErrorBody(BaseModel):
    detail: str


class ValidationIssue(BaseModel):
    """One field at fault (FastAPI's request validation; also ``input`` and ``ctx``)."""

    loc: list[str | int]
    msg: str
    type: str


class UnprocessableBody(BaseModel):
    detail: str | list[ValidationIssue] = Field(
        description="Why; for a request that does not match this schema, the fields at fault."
    )


ERRORS: dict[int | str, dict[str, Any]] = {
    **{code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 416)},
    422: {"model": UnprocessableBody},
}


def _media(*types: str, partial: bool = False) -> dict[int | str, dict[str, Any]]:
    """ERRORS, and the 200 (and 206 for a byte range) of a binary response of ``types``."""
    content = {t: {"schema": {"type": "string", "format": "binary"}} for t in types}
    ok: dict[int | str, dict[str, Any]] = {200: {"content": content}}
    if partial:
        ok[206] = {"description": "The range asked for (Range: bytes=a-b)", "content": content}
    return {**ERRORS, **ok}


# -- response models -----------------------------------------------------------------------------


class Me(BaseModel):
    id: str
    role: str
    display_name: str
    device_id: str | None
    officer_id: str | None
    assigned_cases: list[str]


class UploadStart(BaseModel):
    device_id: str = Field(pattern=_ID)
    officer_id: str | None = Field(None, pattern=_ID)
    size: int = Field(gt=0, le=1 << 40, description="Bytes the device will send.")
    original_name: str = Field("recording.mp4", min_length=1, max_length=255)
    category: str | None = Field(None, max_length=64)
    device_start: datetime | None = Field(None, description="Device time the recording began.")
    device_clock: datetime | None = Field(
        None, description="The device's clock now, as it starts the upload (drift check)."
    )
    gps_track: list[GpsFix] = Field(default_factory=list, max_length=100_000)


class UploadStatus(BaseModel):
    upload_id: str
    size: int
    offset: int = Field(description="Bytes confirmed: resume from here.")
    chunks: int
    status: Literal["open", "complete", "failed"]
    recording_id: str | None
    sha256: str | None
    may_delete: bool = Field(description="True once stored: the device may delete its copy.")
    error: str | None
    max_chunk: int = MAX_CHUNK


class UploadFinish(BaseModel):
    sha256: str = Field(pattern=_HEX64, description="SHA-256 of the whole file.")


class CaseSummary(BaseModel):
    case_id: str
    recordings: int


class SegmentOut(BaseModel):
    index: int
    start_s: float
    end_s: float
    wall_start: datetime | None
    sha256: str
    phash_digest: str | None
    integrity: str


class GapOut(BaseModel):
    kind: str
    start_s: float
    seconds: float


class RecordingOut(BaseModel):
    id: str
    device_id: str
    officer_id: str | None
    category: str | None
    device_start: datetime | None
    received_at: datetime
    clock_offset_s: float | None
    duration_s: float | None
    status: str
    sha256: str
    damage: str | None
    window_from_s: float | None
    window_to_s: float | None
    segments: list[SegmentOut]
    gaps: list[GapOut]
    continuous: bool


class DeviceGapOut(BaseModel):
    kind: str
    after: str
    before: str
    start: datetime
    seconds: float


class TimelineOut(BaseModel):
    case_id: str
    continuous: bool
    recordings: list[RecordingOut]
    device_gaps: list[DeviceGapOut]


class PlaybackOut(BaseModel):
    recording_id: str
    original: str = Field(description="Signed URL of the original (HTTP byte ranges).")
    playlist: str | None = Field(description="Signed URL of the HLS playlist of the segments.")
    proxy: str | None = Field(
        default=None,
        description=(
            "Signed URL of the HLS playlist of the review proxy (H.264/AAC), made for a source"
            " whose evidence segments a browser cannot play; null for the others."
        ),
    )
    expires_at: datetime


class VerifyOut(BaseModel):
    recording_id: str
    ok: bool
    original: str
    problems: list[str]
    segments: dict[str, str]


class EventOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    recording_id: str | None
    case_id: str | None
    reason: str | None
    detail: dict[str, Any] | None
    leaf: str | None = Field(description="The exact bytes in the log (canonical JSON).")
    position: int | None
    proof: list[str] | None = Field(description="RFC 6962 inclusion proof (hex), leaf first.")


class CustodyOut(BaseModel):
    case_id: str
    checkpoint: str = Field(description="The signed tree head the proofs are against.")
    tree_size: int
    events: list[EventOut]


class ExportAsk(BaseModel):
    reason: str = Field(min_length=3, max_length=2000)


class ExportDecision(BaseModel):
    note: str = Field("", max_length=2000)


class ExportOut(BaseModel):
    id: str
    case_id: str
    requested_by: str
    reason: str
    requested_at: datetime
    status: str
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    package_sha256: str | None
    package_size: int | None


class CheckpointOut(BaseModel):
    tree_size: int
    root: str
    note: str
    public_key_pem: str
    key_fingerprint: str


# -- wiring --------------------------------------------------------------------------------------


class Background:
    """The API process's own background work on embedded defaults: it drains the in-process bus
    (segmenting and hashing) when an upload finishes, so that finishing does not wait for it;
    re-announces, at start, recordings a previous process did not finish; signs a tree head of
    the ledger every ``sign_every_s``; and on stop drains what is queued before it returns.
    Under Kafka the stage workers and ``vigil ledger run`` do this; it only signs heads then
    if asked to."""

    def __init__(self, vigil: Vigil, *, sign_every_s: float | None) -> None:
        self.vigil = vigil
        self.sign_every_s = sign_every_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vigil-background", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        with contextlib.suppress(Exception):
            if self.vigil.bus is not None and self.vigil.resume_unfinished():
                self._wake.set()
        next_sign = time.monotonic()
        while True:
            timeout = None if self.sign_every_s is None else max(0.0, next_sign - time.monotonic())
            self._wake.wait(timeout)
            self._wake.clear()
            try:
                self.vigil.run_pipeline()
            except Exception:  # the message stays queued; the next wake retries it
                logger.exception("background: processing failed; it is retried")
            if self.sign_every_s is not None and time.monotonic() >= next_sign:
                try:
                    self.vigil.ledger.checkpoint()
                except Exception:
                    logger.exception("background: no tree head signed; retrying")
                next_sign = time.monotonic() + self.sign_every_s
            if self._stop.is_set():
                return


@dataclass
class Services:
    vigil: Vigil
    access: AccessService
    uploads: UploadService
    exports: ExportService
    secret: bytes
    background: Background | None = None


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(_services)]


def _vigil(request: Request) -> Vigil:
    return _services(request).vigil


def _deny(
    services: Services,
    actor: str,
    reason: str,
    where: str,
    case_id: str | None = None,
    recording_id: str | None = None,
) -> None:
    services.vigil.catalog.add_event(
        Event("access.denied", actor, recording_id, case_id, f"{where}: {reason}")
    )


def _caller(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Caller:
    where = f"{request.method} {request.url.path}"
    scheme, _, token = (authorization or "").partition(" ")
    caller = None
    if scheme.lower() == "bearer" and token:
        caller = services.access.authenticate(token.strip())
    if caller is None:
        why = "no bearer token" if not authorization else "unknown, revoked or expired token"
        _deny(services, "anonymous", why, where)
        raise HTTPException(401, why, headers={"WWW-Authenticate": "Bearer"})
    return caller


CallerDep = Annotated[Caller, Depends(_caller)]


def _require(
    services: Services,
    caller: Caller,
    action: Action,
    where: str,
    *,
    case_id: str | None = None,
    recording: Recording | None = None,
) -> None:
    decision = decide(
        caller,
        action,
        case_id=case_id,
        recording_officer=recording.officer_id if recording else None,
    )
    if not decision.allowed:
        _deny(
            services,
            caller.id,
            decision.reason,
            where,
            case_id,
            recording.id if recording else None,
        )
        raise HTTPException(403, decision.reason)


def _viewed(
    services: Services,
    caller: Caller,
    what: str,
    *,
    case_id: str | None = None,
    recording_id: str | None = None,
) -> None:
    services.vigil.catalog.add_event(Event("view", caller.id, recording_id, case_id, what))


def _recording_scope(
    services: Services,
    caller: Caller,
    recording: Recording,
    action: Action,
    where: str,
    via_case: str | None = None,
) -> None:
    """A recording is reachable through a case the caller may act on (or as its officer);
    with ``via_case``, through that case only."""
    if caller.role == "officer":
        _require(services, caller, action, where, recording=recording)
        return
    cases = [link.case_id for link in services.vigil.catalog.active_links(recording.id)]
    if via_case is not None:
        cases = [c for c in cases if c == via_case]  # not linked to it: nothing to reach by it
    for case_id in cases:
        if decide(caller, action, case_id=case_id).allowed:
            return
    reason = (
        f"{caller.id} may not {action} recording {recording.id}"
        f" (linked to {', '.join(cases) or 'no case'})"
    )
    _deny(services, caller.id, reason, where, recording_id=recording.id)
    raise HTTPException(403, reason)


# -- signed media URLs ---------------------------------------------------------------------------


def _sign(secret: bytes, recording_id: str, caller: str, case: str, expires: int) -> str:
    message = f"{recording_id}|{caller}|{case}|{expires}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:43]


def _media_url(
    secret: bytes, recording_id: str, caller: str, case: str, path: str
) -> tuple[str, int]:
    """A link to ``path`` of the recording, standing for ``caller`` for MEDIA_TTL_S, and
    naming the case it was opened from (so that every media read is logged against it)."""
    expires = int(time.time()) + MEDIA_TTL_S
    sig = _sign(secret, recording_id, caller, case, expires)
    query = f"by={caller}&case={case}&exp={expires}&sig={sig}"
    return f"{API}/media/{recording_id}/{path}?{query}", expires


@dataclass(frozen=True)
class MediaLink:
    """A checked signed media link: who it stands for and the case it was opened from."""

    recording_id: str
    by: str
    case: str | None


def _media_link(
    request: Request,
    services: ServicesDep,
    recording_id: CasePath,
    by: Annotated[str, Query(pattern=_ID)],
    exp: Annotated[int, Query(ge=0, le=2**40)],
    sig: Annotated[str, Query(min_length=1, max_length=64)],
    case: Annotated[str, Query(pattern=r"^[A-Za-z0-9._:-]{0,64}$")] = "",
) -> MediaLink:
    expected = _sign(services.secret, recording_id, by, case, exp)
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    if not hmac.compare_digest(expected.encode(), sig.encode()) or exp < time.time():
        where = f"{request.method} {request.url.path}"
        reason = "media link invalid or expired"
        _deny(services, by or "anonymous", reason, where, case or None, recording_id)
        raise HTTPException(403, "media link invalid or expired; ask for a new one")
    return MediaLink(recording_id, by, case or None)


MediaLinkDep = Annotated[MediaLink, Depends(_media_link)]


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, length) of a single-range request, None for the whole; 416 if unsatisfiable."""
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        raise HTTPException(416, f"unsupported range {header!r}; one bytes=a-b range")
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:
        start = max(0, size - int(last))
        end = size - 1
    if start >= size or end < start:
        raise HTTPException(
            416,
            f"range {header!r} outside {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end - start + 1


# -- the app -------------------------------------------------------------------------------------


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
            response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        return response

    _handlers(api)
    _routes(api)
    api.include_router(
        stats_router(_caller, _vigil), prefix=f"{API}/stats", tags=["stats"], responses=ERRORS
    )
    if WEB.is_dir():
        api.mount("/static", StaticFiles(directory=WEB / "static"), name="static")
    return api


def _handlers(api: FastAPI) -> None:
    def error(status: int, detail: str) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status)

    @api.exception_handler(NotFound)
    async def not_found(_r: Request, exc: NotFound) -> JSONResponse:
        return error(404, str(exc))

    @api.exception_handler(ObjectMissing)
    async def missing(_r: Request, exc: ObjectMissing) -> JSONResponse:
        return error(404, str(exc))

    @api.exception_handler(OffsetMismatch)
    async def offset(_r: Request, exc: OffsetMismatch) -> JSONResponse:
        return error(409, str(exc))

    @api.exception_handler(ChunkHashMismatch)
    async def bad_chunk(_r: Request, exc: ChunkHashMismatch) -> JSONResponse:
        return error(422, str(exc))

    @api.exception_handler(UploadNotOpen)
    async def not_open(_r: Request, exc: UploadNotOpen) -> JSONResponse:
        return error(409, str(exc))

    @api.exception_handler(NotVideo)
    async def not_video(_r: Request, exc: NotVideo) -> JSONResponse:
        return error(422, str(exc))

    @api.exception_handler(UploadError)
    async def upload(_r: Request, exc: UploadError) -> JSONResponse:
        return error(422, str(exc))

    @api.exception_handler(IngestError)
    async def ingest(_r: Request, exc: IngestError) -> JSONResponse:
        return error(422, str(exc))

    @api.exception_handler(ExportRequestError)
    async def export(_r: Request, exc: ExportRequestError) -> JSONResponse:
        return error(409, str(exc))

    @api.exception_handler(AccessError)
    async def access(_r: Request, exc: AccessError) -> JSONResponse:
        return error(409, str(exc))

    @api.exception_handler(LedgerError)
    async def ledger(_r: Request, exc: LedgerError) -> JSONResponse:
        return error(409, str(exc))

    @api.exception_handler(CatalogError)
    async def catalog(_r: Request, exc: CatalogError) -> JSONResponse:
        return error(400, str(exc))

    @api.exception_handler(StoreError)
    async def store(_r: Request, exc: StoreError) -> JSONResponse:
        return error(409, str(exc))

    @api.exception_handler(StatsError)
    async def stats(_r: Request, exc: StatsError) -> JSONResponse:
        return error(422, str(exc))  # a period, zone, grouping or share the reports refuse


def _upload_status(state: UploadState) -> UploadStatus:
    status: Literal["open", "complete", "failed"] = (
        "complete"
        if state.status == "complete"
        else "failed"
        if state.status == "failed"
        else "open"
    )
    return UploadStatus(
        upload_id=state.id,
        size=state.size,
        offset=state.offset,
        chunks=state.chunks,
        status=status,
        recording_id=state.recording_id,
        sha256=state.sha256,
        may_delete=state.may_delete,
        error=state.error,
    )


def _timeline_out(timeline: CaseTimeline) -> TimelineOut:
    return TimelineOut(
        case_id=timeline.case_id,
        continuous=timeline.continuous,
        recordings=[
            RecordingOut(
                id=v.recording.id,
                device_id=v.recording.device_id,
                officer_id=v.recording.officer_id,
                category=v.recording.category,
                device_start=v.recording.device_start,
                received_at=v.recording.received_at,
                clock_offset_s=v.recording.clock_offset_s,
                duration_s=v.recording.duration_s,
                status=v.recording.status,
                sha256=v.recording.sha256,
                damage=v.recording.damage,
                window_from_s=v.window[0],
                window_to_s=v.window[1],
                segments=[
                    SegmentOut(
                        index=s.index,
                        start_s=s.start_s,
                        end_s=s.end_s,
                        wall_start=s.wall_start,
                        sha256=s.sha256,
                        phash_digest=s.phash_digest,
                        integrity=s.integrity,
                    )
                    for s in v.segments
                ],
                gaps=[GapOut(kind=g.kind, start_s=g.start, seconds=g.seconds) for g in v.gaps],
                continuous=v.continuous,
            )
            for v in timeline.recordings
        ],
        device_gaps=[
            DeviceGapOut(
                kind=g.kind, after=g.after, before=g.before, start=g.start, seconds=g.seconds
            )
            for g in timeline.device_gaps
        ],
    )


def _export_out(row: ExportRequest) -> ExportOut:
    return ExportOut(
        id=row.id,
        case_id=row.case_id,
        requested_by=row.requested_by,
        reason=row.reason,
        requested_at=row.requested_at,
        status=row.status,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_note=row.decision_note,
        package_sha256=row.package_sha256,
        package_size=row.package_size,
    )


CasePath = Annotated[str, Field(pattern=_ID)]
HexId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]  # upload and export request IDs


def _routes(api: FastAPI) -> None:
    @api.get(f"{API}/me", response_model=Me, responses=ERRORS, tags=["access"])
    def me(caller: CallerDep) -> Me:
        """Who the token belongs to."""
        return Me(
            id=caller.id,
            role=caller.role,
            display_name=caller.display_name,
            device_id=caller.device_id,
            officer_id=caller.officer_id,
            assigned_cases=sorted(caller.assigned_cases),
        )

    # -- uploads ------------------------------------------------------------------------------

    @api.post(
        f"{API}/uploads",
        response_model=UploadStatus,
        status_code=201,
        responses=ERRORS,
        tags=["uploads"],
    )
    def start_upload(body: UploadStart, caller: CallerDep, services: ServicesDep) -> UploadStatus:
        """Start a resumable upload; the device's clock reading is compared with the server's."""
        _require(services, caller, "upload", "POST uploads")
        if caller.role == "device" and body.device_id != caller.device_id:
            reason = f"device credential {caller.device_id} cannot upload for {body.device_id}"
            _deny(services, caller.id, reason, "POST uploads")
            raise HTTPException(403, reason)
        officer = body.officer_id
        if caller.role == "officer":
            officer = caller.officer_id
        try:
            metadata = RecordingMetadata(
                device_id=body.device_id,
                officer_id=officer,
                device_start=body.device_start,
                device_clock_at_handover=body.device_clock,
                category=body.category,
                gps_track=tuple(body.gps_track),
                original_name=Path(body.original_name).name or "recording",
            )
        except ValidationError as exc:
            raise HTTPException(422, f"metadata: {exc.errors()[0]['msg']}") from exc
        return _upload_status(services.uploads.start(caller.id, metadata, body.size))

    @api.get(
        f"{API}/uploads/{{upload_id}}",
        response_model=UploadStatus,
        responses=ERRORS,
        tags=["uploads"],
    )
    def upload_status(
        upload_id: HexId,
        caller: CallerDep,
        services: ServicesDep,
    ) -> UploadStatus:
        """How many bytes are confirmed: after a dropped connection, resume from ``offset``."""
        return _upload_status(services.uploads.state(upload_id, caller.id))

    @api.put(
        f"{API}/uploads/{{upload_id}}",
        response_model=UploadStatus,
        responses={**ERRORS, 413: {"model": ErrorBody}},
        tags=["uploads"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        },
    )
    async def put_chunk(
        upload_id: HexId,
        request: Request,
        caller: CallerDep,
        services: ServicesDep,
        offset: Annotated[int, Query(ge=0, description="Byte the chunk starts at.")],
        x_chunk_sha256: Annotated[str, Header(pattern=_HEX64, description="SHA-256 of the chunk.")],
    ) -> UploadStatus:
        """Send one chunk. It is appended only if its hash matches and it starts exactly at the
        confirmed offset (409 says where to resume)."""
        data = bytearray()
        async for part in request.stream():
            data += part
            if len(data) > MAX_CHUNK:
                raise HTTPException(413, f"chunks are at most {MAX_CHUNK} bytes")
        state = await _in_thread(
            services.uploads.put_chunk,
            upload_id,
            caller.id,
            offset=offset,
            data=bytes(data),
            sha256=x_chunk_sha256,
        )
        return _upload_status(state)

    @api.post(
        f"{API}/uploads/{{upload_id}}/finish",
        response_model=UploadStatus,
        responses=ERRORS,
        tags=["uploads"],
    )
    async def finish_upload(
        upload_id: HexId,
        body: UploadFinish,
        caller: CallerDep,
        services: ServicesDep,
    ) -> UploadStatus:
        """Check the whole file's SHA-256, then store and catalogue it; ``may_delete`` tells the
        device it may now delete its copy."""
        state, _result = await _in_thread(
            services.uploads.finish, upload_id, caller.id, sha256=body.sha256, actor=caller.id
        )
        if services.background is not None:
            services.background.kick()  # segmenting and hashing go on after the answer
        return _upload_status(state)

    # -- cases --------------------------------------------------------------------------------

    @api.get(f"{API}/cases", response_model=list[CaseSummary], responses=ERRORS, tags=["cases"])
    def list_cases(caller: CallerDep, services: ServicesDep) -> list[CaseSummary]:
        """The cases the caller may see."""
        _require(services, caller, "case.list", "GET cases")
        catalog = services.vigil.catalog
        ids = visible_cases(caller, [c.id for c in catalog.cases()])
        _viewed(services, caller, "case list")
        return [CaseSummary(case_id=c, recordings=len(catalog.case_links(c))) for c in ids]

    @api.get(
        f"{API}/cases/{{case_id}}", response_model=TimelineOut, responses=ERRORS, tags=["cases"]
    )
    def case(case_id: CasePath, caller: CallerDep, services: ServicesDep) -> TimelineOut:
        """A case's timeline: recordings, segments, gaps and each segment's integrity state."""
        _require(services, caller, "case.read", "GET case", case_id=case_id)
        settings = services.vigil.settings
        timeline = case_timeline(
            services.vigil.catalog,
            case_id,
            tolerance_frames=settings.continuity_tolerance_frames,
            device_tolerance_s=settings.device_gap_tolerance_s,
        )
        _viewed(services, caller, "case timeline", case_id=case_id)
        return _timeline_out(timeline)

    @api.post(
        f"{API}/cases/{{case_id}}/verify",
        response_model=list[VerifyOut],
        responses=ERRORS,
        tags=["cases"],
    )
    async def verify_case(
        case_id: CasePath, caller: CallerDep, services: ServicesDep
    ) -> list[VerifyOut]:
        """Recompute every hash of the case's footage."""
        _require(services, caller, "case.verify", "POST verify", case_id=case_id)
        links = services.vigil.catalog.case_links(case_id)
        ids = list(dict.fromkeys(link.recording_id for link in links))
        return [await _verify(services, caller, rec_id) for rec_id in ids]

    @api.get(
        f"{API}/cases/{{case_id}}/custody",
        response_model=CustodyOut,
        responses=ERRORS,
        tags=["custody"],
    )
    def custody(case_id: CasePath, caller: CallerDep, services: ServicesDep) -> CustodyOut:
        """The case's custody log, each event with its inclusion proof in the signed log."""
        _require(services, caller, "custody.read", "GET custody", case_id=case_id)
        vigil = services.vigil
        recording_ids = [link.recording_id for link in vigil.catalog.case_links(case_id)]
        _viewed(services, caller, "custody log", case_id=case_id)
        head = vigil.ledger.latest_head()
        if head is None or (now() - head.signed_at).total_seconds() > HEAD_MAX_AGE_S:
            head = vigil.ledger.checkpoint()
        # Events of these recordings that belong to other cases (a link elsewhere, its reason)
        # are that case's business, not this one's.
        rows = [
            e
            for e in vigil.catalog.events(recording_ids=recording_ids, case_id=case_id)
            if e.case_id in (None, case_id)
        ]
        proofs = vigil.ledger.inclusion_proofs([e.id for e in rows], head.size)
        events: list[EventOut] = []
        for event in rows:
            position = proof = leaf = None
            if event.id in proofs:  # newer events are proved from the next head
                position, path = proofs[event.id]
                proof = [p.hex() for p in path]
                leaf = canonical_event(event).decode()
            events.append(
                EventOut(
                    id=event.id,
                    at=event.at,
                    actor=event.actor,
                    action=event.action,
                    recording_id=event.recording_id,
                    case_id=event.case_id,
                    reason=event.reason,
                    detail=json.loads(event.detail) if event.detail else None,
                    leaf=leaf,
                    position=position,
                    proof=proof,
                )
            )
        return CustodyOut(case_id=case_id, checkpoint=head.note, tree_size=head.size, events=events)

    # -- recordings and media -----------------------------------------------------------------

    def recording_for(services: Services, recording_id: str) -> Recording:
        return services.vigil.catalog.recording(recording_id)

    @api.get(
        f"{API}/recordings/{{recording_id}}/playback",
        response_model=PlaybackOut,
        responses=ERRORS,
        tags=["recordings"],
    )
    def playback(
        recording_id: CasePath,
        caller: CallerDep,
        services: ServicesDep,
        case: Annotated[
            str | None, Query(pattern=_ID, description="The case it is opened from.")
        ] = None,
    ) -> PlaybackOut:
        """Short-lived signed URLs for playback (original with byte ranges, HLS segments)."""
        rec = recording_for(services, recording_id)
        _recording_scope(services, caller, rec, "recording.play", "GET playback", case)
        link = functools.partial(_media_url, services.secret, rec.id, caller.id, case or "")
        original, expires = link("original")
        playlist = link("index.m3u8")[0] if rec.playlist_key else None
        proxy = link("proxy.m3u8")[0] if rec.proxy_playlist_key else None
        return PlaybackOut(
            recording_id=rec.id,
            original=original,
            playlist=playlist,
            proxy=proxy,
            expires_at=datetime.fromtimestamp(expires, now().tzinfo),
        )

    @api.post(
        f"{API}/recordings/{{recording_id}}/verify",
        response_model=VerifyOut,
        responses=ERRORS,
        tags=["recordings"],
    )
    async def verify_recording(
        recording_id: CasePath, caller: CallerDep, services: ServicesDep
    ) -> VerifyOut:
        """Recompute every hash of one recording."""
        rec = recording_for(services, recording_id)
        _recording_scope(services, caller, rec, "case.verify", "POST verify")
        return await _verify(services, caller, rec.id)

    @api.get(
        f"{API}/media/{{recording_id}}/original",
        responses=_media("video/mp4", "video/mp2t", partial=True),
        tags=["media"],
        response_class=Response,
    )
    def media_original(
        link: MediaLinkDep,
        services: ServicesDep,
        range_: Annotated[str | None, Header(alias="range")] = None,
    ) -> Response:
        """The original, byte ranges supported (the signed link stands for the bearer)."""
        rec = recording_for(services, link.recording_id)
        kind = MEDIA_TYPES.get(Path(rec.original_key).suffix.lower(), "application/octet-stream")
        return _serve(services, "originals", rec.original_key, rec.size, range_, link, rec, kind)

    @api.get(
        f"{API}/media/{{recording_id}}/index.m3u8",
        responses=_media("application/vnd.apple.mpegurl"),
        tags=["media"],
        response_class=Response,
    )
    def media_playlist(link: MediaLinkDep, services: ServicesDep) -> Response:
        """The HLS playlist, each segment a signed link."""
        rec = recording_for(services, link.recording_id)
        if not rec.playlist_key:
            raise HTTPException(404, f"{rec.id} has no playlist yet")
        files = services.vigil.catalog.segments(rec.id)
        return _signed_playlist(services, link, rec.playlist_key, files, "segments")

    @api.get(
        f"{API}/media/{{recording_id}}/segments/{{index}}",
        responses=_media("video/mp2t", "video/x-matroska", partial=True),
        tags=["media"],
        response_class=Response,
    )
    def media_segment(
        link: MediaLinkDep,
        index: Annotated[int, Field(ge=0, le=10**7)],
        services: ServicesDep,
        range_: Annotated[str | None, Header(alias="range")] = None,
    ) -> Response:
        """One evidence segment (MPEG-TS; Matroska for codecs MPEG-TS cannot carry)."""
        rec = recording_for(services, link.recording_id)
        files = services.vigil.catalog.segments(rec.id)
        return _serve_listed(services, link, rec, files, index, range_, "segment")

    @api.get(
        f"{API}/media/{{recording_id}}/proxy.m3u8",
        responses=_media("application/vnd.apple.mpegurl"),
        tags=["media"],
        response_class=Response,
    )
    def media_proxy_playlist(link: MediaLinkDep, services: ServicesDep) -> Response:
        """The review proxy's HLS playlist, each file a signed link."""
        rec = recording_for(services, link.recording_id)
        if not rec.proxy_playlist_key:
            raise HTTPException(404, f"{rec.id} has no review proxy")
        files = services.vigil.catalog.proxy_segments(rec.id)
        return _signed_playlist(services, link, rec.proxy_playlist_key, files, "proxy")

    @api.get(
        f"{API}/media/{{recording_id}}/proxy/{{index}}",
        responses=_media("video/mp2t", partial=True),
        tags=["media"],
        response_class=Response,
    )
    def media_proxy_segment(
        link: MediaLinkDep,
        index: Annotated[int, Field(ge=0, le=10**7)],
        services: ServicesDep,
        range_: Annotated[str | None, Header(alias="range")] = None,
    ) -> Response:
        """One MPEG-TS file of the review proxy (for viewing; the evidence is the segments)."""
        rec = recording_for(services, link.recording_id)
        files = services.vigil.catalog.proxy_segments(rec.id)
        return _serve_listed(services, link, rec, files, index, range_, "proxy file")

    # -- exports ------------------------------------------------------------------------------

    @api.post(
        f"{API}/cases/{{case_id}}/exports",
        response_model=ExportOut,
        status_code=201,
        responses=ERRORS,
        tags=["exports"],
    )
    def request_export(
        case_id: CasePath, body: ExportAsk, caller: CallerDep, services: ServicesDep
    ) -> ExportOut:
        """Ask for an export, with a reason; a supervisor approves it."""
        _require(services, caller, "export.request", "POST export", case_id=case_id)
        return _export_out(
            services.exports.request(case_id, requested_by=caller.id, reason=body.reason)
        )

    @api.get(f"{API}/exports", response_model=list[ExportOut], responses=ERRORS, tags=["exports"])
    def list_exports(
        caller: CallerDep,
        services: ServicesDep,
        status: Annotated[str | None, Query(pattern=r"^[a-z]{1,16}$")] = None,
    ) -> list[ExportOut]:
        """Supervisors see every request; others their own."""
        rows = services.exports.list(status=status)
        if not decide(caller, "export.approve").allowed:
            rows = [r for r in rows if r.requested_by == caller.id]
        _viewed(services, caller, "export requests")
        return [_export_out(r) for r in rows]

    @api.post(
        f"{API}/exports/{{export_id}}/approve",
        response_model=ExportOut,
        responses=ERRORS,
        tags=["exports"],
    )
    async def approve_export(
        export_id: HexId,
        body: ExportDecision,
        caller: CallerDep,
        services: ServicesDep,
    ) -> ExportOut:
        """Approve (supervisor, not the requester): the package is built now."""
        row = services.exports.get(export_id)
        _require(services, caller, "export.approve", "POST approve", case_id=row.case_id)
        approved = await _in_thread(
            services.exports.approve, export_id, supervisor=caller.id, note=body.note
        )
        return _export_out(approved)

    @api.post(
        f"{API}/exports/{{export_id}}/deny",
        response_model=ExportOut,
        responses=ERRORS,
        tags=["exports"],
    )
    def deny_export(
        export_id: HexId,
        body: ExportDecision,
        caller: CallerDep,
        services: ServicesDep,
    ) -> ExportOut:
        row = services.exports.get(export_id)
        _require(services, caller, "export.approve", "POST deny", case_id=row.case_id)
        return _export_out(services.exports.deny(export_id, supervisor=caller.id, note=body.note))

    @api.get(
        f"{API}/exports/{{export_id}}/package",
        responses=_media("application/zip"),
        tags=["exports"],
        response_class=FileResponse,
    )
    def download_export(
        export_id: HexId,
        caller: CallerDep,
        services: ServicesDep,
    ) -> FileResponse:
        """The approved package (ZIP), for the reviewer who asked for it."""
        row = services.exports.get(export_id)
        if row.requested_by != caller.id:
            reason = f"export {export_id} was asked for by {row.requested_by}"
            _deny(services, caller.id, reason, "GET package", case_id=row.case_id)
            raise HTTPException(403, reason)
        _require(services, caller, "export.request", "GET package", case_id=row.case_id)
        row, path = services.exports.package(export_id)
        services.vigil.catalog.add_event(
            Event("export.downloaded", caller.id, case_id=row.case_id, reason=row.reason)
        )
        return FileResponse(
            path,
            media_type="application/zip",
            filename=f"{row.case_id}-{row.id[:8]}.zip",
            headers={"X-Package-SHA256": row.package_sha256 or ""},
        )

    # -- ledger, stats, metrics, web ----------------------------------------------------------

    @api.get(
        f"{API}/ledger/checkpoint", response_model=CheckpointOut, responses=ERRORS, tags=["custody"]
    )
    def checkpoint(caller: CallerDep, services: ServicesDep) -> CheckpointOut:
        """The latest signed tree head and the key that signs them."""
        _require(services, caller, "custody.read", "GET checkpoint")
        ledger = services.vigil.ledger
        head = ledger.checkpoint()
        return CheckpointOut(
            tree_size=head.size,
            root=head.root,
            note=head.note,
            public_key_pem=ledger.key.public_pem.decode(),
            key_fingerprint=ledger.key.fingerprint,
        )

    @api.get("/metrics", include_in_schema=False)
    def metrics(services: ServicesDep) -> Response:
        return Response(
            generate_latest(services.vigil.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    @api.get("/", include_in_schema=False, response_class=HTMLResponse)
    def index() -> HTMLResponse:
        page = WEB / "index.html"
        if not page.exists():
            return HTMLResponse("<h1>Vigil</h1><p>The web page is not installed.</p>")
        return HTMLResponse(page.read_text(encoding="utf-8"))


async def _in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Blocking work (disk, ffmpeg, the catalogue) off the event loop."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args, **kwargs)


async def _verify(services: Services, caller: Caller, recording_id: str) -> VerifyOut:
    result = await _in_thread(
        services.vigil.verifier.verify_recording, recording_id, actor=caller.id
    )
    return VerifyOut(
        recording_id=result.recording_id,
        ok=result.ok,
        original=result.original,
        problems=list(result.problems),
        segments={str(c.index): c.state for c in result.segments},
    )


class _Listed(Protocol):
    key: str
    index: int
    size: int


def _serve_listed(
    services: Services,
    link: MediaLink,
    rec: Recording,
    files: Sequence[_Listed],
    index: int,
    range_header: str | None,
    what: str,
) -> Response:
    """File ``index`` of a recording's segments or proxy files, by its own media type."""
    item = next((f for f in files if f.index == index), None)
    if item is None:
        raise HTTPException(404, f"{rec.id} has no {what} {index}")
    kind = MEDIA_TYPES.get(Path(item.key).suffix.lower(), "video/mp2t")
    return _serve(services, "derived", item.key, item.size, range_header, link, rec, kind)


def _signed_playlist(
    services: Services, link: MediaLink, key: str, files: Sequence[_Listed], path: str
) -> Response:
    """A stored HLS playlist with each file it lists replaced by a signed link to
    ``path/<index>`` that stands for the same caller and case as ``link``."""
    names = {f.key.rpartition("/")[2]: f.index for f in files}
    with services.vigil.store.open("derived", key) as fh:
        text = fh.read().decode()
    lines = []
    for line in text.splitlines():
        if line in names:
            line, _ = _media_url(
                services.secret, link.recording_id, link.by, link.case or "",
                f"{path}/{names[line]}",
            )  # fmt: skip
        lines.append(line)
    return Response("\n".join(lines) + "\n", media_type="application/vnd.apple.mpegurl")


def _serve(
    services: Services,
    bucket: Literal["originals", "derived"],
    key: str,
    size: int,
    range_header: str | None,
    link: MediaLink,
    rec: Recording,
    media_type: str,
) -> Response:
    wanted = _range(range_header, size)
    start, length = wanted if wanted is not None else (0, size)
    services.vigil.catalog.add_event(
        Event(
            "view",
            link.by,
            rec.id,
            link.case,
            reason=f"media {key.rpartition('/')[2]} bytes {start}+{length}",
        )
    )
    store = services.vigil.store

    def body() -> Iterator[bytes]:
        with store.open_range(bucket, key, start, length) as fh:
            while chunk := fh.read(1 << 20):
                yield chunk

    headers = {"Accept-Ranges": "bytes", "Content-Length": str(length)}
    if wanted is None:
        return StreamingResponse(body(), media_type=media_type, headers=headers)
    headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
    return StreamingResponse(body(), status_code=206, media_type=media_type, headers=headers)
