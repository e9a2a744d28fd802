"""A case's custody log: every event of its footage, each with its inclusion proof in the signed
log (RFC 6962), against a tree head at most ``HEAD_MAX_AGE_S`` old; in pages of at most ``PAGE``
events (the log of a case grows with every read of it, each read being a ``view`` event).
Through a case that links only a window of a recording, the events of its segments outside the
window are left out, as the segments themselves are (``catalog.scopes``).

Each event's answer (its leaf, its proof) is kept while the head stands, keyed by its whole row
and position (``interfaces.api.proved``): the rows are read for every request all the same, and
a row rewritten since is answered from what it now says."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query

from catalog.access import Caller
from catalog.models import CaseLink
from catalog.repository import EventRecord
from catalog.scopes import visible_indexes
from integrity.ledger import canonical_event
from interfaces.api.deps import (
    API,
    CallerDep,
    Services,
    ServicesDep,
    _require,
    _viewed,
    exact_recording,
    scope_of,
)
from interfaces.api.schemas import ERRORS, CasePath, CustodyOut, EventOut

HEAD_MAX_AGE_S = 5.0  # the custody log signs a fresh head at most this often
PAGE = 500  # events in a page of the log, unless the caller asks for fewer or more
MAX_PAGE = 2000
AFTER = "Start after this event ID (a page's next_after); 0: from the first."
LIMIT = f"At most this many events (default {PAGE})."
Placed = tuple[EventRecord, int | None]  # an event and its position in the log (None: not yet)
SEGMENT_EVENTS = frozenset({"segment.stored", "segment.hashed"})  # their detail names the index

router = APIRouter()


@router.get(
    f"{API}/cases/{{case_id}}/custody",
    response_model=CustodyOut,
    responses=ERRORS,
    tags=["custody"],
)
def custody(
    case_id: CasePath,
    caller: CallerDep,
    services: ServicesDep,
    after: Annotated[int, Query(ge=0, le=2**62, description=AFTER)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description=LIMIT)] = PAGE,
) -> CustodyOut:
    """The case's custody log, each event with its inclusion proof in the signed log: a page
    of at most ``limit`` events in log order after event ``after``; ``next_after`` is where the
    next page starts (null: this is the last)."""
    _require(services, caller, "custody.read", "GET custody", case_id=case_id)
    vigil = services.vigil
    links = vigil.catalog.case_links(case_id)
    hidden = _hidden_segments(services, caller, case_id, links)
    _viewed(services, caller, "custody log", case_id=case_id)
    head = vigil.ledger.fresh_head(HEAD_MAX_AGE_S)
    rows, more = _page(
        services, case_id, [link.recording_id for link in links], hidden, after, limit, head.size
    )
    events = _answers(services, head.size, rows)
    return CustodyOut(
        case_id=case_id,
        checkpoint=head.note,
        tree_size=head.size,
        events=events,
        next_after=rows[-1][0].id if more else None,
    )


def _answers(services: Services, size: int, rows: list[Placed]) -> list[EventOut]:
    """The events as the page shows them: each with its leaf and its proof against the tree of
    ``size`` leaves when it is in that tree (newer events are proved from the next head). The
    same row at the same position answers the same while that head stands (``ProvedEvents``):
    only the others are proved and built."""
    proved = services.proved
    kept = [proved.get(size, row) for row in rows]
    in_tree = [
        p for (_, p), answer in zip(rows, kept, strict=True) if answer is None and p is not None
    ]
    paths = iter(services.vigil.ledger.tree().inclusion_proofs(in_tree, size) if in_tree else [])
    answers: list[EventOut] = []
    for row, answer in zip(rows, kept, strict=True):
        if answer is None:
            event, position = row
            answer = _answer(event, position, None if position is None else next(paths))
            proved.put(size, row, answer)
        answers.append(answer)
    return answers


def _answer(event: EventRecord, position: int | None, path: list[bytes] | None) -> EventOut:
    detail = json.loads(event.detail) if event.detail else None
    return EventOut(
        id=event.id,
        at=event.at,
        actor=event.actor,
        action=event.action,
        recording_id=event.recording_id,
        case_id=event.case_id,
        reason=event.reason,
        detail=detail,
        leaf=None if path is None else canonical_event(event, detail).decode(),
        position=position,
        proof=None if path is None else [p.hex() for p in path],
    )


def _page(
    services: Services,
    case_id: str,
    recording_ids: list[str],
    hidden: dict[str, set[int]],
    after: int,
    limit: int,
    size: int,
) -> tuple[list[Placed], bool]:
    """Up to ``limit`` events of the case's log after ``after`` that this caller sees, each with
    its position if it is in the tree of ``size`` leaves, and whether more follow. Events of
    these recordings that belong to other cases (a link elsewhere, its reason) are that case's
    business, not this one's."""
    shown: list[Placed] = []
    while True:
        batch = services.vigil.catalog.event_page(
            recording_ids=recording_ids,
            case_id=case_id,
            after=after,
            limit=limit + 1,
            placed_below=size,
        )
        shown += [
            (e, p) for e, p in batch if e.case_id in (None, case_id) and not _outside(e, hidden)
        ]
        if len(shown) > limit or len(batch) <= limit:
            return shown[:limit], len(shown) > limit
        after = batch[-1][0].id


def _hidden_segments(
    services: Services, caller: Caller, case_id: str, links: list[CaseLink]
) -> dict[str, set[int]]:
    """Per recording of the case, the indexes of the segments outside what the caller sees."""
    hidden: dict[str, set[int]] = {}
    for rec_id in dict.fromkeys(link.recording_id for link in links):
        rec = exact_recording(services, rec_id)
        scope = scope_of(services, caller, rec, "custody.read", case_id)
        if scope is not None and scope.whole:
            continue
        spans = [(s.index, s.start_s, s.end_s) for s in services.vigil.catalog.segments(rec_id)]
        shown = visible_indexes(scope, spans) if scope is not None else set()
        hidden[rec_id] = {index for index, _, _ in spans} - shown
    return hidden


def _outside(event: EventRecord, hidden: dict[str, set[int]]) -> bool:
    """Is ``event`` about a segment the caller does not see?"""
    if event.action not in SEGMENT_EVENTS or event.recording_id not in hidden:
        return False
    try:
        index = json.loads(event.detail or "{}").get("index")
    except (ValueError, AttributeError):
        return True  # unreadable: not shown to a windowed caller
    return index in hidden[event.recording_id]
