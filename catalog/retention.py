"""Retention: re-categorising footage (its retention extended, never shortened) and deleting
footage whose retention has ended. Each is a custody event.

The rules:

* A recording is kept until ``received_at`` + the days of its category (``RetentionPolicy``;
  a category the policy does not name gets the default). The store holds the same date (S3:
  COMPLIANCE retain-until of every object, at least from when it was written).
* Uncategorised footage is kept when its default period ends (misfiled footage must not be
  lost, see DOMAIN.md), unless the service is built with ``delete_uncategorised=True``. The
  sweep report lists it, so that someone categorises it.
* Footage with an active case link is never due. A legal hold, or a retention still in force
  in the store, refuses the deletion (``retention.refused``); the sweep goes on with the rest.
* Deleting removes the objects only. The catalogue rows stay, with status ``deleted``, and the
  ``retention.deleted`` event lists every object's key and SHA-256: the record that the
  footage existed and what it was.

Order of work, safe at any crash:

* ``change``: store retention is extended first (a crash then only over-protects); category
  and event are written in one transaction.
* ``sweep``: every object of a recording is checked (present? the catalogued hash? held?
  retained?) before any is deleted. Derived files go first, the original last. Status and
  event are written in one transaction, only by the call that set the status. After a crash
  in between, the recording is still due: the next sweep finds the objects gone, deletes what
  is left, and lists the others as "already absent".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, exists, false, or_, select, update
from vigil_verify.errors import ErrorKind

from catalog.copies import stored_segments
from catalog.errors import CatalogError
from catalog.models import CaseLink, Recording
from catalog.recovered import recovered_detail
from catalog.repository import Catalog, Event, now
from store.base import Bucket, ObjectStore, require_aware
from store.errors import RetentionActive, StoreError, StoreUnavailable
from store.retention import RetentionPolicy

DELETED = "deleted"  # Recording.status once its objects are deleted under retention

ObjectState = Literal["deleted", "already absent", "to delete"]
Outcome = Literal["deleted", "would delete", "refused", "no longer due"]


class RetentionError(CatalogError):
    """Root of the errors raised by the retention service."""


class UnknownCategory(RetentionError):
    pass


class RetentionShortening(RetentionError):
    """The new category keeps footage for less time: COMPLIANCE retention never shortens."""

    kind = ErrorKind.CONFLICT


class RecordingDeleted(RetentionError):
    kind = ErrorKind.CONFLICT


class ContentMismatch(RetentionError):
    """The store holds other content than the catalogue says; nothing is deleted."""

    kind = ErrorKind.FAILED


# -- custody event details ---------------------------------------------------------------------


class RetentionChangedDetail(BaseModel):
    old_category: str | None
    new_category: str
    old_days: int
    new_days: int
    retain_until: datetime  # received_at + new_days
    objects: int
    extended: int  # objects whose retain-until the store moved later


class ObjectRecord(BaseModel):
    bucket: Bucket
    key: str
    sha256: str | None  # as catalogued, and checked against the store before deleting
    size: int | None
    state: ObjectState


class RetentionDeletedDetail(BaseModel):
    category: str | None
    days: int
    received_at: datetime
    retain_until: datetime
    objects: list[ObjectRecord]


class RetentionRefusedDetail(BaseModel):
    category: str | None
    retain_until: datetime
    error: str
    deleted: list[ObjectRecord]  # deleted before the refusal (only in a race), else empty


# -- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionChange:
    recording_id: str
    old_category: str | None
    new_category: str
    retain_until: datetime
    objects: int
    extended: int
    recorded: bool  # False: nothing changed, so no event


@dataclass(frozen=True)
class Due:
    recording: Recording
    retain_until: datetime


class SweepItem(BaseModel):
    recording_id: str
    category: str | None
    retain_until: datetime
    outcome: Outcome
    objects: list[ObjectRecord]
    error: str | None = None


class SweepReport(BaseModel):
    now: datetime
    dry_run: bool
    items: list[SweepItem]
    kept_uncategorised: list[str]  # past the default period, kept because uncategorised

    def with_outcome(self, outcome: Outcome) -> list[SweepItem]:
        return [item for item in self.items if item.outcome == outcome]


@dataclass(frozen=True)
class _Object:
    bucket: Bucket
    key: str
    sha256: str | None
    size: int | None


class RetentionService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        policy: RetentionPolicy,
        delete_uncategorised: bool = False,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.policy = policy
        self.delete_uncategorised = delete_uncategorised
        self.clock = clock

    def retain_until(self, recording: Recording) -> datetime:
        return recording.received_at + timedelta(days=self.policy.days_for(recording.category))

    def _objects(self, recording: Recording) -> list[_Object]:
        """The recording's objects, the original last (the order of deletion)."""
        objects: list[_Object] = []
        if recording.playlist_key:
            objects.append(
                _Object("derived", recording.playlist_key, recording.playlist_sha256, None)
            )
        objects += [
            _Object("derived", s.key, s.sha256, s.size)
            for s in stored_segments(self.catalog, self.store, recording.id)
        ]
        recovered = recovered_detail(self.catalog, recording.id)
        if recovered is not None:  # deleted with the original it was recovered from
            objects.append(_Object("derived", recovered.key, recovered.sha256, recovered.size))
        objects.append(
            _Object("originals", recording.original_key, recording.sha256, recording.size)
        )
        return objects

    # -- change ------------------------------------------------------------------------------

    def change(
        self, recording_id: str, category: str, *, actor: str, reason: str
    ) -> RetentionChange:
        """Re-categorise a recording; its objects are kept until ``received_at`` + the new
        category's days. Refused if the new category keeps footage for less time than the
        current one (COMPLIANCE never shortens); the same period is allowed. A category the
        policy does not name is refused (a typo would silently get the default period)."""
        if not reason.strip():
            raise RetentionError("a retention change needs a reason (it is a custody event)")
        recording = self.catalog.recording(recording_id)
        if recording.status == DELETED:
            raise RecordingDeleted(
                f"{recording.id} was deleted under retention; its category cannot change"
            )
        if category not in self.policy.by_category:
            known = ", ".join(f"{c} ({d} days)" for c, d in sorted(self.policy.by_category.items()))
            raise UnknownCategory(
                f"no retention period for category {category!r}; the policy names:"
                f" {known or 'none'}"
            )
        old_days = self.policy.days_for(recording.category)
        new_days = self.policy.days_for(category)
        if new_days < old_days:
            old = repr(recording.category) if recording.category else "uncategorised (default)"
            raise RetentionShortening(
                f"{recording.id}: category {category!r} keeps footage {new_days} days, less"
                f" than the {old_days} days of {old}; retention is never shortened"
            )
        until = recording.received_at + timedelta(days=new_days)
        objects = self._objects(recording)
        extended = 0
        if until > self.clock():  # else nothing to extend: the store refuses dates past
            for obj in objects:
                before = self.store.retention(obj.bucket, obj.key)
                after = self.store.extend_retention(obj.bucket, obj.key, until)
                extended += before is None or after > before
        result = RetentionChange(
            recording.id, recording.category, category, until, len(objects), extended, True
        )
        if category == recording.category and not extended:
            return replace(result, recorded=False)
        detail = RetentionChangedDetail(
            old_category=recording.category,
            new_category=category,
            old_days=old_days,
            new_days=new_days,
            retain_until=until,
            objects=len(objects),
            extended=extended,
        )
        event = Event("retention.changed", actor, recording.id, reason=reason, detail=detail)
        with self.catalog.session() as session:
            updated = session.execute(
                update(Recording)
                .where(Recording.id == recording.id, Recording.status != DELETED)
                .values(category=category)
            )
            if not getattr(updated, "rowcount", 0):
                raise RecordingDeleted(f"{recording.id} was deleted under retention meanwhile")
            Catalog.event_in(session, event)  # same transaction as the category
        return result

    # -- due ---------------------------------------------------------------------------------

    def _expired(self, now: datetime, *, uncategorised: bool) -> ColumnElement[bool]:
        """SQL: the recording's retention ended by ``now`` (uncategorised ones only if asked)."""
        received = Recording.received_at
        default_end = now - timedelta(days=self.policy.default_days)
        if uncategorised:
            return and_(Recording.category.is_(None), received <= default_end)
        named = dict(self.policy.by_category)
        clauses = [
            and_(Recording.category == category, received <= now - timedelta(days=days))
            for category, days in named.items()
        ]
        others: ColumnElement[bool] = Recording.category.is_not(None)
        if named:
            others = and_(others, Recording.category.not_in(list(named)))
        clauses.append(and_(others, received <= default_end))
        if self.delete_uncategorised:
            clauses.append(and_(Recording.category.is_(None), received <= default_end))
        return or_(false(), *clauses)

    def _query(self, now: datetime, *, uncategorised: bool) -> list[Recording]:
        linked = exists().where(
            CaseLink.recording_id == Recording.id, CaseLink.unlinked_at.is_(None)
        )
        stmt = (
            select(Recording)
            .where(
                self._expired(now, uncategorised=uncategorised),
                Recording.status != DELETED,
                ~linked,
            )
            .order_by(Recording.received_at, Recording.id)
        )
        with self.catalog.session() as session:
            return list(session.scalars(stmt))

    def due(self, now: datetime) -> list[Due]:
        """Recordings whose retention ended by ``now``, not linked to any case, not deleted."""
        now = require_aware(now, "retention check")
        return [
            Due(recording, until)
            for recording in self._query(now, uncategorised=False)
            if (until := self.retain_until(recording)) <= now
        ]

    # -- sweep -------------------------------------------------------------------------------

    def sweep(self, now: datetime, *, actor: str, dry_run: bool = False) -> SweepReport:
        """Delete the objects of every due recording. A recording the store still protects is
        refused (and recorded); the sweep goes on. A store outage stops the sweep
        (``StoreUnavailable``): what is done is recorded, the rest is done next time."""
        now = require_aware(now, "retention sweep")
        items = [self._sweep_one(due, now, actor, dry_run) for due in self.due(now)]
        kept = [] if self.delete_uncategorised else self._query(now, uncategorised=True)
        return SweepReport(
            now=now, dry_run=dry_run, items=items, kept_uncategorised=[r.id for r in kept]
        )

    def _check(self, obj: _Object, now: datetime) -> ObjectRecord:
        """Whether ``obj`` may be deleted now: raises if not; its record if so."""
        stored = self.store.stat(obj.bucket, obj.key)
        if stored is None:
            return ObjectRecord(
                bucket=obj.bucket, key=obj.key, sha256=obj.sha256, size=obj.size,
                state="already absent",
            )  # fmt: skip
        if obj.sha256 is not None and stored.sha256 != obj.sha256:
            raise ContentMismatch(
                f"{obj.bucket}/{obj.key}: the store holds sha256 {stored.sha256[:16]}…, the"
                f" catalogue says {obj.sha256[:16]}…; not deleting what the catalogue does"
                " not describe"
            )
        held = self.store.legal_hold(obj.bucket, obj.key)
        until = self.store.retention(obj.bucket, obj.key)
        if held or (until is not None and until > now):
            raise RetentionActive(obj.bucket, obj.key, retain_until=until, legal_hold=held, now=now)
        return ObjectRecord(
            bucket=obj.bucket, key=obj.key, sha256=stored.sha256, size=stored.size,
            state="to delete",
        )  # fmt: skip

    def _sweep_one(self, due: Due, now: datetime, actor: str, dry_run: bool) -> SweepItem:
        recording = self.catalog.recording(due.recording.id)  # as it is now
        item = SweepItem(
            recording_id=recording.id,
            category=recording.category,
            retain_until=due.retain_until,
            outcome="no longer due",
            objects=[],
        )
        if (
            recording.status == DELETED
            or recording.category != due.recording.category
            or self.catalog.active_links(recording.id)
        ):
            return item  # another sweeper, a re-categorisation or a case link got there first
        done: list[ObjectRecord] = []
        try:
            planned = [self._check(obj, now) for obj in self._objects(recording)]
            if dry_run:
                return item.model_copy(update={"outcome": "would delete", "objects": planned})
            for planned_record in planned:
                record = planned_record
                if record.state == "to delete":
                    self.store.delete_expired(record.bucket, record.key, now)
                    record = record.model_copy(update={"state": "deleted"})
                done.append(record)
        except StoreUnavailable:
            raise
        except (StoreError, ContentMismatch) as exc:
            return self._refused(item, recording, exc, done, actor, dry_run)
        self._record_deleted(recording, due, done, actor)
        return item.model_copy(update={"outcome": "deleted", "objects": done})

    def _refused(
        self,
        item: SweepItem,
        recording: Recording,
        exc: Exception,
        done: list[ObjectRecord],
        actor: str,
        dry_run: bool,
    ) -> SweepItem:
        if not dry_run:
            detail = RetentionRefusedDetail(
                category=recording.category,
                retain_until=item.retain_until,
                error=str(exc),
                deleted=[r for r in done if r.state == "deleted"],
            )
            self.catalog.add_event(
                Event(
                    "retention.refused",
                    actor,
                    recording.id,
                    reason=f"retention ended {item.retain_until.isoformat()}; store refused",
                    detail=detail,
                )
            )
        return item.model_copy(update={"outcome": "refused", "objects": done, "error": str(exc)})

    def _record_deleted(
        self, recording: Recording, due: Due, done: list[ObjectRecord], actor: str
    ) -> None:
        days = self.policy.days_for(recording.category)
        detail = RetentionDeletedDetail(
            category=recording.category,
            days=days,
            received_at=recording.received_at,
            retain_until=due.retain_until,
            objects=done,
        )
        event = Event(
            "retention.deleted",
            actor,
            recording.id,
            reason=(
                f"retention of {days} days ({recording.category or 'uncategorised'}) ended"
                f" {due.retain_until.isoformat()}"
            ),
            detail=detail,
        )
        with self.catalog.session() as session:
            updated = session.execute(
                update(Recording)
                .where(Recording.id == recording.id, Recording.status != DELETED)
                .values(status=DELETED)
            )
            if getattr(updated, "rowcount", 0):  # only the sweeper that set the status
                Catalog.event_in(session, event)
