"""The catalogue's operations. Every write that several workers may race on is an upsert."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel
from sqlalchemy import Engine, Select, Table, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from catalog.db import insert_ignore, migrate
from catalog.errors import NotFound
from catalog.group_commit import GroupCommit
from catalog.models import (
    Case,
    CaseLink,
    CustodyEvent,
    Device,
    LedgerLeaf,
    Officer,
    ProxySegment,
    Recording,
    Segment,
)

MIN_PREFIX = 6  # hex digits needed to look a recording up by prefix

SYSTEM_ACTOR = "vigil"
"""The actor of custody events that no person caused (segmenting, hashing, finalising)."""


def now() -> datetime:
    return datetime.now(UTC)


EVENT_COLUMNS = ("id", "at", "actor", "action", "recording_id", "case_id", "reason", "detail")


class EventRecord(NamedTuple):
    """A custody event's columns, read without an ORM instance (``Catalog.event_page``): a
    named tuple, which a page of 500 builds in a quarter of a frozen dataclass's time."""

    id: int
    at: datetime
    actor: str
    action: str
    recording_id: str | None
    case_id: str | None
    reason: str | None
    detail: str | None


_S = TypeVar("_S", bound=Select[Any])


def _of(stmt: _S, recording_ids: Sequence[str] | None, case_id: str | None) -> _S:
    """``stmt`` narrowed to the events of these recordings and/or this case."""
    if recording_ids is not None and case_id is not None:
        return stmt.where(
            CustodyEvent.recording_id.in_(recording_ids) | (CustodyEvent.case_id == case_id)
        )
    if recording_ids is not None:
        return stmt.where(CustodyEvent.recording_id.in_(recording_ids))
    if case_id is not None:
        return stmt.where(CustodyEvent.case_id == case_id)
    return stmt


def recording_id_for(sha256: str) -> str:
    """Recording IDs derive from the original's hash, so re-ingesting finds the same one."""
    return f"rec-{sha256[:16]}"


