"""Keeping the witnesses' cosignatures of the ledger's heads: WORM objects, re-verified on read.

``LedgerWitnesses.witness`` sends a newly signed head to the configured witnesses
(``integrity.witness.cosign``) and writes each cosignature that verified to the WORM store, one
object per witness and head, before anyone relies on it::

    derived/ledger/cosignatures/<witness key ID, hex>/<size, 20 digits>-<SHA-256(note)[:16]>.json

The objects outlive the catalogue and cannot be changed or deleted under COMPLIANCE retention,
like the heads themselves (``ledger/checkpoints/``). The size in the key tells, without reading
anything, the largest head each witness has cosigned: where the next submission starts its
consistency proof, and how far behind the witnessed size is (``witnessed_size``).

Only the latest head is ever sent: a witness that has cosigned a larger tree refuses an older
head as inconsistent. A head that found no quorum (a witness down) waits; the next call with
the latest head (the ledger service's next tick) catches up, with a proof covering both.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError
from vigil_verify.checkpoint import CheckpointError, parse_checkpoint
from vigil_verify.cosignature import add_cosignatures, check_cosignature

from integrity.witness import CosignResult, ProofFor, WitnessConfig, WitnessCosignature, cosign
from store.base import ObjectStore, sha256_file

logger = logging.getLogger(__name__)

COSIGNATURE_PREFIX = "ledger/cosignatures/"
COSIGNATURE_FORMAT = "vigil-cosignature/1"
LEDGER_CATEGORY = "ledger"


class CosignatureObject(BaseModel):
    """What the WORM store holds per witness and head."""

    format: str = COSIGNATURE_FORMAT
    witness: str  # the witness's key name
    vkey: str  # its verifier key, as configured when the cosignature was kept
    url: str
    size: int
    note_sha256: str  # hex SHA-256 of the checkpoint note as the log signed it
    timestamp: int  # POSIX seconds, from the cosignature
    line: str  # the cosignature line, to append to the note


def note_sha256(note: str) -> str:
    return hashlib.sha256(note.encode("utf-8")).hexdigest()


def cosignature_object_key(key_id: bytes, size: int, note: str) -> str:
    return f"{COSIGNATURE_PREFIX}{key_id.hex()}/{size:020d}-{note_sha256(note)[:16]}.json"


def witnessed_size(known_sizes: Iterable[int], quorum: int) -> int:
    """The largest size at least ``quorum`` witnesses have cosigned (0 if none): each of them
    has checked the log up to there append-only."""
    sizes = sorted(known_sizes, reverse=True)
    return sizes[quorum - 1] if quorum > 0 and len(sizes) >= quorum else 0


@dataclass(frozen=True)
class WitnessStatus:
    """For the gauge and the alert: the tree size, and the size a quorum has witnessed."""

    tree_size: int
    witnessed_size: int
    quorum: int
    per_witness: dict[str, int]  # witness name -> largest size it cosigned

    @property
    def behind(self) -> int:
        return max(0, self.tree_size - self.witnessed_size)


class LedgerWitnesses:
    """The configured witnesses and the cosignatures kept of them, in the WORM store."""

    def __init__(self, *, config: WitnessConfig, store: ObjectStore, work_dir: Path) -> None:
        self.config = config
        self.store = store
        self.work_dir = work_dir

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def known_sizes(self) -> dict[str, int]:
        """Witness name -> the largest size whose cosignature by it is kept (from key names)."""
        sizes: dict[str, int] = {}
        for witness in self.config.witnesses:
            prefix = f"{COSIGNATURE_PREFIX}{witness.key.key_id.hex()}/"
            for key in self.store.list_keys("derived", prefix):
                stem = key[len(prefix) :].split("-", 1)[0]
                if stem.isdigit():
                    sizes[witness.name] = max(sizes.get(witness.name, 0), int(stem))
        return sizes

    def witness(self, note: str, size: int, proof_for: ProofFor) -> CosignResult:
        """Send the (latest) head to every witness, keep what verified; never raises for a
        witness (see ``cosign``); a store error while keeping a cosignature does raise."""
        result = cosign(note, size, proof_for, self.config, known_sizes=self.known_sizes())
        for cosignature in result.cosignatures:
            self._keep(note, cosignature)
        if self.enabled and not result.quorum_met:
            logger.warning(
                "ledger: head %d has %d of %d cosignatures needed; it waits for the witnesses",
                size,
                len(result.cosignatures),
                self.config.quorum,
            )
        return result

    def _keep(self, note: str, cosignature: WitnessCosignature) -> None:
        witness = next(w for w in self.config.witnesses if w.name == cosignature.witness)
        content = CosignatureObject(
            witness=witness.name,
            vkey=witness.key.vkey,
            url=witness.url,
            size=cosignature.size,
            note_sha256=note_sha256(note),
            timestamp=cosignature.timestamp,
            line=cosignature.line,
        ).model_dump_json(indent=2)
        key = cosignature_object_key(witness.key.key_id, cosignature.size, note)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.work_dir, prefix=".cosignature-")
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content.encode())
                fh.flush()
                os.fsync(fh.fileno())
            sha, _ = sha256_file(path)
            self.store.put_file("derived", key, path, sha, category=LEDGER_CATEGORY)
        finally:
            path.unlink(missing_ok=True)

    def lines(self, note: str) -> list[str]:
        """The kept cosignature lines over this very note that still verify with the configured
        keys (an object that does not is skipped and logged: it proves nothing)."""
        try:
            checkpoint = parse_checkpoint(note)
        except CheckpointError:
            return []
        found: list[str] = []
        for witness in self.config.witnesses:
            key = cosignature_object_key(witness.key.key_id, checkpoint.size, note)
            if self.store.stat("derived", key) is None:
                continue
            try:
                with self.store.open("derived", key) as fh:
                    kept = CosignatureObject.model_validate_json(fh.read())
            except (OSError, ValidationError) as exc:
                logger.error("ledger: unreadable cosignature %s: %s", key, exc)
                continue
            if check_cosignature(checkpoint.body, kept.line, witness.key).ok:
                found.append(kept.line)
            else:
                logger.error("ledger: the cosignature in %s does not verify", key)
        return found

    def cosigned_note(self, note: str) -> str:
        """The note with every kept cosignature line that verifies appended."""
        return add_cosignatures(note, self.lines(note))

    def status(self, tree_size: int) -> WitnessStatus:
        known = self.known_sizes()
        return WitnessStatus(
            tree_size=tree_size,
            witnessed_size=witnessed_size(known.values(), self.config.quorum),
            quorum=self.config.quorum,
            per_witness=known,
        )
