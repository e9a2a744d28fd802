"""The catalogue's operational figures, read at scrape time by ``vigil monitor``.

Aggregates only (counts, sums, maxima): a scrape costs a handful of indexed queries whatever the
catalogue's size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, case, exists, func, select

from catalog.clock import LATE_UPLOAD_S, upload_delay_s
from catalog.models import CaseLink, CustodyEvent, Device, LedgerLeaf, Recording, Segment
from catalog.repository import Catalog

SOON = timedelta(days=7)


@dataclass(frozen=True)
class CatalogFigures:
    recordings_by_status: dict[str, int]
    uploads_by_device: dict[str, int]
    last_upload_by_device: dict[str, tuple[datetime, bool]]  # device -> (last received, in service)
    stored_bytes: dict[str, int]  # "originals" / "derived"
    footage_seconds: float
    uncategorised: int
    unlinked: int
    verification_failures: int
    late_uploads: int
    late_uploads_recent: int  # received within the last 24 h, more than 24 h after recording
    retention_ending_7d: int
    ledger_pending: int


def _active_link(recording: type[Recording]) -> ColumnElement[bool]:
    return exists().where(CaseLink.recording_id == recording.id, CaseLink.unlinked_at.is_(None))


def catalog_figures(
    catalog: Catalog, now: datetime, retention_days: Callable[[str | None], int]
) -> CatalogFigures:
    """``retention_days``: the retention period of a category (the store's policy)."""
    with catalog.session() as session:
        by_status = dict(
            session.execute(select(Recording.status, func.count()).group_by(Recording.status)).all()
        )
        uploads = dict(
            session.execute(
                select(Recording.device_id, func.count()).group_by(Recording.device_id)
            ).all()
        )
        in_service_column = Device.in_service
        last = {
            device: (at, bool(in_service))
            for device, at, in_service in session.execute(
                select(Recording.device_id, func.max(Recording.received_at), in_service_column)
                .join(Device, Device.id == Recording.device_id)
                .group_by(Recording.device_id, in_service_column)
            ).all()
        }
        originals = session.scalar(select(func.coalesce(func.sum(Recording.size), 0)))
        derived = session.scalar(select(func.coalesce(func.sum(Segment.size), 0)))
        footage = session.scalar(select(func.coalesce(func.sum(Recording.duration_s), 0.0)))
        uncategorised = session.scalar(
            select(func.count()).select_from(Recording).where(Recording.category.is_(None))
        )
        unlinked = session.scalar(
            select(func.count()).select_from(Recording).where(~_active_link(Recording))
        )
        failures = session.scalar(
            select(func.count())
            .select_from(Segment)
            .where(Segment.verify_status.is_not(None), Segment.verify_status != "verified")
        )
        pending = session.scalar(
            select(func.count())
            .select_from(CustodyEvent)
            .outerjoin(LedgerLeaf, LedgerLeaf.event_id == CustodyEvent.id)
            .where(LedgerLeaf.position.is_(None))
        )
        # Late uploads and retention need per-row time arithmetic that differs between SQLite
        # and PostgreSQL, so it is done here, with the statistics' own rule for the delay.
        late = late_recent = 0
        ending = 0
        rows = session.execute(
            select(Recording, case((_active_link(Recording), True), else_=False)).where(
                Recording.status != "deleted"
            )
        ).all()
    for rec, linked in rows:
        delay = upload_delay_s(rec)
        if delay is not None and delay > LATE_UPLOAD_S:
            late += 1
            if rec.received_at > now - timedelta(seconds=LATE_UPLOAD_S):
                late_recent += 1
        if not linked:
            ends = rec.received_at + timedelta(days=retention_days(rec.category))
            if now <= ends <= now + SOON:
                ending += 1
    return CatalogFigures(
        recordings_by_status={str(k): int(v) for k, v in by_status.items()},
        uploads_by_device={str(k): int(v) for k, v in uploads.items()},
        last_upload_by_device=last,
        stored_bytes={"originals": int(originals or 0), "derived": int(derived or 0)},
        footage_seconds=float(footage or 0.0),
        uncategorised=int(uncategorised or 0),
        unlinked=int(unlinked or 0),
        verification_failures=int(failures or 0),
        late_uploads=late,
        late_uploads_recent=late_recent,
        retention_ending_7d=ending,
        ledger_pending=int(pending or 0),
    )
