"""A case's custody log: every event of its footage, each with its inclusion proof in the signed
log (RFC 6962), against a tree head at most ``HEAD_MAX_AGE_S`` old."""

from __future__ import annotations

import json

from fastapi import APIRouter

from catalog.repository import now
from integrity.ledger import canonical_event
from interfaces.api.deps import API, CallerDep, ServicesDep, _require, _viewed
from interfaces.api.schemas import ERRORS, CasePath, CustodyOut, EventOut

HEAD_MAX_AGE_S = 5.0  # the custody log signs a fresh head at most this often

router = APIRouter()


@router.get(
    f"{API}/cases/{{case_id}}/custody",
    response_model=CustodyOut,
    responses=ERRORS,
    tags=["custody"],
)
def custody(case_id: CasePath, caller: CallerDep, services: ServicesDep) -> CustodyOut:
    """The case's custody log, each event with its inclusion proof in the signed log."""
    _require(services, caller, "custody.read", "GET custody", case_id=case_id)
    vigil = services.vigil
    recording_ids = [link.recording_id for link in vigil.catalog.case_links(case_id)]
    _viewed(services, caller, "custody log", case_id=case_id)
    head = vigil.ledger.latest_head()
    if head is None or (now() - head.signed_at).total_seconds() > HEAD_MAX_AGE_S:
        head = vigil.ledger.checkpoint()
    # Events of these recordings that belong to other cases (a link elsewhere, its reason)
    # are that case's business, not this one's.
    rows = [
        e
        for e in vigil.catalog.events(recording_ids=recording_ids, case_id=case_id)
        if e.case_id in (None, case_id)
    ]
    proofs = vigil.ledger.inclusion_proofs([e.id for e in rows], head.size)
    events: list[EventOut] = []
    for event in rows:
        position = proof = leaf = None
        if event.id in proofs:  # newer events are proved from the next head
            position, path = proofs[event.id]
            proof = [p.hex() for p in path]
            leaf = canonical_event(event).decode()
        events.append(
            EventOut(
                id=event.id,
                at=event.at,
                actor=event.actor,
                action=event.action,
                recording_id=event.recording_id,
                case_id=event.case_id,
                reason=event.reason,
                detail=json.loads(event.detail) if event.detail else None,
                leaf=leaf,
                position=position,
                proof=proof,
            )
        )
    return CustodyOut(case_id=case_id, checkpoint=head.note, tree_size=head.size, events=events)
