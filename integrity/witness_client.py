"""The log's side of one C2SP tlog-witness: ``POST <prefix>/add-checkpoint``, and its errors.

The request body (https://c2sp.org/tlog-witness) is ``old <size>``, one base64 line per hash of
the RFC 6962 consistency proof from that size to the checkpoint's, a blank line, and the signed
checkpoint note. The witness answers:

    200  one or more cosignature lines (https://c2sp.org/tlog-cosignature)
    409  ``text/x.tlog.size``: the size it last cosigned, which is not the ``old`` we sent
    422  the consistency proof does not verify against what it cosigned before
    403  no signature it trusts (litewitness also answers 403 for a log it does not know)
    404  it does not know the log's origin
    400  malformed request (``old`` larger than the checkpoint's size, ...)

``WitnessClient.submit`` starts from the size it is told the witness last cosigned (0 when
unknown), and on a 409 retries once with a proof from the size the witness names. A witness
that names a size above the checkpoint's has cosigned a larger tree than this log now has: the
log lost entries or was rewritten. (So only the log's latest head is ever submitted: an older
one would look the same.) A cosignature is returned only once it verifies with the
witness's configured key (``vigil_verify.cosignature``); lines by other keys are ignored.
"""

from __future__ import annotations

import base64
import http.client
import logging
import ssl
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vigil_verify.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from vigil_verify.cosignature import (
    CosignatureError,
    WitnessKey,
    check_cosignature,
    parse_cosignature,
)
from vigil_verify.errors import ErrorKind

from integrity.errors import ProofError

logger = logging.getLogger(__name__)

ADD_CHECKPOINT = "/add-checkpoint"
SIZE_CONTENT_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63  # the protocol's limit
MAX_RESPONSE_BYTES = 64 * 1024
DEFAULT_TIMEOUT_S = 10.0
USER_AGENT = "vigil-ledger (C2SP tlog-witness client)"

ProofFor = Callable[[int], Sequence[bytes]]
"""Given an old tree size, the RFC 6962 consistency proof from it to the checkpoint's size."""


# -- errors --------------------------------------------------------------------------------------


class WitnessError(ProofError):
    """A witness did not cosign; ``witness`` names it, ``status`` is its HTTP status if any."""

    kind = ErrorKind.FAILED

    def __init__(self, witness: str, message: str, status: int | None = None) -> None:
        super().__init__(f"witness {witness}: {message}")
        self.witness = witness
        self.reason = message
        self.status = status


class WitnessUnavailable(WitnessError):
    """Down, unreachable, too slow, overloaded (429) or failing (5xx): try again later."""

    kind = ErrorKind.UNAVAILABLE


class WitnessConflict(WitnessError):
    """409 twice: the witness's size moved while we asked (another submitter); try again."""

    kind = ErrorKind.CONFLICT

    def __init__(self, witness: str, message: str, known_size: int, status: int = 409) -> None:
        super().__init__(witness, message, status)
        self.known_size = known_size


class WitnessInconsistent(WitnessError):
    """The witness refuses the checkpoint as inconsistent with one it cosigned before: the
    proof does not verify (422), it holds a larger tree, or another root at the same size.
    Either the log was rewritten or lost entries, or the witness was; never retried."""

    kind = ErrorKind.CONFLICT

    def __init__(
        self, witness: str, message: str, known_size: int | None, status: int | None
    ) -> None:
        super().__init__(witness, message, status)
        self.known_size = known_size


class WitnessForbidden(WitnessError):
    """403: the witness trusts no signature on the checkpoint (or does not know the log)."""

    kind = ErrorKind.FORBIDDEN


class WitnessUnknownLog(WitnessError):
    """404: the witness is not configured for this log's origin."""

    kind = ErrorKind.NOT_FOUND


class WitnessBadRequest(WitnessError):
    """400, or a request this client will not send (a proof over 63 lines, a bad note)."""

    kind = ErrorKind.INVALID


class WitnessBadResponse(WitnessError):
    """The witness answered 200 without a cosignature that verifies with its configured key,
    or answered something the protocol does not allow."""

    kind = ErrorKind.FAILED


