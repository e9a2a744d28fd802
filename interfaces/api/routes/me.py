"""Who the bearer token belongs to."""

from __future__ import annotations

from fastapi import APIRouter

from interfaces.api.deps import API, CallerDep
from interfaces.api.schemas import ERRORS, Me

router = APIRouter()


@router.get(f"{API}/me", response_model=Me, responses=ERRORS, tags=["access"])
def me(caller: CallerDep) -> Me:
    """Who the token belongs to."""
    return Me(
        id=caller.id,
        role=caller.role,
        display_name=caller.display_name,
        device_id=caller.device_id,
        officer_id=caller.officer_id,
        assigned_cases=sorted(caller.assigned_cases),
    )
