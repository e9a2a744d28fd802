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

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from pydantic import BaseModel
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from vigil_verify.checkpoint import (
    Checkpoint,
    CheckpointError,
    checkpoint_body,
    key_fingerprint,
    load_public_key,
    note_key_hash,
    parse_checkpoint,
    verify_checkpoint,
)
from vigil_verify.errors import ErrorKind
from vigil_verify.merkle import leaf_hash

from catalog.models import CustodyEvent, LedgerLeaf, TreeHeadRecord
from catalog.repository import Catalog, now
from integrity.errors import ProofError
from integrity.merkle import MerkleLog
from store.base import ObjectStore, sha256_file

logger = logging.getLogger(__name__)

LEDGER_LOCK = 0x5669_6769_6C01  # PostgreSQL advisory lock key of the sequencer
CHECKPOINT_FORMAT = "vigil-checkpoint/1"
CHECKPOINT_PREFIX = "ledger/checkpoints/"
LEDGER_CATEGORY = "ledger"
EVENT_FORMAT = 1


class LedgerError(ProofError):
    """The ledger cannot do what was asked; the message names why."""

    kind = ErrorKind.CONFLICT


class SigningKeyError(LedgerError):
    """The signing key is missing, unreadable or of the wrong type."""


# -- events as leaves ----------------------------------------------------------------------------


def canonical_event(event: CustodyEvent) -> bytes:
    """The bytes a custody event contributes to the log: sorted-key compact UTF-8 JSON.

    ``detail`` is embedded as the JSON value it holds, so a verifier reads every field without a
    second decoding step. The export package carries these exact bytes.
    """
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


# -- signing key ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyingKey:
    """The ledger's public key and name: what every process needs to check signed heads."""

    name: str
    public: Ed25519PublicKey

    @property
    def public_pem(self) -> bytes:
        return self.public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.public)


def load_verifying_key(path: Path, name: str) -> VerifyingKey:
    """The ledger's public key from a PEM file (``vigil ledger keygen`` writes ``*.pub.pem``)."""
    try:
        key = load_public_key(path.read_bytes())
    except (OSError, CheckpointError) as exc:
        raise SigningKeyError(f"cannot read the ledger public key {path}: {exc}") from exc
    return VerifyingKey(name, key)


@dataclass(frozen=True)
class SigningKey:
    """The ledger's Ed25519 key and the name (checkpoint origin) it signs under."""

    name: str
    private: Ed25519PrivateKey

    @property
    def verifying(self) -> VerifyingKey:
        return VerifyingKey(self.name, self.private.public_key())

    @property
    def public_pem(self) -> bytes:
        return self.verifying.public_pem

    @property
    def fingerprint(self) -> str:
        return self.verifying.fingerprint

    def signature_line(self, body: str) -> str:
        """One C2SP signed-note signature line over ``body``."""
        raw = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        signature = self.private.sign(body.encode("utf-8"))
        blob = base64.b64encode(note_key_hash(self.name, raw) + signature).decode("ascii")
        return f"\u2014 {self.name} {blob}\n"

    def sign(self, body: str, *, also: Sequence[SigningKey] = ()) -> str:
        """The signed note: body, blank line, its signature line, then one per key in ``also``
        (a key rotation's handover checkpoint carries the old key's signature too)."""
        lines = [self.signature_line(body), *(key.signature_line(body) for key in also)]
        return f"{body}\n{''.join(lines)}"


def load_signing_key(path: Path, name: str) -> SigningKey:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise SigningKeyError(f"cannot read the ledger signing key {path}: {exc}") from exc
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{path} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__}; the ledger signs with Ed25519")
    return SigningKey(name, key)


def create_signing_key(path: Path, name: str) -> SigningKey:
    """Generate a key into ``path`` (mode 0600), never overwriting one that exists.

    The file appears whole or not at all (written aside, then hard-linked into place), so a
    process that loses the race to create it (``FileExistsError``) can read the winner's.
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name_tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    tmp = Path(name_tmp)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)  # atomic; FileExistsError if another process made one first
    finally:
        tmp.unlink(missing_ok=True)
    return SigningKey(name, key)


# -- the ledger ----------------------------------------------------------------------------------


def worm_checkpoint_keys(store: ObjectStore) -> list[str]:
    """Keys of the signed tree heads in the WORM store (they outlive the catalogue's rows)."""
    return [k for k in store.list_keys("derived", CHECKPOINT_PREFIX) if k.endswith(".json")]


class CheckpointObject(BaseModel):
    """What the WORM store holds per tree head."""

    format: str = CHECKPOINT_FORMAT
    note: str
    timestamp_token: str | None = None  # base64 DER RFC 3161 TimeStampToken over SHA-256(note)


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
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.key = key
        self.work_dir = work_dir
        self.timestamper = timestamper
        self.clock = clock
        self._tree = MerkleLog()
        # The in-memory tree is shared by the threads of one process (the API serves requests
        # from a thread pool): loading new leaves into it, and reading a size with its root,
        # happen under this lock, or two loaders append the same leaves twice and a head could
        # be signed with one size and another size's root.
        self._lock = threading.RLock()

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

    def inclusion_proofs(
        self, event_ids: Sequence[int], size: int
    ) -> dict[int, tuple[int, list[bytes]]]:
        """Inclusion proofs of many events at once (one query): event id -> (position, path);
        events not in the first ``size`` leaves are left out."""
        with self.catalog.session() as session:
            rows = session.execute(
                select(LedgerLeaf.event_id, LedgerLeaf.position).where(
                    LedgerLeaf.event_id.in_(event_ids), LedgerLeaf.position < size
                )
            ).all()
        tree = self.tree()
        return {int(e): (int(p), tree.inclusion_proof(int(p), size)) for e, p in rows}

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
