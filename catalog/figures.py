"""The catalogue's operational figures, read at scrape time by ``vigil monitor``
(``workers.monitor`` serves them as Prometheus metrics; ``workers.metrics`` has the processes'
own).

Aggregates only (counts, sums, maxima): a scrape costs a handful of indexed queries whatever the
catalogue's size. Every device known (one that uploaded, or one with an API principal) is in the
per-device figures, at 0 if it has uploaded nothing: Prometheus then sees its first upload as an
increase, which a series that appears at 1 never shows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, case, exists, func, select
from sqlalchemy.orm import Session

from catalog.clock import LATE_UPLOAD_S, upload_delay_s
from catalog.models import (
    CaseLink,
    CustodyEvent,
    Device,
    LedgerLeaf,
    Principal,
    Recording,
    Segment,
)
from catalog.repository import Catalog

logger = logging.getLogger(__name__)
SOON = timedelta(days=7)
RECENT = timedelta(hours=24)
# Statuses past the custody path, or that will never take it. A live recording ("recording") is
# not waiting: each of its segments is put on record as it closes.
ON_RECORD = ("segmented", "complete", "unreadable", "deleted", "recording")


@dataclass(frozen=True)
class CatalogFigures:
    recordings_by_status: dict[str, int]
    uploads_by_device: dict[str, int]  # every known device (``known_devices``), 0 if none
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
    uploads_recent_by_device: dict[str, int] = field(default_factory=dict)  # in the last 24 h
    # How long the oldest recording not yet on record (stored, segmenting) has waited since it
    # was received; 0 when none waits.
    oldest_unsegmented_s: float = 0.0


def known_devices(catalog: Catalog) -> list[str]:
    """Every device the catalogue knows: those that uploaded, and those with an API principal
    (which may not have uploaded yet)."""
    with catalog.session() as session:
        return sorted(_known_devices(session))


def _known_devices(session: Session) -> set[str]:
    principals = select(Principal.device_id).where(Principal.device_id.is_not(None))
    return {str(d) for d in session.scalars(select(Device.id).union(principals))}


def _active_link(recording: type[Recording]) -> ColumnElement[bool]:
    return exists().where(CaseLink.recording_id == recording.id, CaseLink.unlinked_at.is_(None))


def _device_figures(
    session: Session, now: datetime
) -> tuple[dict[str, int], dict[str, int], dict[str, tuple[datetime, bool]]]:
    """Per device: recordings ever and in the last 24 h (every known device, 0 if none), and
    when its latest recording was received (only devices that uploaded) with its service state."""
    uploads = dict(
        session.execute(
            select(Recording.device_id, func.count()).group_by(Recording.device_id)
        ).all()
    )
    recent = dict(
        session.execute(
            select(Recording.device_id, func.count())
            .where(Recording.received_at > now - RECENT)
            .group_by(Recording.device_id)
        ).all()
    )
    last = {
        device: (at, bool(in_service))
        for device, at, in_service in session.execute(
            select(Recording.device_id, func.max(Recording.received_at), Device.in_service)
            .join(Device, Device.id == Recording.device_id)
            .group_by(Recording.device_id, Device.in_service)
        ).all()
    }
    known = _known_devices(session) | {str(d) for d in uploads}
    return (
        {d: int(uploads.get(d, 0)) for d in known},
        {d: int(recent.get(d, 0)) for d in known},
        last,
    )


def catalog_figures(
    catalog: Catalog, now: datetime, retention_days: Callable[[str | None], int]
) -> CatalogFigures:
    """``retention_days``: the retention period of a category (the store's policy)."""
    with catalog.session() as session:
        by_status = dict(
            session.execute(select(Recording.status, func.count()).group_by(Recording.status)).all()
        )
        uploads, recent, last = _device_figures(session, now)
        oldest_waiting = session.scalar(
            select(func.min(Recording.received_at)).where(Recording.status.not_in(ON_RECORD))
        )
        originals = session.scalar(select(func.coalesce(func.sum(Recording.size), 0)))
        derived = session.scalar(  # segments whose copies are stored (issue 18)
            select(func.coalesce(func.sum(Segment.size), 0)).where(Segment.kept.is_(True))
        )
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
        uploads_by_device=uploads,
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
        uploads_recent_by_device=recent,
        oldest_unsegmented_s=(
            0.0 if oldest_waiting is None else max(0.0, (now - oldest_waiting).total_seconds())
        ),
    )
