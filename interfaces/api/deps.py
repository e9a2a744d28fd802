"""What every route depends on: the services the app was made with, the caller its bearer token
stands for, and the checks that a caller may act.

A request that proves no principal is the guard's (``interfaces.api.guard``: counted,
summarised once per address and window, throttled), never a custody event of its own. Denials
of an identified principal are custody events (``access.denied``), bounded in size; each read
is a ``view``. What a caller may not see is answered as if it were not there (404, the same
words as for what does not exist) unless their role may never do it at all (403).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from catalog.access import AccessService, Action, Caller, TokenCheck, decide, may_ever
from catalog.exports import ExportService
from catalog.models import Recording
from catalog.repository import Event
from catalog.scopes import LinkedWindow, Scope, recording_scope
from ingest.uploads import UploadService
from interfaces.api.background import (
    UPLOAD_THREADS,
    UPLOAD_THREADS_WHILE_PEOPLE,
    Background,
    Lane,
)
from interfaces.api.guard import AuthGuard, client_source, sanitised
from interfaces.api.proved import ProvedEvents
from workers.app import Vigil

API = "/api/v1"
MAX_REASON_CHARS = 300  # of a denial's custody event: where, and why


@dataclass
class Services:
    vigil: Vigil
    access: AccessService
    uploads: UploadService
    exports: ExportService
    secret: bytes
    guard: AuthGuard
    background: Background | None = None
    uploads_lane: Lane = field(
        default_factory=lambda: Lane(UPLOAD_THREADS, yielding=UPLOAD_THREADS_WHILE_PEOPLE)
    )
    proved: ProvedEvents = field(default_factory=ProvedEvents)


async def _services(request: Request) -> Services:
    """Async because it only reads app state: FastAPI runs a plain ``def`` dependency in a
    worker thread, a hop per request for nothing."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(_services)]


async def _vigil(request: Request) -> Vigil:
    services: Services = request.app.state.services
    return services.vigil


VigilDep = Annotated[Vigil, Depends(_vigil)]


def _deny(
    services: Services,
    actor: str,
    reason: str,
    where: str,
    case_id: str | None = None,
    recording_id: str | None = None,
) -> None:
    """The custody event of a denial to an identified principal (bounded in size)."""
    text = sanitised(f"{where}: {reason}", MAX_REASON_CHARS)
    services.vigil.catalog.add_event(Event("access.denied", actor, recording_id, case_id, text))


def _caller(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Caller:
    source = client_source(request)
    services.guard.check(source)  # 429 while this address is throttled, before any lookup
    scheme, _, token = (authorization or "").partition(" ")
    check = TokenCheck(None, "no bearer token")
    if scheme.lower() == "bearer" and token.strip():
        check = services.access.check_token(token.strip())
    elif authorization:
        check = TokenCheck(None, "not a bearer token")
    if check.caller is None:
        where = f"{request.method} {request.scope['path']}"
        services.guard.failed(source, check.why, principal=check.principal, where=where)
        why = "no bearer token" if not authorization else "unknown, revoked or expired token"
        raise HTTPException(401, why, headers={"WWW-Authenticate": "Bearer"})
    return check.caller


CallerDep = Annotated[Caller, Depends(_caller)]


async def _uploader(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Caller:
    """``_caller`` for the upload routes, in the uploads' own lane (``Lane``): a device's
    token check is upload work too, and waits its turn behind people's pages as the rest of
    it does (``interfaces.api.priority``)."""
    return await services.uploads_lane.run(lambda: _caller(request, services, authorization))


UploaderDep = Annotated[Caller, Depends(_uploader)]


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
        recording_officer=_playback_officer(services, caller, recording),
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


def _playback_officer(services: Services, caller: Caller, rec: Recording | None) -> str | None:
    """The officer ``rec`` gives playback to, looked up only for an officer."""
    if rec is None or caller.role != "officer":
        return None
    return services.access.playback_officer(rec.id, rec.officer_id)


def _viewed(
    services: Services,
    caller: Caller,
    what: str,
    *,
    case_id: str | None = None,
    recording_id: str | None = None,
) -> None:
    services.vigil.catalog.add_event(Event("view", caller.id, recording_id, case_id, what))


def _no_recording(recording_id: str) -> HTTPException:
    """The one answer for a recording that is not there and for one the caller may not see."""
    return HTTPException(404, f"no recording {recording_id!r}")


def exact_recording(services: Services, recording_id: str) -> Recording:
    """The recording with exactly this ID (the API takes no prefixes: a prefix of the
    original's SHA-256 would tell whether a known file is stored)."""
    with services.vigil.catalog.session() as session:
        row = session.get(Recording, recording_id)
    if row is None:
        raise _no_recording(recording_id)
    return row


def scope_of(
    services: Services, caller: Caller, rec: Recording, action: Action, via_case: str | None
) -> Scope | None:
    """What of ``rec`` the caller may ``action`` on (``catalog.scopes``), or None."""
    links = [
        LinkedWindow(link.case_id, link.from_s, link.to_s)
        for link in services.vigil.catalog.active_links(rec.id)
    ]
    officer = _playback_officer(services, caller, rec)
    return recording_scope(
        caller, action, officer_id=officer, links=links, duration_s=rec.duration_s,
        via_case=via_case,
    )  # fmt: skip


def reachable_recording(
    services: Services,
    caller: Caller,
    recording_id: str,
    action: Action,
    where: str,
    via_case: str | None = None,
) -> tuple[Recording, Scope]:
    """The recording and what of it the caller may see, through a case the caller may act on
    (or as its officer); with ``via_case``, through that case only. A role that may never do
    ``action`` is refused (403) before anything is looked up; a recording the caller may not
    reach is answered exactly as one that does not exist (404)."""
    if not may_ever(caller, action):
        reason = f"role {caller.role} may not {action}"
        _deny(services, caller.id, reason, where)
        raise HTTPException(403, reason)
    rec = exact_recording(services, recording_id)
    scope = scope_of(services, caller, rec, action, via_case)
    if scope is None:
        via = f" through case {via_case}" if via_case else ""
        _deny(services, caller.id, f"may not {action} it{via}", where, recording_id=rec.id)
        raise _no_recording(recording_id)
    return rec, scope
