"""Witness keys, cosignatures and the quorum rule (``vigil_verify.cosignature``), the witness
configuration, and the tlog-witness client's handling of every answer, against a small fake
witness on loopback (``integrity.witness``). The real witnesses are in
tests/integration/test_witness.py."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from vigil_verify.checkpoint import checkpoint_body, parse_checkpoint, verify_checkpoint
from vigil_verify.cosignature import (
    Cosignature,
    CosignatureError,
    CosignatureStatus,
    WitnessKey,
    add_cosignatures,
    check_cosignature,
    check_quorum,
    cosigned_message,
    parse_cosignature,
    parse_vkey,
    verify_cosignature,
    witness_key_id,
)
from vigil_verify.errors import ErrorKind
from vigil_verify.merkle import EMPTY_ROOT, verify_consistency

from integrity.errors import ProofError
from integrity.keys import SigningKey
from integrity.merkle import MerkleLog
from integrity.witness import (
    Witness,
    WitnessBadRequest,
    WitnessBadResponse,
    WitnessClient,
    WitnessConfig,
    WitnessConfigError,
    WitnessConflict,
    WitnessForbidden,
    WitnessInconsistent,
    WitnessUnavailable,
    WitnessUnknownLog,
    cosign,
)
from integrity.witness_client import request_body
from integrity.witness_ledger import (
    CosignatureObject,
    LedgerWitnesses,
    WitnessStatus,
    cosignature_object_key,
    witnessed_size,
)
from store.base import sha256_file
from store.local import LocalFolderStore
from tests.helpers import START

# A cosignature made by torchwood's CosignatureSigner (filippo.io/torchwood v0.8.0, the code
# litewitness signs with) with the Ed25519 seed 01 02 … 20, over a Vigil-style checkpoint with
# a ``time`` extension line, and the vkey it printed.
GO_VKEY = "witness.vigil.test/w1+a6d995d4+BHm1Vi6P5lT5QHixEuipi6eQH4U65pW+1+DjkQutBJZk"
GO_NOTE = (
    "vigil.test/custody\n3\nbm90IGEgcmVhbCByb290LCAzMiBieXRlcyBsb25nISE=\n"
    "time 2026-01-17T09:30:00.000000Z\n\n"
    "\u2014 witness.vigil.test/w1 ptmV1AAAAABrEt+OUsEhpcYW+4e8Rd62J3Iku0717g9DHMLS7VirOZosanrej2"
    "EaGsgI4NDlHJCK9QIJQ4mqnqygqQ04ZiEPxUzoDQ==\n"
)
GO_SEED = bytes(range(1, 33))


def witness_key(name: str) -> tuple[Ed25519PrivateKey, WitnessKey]:
    private = Ed25519PrivateKey.generate()
    return private, WitnessKey(name, private.public_key().public_bytes_raw())


def cosignature_line(private: Ed25519PrivateKey, key: WitnessKey, body: str, at: int) -> str:
    """What a witness adds: ``— name base64(key ID ‖ time ‖ signature)``."""
    signature = private.sign(cosigned_message(body, at))
    return Cosignature(key.name, key.key_id, at, signature).line


# -- keys and cosignatures -----------------------------------------------------------------------


def test_a_go_cosignature_verifies_and_its_vkey_round_trips() -> None:
    key = parse_vkey(GO_VKEY)
    assert key.vkey == GO_VKEY and str(key) == GO_VKEY
    assert (
        key.public == Ed25519PrivateKey.from_private_bytes(GO_SEED).public_key().public_bytes_raw()
    )
    assert key.key_id == witness_key_id(key.name, key.public) == bytes.fromhex("a6d995d4")
    ok, (verdict,) = check_quorum(GO_NOTE, [GO_VKEY], 1)
    assert ok and verdict.status is CosignatureStatus.VERIFIED
    assert verdict.timestamp == 1796398990 and "2026-12-04T15:43:10Z" in verdict.detail
    # Ed25519 is deterministic: the same key, time and checkpoint give Go's very bytes.
    body = parse_checkpoint(GO_NOTE).body
    private = Ed25519PrivateKey.from_private_bytes(GO_SEED)
    assert cosignature_line(private, key, body, 1796398990) == GO_NOTE.split("\n\n")[1]
    assert not check_quorum(GO_NOTE.replace("\n3\n", "\n4\n"), [GO_VKEY], 1).ok


def test_the_signed_message_is_header_time_and_the_whole_body() -> None:
    body = "example.com/log\n7\n" + base64.b64encode(bytes(32)).decode() + "\ntime x\n"
    assert cosigned_message(body, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n" + body.encode()
    )
    for bad_time in (-1, 2**63):
        with pytest.raises(CosignatureError, match="timestamp"):
            cosigned_message(body, bad_time)


@pytest.mark.parametrize(
    ("vkey", "problem"),
    [
        ("no-plus-signs", "not a vkey"),
        ("name+a6d995d4", "not a vkey"),
        ("na me+a6d995d4+BAAA", "not a vkey"),
        ("name+a6d995+BAAA", "8 hex digits"),
        ("name+zzzzzzzz+BAAA", "hex key ID and base64"),
        ("name+a6d995d4+not base64!", "hex key ID and base64"),
        # a log's own Ed25519 key (type 0x01) is not a witness key
        ("sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8", "type 0x01"),
        ("name+a6d995d4+BAAA", "32 bytes"),
        (GO_VKEY.replace("a6d995d4", "a6d995d5"), "does not match"),
        (GO_VKEY.replace("witness.vigil.test/w1", "witness.vigil.test/w2"), "does not match"),
    ],
)
def test_a_bad_vkey_is_refused_with_its_reason(vkey: str, problem: str) -> None:
    with pytest.raises(CosignatureError, match=problem):
        parse_vkey(vkey)


def test_a_cosignature_line_that_cannot_be_one_is_named() -> None:
    log_key = SigningKey("vigil.test/custody", Ed25519PrivateKey.generate())
    note = log_key.sign(checkpoint_body(log_key.name, 1, bytes(32), START))
    log_line = note.split("\n\n")[1]
    with pytest.raises(CosignatureError, match="68 bytes; a cosignature/v1 is 76"):
        parse_cosignature(log_line)  # the log's own signature
    with pytest.raises(CosignatureError, match="starting with"):
        parse_cosignature("witness AAAA")
    private, key = witness_key("w.example")
    line = cosignature_line(private, key, "x\n", 5)
    blob = bytearray(base64.b64decode(line.split()[-1]))
    blob[4] = 0x80  # timestamp >= 2^63
    with pytest.raises(CosignatureError, match="2\\^63"):
        parse_cosignature(f"\u2014 w.example {base64.b64encode(bytes(blob)).decode()}")
    verdict = check_cosignature("x\n", "garbage", key)  # never raises
    assert verdict.status is CosignatureStatus.INVALID


def test_the_quorum_counts_distinct_trusted_witnesses_that_verify() -> None:
    log_key = SigningKey("vigil.test/custody", Ed25519PrivateKey.generate())
    note = log_key.sign(checkpoint_body(log_key.name, 9, bytes(range(32)), START))
    body = parse_checkpoint(note).body
    (p1, k1), (p2, k2), (_, k3) = (witness_key(f"w{i}.example") for i in (1, 2, 3))
    p_other, k_other = witness_key("other.example")
    now = int(time.time())
    lines = [
        cosignature_line(p1, k1, body, now),
        cosignature_line(p1, k1, body, now - 60),  # the same witness twice counts once
        cosignature_line(p2, k2, body, now),
        cosignature_line(p_other, k_other, body, now),  # not trusted: ignored
    ]
    cosigned = add_cosignatures(note, lines)
    assert add_cosignatures(cosigned, lines) == cosigned  # nothing added twice
    assert verify_checkpoint(parse_checkpoint(cosigned), log_key.private.public_key())
    trusted: list[WitnessKey | str] = [k1, k2.vkey, k3]
    result = check_quorum(cosigned, trusted, 2)
    assert result.ok and result.verified == 2
    assert [v.status for v in result.verdicts] == [
        CosignatureStatus.VERIFIED,
        CosignatureStatus.VERIFIED,
        CosignatureStatus.MISSING,
    ]
    assert result.verdicts[0].timestamp == now  # the latest of its cosignatures
    assert not check_quorum(cosigned, trusted, 3).ok
    assert not check_quorum(cosigned, trusted).ok  # default: all of them
    assert check_quorum(cosigned, [k1, k1, k2]).ok  # a key listed twice is one witness
    # the time rule: nothing dated after ``latest``
    future = check_quorum(cosigned, [k1], latest=now - 1)
    assert not future.ok and future.verdicts[0].status is CosignatureStatus.FUTURE
    # a line under k3's name and key ID but signed by someone else: invalid, not missing
    forged = Cosignature(k3.name, k3.key_id, now, p1.sign(cosigned_message(body, now))).line
    (verdict,) = check_quorum(add_cosignatures(note, [forged]), [k3], 1).verdicts
    assert verdict.status is CosignatureStatus.INVALID
    assert not verify_cosignature(body, forged, k3)
    for quorum in (0, 4):
        with pytest.raises(CosignatureError, match="cannot be met"):
            check_quorum(cosigned, trusted, quorum)
    with pytest.raises(CosignatureError, match="cannot be met"):
        check_quorum(cosigned, [])


# -- configuration -------------------------------------------------------------------------------


def test_the_witnesses_setting_is_parsed_in_any_layout() -> None:
    _, k1 = witness_key("w1.example/witness")
    _, k2 = witness_key("w2.example")
    text = f"  https://w1.example/witness/ {k1.vkey} ;\n{k2.vkey}\thttp://10.0.0.7:7380,\n"
    config = WitnessConfig.parse(text)
    assert [(w.url, w.key) for w in config.witnesses] == [
        ("https://w1.example/witness", k1),
        ("http://10.0.0.7:7380", k2),
    ]
    assert config.quorum == 2 and config.enabled and config.keys == (k1, k2)
    assert WitnessConfig.parse(config.setting(), 1) == WitnessConfig(config.witnesses, 1)
    off = WitnessConfig.parse("", None)
    assert not off.enabled and off.quorum == 0 and WitnessConfig.parse(None) == off


@pytest.mark.parametrize(
    ("text", "quorum", "problem"),
    [
        ("https://w.example", None, "expected a URL and a vkey"),
        ("{vkey} {vkey}", None, "expected a URL and a vkey"),
        ("https://a.example https://b.example", None, "expected a URL and a vkey"),
        ("ftp://w.example {vkey}", None, "not an http"),
        ("https://w.example?x=1 {vkey}", None, "not an http"),
        ("https:// {vkey}", None, "not an http"),
        ("https://w.example {log_vkey}", None, "type 0x01"),
        ("https://a.example {vkey}; https://b.example {vkey}", None, "share a name"),
        ("https://w.example {vkey}", 2, "quorum must be 1 .. 1"),
        ("https://w.example {vkey}", 0, "quorum must be 1 .. 1"),
        ("", 1, "no witness configured"),
    ],
)
def test_a_bad_witnesses_setting_names_the_entry(
    text: str, quorum: int | None, problem: str
) -> None:
    _, key = witness_key("w.example")
    log_vkey = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
    with pytest.raises(WitnessConfigError, match=problem) as caught:
        WitnessConfig.parse(text.format(vkey=key.vkey, log_vkey=log_vkey), quorum)
    assert caught.value.kind is ErrorKind.INVALID and isinstance(caught.value, ProofError)


# -- the client against a fake witness ------------------------------------------------------------


class FakeWitness:
    """tlog-witness as the spec says, for one log, in memory; ``script`` answers come first."""

    def __init__(self, log_key: SigningKey, name: str = "fake.vigil.test/w") -> None:
        self.log_key = log_key
        self.private, self.key = witness_key(name)
        self.size, self.root = 0, EMPTY_ROOT
        self.requests: list[str] = []
        self.script: list[tuple[int, str]] = []
        self.delay_s = 0.0
        self.lock = threading.Lock()
        self.url = ""

    @property
    def witness(self) -> Witness:
        return Witness(self.url, self.key)

    def answer(self, body: str) -> tuple[int, str]:
        with self.lock:
            self.requests.append(body)
            if self.script:
                return self.script.pop(0)
            head, _, note = body.partition("\n\n")
            old_line, *proof_lines = head.split("\n")
            old = int(old_line.removeprefix("old "))
            checkpoint = parse_checkpoint(note)
            if not verify_checkpoint(checkpoint, self.log_key.private.public_key()):
                return 403, "invalid signature\n"
            if old > checkpoint.size:
                return 400, "old size larger than checkpoint\n"
            if old != self.size or (old == checkpoint.size and checkpoint.root != self.root):
                return 409, f"{self.size}\n"
            proof = [base64.b64decode(line) for line in proof_lines]
            if 0 < old < checkpoint.size and not verify_consistency(
                old, checkpoint.size, proof, self.root, checkpoint.root
            ):
                return 422, "bad consistency proof\n"
            self.size, self.root = checkpoint.size, checkpoint.root
            return 200, cosignature_line(self.private, self.key, checkpoint.body, int(time.time()))


@pytest.fixture
def log_key() -> SigningKey:
    return SigningKey("vigil.test/custody", Ed25519PrivateKey.generate())


@pytest.fixture
def fake(log_key: SigningKey) -> Iterator[FakeWitness]:
    witness = FakeWitness(log_key)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            if self.path != "/prefix/add-checkpoint":
                status, text = 404, "no such path\n"
            else:
                time.sleep(witness.delay_s)
                status, text = witness.answer(body)
            data = text.encode()
            self.send_response(status)
            if status == 409:
                self.send_header("Content-Type", "text/x.tlog.size")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    witness.url = f"http://127.0.0.1:{server.server_address[1]}/prefix/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield witness
    server.shutdown()
    server.server_close()


class Log:
    """A Merkle log of ``size`` made-up leaves and its heads signed by ``key``."""

    def __init__(self, key: SigningKey, tag: bytes = b"") -> None:
        self.key, self.tag, self.tree = key, tag, MerkleLog()

    def head(self, size: int) -> str:
        while self.tree.size < size:
            self.tree.append(self.tag + b"event %d" % self.tree.size)
        return self.key.sign(checkpoint_body(self.key.name, size, self.tree.root(size), START))

    def proof_for(self, size: int) -> Callable[[int], list[bytes]]:
        return lambda old: self.tree.consistency_proof(old, size)


def test_the_request_is_old_size_proof_lines_blank_line_and_the_note() -> None:
    proof = [bytes([1]) * 32, bytes([2]) * 32]
    assert request_body("origin\n5\nR=\n\n— origin X\n", 3, proof) == (
        b"old 3\n"
        + base64.b64encode(proof[0])
        + b"\n"
        + base64.b64encode(proof[1])
        + b"\n\norigin\n5\nR=\n\n\xe2\x80\x94 origin X\n"
    )


def test_a_first_checkpoint_then_a_consistent_one_are_cosigned(
    fake: FakeWitness, log_key: SigningKey
) -> None:
    log = Log(log_key)
    client = WitnessClient(fake.witness, timeout_s=5)
    first = client.submit(log.head(4), log.proof_for(4))
    assert (first.witness, first.size, fake.size) == (fake.key.name, 4, 4)
    assert verify_cosignature(parse_checkpoint(log.head(4)).body, first.line, fake.key)
    second = client.submit(log.head(9), log.proof_for(9), old_size=4)
    assert second.size == 9 and len(fake.requests) == 2
    assert fake.requests[1].startswith("old 4\n") and fake.requests[1].count("=\n") >= 2


def test_a_409_is_answered_once_with_a_proof_from_the_witness_size(
    fake: FakeWitness, log_key: SigningKey
) -> None:
    log = Log(log_key)
    client = WitnessClient(fake.witness, timeout_s=5)
    client.submit(log.head(5), log.proof_for(5))
    for hint in (0, 3, 99):  # unknown, stale, beyond the checkpoint (start from 0)
        fake.requests.clear()
        size = fake.size + 2
        result = client.submit(log.head(size), log.proof_for(size), old_size=hint)
        assert result.size == size
        sent = [r.split("\n", 1)[0] for r in fake.requests]
        assert sent == [f"old {0 if hint == 99 else hint}", f"old {size - 2}"]


def test_a_witness_that_cosigned_more_than_the_log_has_is_an_inconsistency(
    fake: FakeWitness, log_key: SigningKey
) -> None:
    log = Log(log_key)
    client = WitnessClient(fake.witness, timeout_s=5)
    client.submit(log.head(8), log.proof_for(8))
    fake.requests.clear()
    rebuilt = Log(log_key, tag=b"rewritten ")
    with pytest.raises(WitnessInconsistent, match="tree of 8 leaves and this checkpoint has 6"):
        client.submit(rebuilt.head(6), rebuilt.proof_for(6))
    assert len(fake.requests) == 1  # no retry: no proof can help
    with pytest.raises(WitnessInconsistent, match="from size 8 does not verify") as caught:
        client.submit(rebuilt.head(12), rebuilt.proof_for(12), old_size=8)
    assert caught.value.status == 422 and caught.value.kind is ErrorKind.CONFLICT
    # another root at the very size the witness holds (the spec's 409 with the same size)
    with pytest.raises(WitnessInconsistent, match="another root at size 8"):
        client.submit(rebuilt.head(8), rebuilt.proof_for(8), old_size=8)
    assert fake.size == 8


@pytest.mark.parametrize(
    ("status", "body", "error", "kind"),
    [
        (403, "invalid signature\n", WitnessForbidden, ErrorKind.FORBIDDEN),
        (404, "", WitnessUnknownLog, ErrorKind.NOT_FOUND),
        (400, "bad\n", WitnessBadRequest, ErrorKind.INVALID),
        (422, "bad proof\n", WitnessInconsistent, ErrorKind.CONFLICT),
        (429, "", WitnessUnavailable, ErrorKind.UNAVAILABLE),
        (503, "", WitnessUnavailable, ErrorKind.UNAVAILABLE),
        (302, "", WitnessBadResponse, ErrorKind.FAILED),
        (409, "not a number\n", WitnessBadResponse, ErrorKind.FAILED),
        (200, "", WitnessBadResponse, ErrorKind.FAILED),
        (200, "— fake.vigil.test/w AAAA\n", WitnessBadResponse, ErrorKind.FAILED),
    ],
)
def test_each_answer_is_its_own_typed_error(
    fake: FakeWitness,
    log_key: SigningKey,
    status: int,
    body: str,
    error: type[ProofError],
    kind: ErrorKind,
) -> None:
    fake.script = [(status, body)]
    log = Log(log_key)
    with pytest.raises(error) as caught:
        WitnessClient(fake.witness, timeout_s=5).submit(log.head(3), log.proof_for(3))
    assert caught.value.kind is kind and isinstance(caught.value, ProofError)
    assert fake.key.name in str(caught.value)


def test_a_cosignature_is_kept_only_if_it_verifies_with_the_configured_key(
    fake: FakeWitness, log_key: SigningKey
) -> None:
    log = Log(log_key)
    note = log.head(2)
    body = parse_checkpoint(note).body
    impostor, _ = witness_key(fake.key.name)
    other_private, other_key = witness_key("other.example")
    now = int(time.time())
    forged = Cosignature(
        fake.key.name, fake.key.key_id, now, impostor.sign(cosigned_message(body, now))
    ).line
    fake.script = [(200, forged)]
    client = WitnessClient(fake.witness, timeout_s=5)
    with pytest.raises(WitnessBadResponse, match="does not verify"):
        client.submit(note, log.proof_for(2))
    # lines of other keys are ignored; the witness's own line is taken
    good = cosignature_line(fake.private, fake.key, body, now)
    fake.script = [(200, cosignature_line(other_private, other_key, body, now) + good)]
    assert client.submit(note, log.proof_for(2)).line == good
    fake.script = [(200, cosignature_line(other_private, other_key, body, now))]
    with pytest.raises(WitnessBadResponse, match="no line by the configured key"):
        client.submit(note, log.proof_for(2))


def test_two_409s_in_a_row_are_a_conflict_and_a_long_proof_is_not_sent(
    fake: FakeWitness, log_key: SigningKey
) -> None:
    log = Log(log_key)
    fake.script = [(409, "3\n"), (409, "4\n")]
    log.head(3)
    with pytest.raises(WitnessConflict, match="moved again") as caught:
        WitnessClient(fake.witness, timeout_s=5).submit(log.head(6), log.proof_for(6))
    assert caught.value.known_size == 4 and caught.value.kind is ErrorKind.CONFLICT
    with pytest.raises(WitnessBadRequest, match="over 63"):
        WitnessClient(fake.witness).add_checkpoint(log.head(6), 3, [bytes(32)] * 64)
    with pytest.raises(WitnessBadRequest, match="not an http"):
        WitnessClient(Witness("unix:///tmp/x", fake.key))


def test_cosign_returns_what_it_got_and_what_failed_without_raising(
    fake: FakeWitness, log_key: SigningKey
) -> None:
    log = Log(log_key)
    _, down_key = witness_key("down.example")
    _, slow_key = witness_key("slow.example")
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(4)  # accepts into the backlog, never answers
        down = Witness("http://127.0.0.1:9", down_key)  # discard port: nothing listens
        slow = Witness(f"http://127.0.0.1:{hole.getsockname()[1]}", slow_key)
        config = WitnessConfig((down, fake.witness, slow), quorum=2, timeout_s=0.5)
        started = time.monotonic()
        result = cosign(log.head(5), 5, log.proof_for(5), config)
        assert time.monotonic() - started < 2.0
    assert result.pairs == [(fake.key.name, result.cosignatures[0].line)]
    assert not result.quorum_met and result.quorum == 2
    assert [(f.witness, f.kind) for f in result.failures] == [
        ("down.example", ErrorKind.UNAVAILABLE),
        ("slow.example", ErrorKind.UNAVAILABLE),
    ]
    assert check_quorum(result.cosigned_note, config.keys, 1).ok
    # a proof that cannot be made fails that witness only; a wrong size is the caller's bug
    fake.script = [(409, "2\n")]

    def no_proof(old: int) -> list[bytes]:
        raise ProofError(f"no proof from {old}")

    result = cosign(log.head(7), 7, no_proof, [fake.witness])
    (failure,) = result.failures
    assert isinstance(failure.error, WitnessBadRequest) and "no proof from 2" in str(failure)
    with pytest.raises(WitnessConfigError, match="size 7, not 8"):
        cosign(log.head(7), 8, log.proof_for(7), [fake.witness])
    assert not cosign(log.head(7), 7, log.proof_for(7), []).quorum_met


def test_kept_cosignatures_give_the_next_old_size_and_are_re_verified_on_read(
    fake: FakeWitness, log_key: SigningKey, tmp_path: Path
) -> None:
    store = LocalFolderStore(tmp_path / "objects")
    config = WitnessConfig((fake.witness,), 1, 5.0)
    witnesses = LedgerWitnesses(config=config, store=store, work_dir=tmp_path / "work")
    log = Log(log_key)
    assert witnesses.witness(log.head(4), 4, log.proof_for(4)).quorum_met
    assert witnesses.witness(log.head(6), 6, log.proof_for(6)).quorum_met
    assert [r.split("\n", 1)[0] for r in fake.requests] == ["old 0", "old 4"]  # no 409 trip
    assert witnesses.status(10) == WitnessStatus(10, 6, 1, {fake.key.name: 6})
    assert witnesses.status(10).behind == 4 and len(witnesses.lines(log.head(6))) == 1
    # an object in the store whose line does not verify proves nothing and is skipped
    note = log.head(7)
    impostor, _ = witness_key(fake.key.name)
    body = parse_checkpoint(note).body
    line = Cosignature(fake.key.name, fake.key.key_id, 1, impostor.sign(cosigned_message(body, 1)))
    forged = CosignatureObject(
        witness=fake.key.name, vkey=fake.key.vkey, url="", size=7, note_sha256="",
        timestamp=1, line=line.line,
    )  # fmt: skip
    path = tmp_path / "forged.json"
    path.write_text(forged.model_dump_json())
    key = cosignature_object_key(fake.key.key_id, 7, note)
    store.put_file("derived", key, path, sha256_file(path)[0], category="ledger")
    assert witnesses.lines(note) == [] and witnesses.cosigned_note(note) == note
    assert witnessed_size([9, 4, 7], 2) == 7
    assert witnessed_size([9], 2) == witnessed_size([], 1) == witnessed_size([3], 0) == 0
