"""What every route depends on: the services the app was made with, the caller its bearer token
stands for, and the checks that a caller may act (each denial a custody event,
``access.denied``; each read a ``view``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from catalog.access import AccessService, Action, Caller, decide
from catalog.exports import ExportService
from catalog.models import Recording
from catalog.repository import Event
from ingest.uploads import UploadService
from interfaces.api.background import Background
from workers.app import Vigil

API = "/api/v1"


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


VigilDep = Annotated[Vigil, Depends(_vigil)]


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


def recording_for(services: Services, recording_id: str) -> Recording:
    return services.vigil.catalog.recording(recording_id)