# -- endpoints and results -----------------------------------------------------------------------


@dataclass(frozen=True)
class Witness:
    """One witness: its submission prefix URL and the key its cosignatures must verify with."""

    url: str
    key: WitnessKey

    @property
    def name(self) -> str:
        return self.key.name


@dataclass(frozen=True)
class WitnessCosignature:
    """A cosignature that verified: ``line`` is ready to append to the checkpoint note."""

    witness: str
    url: str
    size: int  # the tree size cosigned (the witness's size from now on)
    timestamp: int  # POSIX seconds, from the cosignature
    line: str


def request_body(note: str, old_size: int, proof: Sequence[bytes]) -> bytes:
    """The ``add-checkpoint`` body: ``old N``, the proof lines, a blank line, the note."""
    lines = [f"old {old_size}\n"]
    lines += [base64.b64encode(h).decode("ascii") + "\n" for h in proof]
    return ("".join(lines) + "\n" + note).encode("utf-8")


def _known_size(witness: str, body: bytes, status: int) -> int:
    text = body.decode("ascii", errors="replace")
    if not text.endswith("\n") or not text[:-1].isdigit():
        raise WitnessBadResponse(witness, f"409 without a tree size: {text[:60]!r}", status)
    return int(text[:-1])


def _answer_error(witness: str, status: int, body: bytes, old_size: int) -> WitnessError:
    """The error for a non-200, non-409 answer."""
    said = body.decode("utf-8", errors="replace").strip()[:200]
    said = f" ({said})" if said else ""
    if status == 422:
        return WitnessInconsistent(
            witness,
            f"refused the checkpoint: the consistency proof from size {old_size} does not verify"
            f" against the tree it cosigned{said}; the log was rewritten (or the witness was)",
            old_size,
            status,
        )
    if status == 403:
        return WitnessForbidden(
            witness, f"trusts no signature on the checkpoint, or knows no such log{said}", status
        )
    if status == 404:
        return WitnessUnknownLog(witness, f"is not configured for this log{said}", status)
    if status == 400:
        return WitnessBadRequest(witness, f"called the request malformed{said}", status)
    if status == 429 or status >= 500:
        return WitnessUnavailable(witness, f"answered HTTP {status}{said}", status)
    return WitnessBadResponse(witness, f"answered HTTP {status}{said}", status)


class _SizeConflict(Exception):
    def __init__(self, known: int) -> None:
        self.known = known


# -- the client ----------------------------------------------------------------------------------


