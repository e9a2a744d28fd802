"""Export approval: a reviewer asks with a reason, a supervisor (not the same person) approves,
and only then is the package built; downloading it is a custody event too.

The package is ``catalog.export.export_case``'s folder in a ZIP (stored, not compressed: video
does not compress), hashed once when written; the hash is in the custody log, so the file the
requester receives can be checked against it.
"""

from __future__ import annotations

import builtins
import hashlib
import shutil
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import select
from vigil_verify.errors import ErrorKind

from catalog.errors import CatalogError, NotFound
from catalog.ids import require_case_id, require_reason
from catalog.models import ExportRequest
from catalog.repository import Catalog, Event, now
from store.base import CHUNK


class ExportRequestError(CatalogError):
    """The export request cannot move this way; the message says why."""

    kind = ErrorKind.CONFLICT


class ExportRequestDetail(BaseModel):
    request_id: str
    status: str
    note: str | None = None
    package_sha256: str | None = None
    package_size: int | None = None


Builder = Callable[[str, Path, str, str, bool], Path]
"""(case_id, folder, actor, reason, clips) -> the exported case folder (``export_case`` bound to
the app's catalogue, store and ledger; ``clips``: with clips carrying Content Credentials)."""


class ExportService:
    def __init__(self, *, catalog: Catalog, folder: Path, build: Builder) -> None:
        self.catalog = catalog
        self.folder = folder
        self.build = build

    def request(
        self, case_id: str, *, requested_by: str, reason: str, clips: bool = False
    ) -> ExportRequest:
        case_id, reason = require_case_id(case_id), require_reason(reason)
        self.catalog.case_links(case_id)  # NotFound for an unknown case
        row = ExportRequest(
            id=uuid.uuid4().hex,
            case_id=case_id,
            requested_by=requested_by,
            reason=reason.strip(),
            requested_at=now(),
            status="pending",
            clips=clips,
        )
        with self.catalog.session() as session:
            session.add(row)
            self.catalog.event_in(
                session,
                Event(
                    "export.requested", requested_by, case_id=case_id, reason=row.reason,
                    detail=ExportRequestDetail(request_id=row.id, status="pending"),
                ),
            )  # fmt: skip
        return row

    def get(self, request_id: str) -> ExportRequest:
        with self.catalog.session() as session:
            row = session.get(ExportRequest, request_id)
        if row is None:
            raise NotFound(f"no export request {request_id!r}")
        return row

    def list(self, *, status: str | None = None, case_id: str | None = None) -> list[ExportRequest]:
        stmt = select(ExportRequest).order_by(ExportRequest.requested_at)
        if status is not None:
            stmt = stmt.where(ExportRequest.status == status)
        if case_id is not None:
            stmt = stmt.where(ExportRequest.case_id == case_id)
        with self.catalog.session() as session:
            return list(session.scalars(stmt))

    def deny(self, request_id: str, *, supervisor: str, note: str) -> ExportRequest:
        return self._decide(request_id, supervisor, "denied", note)

    def approve(
        self, request_id: str, *, supervisor: str, note: str = "", build: bool = True
    ) -> ExportRequest:
        """Approve and build the package (idempotent: a ready package is not built again).
        ``build`` False: approve only; the process that holds the signing keys builds it
        (``build_approved``, from ``vigil ledger run``)."""
        row = self._decide(request_id, supervisor, "approved", note)
        if row.status == "ready" or not build:
            return row
        return self._build(row, supervisor)

    def build_approved(self, actor: str) -> builtins.list[ExportRequest]:
        """Build every approved package not built yet, oldest first (the ledger service's
        round); one that fails is marked *failed* with why, and the others still build.
        Returns each request as it ends the round (*ready* or *failed*)."""
        done: builtins.list[ExportRequest] = []
        for row in self.list(status="approved"):
            try:
                done.append(self._build(row, actor))
            except Exception:  # recorded on the request (failed, with why) by _build; go on
                done.append(self.get(row.id))
        return done

    def _build(self, row: ExportRequest, actor: str) -> ExportRequest:
        work = self.folder / row.id
        shutil.rmtree(work, ignore_errors=True)
        try:
            case_folder = self.build(
                row.case_id, work / "build", row.requested_by, row.reason, bool(row.clips)
            )
            package = self.folder / f"{row.id}.zip"
            sha, size = _zip(case_folder, package)
        except Exception as exc:
            self._set(row.id, "failed", actor, note=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return self._set(row.id, "ready", actor, sha=sha, size=size)

    def package(self, request_id: str) -> tuple[ExportRequest, Path]:
        row = self.get(request_id)
        path = self.folder / f"{row.id}.zip"
        if row.status != "ready" or not path.exists():
            raise ExportRequestError(f"export {request_id} is {row.status}; no package to send")
        return row, path

    def _decide(self, request_id: str, supervisor: str, status: str, note: str) -> ExportRequest:
        row = self.get(request_id)
        if row.status in ("ready", "approved") and status == "approved":
            return row
        if row.status != "pending":
            raise ExportRequestError(f"export {request_id} is {row.status}, not pending")
        if supervisor == row.requested_by:
            raise ExportRequestError("an export is approved by someone other than who asked")
        return self._set(row.id, status, supervisor, note=note)

    def _set(
        self,
        request_id: str,
        status: str,
        actor: str,
        *,
        note: str | None = None,
        sha: str | None = None,
        size: int | None = None,
    ) -> ExportRequest:
        with self.catalog.session() as session:
            row = session.get(ExportRequest, request_id)
            assert row is not None
            row.status = status
            if status in ("approved", "denied"):
                row.decided_by = actor
                row.decided_at = now()
                row.decision_note = note or None
            if sha is not None:
                row.package_sha256, row.package_size = sha, size
            self.catalog.event_in(
                session,
                Event(
                    f"export.{status}", actor, case_id=row.case_id, reason=note or None,
                    detail=ExportRequestDetail(
                        request_id=row.id, status=status, note=note or None,
                        package_sha256=sha, package_size=size,
                    ),
                ),
            )  # fmt: skip
            return row


def _zip(folder: Path, target: Path) -> tuple[str, int]:
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    digest = hashlib.sha256()
    size = 0
    with tmp.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    tmp.replace(target)
    return digest.hexdigest(), size
