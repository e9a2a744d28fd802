"""ProvedEvents: a custody page's answers kept for the newest tree head only, keyed by the whole
row and its position, and never more than its bound."""

from __future__ import annotations

from datetime import UTC, datetime

from catalog.repository import EventRecord
from interfaces.api.proved import ProvedEvents
from interfaces.api.schemas import EventOut

AT = datetime(2026, 12, 8, 2, 0, tzinfo=UTC)


def row(event_id: int, reason: str | None = None) -> EventRecord:
    return EventRecord(event_id, AT, "audrey", "view", None, "CASE-A", reason, None)


def answer(event: EventRecord, position: int | None) -> EventOut:
    return EventOut(
        id=event.id, at=event.at, actor=event.actor, action=event.action, recording_id=None,
        case_id=event.case_id, reason=event.reason, detail=None, leaf=None, position=position,
        proof=None,
    )  # fmt: skip


def test_an_answer_is_kept_for_its_row_position_and_head_only() -> None:
    kept = ProvedEvents()
    one = row(1)
    kept.put(10, (one, 3), answer(one, 3))
    assert kept.get(10, (one, 3)) == answer(one, 3)
    assert kept.get(10, (row(1, "rewritten"), 3)) is None  # any column differs: not this answer
    assert kept.get(10, (one, 4)) is None  # another position
    assert kept.get(11, (one, 3)) is None  # another head


def test_a_newer_head_starts_afresh_and_an_older_one_is_not_kept() -> None:
    kept = ProvedEvents()
    one, two = row(1), row(2)
    kept.put(10, (one, 3), answer(one, 3))
    kept.put(12, (two, 4), answer(two, 4))
    assert kept.get(10, (one, 3)) is None and kept.get(12, (one, 3)) is None
    kept.put(11, (one, 3), answer(one, 3))  # a request that took an older head
    assert kept.get(11, (one, 3)) is None
    assert kept.get(12, (two, 4)) == answer(two, 4)


def test_it_never_keeps_more_than_its_bound() -> None:
    kept = ProvedEvents(max_kept=3)
    rows = [row(i) for i in range(1, 6)]
    for event in rows:
        kept.put(10, (event, event.id), answer(event, event.id))
    held = [e.id for e in rows if kept.get(10, (e, e.id)) is not None]
    assert 1 <= len(held) <= 3 and held[-1] == 5
