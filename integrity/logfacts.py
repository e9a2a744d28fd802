"""What the signed log proves about recordings: the facts their custody events establish, each
event proved included in a signed tree head.

This is the authority every verdict rests on. The catalogue's rows are an index for finding
things quickly; whoever can write the database can rewrite a row, but not an event that a signed
tree head covers: its leaf would no longer hash to the signed root. So the expected value of
every check (an original's SHA-256 and size, each segment's key, hash, times and chain link, each
per-frame hash blob's SHA-256, the playlist's hash) comes from here.

An event is *proved* when its bytes hash to its leaf and the leaf's inclusion proof verifies
against the latest tree head whose Ed25519 signature verifies, taken from the catalogue's heads
and the WORM store's (an insider who deletes head rows does not hide events from the WORM copy).
Facts are read from proved events only, by the same code the offline verifier uses
(``vigil_verify.ledger``), so both sides interpret the log alike.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from vigil_verify.checkpoint import Checkpoint, CheckpointError, parse_checkpoint, verify_checkpoint
from vigil_verify.facts import LedgerCheck, SignedRecording, apply_event, parse_event
from vigil_verify.merkle import leaf_hash, verify_inclusion

from catalog.models import CustodyEvent, LedgerLeaf
from catalog.tracks import KeptTrack, TrackGps, TracksListed
from integrity.ledger import Ledger, canonical_event, worm_checkpoint_keys

logger = logging.getLogger(__name__)


@dataclass
class ProvedRecording:
    """A recording as the signed log knows it."""

    facts: SignedRecording
    original_key: str | None = None  # from the "ingest" (or live "original.stored") event
    playlist_sha256: str | None = None  # from the "segment" summary event
    chain_head: str | None = None
    tracks: tuple[KeptTrack, ...] | None = None  # its other tracks, where kept ("segment")
    gps: tuple[TrackGps, ...] = ()  # the GPS objects read out of them ("segment")
    unsigned: list[str] = field(default_factory=list)  # events no signed head covers yet
    problems: list[str] = field(default_factory=list)  # events that fail against the log
    events: int = 0  # custody events of the recording read
    events_proved: int = 0  # of them, proved included in the signed head

    @property
    def original_known(self) -> bool:
        return self.facts.original_sha256 is not None


@dataclass(frozen=True)
class SignedHead:
    checkpoint: Checkpoint
    where: str  # "tree head #12" or the WORM object key


@dataclass
class LogFacts:
    """Proved facts for a set of recordings, against one signed head."""

    head: SignedHead | None
    recordings: dict[str, ProvedRecording]
    problems: list[str] = field(default_factory=list)  # about the heads themselves

    def of(self, recording_id: str) -> ProvedRecording:
        return self.recordings.setdefault(
            recording_id, ProvedRecording(SignedRecording(recording_id))
        )


def latest_signed_head(
    ledger: Ledger, public: Ed25519PublicKey
) -> tuple[SignedHead | None, list[str]]:
    """The largest head, from the catalogue's rows and the WORM store's newest object, whose
    signature verifies; and the problems found with the heads looked at."""
    problems: list[str] = []
    candidates: list[tuple[str, str]] = []
    row = ledger.latest_head()
    if row is not None:
        candidates.append((f"tree head #{row.id}", row.note))
    worm = sorted(worm_checkpoint_keys(ledger.store))
    if worm:
        try:
            candidates.append((worm[-1], ledger.read_checkpoint(worm[-1]).note))
        except Exception as exc:
            problems.append(f"log: WORM checkpoint {worm[-1]} is unreadable ({exc})")
    best: SignedHead | None = None
    for where, note in candidates:
        try:
            checkpoint = parse_checkpoint(note)
        except CheckpointError as exc:
            problems.append(f"log: {where} is not a checkpoint ({exc})")
            continue
        if not verify_checkpoint(checkpoint, public):
            problems.append(f"log: {where} is not signed by the ledger key (signature fails)")
            continue
        if best is None or checkpoint.size > best.checkpoint.size:
            best = SignedHead(checkpoint, where)
    return best, problems


def prove(
    ledger: Ledger, public: Ed25519PublicKey, recording_ids: Sequence[str] | None = None
) -> LogFacts:
    """The proved facts of ``recording_ids`` (every recording when None)."""
    head, problems = latest_signed_head(ledger, public)
    facts = LogFacts(head, {}, problems)
    with ledger.catalog.session() as session:
        stmt = (
            select(CustodyEvent, LedgerLeaf)
            .outerjoin(LedgerLeaf, LedgerLeaf.event_id == CustodyEvent.id)
            .where(CustodyEvent.recording_id.is_not(None))
            .order_by(CustodyEvent.id)
        )
        if recording_ids is not None:
            stmt = stmt.where(CustodyEvent.recording_id.in_(list(recording_ids)))
        rows = session.execute(stmt).all()
    checker = LedgerCheck()
    tree = ledger.tree() if head is not None else None
    for event, leaf in rows:
        assert event.recording_id is not None
        proved = facts.of(event.recording_id)
        proved.events += 1
        raw = canonical_event(event)
        if head is None or leaf is None or leaf.position >= head.checkpoint.size:
            proved.unsigned.append(f"event #{event.id} ({event.action})")
            continue
        hashed = leaf_hash(raw)
        if bytes(leaf.leaf_hash) != hashed:
            proved.problems.append(
                f"log: event #{event.id} ({event.action}) differs from what its leaf"
                f" {leaf.position} recorded: the event was rewritten"
            )
            continue
        assert tree is not None
        size = head.checkpoint.size
        proof = tree.inclusion_proof(leaf.position, size)
        if not verify_inclusion(hashed, leaf.position, size, proof, head.checkpoint.root):
            proved.problems.append(
                f"log: event #{event.id} ({event.action}) is not in the signed log of size"
                f" {size} ({head.where}): the log was rewritten"
            )
            continue
        proved.events_proved += 1
        _learn(proved, checker, leaf.position, raw)
    return facts


def _learn(proved: ProvedRecording, checker: LedgerCheck, position: int, raw: bytes) -> None:
    """Add what one proved event establishes to ``proved``."""
    try:
        event = parse_event(position, raw.decode("utf-8"))
    except (ValueError, KeyError, TypeError) as exc:
        proved.problems.append(f"log: a proved event at leaf {position} is malformed ({exc})")
        return
    checker.facts[proved.facts.id] = proved.facts
    try:
        apply_event(checker, event)
    except (ValueError, KeyError, TypeError) as exc:
        proved.problems.append(f"log: event #{event.id} ({event.action}) is malformed ({exc})")
        return
    if event.action in ("ingest", "original.stored"):
        key = event.detail.get("original_key")
        proved.original_key = key if isinstance(key, str) else proved.original_key
    if event.action == "segment":
        playlist = event.detail.get("playlist_sha256")
        head = event.detail.get("chain_head")
        proved.playlist_sha256 = playlist if isinstance(playlist, str) else None
        proved.chain_head = head if isinstance(head, str) else None
        try:
            listed = TracksListed.model_validate(event.detail)
            proved.tracks, proved.gps = listed.tracks, listed.gps
        except ValueError as exc:  # pydantic's ValidationError
            proved.problems.append(f"log: event #{event.id} (segment) lists tracks wrongly ({exc})")
    proved.problems.extend(checker.problems)
    checker.problems.clear()