def _table(model: type[object]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


@dataclass(frozen=True)
class Event:
    action: str
    actor: str
    recording_id: str | None = None
    case_id: str | None = None
    reason: str | None = None
    detail: BaseModel | None = None


class Catalog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._standalone = GroupCommit[Event](self._add_events)

    def migrate(self) -> None:
        migrate(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # -- custody events -------------------------------------------------------------------

    @staticmethod
    def _event(session: Session, event: Event) -> None:
        session.add(
            CustodyEvent(
                at=now(),
                actor=event.actor,
                action=event.action,
                recording_id=event.recording_id,
                case_id=event.case_id,
                reason=event.reason,
                detail=event.detail.model_dump_json() if event.detail is not None else None,
            )
        )

    @staticmethod
    def event_in(session: Session, event: Event) -> None:
        """Record ``event`` in the caller's transaction (with the change it documents)."""
        Catalog._event(session, event)

    def add_event(self, event: Event) -> None:
        """Record ``event`` on its own, committed when this returns; events added by several
        threads at once share one transaction (``catalog.group_commit``)."""
        self._standalone.add(event)

    def _add_events(self, events: Sequence[Event]) -> None:
        with self.session() as session:
            for event in events:
                self._event(session, event)

    def events(
        self,
        *,
        recording_ids: Sequence[str] | None = None,
        case_id: str | None = None,
        actions: Collection[str] | None = None,
    ) -> list[CustodyEvent]:
        """Custody events in log order: of these recordings and/or this case; with
        ``actions``, only those (a reader of a few facts need not load every ``view``)."""
        stmt = _of(select(CustodyEvent), recording_ids, case_id).order_by(CustodyEvent.id)
        if actions is not None:
            stmt = stmt.where(CustodyEvent.action.in_(sorted(actions)))
        with self.session() as session:
            return list(session.scalars(stmt))

    def event_page(
        self,
        *,
        recording_ids: Sequence[str] | None = None,
        case_id: str | None = None,
        after: int = 0,
        limit: int,
        placed_below: int = 0,
    ) -> list[tuple[EventRecord, int | None]]:
        """The first ``limit`` of ``events(...)`` after event ``after``, as plain records (its
        columns only: no ORM identity to build for each), each with its position in the
        custody ledger if that is below ``placed_below`` (the size of the tree a page is proved
        against), else None: one query for a page of a long log."""
        table, leaves = _table(CustodyEvent), _table(LedgerLeaf)
        placed = (leaves.c.event_id == table.c.id) & (leaves.c.position < placed_below)
        stmt = (
            select(*(table.c[name] for name in EVENT_COLUMNS), leaves.c.position)
            .select_from(table.outerjoin(leaves, placed))
            .where(table.c.id > after)
        )
        stmt = _of(stmt, recording_ids, case_id).order_by(table.c.id).limit(limit)
        with self.session() as session:
            rows = session.execute(stmt).all()
        return [(EventRecord._make(row[:-1]), row[-1]) for row in rows]

    # -- recordings -----------------------------------------------------------------------

    def add_recording(
        self, recording: Recording, event: Event, also: Sequence[Event] = ()
    ) -> tuple[Recording, bool]:
        """Insert the recording (and its device/officer) unless its hash is known, with its
        ``event`` and then the events ``also`` (what was found in the original at ingest), all
        in one transaction and only by the call that inserted it.

        Returns the catalogued row and whether this call created it.
        """
        values = {c.name: getattr(recording, c.name) for c in _table(Recording).columns}
        with self.session() as session:
            insert_ignore(
                session,
                _table(Device),
                {"id": recording.device_id, "kind": "body-camera", "first_seen": now()},
            )
            if recording.officer_id:
                insert_ignore(session, _table(Officer), {"id": recording.officer_id})
            created = insert_ignore(session, _table(Recording), values)
            if created:
                for each in (event, *also):
                    self._event(session, each)
            row = session.scalars(
                select(Recording).where(Recording.sha256 == recording.sha256)
            ).one()
            return row, created

    def recording_by_sha(self, sha256: str) -> Recording | None:
        with self.session() as session:
            return session.scalars(select(Recording).where(Recording.sha256 == sha256)).first()

    def recording(self, recording_id: str) -> Recording:
        """The recording with this ID, or the only one whose ID or hash starts with it."""
        with self.session() as session:
            row = session.get(Recording, recording_id)
            if row is not None:
                return row
            prefix = recording_id.removeprefix("rec-").lower()
            if len(prefix) < MIN_PREFIX or not all(c in "0123456789abcdef" for c in prefix):
                raise NotFound(
                    f"no recording {recording_id!r} (give the ID, or at least {MIN_PREFIX} hex"
                    " digits of it or of the original's sha256)"
                )
            rows = list(
                session.scalars(
                    select(Recording)
                    .where(
                        Recording.id.startswith("rec-" + prefix, autoescape=True)
                        | Recording.sha256.startswith(prefix, autoescape=True)
                    )
                    .limit(2)
                )
            )
        if len(rows) == 1:
            return rows[0]
        if not rows:
            raise NotFound(f"no recording {recording_id!r}")
        raise NotFound(f"{recording_id!r} names more than one recording; give more of the ID")

    def recordings(self, device_id: str | None = None) -> list[Recording]:
        stmt = select(Recording).order_by(Recording.device_start, Recording.received_at)
        if device_id is not None:
            stmt = stmt.where(Recording.device_id == device_id)
        with self.session() as session:
            return list(session.scalars(stmt))

    def update_recording(self, recording_id: str, **values: object) -> None:
        with self.session() as session:
            session.execute(update(Recording).where(Recording.id == recording_id).values(**values))

    def update_recording_with(self, recording_id: str, event: Event, /, **values: object) -> None:
        """Set ``values`` on the recording's row and record ``event`` (the custody event that
        documents them) in the same transaction."""
        with self.session() as session:
            session.execute(update(Recording).where(Recording.id == recording_id).values(**values))
            self._event(session, event)

    def mark_complete(self, recording_id: str, event: Event) -> bool:
        """Set status complete once; True only for the caller that made the change."""
        with self.session() as session:
            result = session.execute(
                update(Recording)
                .where(Recording.id == recording_id, Recording.status != "complete")
                .values(status="complete")
            )
            changed = bool(getattr(result, "rowcount", 0))
            if changed:
                self._event(session, event)
            return changed

    # -- segments -------------------------------------------------------------------------

    def add_segment(self, segment: Segment, event: Event | None = None) -> Segment:
        """Insert unless this position is catalogued already; return the catalogued row.

        ``event`` is recorded in the same transaction, only by the call that inserted the row.
        """
        values = {
            c.name: getattr(segment, c.name)
            for c in _table(Segment).columns
            if c.name != "id" and getattr(segment, c.name) is not None  # else its default
        }
        with self.session() as session:
            if insert_ignore(session, _table(Segment), values) and event is not None:
                self._event(session, event)
            return session.scalars(
                select(Segment).where(
                    Segment.recording_id == segment.recording_id, Segment.index == segment.index
                )
            ).one()

    def segments(self, recording_id: str) -> list[Segment]:
        with self.session() as session:
            return list(
                session.scalars(
                    select(Segment)
                    .where(Segment.recording_id == recording_id)
                    .order_by(Segment.index)
                )
            )

    def set_segment_phash(
        self,
        recording_id: str,
        index: int,
        blob: bytes,
        digest: str,
        frames: int,
        event: Event | None = None,
        *,
        audio: bytes | None = None,
    ) -> bool:
        """Set a segment's perceptual hashes (and its audio fingerprints) once; True (and
        ``event`` recorded in the same transaction) only for the call that set them."""
        with self.session() as session:
            result = session.execute(
                update(Segment)
                .where(
                    Segment.recording_id == recording_id,
                    Segment.index == index,
                    Segment.phash.is_(None),
                )
                .values(phash=blob, phash_digest=digest, phash_frames=frames, audio=audio)
            )
            changed = bool(getattr(result, "rowcount", 0))
            if changed and event is not None:
                self._event(session, event)
            return changed

    def set_segments_uncopied(
        self,
        recording_id: str,
        indices: Sequence[int],
        event: Event,
        packets: Mapping[int, str] | None = None,
    ) -> bool:
        """Mark segments as needing no stored copy (``vigil storage compact``), with ``event``
        and the packet ranges it logs for segments that had none (JSON by index), in one
        transaction; True only for the call that marked any."""
        with self.session() as session:
            result = session.execute(
                update(Segment)
                .where(
                    Segment.recording_id == recording_id,
                    Segment.index.in_(list(indices)),
                    Segment.kept.is_(True),
                )
                .values(kept=False)
            )
            changed = bool(getattr(result, "rowcount", 0))
            for index, ranges in (packets or {}).items() if changed else ():
                session.execute(
                    update(Segment)
                    .where(Segment.recording_id == recording_id, Segment.index == index)
                    .values(packets=ranges)
                )
            if changed:
                self._event(session, event)
            return changed

    # -- review proxies -------------------------------------------------------------------

    def add_proxy(
        self,
        recording_id: str,
        files: Sequence[ProxySegment],
        *,
        playlist_key: str,
        playlist_sha256: str,
        event: Event,
    ) -> bool:
        """Catalogue a recording's review proxy once, with its custody event, in one
        transaction; False (nothing written) when it is catalogued already."""
        with self.session() as session:
            result = session.execute(
                update(Recording)
                .where(Recording.id == recording_id, Recording.proxy_playlist_key.is_(None))
                .values(proxy_playlist_key=playlist_key, proxy_playlist_sha256=playlist_sha256)
            )
            if not getattr(result, "rowcount", 0):
                return False
            session.add_all(files)
            self._event(session, event)
            return True

    def remove_proxy(self, recording_id: str, event: Event) -> bool:
        """Forget a recording's review proxy (its rows and playlist key), with ``event``, in one
        transaction; False when it has none (``catalog.proxy_cache``)."""
        with self.session() as session:
            result = session.execute(
                update(Recording)
                .where(Recording.id == recording_id, Recording.proxy_playlist_key.is_not(None))
                .values(proxy_playlist_key=None, proxy_playlist_sha256=None)
            )
            if not getattr(result, "rowcount", 0):
                return False
            session.execute(delete(ProxySegment).where(ProxySegment.recording_id == recording_id))
            self._event(session, event)
            return True

    def proxy_segments(self, recording_id: str) -> list[ProxySegment]:
        with self.session() as session:
            return list(
                session.scalars(
                    select(ProxySegment)
                    .where(ProxySegment.recording_id == recording_id)
                    .order_by(ProxySegment.index)
                )
            )

    def set_verification(self, recording_id: str, results: dict[int, str], at: datetime) -> None:
        with self.session() as session:
            for index, status in results.items():
                session.execute(
                    update(Segment)
                    .where(Segment.recording_id == recording_id, Segment.index == index)
                    .values(verify_status=status, verified_at=at)
                )

    # -- cases ----------------------------------------------------------------------------

    def link(
        self,
        case_id: str,
        recording_id: str,
        *,
        from_s: float | None,
        to_s: float | None,
        reason: str,
        actor: str,
        detail: BaseModel | None = None,
    ) -> CaseLink:
        with self.session() as session:
            insert_ignore(session, _table(Case), {"id": case_id, "created_at": now()})
            link = CaseLink(
                case_id=case_id,
                recording_id=recording_id,
                from_s=from_s,
                to_s=to_s,
                reason=reason,
                actor=actor,
                linked_at=now(),
            )
            session.add(link)
            self._event(
                session,
                Event("case.link", actor, recording_id, case_id, reason, detail),
            )
            return link

    def unlink(self, case_id: str, recording_id: str, *, reason: str, actor: str) -> int:
        with self.session() as session:
            result = session.execute(
                update(CaseLink)
                .where(
                    CaseLink.case_id == case_id,
                    CaseLink.recording_id == recording_id,
                    CaseLink.unlinked_at.is_(None),
                )
                .values(unlinked_at=now())
            )
            count = int(getattr(result, "rowcount", 0))
            if count:
                self._event(session, Event("case.unlink", actor, recording_id, case_id, reason))
            return count

    def case_links(self, case_id: str) -> list[CaseLink]:
        with self.session() as session:
            if session.get(Case, case_id) is None:
                raise NotFound(f"no case {case_id!r}")
            return list(
                session.scalars(
                    select(CaseLink)
                    .where(CaseLink.case_id == case_id, CaseLink.unlinked_at.is_(None))
                    .order_by(CaseLink.id)
                )
            )

    def active_links(self, recording_id: str) -> list[CaseLink]:
        """Every case link of this recording that has not been unlinked."""
        with self.session() as session:
            return list(
                session.scalars(
                    select(CaseLink).where(
                        CaseLink.recording_id == recording_id, CaseLink.unlinked_at.is_(None)
                    )
                )
            )

    def cases(self) -> list[Case]:
        with self.session() as session:
            return list(session.scalars(select(Case).order_by(Case.id)))
