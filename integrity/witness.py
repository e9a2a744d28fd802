"""Witnesses of the custody ledger: configuration, and asking all of them to cosign a head.

Whoever holds the ledger's key could rebuild the log without an event and sign the new head;
nobody but the operator would have seen the old heads. Witnesses
(https://c2sp.org/tlog-witness) close that gap: each remembers the latest head it cosigned and
cosigns a new one only with a consistency proof from it, so a rewritten log is refused by every
honest witness, and a checkpoint carrying a quorum of their cosignatures
(https://c2sp.org/tlog-cosignature) was seen append-only by parties outside the operator.

Configuration (``VIGIL_LEDGER_WITNESSES``): one entry per witness, entries separated by
newlines, ``;`` or ``,``; each entry its submission URL and its verifier key (vkey, type 0x04),
in either order, separated by whitespace::

    https://witness.example/w1 witness.example/w1+3b1fa3d4+BM0m…=;
    http://10.0.0.7:7380 w2.agency.example+0c1d2e3f+BA1b…=

The quorum (``VIGIL_LEDGER_WITNESS_QUORUM``) defaults to all of them.

``cosign`` sends a head to every witness at once and never raises because one is down, slow or
refuses: it returns the cosignatures that verified and, for the others, why not. A witness that
refuses the head as inconsistent (``WitnessInconsistent``) is logged as an error: the log was
rewritten or lost entries, or the witness was.
"""

from __future__ import annotations

import logging
import re
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from vigil_verify.checkpoint import CheckpointError, parse_checkpoint
from vigil_verify.cosignature import CosignatureError, WitnessKey, add_cosignatures, parse_vkey
from vigil_verify.errors import ErrorKind

from integrity.errors import ProofError
from integrity.witness_client import (
    DEFAULT_TIMEOUT_S,
    ProofFor,
    Witness,
    WitnessBadRequest,
    WitnessBadResponse,
    WitnessClient,
    WitnessConflict,
    WitnessCosignature,
    WitnessError,
    WitnessForbidden,
    WitnessInconsistent,
    WitnessUnavailable,
    WitnessUnknownLog,
)

__all__ = [
    "CosignResult",
    "ProofFor",
    "Witness",
    "WitnessBadRequest",
    "WitnessBadResponse",
    "WitnessClient",
    "WitnessConfig",
    "WitnessConfigError",
    "WitnessConflict",
    "WitnessCosignature",
    "WitnessError",
    "WitnessFailure",
    "WitnessForbidden",
    "WitnessInconsistent",
    "WitnessUnavailable",
    "WitnessUnknownLog",
    "cosign",
]

logger = logging.getLogger(__name__)

_SEPARATORS = re.compile(r"[;,\n]")
DEADLINE_FACTOR = 2.5  # a submission is at most two requests (one retry after a 409)


class WitnessConfigError(ProofError):
    """The witness configuration cannot be used; the message names the entry and why."""

    kind = ErrorKind.INVALID


def _parse_entry(entry: str) -> Witness:
    tokens = entry.split()
    urls = [t for t in tokens if "://" in t]
    keys = [t for t in tokens if "://" not in t]
    if len(tokens) != 2 or len(urls) != 1:
        raise WitnessConfigError(f"witness entry {entry!r}: expected a URL and a vkey")
    url = urllib.parse.urlsplit(urls[0])
    if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment:
        raise WitnessConfigError(
            f"witness entry {entry!r}: {urls[0]!r} is not an http(s) URL prefix"
        )
    try:
        key = parse_vkey(keys[0])
    except CosignatureError as exc:
        raise WitnessConfigError(f"witness entry {entry!r}: {exc}") from exc
    return Witness(urls[0].rstrip("/"), key)