class WitnessClient:
    """Talks tlog-witness to one witness over HTTP(S), with a timeout on every socket step."""

    def __init__(
        self,
        witness: Witness,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        url = urllib.parse.urlsplit(witness.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise WitnessBadRequest(witness.name, f"{witness.url!r} is not an http(s) URL")
        if timeout_s <= 0:
            raise WitnessBadRequest(witness.name, f"timeout {timeout_s} s must be positive")
        self.witness = witness
        self.timeout_s = timeout_s
        self._url = url
        self._path = url.path.rstrip("/") + ADD_CHECKPOINT
        self._ssl = ssl_context

    @property
    def name(self) -> str:
        return self.witness.name

    def _connection(self) -> http.client.HTTPConnection:
        host, port = self._url.hostname or "", self._url.port
        if self._url.scheme == "https":
            context = self._ssl or ssl.create_default_context()
            return http.client.HTTPSConnection(host, port, timeout=self.timeout_s, context=context)
        return http.client.HTTPConnection(host, port, timeout=self.timeout_s)

    def post(self, body: bytes) -> tuple[int, str, bytes]:
        """One POST to ``add-checkpoint``: (status, content type, body). Raises
        WitnessUnavailable when the witness cannot be reached or does not answer in time."""
        connection = self._connection()
        try:
            connection.request(
                "POST",
                self._path,
                body=body,
                headers={"User-Agent": USER_AGENT, "Content-Type": "text/plain; charset=utf-8"},
            )
            response = connection.getresponse()
            data = response.read(MAX_RESPONSE_BYTES + 1)
            content_type = response.getheader("Content-Type", "")
        except (OSError, http.client.HTTPException) as exc:
            raise WitnessUnavailable(
                self.name, f"unreachable at {self.witness.url}: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            connection.close()
        if len(data) > MAX_RESPONSE_BYTES:
            raise WitnessBadResponse(self.name, "answered more than 64 KiB", response.status)
        return response.status, content_type, data

    def add_checkpoint(self, note: str, old_size: int, proof: Sequence[bytes]) -> str:
        """Send one request; the response body on 200. A 409 raises ``_SizeConflict`` (for
        ``submit``), every other answer its WitnessError."""
        if len(proof) > MAX_PROOF_LINES:
            raise WitnessBadRequest(self.name, f"a proof of {len(proof)} lines is over 63")
        status, _, data = self.post(request_body(note, old_size, proof))
        if status == 200:
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise WitnessBadResponse(self.name, "answered bytes that are not UTF-8") from exc
        if status == 409:
            raise _SizeConflict(_known_size(self.name, data, status))
        raise _answer_error(self.name, status, data, old_size)

    def submit(self, note: str, proof_for: ProofFor, *, old_size: int = 0) -> WitnessCosignature:
        """Have the witness cosign ``note``, starting from ``old_size`` (the size it last
        cosigned, as far as we know; 0 if unknown), retrying once on 409; raises WitnessError."""
        checkpoint = self._parse(note)
        old = old_size if 0 <= old_size <= checkpoint.size else 0
        for attempt in range(2):
            proof = list(proof_for(old)) if 0 < old < checkpoint.size else []
            try:
                answer = self.add_checkpoint(note, old, proof)
            except _SizeConflict as conflict:
                old = self._after_conflict(checkpoint, old, conflict.known, attempt)
                continue
            return self._verified(checkpoint, answer)
        raise AssertionError("unreachable: the second 409 raises")  # pragma: no cover

    def _parse(self, note: str) -> Checkpoint:
        try:
            return parse_checkpoint(note)
        except CheckpointError as exc:
            raise WitnessBadRequest(self.name, f"not a checkpoint note: {exc}") from exc

    def _after_conflict(self, checkpoint: Checkpoint, sent: int, known: int, attempt: int) -> int:
        """The old size to retry with after a 409 naming ``known``; raises when there is none."""
        size = checkpoint.size
        if known > size:
            raise WitnessInconsistent(
                self.name,
                f"has cosigned a tree of {known} leaves and this checkpoint has {size}: the log"
                " lost entries or was rewritten (unless this head is older than one already"
                " cosigned: send only the latest)",
                known,
                409,
            )
        if known == sent == size:
            raise WitnessInconsistent(
                self.name,
                f"has cosigned another root at size {size}: the log was rewritten",
                known,
                409,
            )
        if known == sent:
            raise WitnessBadResponse(self.name, f"answered 409 naming the size we sent ({sent})")
        if attempt > 0:
            raise WitnessConflict(
                self.name, f"its size moved again (now {known}) while we asked", known
            )
        logger.debug("witness %s: cosigned size is %d, not %d; retrying", self.name, known, sent)
        return known

    def _verified(self, checkpoint: Checkpoint, answer: str) -> WitnessCosignature:
        """The cosignature line by this witness's key that verifies over the checkpoint."""
        key = self.witness.key
        lines = [line + "\n" for line in answer.split("\n") if line]
        if not lines:
            raise WitnessBadResponse(self.name, "answered 200 without a signature line", 200)
        problems: list[str] = []
        for line in lines:
            try:
                cosig = parse_cosignature(line)
            except CosignatureError as exc:
                problems.append(str(exc))
                continue
            if cosig.name != key.name or cosig.key_id != key.key_id:
                continue  # another key of the witness (or another witness): ignored
            verdict = check_cosignature(checkpoint.body, cosig, key)
            if verdict.ok:
                return WitnessCosignature(
                    self.name, self.witness.url, checkpoint.size, cosig.timestamp, cosig.line
                )
            problems.append(verdict.detail)
        found = "; ".join(problems) or f"no line by the configured key {key.vkey}"
        raise WitnessBadResponse(self.name, f"no cosignature that verifies: {found}", 200)
