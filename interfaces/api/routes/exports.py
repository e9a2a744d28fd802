"""Exports of a case's footage: a reviewer asks, with a reason; a supervisor (not the requester)
approves or denies; the package is built on approval and downloaded by the one who asked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse

from catalog.access import decide
from catalog.models import ExportRequest
from catalog.repository import Event
from interfaces.api.background import _in_thread
from interfaces.api.deps import API, CallerDep, ServicesDep, _deny, _require, _viewed
from interfaces.api.schemas import (
    ERRORS,
    CasePath,
    ExportAsk,
    ExportDecision,
    ExportOut,
    HexId,
    _media,
)

router = APIRouter()


@router.post(
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
    settings = services.vigil.settings
    signs_here = settings.c2pa_sign_cert is not None and settings.c2pa_sign_key is not None
    if body.clips and settings.exports_built_by == "api" and not signs_here:
        raise HTTPException(
            409, "clips need the agency's C2PA signing certificate and key, not configured here"
        )
    return _export_out(
        services.exports.request(
            case_id, requested_by=caller.id, reason=body.reason, clips=body.clips
        )
    )


@router.get(f"{API}/exports", response_model=list[ExportOut], responses=ERRORS, tags=["exports"])
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


@router.post(
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
    """Approve (supervisor, not the requester): the package is built now, or by the ledger
    service in its next round (``VIGIL_EXPORTS_BUILT_BY=ledger``: status *approved* until it
    is *ready*)."""
    row = services.exports.get(export_id)
    _require(services, caller, "export.approve", "POST approve", case_id=row.case_id)
    here = services.vigil.settings.exports_built_by == "api"
    approved = await _in_thread(
        services.exports.approve, export_id, supervisor=caller.id, note=body.note, build=here
    )
    return _export_out(approved)


@router.post(
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


@router.get(
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
        clips=bool(row.clips),
    )
