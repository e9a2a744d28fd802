"""The custody ledger's latest signed tree head, and the key that signs them (for auditors
checking proofs outside Vigil)."""

from __future__ import annotations

from fastapi import APIRouter

from interfaces.api.deps import API, CallerDep, ServicesDep, _require
from interfaces.api.schemas import ERRORS, CheckpointOut

router = APIRouter()


@router.get(
    f"{API}/ledger/checkpoint", response_model=CheckpointOut, responses=ERRORS, tags=["custody"]
)
def checkpoint(caller: CallerDep, services: ServicesDep) -> CheckpointOut:
    """The latest signed tree head and the key that signs them."""
    _require(services, caller, "custody.read", "GET checkpoint")
    ledger = services.vigil.ledger
    head = ledger.checkpoint()
    return CheckpointOut(
        tree_size=head.size,
        root=head.root,
        note=head.note,
        public_key_pem=ledger.verifying.public_pem.decode(),
        key_fingerprint=ledger.verifying.fingerprint,
    )
