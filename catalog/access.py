"""Who may do what: principals (people with a role, and devices), their API tokens, case
assignments, and the access policy.

Tokens are 256-bit random strings shown once; the catalogue keeps only their SHA-256 (a fast
hash is right for high-entropy secrets: there is nothing to guess). Every change here is a
custody event. The policy is a pure function of the caller, the action and the case scope, so it
is tested as a table.

Roles (from the domain's rules: access is by need, every retrieval is approved and logged):

- **device**: uploads its own footage; reads nothing.
- **officer**: uploads; plays back only recordings they made: those that name them and came
  in by their own upload or a device bound to them (``AccessService.playback_officer``).
- **reviewer**: the cases they are assigned to: timeline, playback, verification, custody log,
  and asking for an export (with a reason).
- **supervisor**: every case; assigns reviewers, links footage, approves or denies exports.
- **auditor**: reads every custody log and the ledger; no footage.
- **admin**: manages principals and tokens; no footage, no custody content.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from pydantic import BaseModel
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from vigil_verify.errors import ErrorKind

from catalog.errors import CatalogError, NotFound
from catalog.ids import require_case_id, require_principal_id
from catalog.models import ApiToken, CaseAssignment, Principal, Upload
from catalog.repository import Catalog, Event, now
from catalog.token_use import UseStamps

Role = Literal["device", "officer", "reviewer", "supervisor", "auditor", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
Action = Literal[
    "upload",
    "case.list",
    "case.read",
    "case.verify",
    "case.manage",
    "recording.play",
    "export.request",
    "export.approve",
    "custody.read",
    "stats.read",
    "admin",
]
TOKEN_PREFIX = "vgl_"


class AccessError(CatalogError):
    """A principal or token operation that cannot be done; the message says why."""

    kind = ErrorKind.CONFLICT


# Every request's token check, built once: SQLAlchemy finds a statement's compiled form by its
# cache key, and works the key out again for each new statement object; a kept one remembers
# it. (The check was over a quarter of a device's upload start in the API process.)
_TOKEN_BY_HASH = (
    select(ApiToken, Principal)
    .join(Principal, Principal.id == ApiToken.principal_id)
    .where(ApiToken.token_sha256 == bindparam("sha256"))
)
_TOKEN_BY_ID = (
    select(ApiToken, Principal)
    .join(Principal, Principal.id == ApiToken.principal_id)
    .where(ApiToken.id == bindparam("token_id"), ApiToken.principal_id == bindparam("principal_id"))
)
_ASSIGNED = select(CaseAssignment.case_id).where(
    CaseAssignment.principal_id == bindparam("principal_id"),
    CaseAssignment.revoked_at.is_(None),
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Caller:
    """An authenticated principal, as the API sees it."""

    id: str
    role: Role
    display_name: str
    device_id: str | None = None
    officer_id: str | None = None
    assigned_cases: frozenset[str] = frozenset()
    token_id: int | None = None  # the token this request came with (media links name it)


@dataclass(frozen=True)
class TokenCheck:
    """What a presented token turned out to be: the caller it stands for, or why not, and the
    principal it belongs to once it was found to exist (a revoked or expired token, a disabled
    account); never a name the token did not prove."""

    caller: Caller | None
    why: str
    principal: str | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


_ALL_CASES: dict[Role, frozenset[Action]] = {
    "supervisor": frozenset(
        {
            "case.list", "case.read", "case.verify", "case.manage", "recording.play",
            "export.request", "export.approve", "custody.read", "stats.read",
        }
    ),
    "auditor": frozenset({"case.list", "custody.read", "stats.read"}),
}  # fmt: skip
_ASSIGNED_CASES: frozenset[Action] = frozenset(
    {"case.list", "case.read", "case.verify", "recording.play", "export.request", "custody.read"}
)


def decide(
    caller: Caller,
    action: Action,
    *,
    case_id: str | None = None,
    recording_officer: str | None = None,
) -> Decision:
    """May ``caller`` do ``action`` (on ``case_id``, or on a recording by ``recording_officer``)?"""
    role = caller.role
    if action == "admin":
        return Decision(role == "admin", f"role {role} does not manage accounts")
    if action == "upload":
        return Decision(role in ("device", "officer"), f"role {role} does not upload footage")
    if role in _ALL_CASES:
        allowed = action in _ALL_CASES[role]
        return Decision(allowed, "" if allowed else f"role {role} may not {action}")
    if role == "reviewer":
        if action not in _ASSIGNED_CASES:
            return Decision(False, f"role reviewer may not {action}")
        if case_id is None:
            return Decision(action == "case.list", "a reviewer acts within a case")
        if case_id in caller.assigned_cases:
            return Decision(True, "")
        return Decision(False, f"{caller.id} is not assigned to case {case_id}")
    if role == "officer" and action == "recording.play":
        own = recording_officer is not None and recording_officer == caller.officer_id
        return Decision(own, "" if own else "an officer plays back only their own recordings")
    return Decision(False, f"role {role} may not {action}")


def may_ever(caller: Caller, action: Action) -> bool:
    """Could ``caller``'s role do ``action`` on anything at all (within some case, or on their
    own recordings)? A refusal that does not depend on what was asked for can say so (403);
    one that does answers as if it were not there (404)."""
    if caller.role == "reviewer":
        return action in _ASSIGNED_CASES
    if caller.role == "officer" and action == "recording.play":
        return True
    return decide(caller, action).allowed


class PrincipalDetail(BaseModel):
    principal: str
    role: str
    device_id: str | None = None
    officer_id: str | None = None


class TokenDetail(BaseModel):
    principal: str
    token_id: int
    label: str
    expires_at: datetime | None = None


class AssignmentDetail(BaseModel):
    principal: str


@dataclass(frozen=True)
class IssuedToken:
    id: int
    token: str  # shown once; only its hash is kept


class AccessService:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.uses = UseStamps(catalog)

    # -- principals and tokens ----------------------------------------------------------------

    def add_principal(
        self,
        principal_id: str,
        role: Role,
        *,
        display_name: str,
        actor: str,
        device_id: str | None = None,
        officer_id: str | None = None,
    ) -> Principal:
        if role not in ROLES:
            raise AccessError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
        if role == "device" and not device_id:
            raise AccessError("a device principal names its device (device_id)")
        with self.catalog.session() as session:
            if session.get(Principal, principal_id) is not None:
                raise AccessError(f"principal {principal_id!r} exists")
            row = Principal(
                id=principal_id,
                role=role,
                display_name=display_name,
                device_id=device_id,
                officer_id=officer_id,
                created_at=now(),
            )
            session.add(row)
            self.catalog.event_in(
                session,
                Event(
                    "access.principal.added",
                    actor,
                    detail=PrincipalDetail(
                        principal=principal_id,
                        role=role,
                        device_id=device_id,
                        officer_id=officer_id,
                    ),
                ),
            )
            return row

    def principal(self, principal_id: str) -> Principal:
        with self.catalog.session() as session:
            row = session.get(Principal, principal_id)
        if row is None:
            raise NotFound(f"no principal {principal_id!r}")
        return row

    def principals(self) -> list[Principal]:
        with self.catalog.session() as session:
            return list(session.scalars(select(Principal).order_by(Principal.id)))

    def issue_token(
        self, principal_id: str, *, label: str, actor: str, valid_for: timedelta | None = None
    ) -> IssuedToken:
        principal = self.principal(principal_id)
        if principal.disabled_at is not None:
            raise AccessError(f"principal {principal_id!r} is disabled")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires = now() + valid_for if valid_for is not None else None
        with self.catalog.session() as session:
            row = ApiToken(
                principal_id=principal_id,
                token_sha256=token_hash(token),
                label=label,
                created_at=now(),
                expires_at=expires,
            )
            session.add(row)
            session.flush()
            self.catalog.event_in(
                session,
                Event(
                    "access.token.issued",
                    actor,
                    detail=TokenDetail(
                        principal=principal_id, token_id=row.id, label=label, expires_at=expires
                    ),
                ),
            )
            return IssuedToken(row.id, token)

    def revoke_token(self, token_id: int, *, actor: str) -> bool:
        with self.catalog.session() as session:
            row = session.get(ApiToken, token_id)
            if row is None:
                raise NotFound(f"no token #{token_id}")
            if row.revoked_at is not None:
                return False
            row.revoked_at = now()
            self.catalog.event_in(
                session,
                Event(
                    "access.token.revoked",
                    actor,
                    detail=TokenDetail(
                        principal=row.principal_id, token_id=row.id, label=row.label
                    ),
                ),
            )
            return True

    def disable(self, principal_id: str, *, actor: str) -> None:
        """Disable a principal (a lost device): every token of it stops working at once."""
        with self.catalog.session() as session:
            row = session.get(Principal, principal_id)
            if row is None:
                raise NotFound(f"no principal {principal_id!r}")
            if row.disabled_at is None:
                row.disabled_at = now()
                self.catalog.event_in(
                    session,
                    Event(
                        "access.principal.disabled",
                        actor,
                        detail=PrincipalDetail(principal=principal_id, role=row.role),
                    ),
                )

    def tokens(self, principal_id: str) -> list[ApiToken]:
        with self.catalog.session() as session:
            return list(
                session.scalars(
                    select(ApiToken)
                    .where(ApiToken.principal_id == principal_id)
                    .order_by(ApiToken.id)
                )
            )

    def authenticate(self, token: str) -> Caller | None:
        """The caller a bearer token stands for, or None (unknown, revoked, expired, disabled)."""
        return self.check_token(token).caller

    def check_token(self, token: str) -> TokenCheck:
        """The caller a bearer token stands for, or why it stands for none."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return TokenCheck(None, "unknown token")
        with self.catalog.session() as session:
            found = session.execute(_TOKEN_BY_HASH, {"sha256": token_hash(token)}).first()
            if found is None:
                return TokenCheck(None, "unknown token")
            return self._active(session, *found)

    def active_caller(self, principal_id: str, token_id: int) -> TokenCheck:
        """The caller token ``token_id`` of ``principal_id`` stands for if it is still active
        (a media link names the token it was issued under, and is checked on every use)."""
        with self.catalog.session() as session:
            found = session.execute(
                _TOKEN_BY_ID, {"token_id": token_id, "principal_id": principal_id}
            ).first()
            if found is None:
                return TokenCheck(None, "unknown token")
            return self._active(session, *found)

    def _active(self, session: Session, row: ApiToken, principal: Principal) -> TokenCheck:
        at = now()
        if row.revoked_at is not None:
            return TokenCheck(None, "revoked token", principal.id)
        if principal.disabled_at is not None:
            return TokenCheck(None, "disabled account", principal.id)
        if row.expires_at is not None and row.expires_at <= at:
            return TokenCheck(None, "expired token", principal.id)
        role = principal.role
        if role not in ROLES:
            return TokenCheck(None, f"unknown role {role!r}", principal.id)
        if row.last_used_at is None or at - row.last_used_at > timedelta(minutes=1):
            self.uses.note(row.id, at)  # written behind the request, not in its way
        cases = frozenset(session.scalars(_ASSIGNED, {"principal_id": principal.id}))
        caller = Caller(
            id=principal.id,
            role=role,
            display_name=principal.display_name,
            device_id=principal.device_id,
            officer_id=principal.officer_id,
            assigned_cases=cases,
            token_id=row.id,
        )
        return TokenCheck(caller, "", principal.id)

    def playback_officer(self, recording_id: str, officer_id: str | None) -> str | None:
        """The officer a recording gives playback to: the one it names (``officer_id``), if
        the upload it came in by was sent by that officer or by a device principal bound to
        them. An unbound device may name an officer; that is recorded, but proves nothing, so
        it gives no playback. A recording not uploaded through the API (ingested on the
        server by an operator) keeps its officer."""
        if officer_id is None:
            return None
        with self.catalog.session() as session:
            senders = list(
                session.scalars(
                    select(Principal.officer_id)
                    .join(Upload, Upload.principal_id == Principal.id)
                    .where(Upload.recording_id == recording_id, Upload.status == "complete")
                )
            )
        if not senders or officer_id in senders:
            return officer_id
        return None

    # -- case assignments ---------------------------------------------------------------------

    def assign(self, case_id: str, principal_id: str, *, actor: str) -> None:
        case_id, principal_id = require_case_id(case_id), require_principal_id(principal_id)
        principal = self.principal(principal_id)
        if principal.role != "reviewer":
            raise AccessError(
                f"{principal_id} is a {principal.role}; cases are assigned to reviewers"
            )
        with self.catalog.session() as session:
            active = session.scalar(
                select(CaseAssignment.id).where(
                    CaseAssignment.case_id == case_id,
                    CaseAssignment.principal_id == principal_id,
                    CaseAssignment.revoked_at.is_(None),
                )
            )
            if active is not None:
                return
            session.add(
                CaseAssignment(
                    case_id=case_id, principal_id=principal_id, assigned_by=actor, assigned_at=now()
                )
            )
            self.catalog.event_in(
                session,
                Event(
                    "case.assigned", actor, case_id=case_id,
                    detail=AssignmentDetail(principal=principal_id),
                ),
            )  # fmt: skip

    def unassign(self, case_id: str, principal_id: str, *, actor: str) -> int:
        with self.catalog.session() as session:
            result = session.execute(
                update(CaseAssignment)
                .where(
                    CaseAssignment.case_id == case_id,
                    CaseAssignment.principal_id == principal_id,
                    CaseAssignment.revoked_at.is_(None),
                )
                .values(revoked_at=now())
            )
            count = int(getattr(result, "rowcount", 0))
            if count:
                self.catalog.event_in(
                    session,
                    Event(
                        "case.unassigned", actor, case_id=case_id,
                        detail=AssignmentDetail(principal=principal_id),
                    ),
                )  # fmt: skip
            return count

    def assignees(self, case_id: str) -> list[str]:
        with self.catalog.session() as session:
            return list(
                session.scalars(
                    select(CaseAssignment.principal_id).where(
                        CaseAssignment.case_id == case_id, CaseAssignment.revoked_at.is_(None)
                    )
                )
            )


def visible_cases(caller: Caller, all_cases: Iterable[str]) -> list[str]:
    """The cases ``caller`` may list."""
    if decide(caller, "case.list").allowed and caller.role in _ALL_CASES:
        return sorted(all_cases)
    if caller.role == "reviewer":
        return sorted(c for c in all_cases if c in caller.assigned_cases)
    return []