@dataclass(frozen=True)
class WitnessConfig:
    """The witnesses a head is sent to, and how many distinct cosignatures make it witnessed."""

    witnesses: tuple[Witness, ...] = ()
    quorum: int = 0
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        names = [w.name for w in self.witnesses]
        if len(set(names)) != len(names):
            raise WitnessConfigError(f"two witnesses share a name: {sorted(names)}")
        if not self.witnesses and self.quorum != 0:
            raise WitnessConfigError(f"a quorum of {self.quorum} with no witness configured")
        if self.witnesses and not 1 <= self.quorum <= len(self.witnesses):
            raise WitnessConfigError(
                f"the quorum must be 1 .. {len(self.witnesses)}, got {self.quorum}"
            )
        if self.timeout_s <= 0:
            raise WitnessConfigError(f"the witness timeout must be positive: {self.timeout_s}")

    @classmethod
    def parse(
        cls, text: str | None, quorum: int | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> WitnessConfig:
        """From the setting's text (see the module docstring); ``quorum`` None: all of them.
        Empty text: no witnesses (witnessing off)."""
        entries = [e.strip() for e in _SEPARATORS.split(text or "") if e.strip()]
        witnesses = tuple(_parse_entry(e) for e in entries)
        needed = len(witnesses) if quorum is None else quorum
        return cls(witnesses, needed, timeout_s)

    @property
    def enabled(self) -> bool:
        return bool(self.witnesses)

    @property
    def keys(self) -> tuple[WitnessKey, ...]:
        return tuple(w.key for w in self.witnesses)

    def setting(self) -> str:
        """The text ``parse`` reads back to this configuration (quorum apart)."""
        return ";\n".join(f"{w.url} {w.key.vkey}" for w in self.witnesses)


@dataclass(frozen=True)
class WitnessFailure:
    """A witness that did not cosign, and why (``error.kind``, ``error.reason``)."""

    witness: str
    url: str
    error: WitnessError

    @property
    def kind(self) -> ErrorKind:
        return self.error.kind

    @property
    def inconsistent(self) -> bool:
        """The witness refused the head as inconsistent with one it cosigned before."""
        return isinstance(self.error, WitnessInconsistent)

    def __str__(self) -> str:
        return str(self.error)


@dataclass(frozen=True)
class CosignResult:
    """What ``cosign`` got: verified cosignatures, and the witnesses that gave none."""

    note: str  # the checkpoint as sent
    size: int
    quorum: int
    cosignatures: tuple[WitnessCosignature, ...]
    failures: tuple[WitnessFailure, ...]
    elapsed_s: float

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """``(witness name, cosignature line)`` for each witness that cosigned."""
        return [(c.witness, c.line) for c in self.cosignatures]

    @property
    def quorum_met(self) -> bool:
        return self.quorum > 0 and len(self.cosignatures) >= self.quorum

    @property
    def inconsistent(self) -> tuple[WitnessFailure, ...]:
        return tuple(f for f in self.failures if f.inconsistent)

    @property
    def cosigned_note(self) -> str:
        """The checkpoint note with every verified cosignature line appended."""
        return add_cosignatures(self.note, [c.line for c in self.cosignatures])


def _submit(
    client: WitnessClient, note: str, proof_for: ProofFor, old_size: int
) -> WitnessCosignature:
    try:
        return client.submit(note, proof_for, old_size=old_size)
    except WitnessError:
        raise
    except ProofError as exc:  # proof_for could not make the proof (the ledger's error)
        raise WitnessBadRequest(client.name, f"no consistency proof to send: {exc}") from exc
    except Exception as exc:  # never let one witness break the others, but keep the trace
        logger.exception("witness %s: unexpected failure", client.name)
        raise WitnessBadResponse(client.name, f"{type(exc).__name__}: {exc}") from exc


def _log_failure(failure: WitnessFailure, size: int) -> None:
    if failure.inconsistent:
        logger.error(
            "ledger: witness %s REFUSED the head at size %d as inconsistent with what it"
            " cosigned before: %s",
            failure.witness,
            size,
            failure.error.reason,
        )
    else:
        logger.warning("ledger: no cosignature of size %d: %s", size, failure.error)


def _ask_all(
    config: WitnessConfig,
    note: str,
    proof_for: ProofFor,
    known_sizes: Mapping[str, int],
    timeout_s: float,
) -> tuple[list[WitnessCosignature], list[WitnessFailure]]:
    """Every witness asked on a thread of its own; those not done by the deadline are
    reported unavailable (their threads end by themselves, every socket step has a timeout)."""
    good: list[WitnessCosignature] = []
    failed: list[WitnessFailure] = []
    if not config.witnesses:
        return good, failed
    deadline = timeout_s * DEADLINE_FACTOR
    pool = ThreadPoolExecutor(max_workers=len(config.witnesses), thread_name_prefix="witness")
    try:
        futures: dict[Future[WitnessCosignature], Witness] = {
            pool.submit(
                _submit,
                WitnessClient(w, timeout_s=timeout_s),
                note,
                proof_for,
                known_sizes.get(w.name, 0),
            ): w
            for w in config.witnesses
        }
        wait(futures, timeout=deadline)
        for future, w in futures.items():
            if not future.done():
                late = WitnessUnavailable(w.name, f"no answer within {deadline:.1f} s")
                failed.append(WitnessFailure(w.name, w.url, late))
                continue
            exc = future.exception()
            if exc is None:
                good.append(future.result())
            elif isinstance(exc, WitnessError):
                failed.append(WitnessFailure(w.name, w.url, exc))
            else:  # pragma: no cover - _submit wraps everything
                raise exc
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return good, failed


def cosign(
    checkpoint_note: str,
    tree_size: int,
    proof_for: ProofFor,
    witnesses: WitnessConfig | Sequence[Witness],
    *,
    known_sizes: Mapping[str, int] | None = None,
    timeout_s: float | None = None,
) -> CosignResult:
    """Ask every witness to cosign the head ``checkpoint_note`` of ``tree_size`` leaves.

    ``proof_for(old)`` gives the consistency proof from ``old`` leaves to ``tree_size``;
    ``known_sizes`` the size each witness (by name) last cosigned, if known (saves a 409 round
    trip). The witnesses are asked at once; each gets ``timeout_s`` per socket step and the
    whole call returns within about 2.5 × ``timeout_s``, whatever they do. Never raises for a
    witness; raises WitnessConfigError only if the note is not a checkpoint of ``tree_size``.
    """
    config = (
        witnesses
        if isinstance(witnesses, WitnessConfig)
        else WitnessConfig(tuple(witnesses), len(witnesses))
    )
    try:
        checkpoint = parse_checkpoint(checkpoint_note)
    except CheckpointError as exc:
        raise WitnessConfigError(f"cosign: not a checkpoint note: {exc}") from exc
    if checkpoint.size != tree_size:
        raise WitnessConfigError(f"cosign: the note is of size {checkpoint.size}, not {tree_size}")
    timeout = config.timeout_s if timeout_s is None else timeout_s
    started = time.monotonic()
    good, failed = _ask_all(config, checkpoint_note, proof_for, known_sizes or {}, timeout)
    for failure in failed:
        _log_failure(failure, tree_size)
    order = {w.name: i for i, w in enumerate(config.witnesses)}
    return CosignResult(
        note=checkpoint_note,
        size=tree_size,
        quorum=config.quorum,
        cosignatures=tuple(sorted(good, key=lambda c: order[c.witness])),
        failures=tuple(sorted(failed, key=lambda f: order[f.witness])),
        elapsed_s=time.monotonic() - started,
    )
