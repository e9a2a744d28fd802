"""The custody ledger: every custody event a leaf of an RFC 6962 Merkle log, with signed heads.

Events are written by whoever acts (ingest, the stages, case links, exports ...) into the
append-only ``custody_events`` table. ``Ledger.sequence`` gives each committed event, once, the
next leaf position (``ledger_leaves``): under PostgreSQL's advisory lock, and with a retry when
two sequencers race on SQLite, so concurrent writers never need to agree on an order themselves.
An event whose transaction commits late simply gets a later position.

``Ledger.checkpoint`` signs the tree head (size, root, time) with Ed25519 as a C2SP checkpoint
note (see ``vigil_verify.checkpoint``), asks the configured RFC 3161 TSA for a timestamp over the
note if there is one, writes the note to the WORM store first and then to ``tree_heads``. A
later head that is not consistent with an earlier one shows that the log was rewritten; the
earlier heads in the WORM store cannot be changed or deleted in COMPLIANCE mode.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from vigil_verify.checkpoint import (
    Checkpoint,
    CheckpointError,
    checkpoint_body,
    parse_checkpoint,
    verify_checkpoint,
)
from vigil_verify.merkle import leaf_hash

from catalog.models import CustodyEvent, LedgerLeaf, TreeHeadRecord
from catalog.repository import Catalog, EventRecord, now
from integrity.errors import LedgerError
from integrity.keys import SigningKey, VerifyingKey
from integrity.merkle import MerkleLog
from integrity.witness import CosignResult
from integrity.witness_ledger import LedgerWitnesses
from store.base import ObjectStore, sha256_file

logger = logging.getLogger(__name__)

LEDGER_LOCK = 0x5669_6769_6C01  # PostgreSQL advisory lock key of the sequencer
CHECKPOINT_FORMAT = "vigil-checkpoint/1"
CHECKPOINT_PREFIX = "ledger/checkpoints/"
LEDGER_CATEGORY = "ledger"
EVENT_FORMAT = 1


# -- events as leaves ----------------------------------------------------------------------------


_READ = object()  # canonical_event: decode the event's own detail


def canonical_event(event: CustodyEvent | EventRecord, detail: object = _READ) -> bytes:
    """The bytes a custody event contributes to the log: sorted-key compact UTF-8 JSON.

    ``detail`` is embedded as the JSON value it holds, so a verifier reads every field without a
    second decoding step (a caller that has decoded it already passes it). The export package
    carries these exact bytes.
    """
    if detail is _READ:
        detail = json.loads(event.detail) if event.detail else None
    document = {
        "v": EVENT_FORMAT,
        "id": event.id,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "recording": event.recording_id,
        "case": event.case_id,
        "reason": event.reason,
        "detail": detail,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# -- the ledger ----------------------------------------------------------------------------------


def worm_checkpoint_keys(store: ObjectStore) -> list[str]:
    """Keys of the signed tree heads in the WORM store (they outlive the catalogue's rows)."""
    return [k for k in store.list_keys("derived", CHECKPOINT_PREFIX) if k.endswith(".json")]


class CheckpointObject(BaseModel):
    """What the WORM store holds per tree head."""

    format: str = CHECKPOINT_FORMAT
    note: str
    timestamp_token: str | None = None  # base64 DER RFC 3161 TimeStampToken over SHA-256(note)
    # Witnesses' cosignature lines (C2SP tlog-cosignature), verified; the note stays as signed,
    # since the timestamp covers SHA-256 of that note.
    cosignatures: list[str] = []


@dataclass(frozen=True)
class LedgerProblem:
    kind: str  # "event-changed", "leaf-orphaned", "head-mismatch", "head-signature", "worm"
    detail: str


@dataclass(frozen=True)
class LedgerAudit:
    size: int
    pending: int
    heads_checked: int
    problems: tuple[LedgerProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


Timestamper = Callable[[bytes], bytes]
"""Given SHA-256 of a signed note, an RFC 3161 TimeStampToken (DER) over it."""


class Ledger:
    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        key: SigningKey | VerifyingKey,
        work_dir: Path,
        timestamper: Timestamper | None = None,
        clock: Callable[[], datetime] = now,
        witnesses: LedgerWitnesses | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.key = key
        self.work_dir = work_dir
        self.timestamper = timestamper
        self.clock = clock
        self.witnesses = witnesses
        self._tree = MerkleLog()
        # The in-memory tree is shared by the threads of one process (the API serves requests
        # from a thread pool): loading new leaves into it, and reading a size with its root,
        # happen under this lock, or two loaders append the same leaves twice and a head could
        # be signed with one size and another size's root.
        self._lock = threading.RLock()
        self._freshening = threading.Lock()  # one ``fresh_head`` signs; the others wait for it

    @property
    def verifying(self) -> VerifyingKey:
        """The ledger's public key and name."""
        return self.key.verifying if isinstance(self.key, SigningKey) else self.key

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The key every signed tree head of this log verifies with."""
        return self.verifying.public

    @property
    def can_sign(self) -> bool:
        """Whether this process holds the signing key. Without it (workers and the API when the
        key is kept apart) it appends events, and the ledger service sequences and signs them."""
        return isinstance(self.key, SigningKey)

    # -- sequencing ---------------------------------------------------------------------------

    def sequence(self, batch: int = 10_000) -> int:
        """Give every event not yet in the log its leaf position; return the log's size."""
        while True:
            size, added = self._sequence_batch(batch)
            if added < batch:
                return size

    def _sequence_batch(self, batch: int) -> tuple[int, int]:
        for attempt in range(8):
            try:
                with self.catalog.session() as session:
                    if session.get_bind().dialect.name == "postgresql":
                        session.execute(
                            text("SELECT pg_advisory_xact_lock(:key)"), {"key": LEDGER_LOCK}
                        )
                    last = session.scalar(select(func.max(LedgerLeaf.position)))
                    size = 0 if last is None else int(last) + 1
                    pending = list(
                        session.scalars(
                            select(CustodyEvent)
                            .outerjoin(LedgerLeaf, LedgerLeaf.event_id == CustodyEvent.id)
                            .where(LedgerLeaf.position.is_(None))
                            .order_by(CustodyEvent.id)
                            .limit(batch)
                        )
                    )
                    if pending:
                        at = self.clock()
                        session.execute(
                            insert(LedgerLeaf),
                            [
                                {
                                    "position": size + i,
                                    "event_id": event.id,
                                    "leaf_hash": leaf_hash(canonical_event(event)),
                                    "sequenced_at": at,
                                }
                                for i, event in enumerate(pending)
                            ],
                        )
                    return size + len(pending), len(pending)
            except (IntegrityError, OperationalError) as exc:
                # Another sequencer took these positions (or SQLite's write lock) first.
                logger.debug("ledger sequencing raced (%s); retrying", exc)
                time.sleep(0.02 * 2**attempt)
        raise LedgerError("could not sequence custody events: the catalogue stayed contended")

    def tree(self) -> MerkleLog:
        """The Merkle log over every sequenced leaf (loads what it has not seen yet)."""
        with self._lock:
            with self.catalog.session() as session:
                rows = session.execute(
                    select(LedgerLeaf.position, LedgerLeaf.leaf_hash)
                    .where(LedgerLeaf.position >= self._tree.size)
                    .order_by(LedgerLeaf.position)
                ).all()
            for position, leaf in rows:
                if position != self._tree.size:
                    raise LedgerError(f"ledger position {self._tree.size} is missing")
                self._tree.append_leaf_hash(bytes(leaf))
            return self._tree

    def position_of(self, event_id: int) -> int:
        with self.catalog.session() as session:
            position = session.scalar(
                select(LedgerLeaf.position).where(LedgerLeaf.event_id == event_id)
            )
        if position is None:
            raise LedgerError(f"custody event #{event_id} is not in the ledger yet")
        return int(position)

    # -- proofs -------------------------------------------------------------------------------

    def inclusion_proof(self, event_id: int, size: int) -> tuple[int, list[bytes]]:
        """(leaf position, RFC 6962 audit path) of the event in the tree of ``size`` leaves."""
        position = self.position_of(event_id)
        tree = self.tree()
        if position >= size:
            raise LedgerError(f"event #{event_id} is leaf {position}, past tree size {size}")
        return position, tree.inclusion_proof(position, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return self.tree().consistency_proof(old_size, new_size)

    # -- tree heads ---------------------------------------------------------------------------

    def latest_head(self) -> TreeHeadRecord | None:
        with self.catalog.session() as session:
            return session.scalars(
                select(TreeHeadRecord).order_by(
                    TreeHeadRecord.size.desc(), TreeHeadRecord.id.desc()
                )
            ).first()

    def heads(self) -> list[TreeHeadRecord]:
        with self.catalog.session() as session:
            return list(session.scalars(select(TreeHeadRecord).order_by(TreeHeadRecord.id)))

    def checkpoint(self, *, force: bool = False) -> TreeHeadRecord:
        """Sequence pending events and sign the head, unless the latest head already covers
        the whole log (``force``: sign anyway, e.g. to refresh the time). A process without
        the signing key gets the latest head the ledger service signed."""
        if not self.can_sign:
            latest = self.latest_head()
            if latest is None:
                raise LedgerError(
                    "no signed tree head yet: the ledger service (vigil ledger run) signs them"
                )
            return latest
        self.sequence()
        with self._lock:  # the size and the root signed are of the same tree
            return self._sign_head(force)

    def fresh_head(self, max_age_s: float) -> TreeHeadRecord:
        """A head signed at most ``max_age_s`` ago: the latest, or one signed now. Callers that
        come at once (twenty reviewers opening custody pages) wait for the one that signs, and
        take its head, instead of signing one each."""

        def fresh() -> TreeHeadRecord | None:
            head = self.latest_head()
            if head is None or (self.clock() - head.signed_at).total_seconds() > max_age_s:
                return None
            return head

        if (head := fresh()) is not None:
            return head
        with self._freshening:
            return fresh() or self.checkpoint()

    def witness_latest(self) -> CosignResult | None:
        """Send the latest head to the witnesses unless a quorum already cosigned it. Only the
        signer calls it (after each head, and each tick while the head lacks a quorum): a
        witness refuses an older head than it has cosigned. Never raises for a witness, and
        never holds ingest up: events go on being appended and signed meanwhile."""
        if self.witnesses is None or not self.witnesses.enabled or not self.can_sign:
            return None
        head = self.latest_head()
        if head is None or len(self.witnesses.lines(head.note)) >= self.witnesses.config.quorum:
            return None
        size = head.size
        return self.witnesses.witness(
            head.note, size, lambda old: self.consistency_proof(old, size)
        )

    def cosignatures(self, note: str) -> list[str]:
        """The verified witness cosignature lines kept for ``note`` (none without witnesses)."""
        return self.witnesses.lines(note) if self.witnesses is not None else []

    def hand_over(self, old: SigningKey) -> TreeHeadRecord:
        """Key rotation: the first head under this (new) key, signed by the ``old`` key too, so
        that anyone who trusts the old key can check the handover and pin the new one."""
        if not self.can_sign:
            raise LedgerError("this process does not hold the new ledger key")
        if old.name != self.verifying.name:
            raise LedgerError(
                f"the old key signs as {old.name}, this ledger as {self.verifying.name}"
            )
        self.sequence()
        with self._lock:
            return self._sign_head(True, also=(old,))

    def _sign_head(self, force: bool, also: Sequence[SigningKey] = ()) -> TreeHeadRecord:
        tree = self.tree()
        latest = self.latest_head()
        if latest is not None and latest.size == tree.size and not force:
            return latest
        signed_at = self.clock()
        assert isinstance(self.key, SigningKey)
        body = checkpoint_body(self.key.name, tree.size, tree.root(), signed_at)
        note = self.key.sign(body, also=also)
        token = self._timestamp(note)
        content = CheckpointObject(
            note=note,
            timestamp_token=base64.b64encode(token).decode("ascii") if token else None,
        ).model_dump_json(indent=2)
        note_sha = hashlib.sha256(note.encode()).hexdigest()
        object_key = f"{CHECKPOINT_PREFIX}{tree.size:020d}-{note_sha[:16]}.json"
        self._put(object_key, content.encode())
        record = TreeHeadRecord(
            size=tree.size,
            root=tree.root().hex(),
            signed_at=signed_at,
            key_id=self.key.fingerprint,
            note=note,
            object_key=object_key,
            timestamp_token=token,
        )
        with self.catalog.session() as session:
            session.add(record)
        logger.info("ledger: signed tree head at size %d", tree.size)
        return record

    def _timestamp(self, note: str) -> bytes | None:
        if self.timestamper is None:
            return None
        try:
            return self.timestamper(hashlib.sha256(note.encode()).digest())
        except Exception as exc:  # the TSA is optional: sign without it, say so, retry next time
            logger.warning("ledger: no trusted timestamp for this tree head: %s", exc)
            return None

    def _put(self, key: str, content: bytes) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.work_dir, prefix=".checkpoint-")
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
            sha, _ = sha256_file(path)
            self.store.put_file("derived", key, path, sha, category=LEDGER_CATEGORY)
        finally:
            path.unlink(missing_ok=True)

    def read_checkpoint(self, object_key: str) -> CheckpointObject:
        with self.store.open("derived", object_key) as fh:
            return CheckpointObject.model_validate_json(fh.read())

    # -- audit --------------------------------------------------------------------------------

    def audit(self, worm_keys: Sequence[str] = ()) -> LedgerAudit:
        """Recompute every leaf from its event and check every signed head against the log.

        ``worm_keys``: checkpoint objects found in the WORM store (listed by the caller); the
        catalogue's own ``tree_heads`` are always checked.
        """
        problems: list[LedgerProblem] = []
        with self.catalog.session() as session:
            pairs = session.execute(
                select(LedgerLeaf, CustodyEvent)
                .outerjoin(CustodyEvent, CustodyEvent.id == LedgerLeaf.event_id)
                .order_by(LedgerLeaf.position)
            ).all()
            pending = session.scalar(
                select(func.count())
                .select_from(CustodyEvent)
                .outerjoin(LedgerLeaf, LedgerLeaf.event_id == CustodyEvent.id)
                .where(LedgerLeaf.position.is_(None))
            )
        for leaf, event in pairs:
            if event is None:
                problems.append(
                    LedgerProblem(
                        "leaf-orphaned",
                        f"leaf {leaf.position} points at event #{leaf.event_id}, which is gone",
                    )
                )
            elif leaf_hash(canonical_event(event)) != bytes(leaf.leaf_hash):
                problems.append(
                    LedgerProblem(
                        "event-changed",
                        f"event #{event.id} ({event.action}) differs from what leaf"
                        f" {leaf.position} recorded",
                    )
                )
        tree = MerkleLog()
        for leaf, _event in pairs:
            tree.append_leaf_hash(bytes(leaf.leaf_hash))
        public = self.public_key
        notes: list[tuple[str, str]] = [(f"tree head #{h.id}", h.note) for h in self.heads()]
        for key in worm_keys:
            try:
                notes.append((key, self.read_checkpoint(key).note))
            except Exception as exc:
                problems.append(LedgerProblem("worm", f"{key}: unreadable checkpoint ({exc})"))
        for where, note in notes:
            problems.extend(self._check_note(where, note, tree, public))
        return LedgerAudit(tree.size, int(pending or 0), len(notes), tuple(problems))

    @staticmethod
    def _check_note(
        where: str,
        note: str,
        tree: MerkleLog,
        public: Ed25519PublicKey,
    ) -> list[LedgerProblem]:
        try:
            checkpoint: Checkpoint = parse_checkpoint(note)
        except CheckpointError as exc:
            return [LedgerProblem("head-signature", f"{where}: {exc}")]
        found: list[LedgerProblem] = []
        if not verify_checkpoint(checkpoint, public):
            found.append(LedgerProblem("head-signature", f"{where}: signature does not verify"))
        if checkpoint.size > tree.size:
            found.append(
                LedgerProblem(
                    "head-mismatch",
                    f"{where}: signed size {checkpoint.size} but the log has {tree.size} leaves"
                    " (the log lost entries)",
                )
            )
        elif tree.root(checkpoint.size) != checkpoint.root:
            found.append(
                LedgerProblem(
                    "head-mismatch",
                    f"{where}: the log's first {checkpoint.size} leaves no longer hash to the"
                    " signed root (the log was rewritten)",
                )
            )
        return found
