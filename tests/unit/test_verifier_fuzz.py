"""Issue 14: ``vigil-verify`` never crashes on a package. Malformed input is a finding and exit
status 2; it never escapes as an exception or a traceback.

A real, small export package is made once (a 6 s clip in three 2 s segments, linked to a case,
its tree heads timestamped by a real RFC 3161 TSA: OpenSSL's ``ts -reply``). ``Fuzzer`` then
mutates it, one mutation at a time, in place, and runs the verifier's own entry point
(``vigil_verify.cli.main``) in-process on it, with stdout and stderr strict UTF-8 streams as a
terminal's are:

- bytes flipped, set, inserted, deleted, duplicated or cut off in any file of the log or the
  manifest (the token, the proofs, the notes, ``manifest.json``, ``events.jsonl``, the keys);
- the timestamp token re-encoded after a change to its DER structure (a tag, a value, a child
  deleted, doubled or swapped): well-formed DER that reaches the CMS and certificate checks;
- JSON values of the wrong type (null, numbers huge, negative, NaN, infinite; strings empty,
  long, with NUL, lone surrogates or ``../``; lists and objects), keys deleted, nesting deep;
- the checkpoint note and the earlier heads' notes with lines changed;
- events changed and then *re-signed* with a new key, so that the changed event is proved and
  its values reach the footage check (per-frame hash blobs made hostile and signed too);
- files deleted, replaced by folders or links; ``--key`` and ``--trusted-checkpoint`` files
  mutated; ``--json`` or not.

A run *crashes* when an exception escapes ``main``, when a last-resort handler had to speak
(``main``'s ``UNFORESEEN``, or ``verify_package``'s ``UNCHECKED`` for one recording), when the
status is not 0, 1 or 2, or when the output does not match the status.
``bench/verifier_fuzz.py --count 10000`` runs the full count on the same machinery.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import random
import shutil
import struct
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from vigil_verify import der
from vigil_verify.checkpoint import checkpoint_body, note_key_hash, parse_checkpoint
from vigil_verify.cli import UNFORESEEN, main
from vigil_verify.frames import FrameHashes
from vigil_verify.report import UNCHECKED

from integrity.export import export_case
from integrity.merkle import MerkleLog
from tests.helpers import ingest_and_process
from tests.services.tsa import TsaServer, make_tsa_files
from transcode.samples import SampleSpec
from workers.app import build_app
from workers.settings import Settings

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

CASE = "CASE-FUZZ"
CLIP = SampleSpec(duration_s=6.0, width=320, height=240, video_bitrate="300k", seed=41)
SUITE_COUNT = 500
LEDGER = ("ledger/checkpoint.json", "ledger/events.jsonl", "ledger/history.json")


# -- the package ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    """A package to mutate, and what an auditor may pass beside it."""

    package: Path
    saved_head: Path  # a head signed before the export: --trusted-checkpoint
    key: Path  # the ledger's public key obtained apart: --key


def build_corpus(work: Path, clip: Path) -> Corpus:
    """Ingest ``clip`` in 2 s segments, link it to ``CASE``, sign heads with RFC 3161
    timestamps from a local TSA, and export the case."""
    files = make_tsa_files(work / "tsa")
    server = TsaServer(files)
    server.start()
    try:
        settings = Settings(
            data_dir=work / "vigil",
            segment_seconds=2.0,
            ledger_tsa_url=server.base_url + "/",
            ledger_tsa_certs=files.ca_cert,
        )  # type: ignore[call-arg]
        app = build_app(settings)
        try:
            rec = ingest_and_process(app, clip)
            app.cases.link(CASE, rec, from_s=None, to_s=None, reason="fuzz", actor="officer")
            saved = work / "saved-head.txt"
            saved.write_text(app.ledger.checkpoint(force=True).note)
            app.cases.link(CASE, rec, from_s=1.0, to_s=3.0, reason="a window", actor="officer")
            package = export_case(
                app.catalog, app.store, app.ledger, CASE, work / "export", actor="reviewer",
                reason="fuzzing", tolerance_frames=1.0, device_tolerance_s=2.0,
                worm_checkpoints=app.worm_checkpoints(), segment_files=app.segment_files,
                tsa_certs=files.ca_cert.read_bytes(),
            )  # fmt: skip
        finally:
            app.stop()
    finally:
        server.stop()
    key = work / "ledger.pub.pem"
    shutil.copyfile(package / "ledger" / "public-key.pem", key)
    return Corpus(package, saved, key)


# -- DER: the token as a tree, changed, and encoded again with correct lengths ------------------


@dataclass
class Node:
    tag: int
    value: bytes = b""  # a primitive's contents
    children: list[Node] | None = None  # a constructed value's elements
    wraps: bool = False  # a primitive whose contents are DER (the eContent OCTET STRING)

    def walk(self) -> Iterator[tuple[Node, Node | None]]:
        """Every node with its parent."""
        stack: list[tuple[Node, Node | None]] = [(self, None)]
        while stack:
            node, parent = stack.pop()
            yield node, parent
            stack.extend((child, node) for child in node.children or ())


def tree(tlv: der.Tlv) -> Node:
    if tlv.constructed:
        return Node(tlv.tag, children=[tree(c) for c in tlv.children()])
    if tlv.tag == der.OCTET_STRING:
        try:
            inner = tlv.inner()
        except der.DerError:
            inner = ()
        if len(inner) == 1 and inner[0].constructed:
            with contextlib.suppress(der.DerError):  # random bytes (a signature, a nonce)
                return Node(tlv.tag, children=[tree(inner[0])], wraps=True)  # that only look
    return Node(tlv.tag, tlv.value)  # like DER at their top level are a value


def encode_tree(node: Node) -> bytes:
    if node.children is not None:
        return der.encode(node.tag, b"".join(encode_tree(c) for c in node.children))
    return der.encode(node.tag, node.value)


TAGS = (0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0C, 0x13, 0x14, 0x16, 0x17, 0x18, 0x1E, 0x30, 0x31,
        0x80, 0x81, 0xA0, 0xA1)  # fmt: skip


STRINGS = (0x0C, 0x13, 0x14, 0x16, 0x1E)  # UTF8String, PrintableString, ...: names
INTEGERS = (der.INTEGER, 0x80, 0x81)  # and the [0]/[1] IMPLICIT INTEGERs of an accuracy


def mutate_der(rng: random.Random, token: bytes) -> tuple[bytes, str]:
    """A structural change to the token, encoded again as well-formed DER. Some changes aim
    where parsers are lazy or narrow: a name's string re-tagged (a BIT STRING that cryptography
    reads only when asked), an INTEGER made huge."""
    root = tree(der.parse(token))
    nodes = list(root.walk())
    op = rng.choice(
        ("retag", "value", "name", "name", "integer", "delete", "double", "swap", "time")
    )
    aimed = {"name": STRINGS, "integer": INTEGERS}.get(op, ())
    node, parent = rng.choice([(n, p) for n, p in nodes if n.tag in aimed] or nodes)
    if op == "name" or op == "retag":
        node.tag = der.BIT_STRING if op == "name" and rng.random() < 0.6 else rng.choice(TAGS)
        if node.children is None and node.value and rng.random() < 0.6:
            node.value = b"\x00" + node.value[1:]  # a valid BIT STRING, say, of a name
        if node.children is not None and not node.tag & 0x20:
            node.children, node.value = None, encode_tree(Node(0x30, children=node.children))
    elif op == "value" and node.children is None:
        node.value = _mutate_bytes(rng, node.value)[0]
    elif op == "integer":
        bits = rng.choice((0, 7, 8, 31, 32, 63, 64, 70, 256, 2048))
        node.children = None
        node.value = der.parse(der.integer(rng.choice((1, -1)) * (1 << bits))).value
    elif op == "time":
        node.tag, node.children = der.GENERALIZED_TIME, None
        node.value = rng.choice((b"99991231235959Z", b"00000101000000Z", b"20261304000000Z", b""))
    elif parent is not None and parent.children:
        siblings = parent.children
        i = next(k for k, sibling in enumerate(siblings) if sibling is node)
        if op == "delete":
            del siblings[i]
        elif op == "double":
            siblings.insert(i, node)
        else:
            j = rng.randrange(len(siblings))
            siblings[i], siblings[j] = siblings[j], siblings[i]
    try:
        return encode_tree(root), f"der-{op}"
    except ValueError:  # a tag the writer will not encode: fall back to the bytes
        return _mutate_bytes(rng, token)


# -- bytes, JSON and text mutations ---------------------------------------------------------------


def _mutate_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    out = bytearray(data)
    op = rng.choice(("flip", "set", "insert", "delete", "truncate", "duplicate", "append"))
    at = rng.randrange(len(out) + 1)
    if op == "flip" and out:
        out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
    elif op == "set" and out:
        out[min(at, len(out) - 1)] = rng.choice((0, 0xFF, 0x80, 0x7F, rng.randrange(256)))
    elif op == "insert":
        out[at:at] = rng.randbytes(rng.randint(1, 8))
    elif op == "delete":
        del out[at : at + rng.randint(1, 16)]
    elif op == "truncate":
        del out[at:]
    elif op == "duplicate":
        out[at:at] = out[at : at + rng.randint(1, 64)]
    else:
        out += rng.choice((b"\x00", b"\n", b"{", b"garbage", rng.randbytes(16)))
    return bytes(out), f"bytes-{op}"


HOSTILE: tuple[object, ...] = (
    None, True, False, 0, -1, 1, 2**63, -(2**63), 10**30, 1e308, -0.0, 0.5,
    float("nan"), float("inf"), float("-inf"), "", "x", "x" * 5000, "\x00", "\ud800", "\u202e",
    "../../etc/passwd", "/dev/zero", "rec-0000000000000000", "0" * 64, [], {}, [[]],
    {"": None}, ["00" * 32], "zz",
)  # fmt: skip


def _paths(value: object, path: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))


def mutate_json(rng: random.Random, document: object) -> tuple[object, str]:
    """``document`` with one node replaced by a hostile value, deleted, or given a new key."""
    path = rng.choice(list(_paths(document)))
    op = rng.choice(("replace", "replace", "replace", "delete", "add"))
    if not path:
        return rng.choice(HOSTILE), "json-root"
    *above, last = path
    parent: Any = document  # a JSON object or list: the path was read from it
    for step in above:
        parent = parent[step]
    if op == "delete":
        del parent[last]
    elif op == "add" and isinstance(parent, dict):
        parent[rng.choice(("extra", "note", "id", "recording", "detail"))] = rng.choice(HOSTILE)
    else:
        parent[last] = rng.choice(HOSTILE)
    return document, f"json-{op}"


def dump(document: object) -> bytes:
    """JSON as Python writes it: NaN and Infinity included, lone surrogates escaped."""
    return json.dumps(document).encode()


def mutate_note(rng: random.Random, note: str) -> tuple[str, str]:
    lines = note.split("\n")
    i = rng.randrange(len(lines))
    op = rng.choice(("line", "line", "drop", "double", "size", "char"))
    if op == "char":
        at = rng.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:at] + rng.choice(("\ud800", "\x00", "\n\n", " ", "+")) + lines[i][at:]
    elif op == "line":
        lines[i] = rng.choice(
            ("", "0", "9" * 5000, "-1", "time x", "— x AAAA", "\u2014 ", "==", "\ud800", "a\x00b")
        )
    elif op == "drop":
        del lines[i]
    elif op == "double":
        lines.insert(i, lines[i])
    elif len(lines) > 1:
        lines[1] = str(rng.choice((0, 2**64, 10**20, int(lines[1] or 0) + 1)))
    return "\n".join(lines), f"note-{op}"


# -- one mutation of the package, undone after its run -------------------------------------------


@dataclass
class Mutation:
    family: str
    target: str
    operator: str
    argv: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        flags = " ".join(self.argv)
        return f"{self.family}: {self.operator} of {self.target}" + (f" [{flags}]" if flags else "")


class Workspace:
    """The package's files as exported; each change is undone by ``restore``."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self.package = corpus.package
        self.touched: dict[Path, bytes] = {}

    def read(self, rel: str) -> bytes:
        """The file as exported, whatever has been done to it since."""
        path = self.package / rel
        return self.touched.get(path) or path.read_bytes()

    def write(self, rel: str, data: bytes) -> None:
        path = self.package / rel
        self.touched.setdefault(path, path.read_bytes())
        path.write_bytes(data)

    def replace(self, rel: str, how: str) -> None:
        """Delete the file, or put a folder or a link where it was."""
        path = self.package / rel
        self.touched.setdefault(path, path.read_bytes())
        path.unlink()
        if how == "folder":
            path.mkdir()
        elif how == "link-null":
            path.symlink_to("/dev/null")
        elif how == "link-folder":
            path.symlink_to(self.package)

    def restore(self) -> None:
        for path, data in self.touched.items():
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.is_dir():
                shutil.rmtree(path)
            path.write_bytes(data)
        self.touched.clear()


def _segment_files(package: Path) -> list[str]:
    return sorted(str(p.relative_to(package)) for p in package.glob("*/segments/*.ts"))


class Fuzzer:
    """Mutations of one package by family, each applied by ``apply`` and undone by
    ``restore``; ``run`` does one of each, checks the verifier and keeps the tally."""

    def __init__(self, corpus: Corpus, seed: int) -> None:
        self.rng = random.Random(seed)
        self.space = Workspace(corpus)
        self.corpus = corpus
        self.segments = _segment_files(corpus.package)
        self.families: dict[str, tuple[float, Callable[[], Mutation]]] = {
            "token": (3, self._token),
            "checkpoint": (2, self._checkpoint),
            "events": (3, self._events),
            "history": (1, self._history),
            "manifest": (2, self._manifest),
            "keys": (1, self._keys),
            "files": (1, self._files),
            "resigned": (2.5, self._resigned),
            "frames": (0.3, self._frames),
            "auditor": (0.7, self._auditor),
        }

    def pick(self) -> Mutation:
        names = list(self.families)
        weights = [self.families[n][0] for n in names]
        family = self.rng.choices(names, weights)[0]
        mutation = self.families[family][1]()
        if self.rng.random() < 0.3:
            mutation.argv.append("--json")
        if self.rng.random() < 0.15 and "--trusted-checkpoint" not in mutation.argv:
            mutation.argv += ["--trusted-checkpoint", str(self.corpus.saved_head)]
        if self.rng.random() < 0.15 and "--key" not in mutation.argv:
            mutation.argv += ["--key", str(self.corpus.key)]
        return mutation

    # -- the families ---------------------------------------------------------------------------

    def _json(self, rel: str) -> object:
        return json.loads(self.space.read(rel))

    def _token(self) -> Mutation:
        rel = "ledger/checkpoint.json"
        document = self._json(rel)
        assert isinstance(document, dict)
        token = base64.b64decode(document["timestamp_token"])
        if self.rng.random() < 0.75:
            changed, op = mutate_der(self.rng, token)
        else:
            changed, op = _mutate_bytes(self.rng, token)
        document["timestamp_token"] = base64.b64encode(changed).decode()
        self.space.write(rel, dump(document))
        return Mutation("token", rel, op)

    def _checkpoint(self) -> Mutation:
        rel = "ledger/checkpoint.json"
        document = self._json(rel)
        assert isinstance(document, dict)
        roll = self.rng.random()
        if roll < 0.4:
            document["note"], op = mutate_note(self.rng, document["note"])
            self.space.write(rel, dump(document))
        elif roll < 0.8:
            changed, op = mutate_json(self.rng, document)
            self.space.write(rel, dump(changed))
        else:
            data, op = _mutate_bytes(self.rng, self.space.read(rel))
            self.space.write(rel, data)
        return Mutation("checkpoint", rel, op)

    def _events(self) -> Mutation:
        rel = "ledger/events.jsonl"
        lines = self.space.read(rel).decode().splitlines()
        i = self.rng.randrange(len(lines))
        roll = self.rng.random()
        if roll < 0.35:
            entry, op = mutate_json(self.rng, json.loads(lines[i]))
            lines[i] = dump(entry).decode()
        elif roll < 0.7:
            entry = json.loads(lines[i])
            event, op = mutate_json(self.rng, json.loads(entry["event"]))
            entry["event"] = json.dumps(event, sort_keys=True, separators=(",", ":"))
            lines[i] = dump(entry).decode()
        elif roll < 0.8:
            lines[i], op = "[" * 100_000 + "]" * 100_000, "deep-nesting"
        else:
            data, op = _mutate_bytes(self.rng, self.space.read(rel))
            self.space.write(rel, data)
            return Mutation("events", rel, op)
        self.space.write(rel, ("\n".join(lines) + "\n").encode())
        return Mutation("events", f"{rel} line {i + 1}", op)

    def _history(self) -> Mutation:
        rel = "ledger/history.json"
        document = self._json(rel)
        if isinstance(document, list) and document and self.rng.random() < 0.4:
            entry = document[self.rng.randrange(len(document))]
            entry["checkpoint"]["note"], op = mutate_note(self.rng, entry["checkpoint"]["note"])
            self.space.write(rel, dump(document))
        elif self.rng.random() < 0.7:
            changed, op = mutate_json(self.rng, document)
            self.space.write(rel, dump(changed))
        else:
            data, op = _mutate_bytes(self.rng, self.space.read(rel))
            self.space.write(rel, data)
        return Mutation("history", rel, op)

    def _manifest(self) -> Mutation:
        rel = "manifest.json"
        if self.rng.random() < 0.75:
            changed, op = mutate_json(self.rng, self._json(rel))
            self.space.write(rel, dump(changed))
        else:
            data, op = _mutate_bytes(self.rng, self.space.read(rel))
            self.space.write(rel, data)
        return Mutation("manifest", rel, op)

    def _keys(self) -> Mutation:
        rel = self.rng.choice(("ledger/public-key.pem", "ledger/tsa-certs.pem"))
        data, op = _mutate_bytes(self.rng, self.space.read(rel))
        self.space.write(rel, data)
        return Mutation("keys", rel, op)

    def _files(self) -> Mutation:
        rel = self.rng.choice(
            (*LEDGER, "manifest.json", "ledger/public-key.pem", "ledger/tsa-certs.pem")
        )
        how = self.rng.choice(("delete", "folder", "link-null", "link-folder"))
        self.space.replace(rel, how)
        return Mutation("files", rel, how)

    def _auditor(self) -> Mutation:
        """The files the auditor passes: a saved head or a key, mutated, missing or a folder."""
        flag, source = self.rng.choice(
            (("--trusted-checkpoint", self.corpus.saved_head), ("--key", self.corpus.key))
        )
        given = self.space.package.parent / f"auditor-{flag.strip('-')}"
        op = self.rng.choice(("bytes", "missing", "folder"))
        if given.is_dir():
            shutil.rmtree(given)
        given.unlink(missing_ok=True)
        if op == "bytes":
            given.write_bytes(_mutate_bytes(self.rng, source.read_bytes())[0])
        elif op == "folder":
            given.mkdir()
        return Mutation("auditor", flag, op, [flag, str(given)])

    def _resigned(self) -> Mutation:
        """An event changed, then the log signed again by a new key: the change is proved."""
        lines = self.space.read("ledger/events.jsonl").decode().splitlines()
        i = self.rng.randrange(len(lines))
        entry = json.loads(lines[i])
        event = json.loads(entry["event"])
        detail = event.get("detail")
        if isinstance(detail, dict) and detail and self.rng.random() < 0.7:
            changed, op = mutate_json(self.rng, detail)
            event["detail"] = changed
        else:
            event, op = mutate_json(self.rng, event)
        events = [json.loads(line)["event"] for line in lines]
        events[i] = json.dumps(event, sort_keys=True, separators=(",", ":"))
        self._sign(events)
        return Mutation("resigned", f"event {i + 1}", op)

    def _frames(self) -> Mutation:
        """A hostile per-frame hash blob, its hash signed, and its segment changed in place so
        that the footage check reads it."""
        segment = self.rng.choice(self.segments)
        blob_rel = segment.removesuffix(".ts") + ".pdq"
        blob = self.space.read(blob_rel)
        hostile, op = _mutate_bytes(self.rng, blob)
        if self.rng.random() < 0.5:
            frames = FrameHashes.from_bytes(blob)
            header = frames.to_bytes()[:24]  # magic, version, reserved, n, rate
            n, rate = self.rng.choice(((2**40, 10.0), (0, 0.0), (1, float("nan")), (3, -1.0)))
            hostile = header[:8] + n.to_bytes(8, "little") + _f64(rate) + blob[24:]
            op = f"frames-header n={n} rate={rate}"
        self.space.write(blob_rel, hostile)
        signed = hashlib.sha256(self.space.read(segment)).hexdigest()
        flipped = bytearray(self.space.read(segment))
        flipped[len(flipped) // 2] ^= 0xFF
        self.space.write(segment, bytes(flipped))
        lines = self.space.read("ledger/events.jsonl").decode().splitlines()
        events = [json.loads(line)["event"] for line in lines]
        for n, raw in enumerate(events):
            event = json.loads(raw)
            if event["action"] == "segment.hashed" and event["detail"]["segment_sha256"] == signed:
                event["detail"]["phash_sha256"] = hashlib.sha256(hostile).hexdigest()
                events[n] = json.dumps(event, sort_keys=True, separators=(",", ":"))
        self._sign(events)
        return Mutation("frames", blob_rel, op)

    def _sign(self, events: list[str]) -> None:
        """Write ``events`` as the whole log, signed by a new key: proofs, head, key, history."""
        log = MerkleLog()
        for raw in events:
            log.append(raw.encode("utf-8", "surrogatepass"))
        size = log.size
        key = Ed25519PrivateKey.generate()
        raw_public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        document = self._json("ledger/checkpoint.json")
        assert isinstance(document, dict)
        origin = parse_checkpoint(document["note"]).origin
        body = checkpoint_body(origin, size, log.root(size), datetime.now(UTC))
        signature = note_key_hash(origin, raw_public) + key.sign(body.encode())
        note = f"{body}\n\u2014 {origin} {base64.b64encode(signature).decode()}\n"
        entries = [
            {"position": n, "event": raw, "proof": [p.hex() for p in log.inclusion_proof(n, size)]}
            for n, raw in enumerate(events)
        ]
        self.space.write(
            "ledger/events.jsonl", "".join(dump(e).decode() + "\n" for e in entries).encode()
        )
        self.space.write("ledger/checkpoint.json", dump({"note": note, "timestamp_token": None}))
        self.space.write("ledger/history.json", b"[]")
        pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        self.space.write("ledger/public-key.pem", pem)


def _f64(value: float) -> bytes:
    return struct.pack("<d", value)


# -- running the verifier -----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    mutation: Mutation
    status: int | None
    crash: str | None  # what escaped, or what the last-resort handler said

    @property
    def crashed(self) -> bool:
        return self.crash is not None


def _strict_stream() -> io.TextIOWrapper:
    """A stream that, like a UTF-8 terminal, refuses what UTF-8 cannot encode."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", newline="")


def run_verifier(package: Path, argv: list[str]) -> tuple[int | None, str | None]:
    """``vigil-verify PACKAGE ARGV`` in-process: its status, and the crash if it crashed."""
    out, err = _strict_stream(), _strict_stream()
    try:
        with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            status = main([str(package), *argv])
            out.flush()
            err.flush()
    except KeyboardInterrupt:
        raise
    except BaseException:
        return None, traceback.format_exc()
    stdout = out.buffer.getvalue().decode()  # type: ignore[attr-defined]
    stderr = err.buffer.getvalue().decode()  # type: ignore[attr-defined]
    return status, _misreported(status, argv, stdout, stderr)


def _misreported(status: int, argv: list[str], stdout: str, stderr: str) -> str | None:
    """Why the output does not fit the status (None when it does)."""
    if UNFORESEEN in stderr:
        return stderr
    if UNCHECKED in stdout:  # the safety net of verify_package caught what nobody foresaw
        return stdout
    if status not in (0, 1, 2):
        return f"exit status {status}"
    if "--json" in argv:
        try:
            report = json.loads(stdout)
        except ValueError:
            return f"--json output is not JSON: {stdout[:200]!r}"
        found = report.get("malformed") if isinstance(report, dict) else None
        if report.get("exit_status") != status or (status == 2) != bool(found):
            return f"--json says exit {report.get('exit_status')}, malformed {found}"
        return None
    verdict = {0: "RESULT: CLEAN", 1: "RESULT: PROBLEMS FOUND", 2: "RESULT: MALFORMED PACKAGE"}
    if not stdout and status == 2 and stderr:  # the package is not even a folder
        return None
    if verdict[status] not in stdout:
        return f"exit {status} but the report says {stdout.strip().splitlines()[-1:]}"
    return None


@dataclass
class Tally:
    runs: int = 0
    statuses: Counter[int | None] = field(default_factory=Counter)
    families: Counter[str] = field(default_factory=Counter)
    crashes: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.runs += 1
        self.statuses[outcome.status] += 1
        self.families[outcome.mutation.family] += 1
        if outcome.crashed:
            self.crashes.append(outcome)


def fuzz(
    corpus: Corpus, count: int, seed: int, on_outcome: Callable[[Outcome], None] | None = None
) -> Tally:
    """``count`` mutations of ``corpus``'s package, each run through the verifier."""
    fuzzer = Fuzzer(corpus, seed)
    tally = Tally()
    for _ in range(count):
        try:
            mutation = fuzzer.pick()
            status, crash = run_verifier(corpus.package, mutation.argv)
        finally:
            fuzzer.space.restore()
        outcome = Outcome(mutation, status, crash)
        tally.add(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return tally


# -- the tests ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(
    tmp_path_factory: pytest.TempPathFactory, make_clip: Callable[[SampleSpec], Path]
) -> Corpus:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not on PATH: the package's heads are timestamped by its TSA")
    return build_corpus(tmp_path_factory.mktemp("verifier-fuzz"), make_clip(CLIP))


@pytest.fixture
def space(corpus: Corpus) -> Iterator[Workspace]:
    workspace = Workspace(corpus)
    yield workspace
    workspace.restore()


def report_of(package: Path, *argv: str) -> tuple[int | None, dict[str, object]]:
    """The verifier's --json report and status; fails the test on a crash."""
    out = io.StringIO()
    with redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = main([str(package), "--json", *argv])
    return status, json.loads(out.getvalue())


def malformed(report: dict[str, object]) -> str:
    found = report["malformed"]
    assert isinstance(found, list)
    return "\n".join(found)


def test_the_untouched_package_is_clean(corpus: Corpus) -> None:
    status, report = report_of(corpus.package, "--trusted-checkpoint", str(corpus.saved_head))
    assert status == 0, report
    assert report["clean"] is True and report["malformed"] == []
    ledger = report["ledger"]
    assert isinstance(ledger, dict) and "timestamp OK" in str(ledger["timestamp"])


def test_a_few_hundred_mutations_never_crash(corpus: Corpus) -> None:
    tally = fuzz(corpus, SUITE_COUNT, seed=14)
    shown = "\n\n".join(f"{c.mutation}\n{c.crash}" for c in tally.crashes[:5])
    assert not tally.crashes, f"{len(tally.crashes)} of {tally.runs} crashed:\n{shown}"
    assert set(tally.statuses) <= {0, 1, 2}
    # The mutations reach both verdicts, and every family ran.
    assert tally.statuses[1] > 10 and tally.statuses[2] > 10, tally.statuses
    assert set(tally.families) == set(Fuzzer(corpus, 0).families), tally.families


def _token_tree(space: Workspace) -> tuple[dict[str, object], Node]:
    document = json.loads(space.read("ledger/checkpoint.json"))
    return document, tree(der.parse(base64.b64decode(document["timestamp_token"])))


def _write_token(space: Workspace, document: dict[str, object], root: Node) -> None:
    document["timestamp_token"] = base64.b64encode(encode_tree(root)).decode()
    space.write("ledger/checkpoint.json", dump(document))


def _signed_data(root: Node) -> list[Node]:
    assert root.children is not None
    content = root.children[1].children
    assert content is not None and content[0].children is not None
    return content[0].children


def test_a_signer_certificate_name_cryptography_cannot_read_is_malformed(
    corpus: Corpus, space: Workspace
) -> None:
    """The issue's crash: a name attribute re-tagged as a BIT STRING makes cryptography raise
    TypeError when the name is read, lazily, deep in the CMS check."""
    document, root = _token_tree(space)
    certificates = next(n for n in _signed_data(root) if n.tag == 0xA0).children
    assert certificates is not None
    for cert in certificates:
        assert cert.children is not None and cert.children[0].children is not None
        tbs = cert.children[0].children
        issuer, subject = tbs[3], tbs[5]
        if encode_tree(issuer) != encode_tree(subject):  # the signer, not the self-signed CA
            assert subject.children is not None
            rdn = subject.children[-1].children
            assert rdn is not None and rdn[0].children is not None
            value = rdn[0].children[1]
            value.tag, value.value = der.BIT_STRING, b"\x00" + value.value[1:]
    _write_token(space, document, root)
    status, report = report_of(corpus.package)
    assert status == 2
    assert "trusted timestamp fails: not a timestamp token: the signer certificate's" in (
        malformed(report)
    )
    assert "TypeError" in malformed(report)


def test_an_accuracy_no_timedelta_can_hold_is_malformed(corpus: Corpus, space: Workspace) -> None:
    document, root = _token_tree(space)
    encap = _signed_data(root)[2]
    assert encap.children is not None and encap.children[1].children is not None
    tst_info = encap.children[1].children[0].children
    assert tst_info is not None and tst_info[0].children is not None
    accuracy = tst_info[0].children[5]
    assert accuracy.tag == der.SEQUENCE and accuracy.children
    accuracy.children[0].value = der.parse(der.integer(2**70)).value
    _write_token(space, document, root)
    status, report = report_of(corpus.package)
    assert status == 2
    assert "accuracy 1180591620717411303424 s" in malformed(report)


@pytest.mark.parametrize(
    ("rel", "content", "expected"),
    [
        ("ledger/checkpoint.json", b"[]", "ledger/checkpoint.json: not a JSON object"),
        ("ledger/checkpoint.json", b'{"note": 17}', "its note is 17, not text"),
        ("ledger/history.json", b'{"a": 1}', "history.json is malformed"),
        ("manifest.json", b"\xff\xfe", "manifest: unreadable (manifest.json is not JSON"),
        ("ledger/public-key.pem", b"-----BEGIN PUBLIC KEY-----\n", "public key is unusable"),
    ],
)
def test_files_of_the_wrong_shape_are_malformed(
    corpus: Corpus, space: Workspace, rel: str, content: bytes, expected: str
) -> None:
    space.write(rel, content)
    status, report = report_of(corpus.package)
    assert status == 2
    assert expected in malformed(report)


def test_an_event_line_nested_beyond_the_parser_is_malformed(
    corpus: Corpus, space: Workspace
) -> None:
    lines = space.read("ledger/events.jsonl").decode().splitlines()
    lines[3] = "[" * 100_000 + "]" * 100_000
    space.write("ledger/events.jsonl", ("\n".join(lines) + "\n").encode())
    status, report = report_of(corpus.package)
    assert status == 2
    assert "events.jsonl line 4 is malformed (RecursionError" in malformed(report)


def test_a_manifest_path_leading_outside_the_package_is_not_followed(
    corpus: Corpus, space: Workspace
) -> None:
    outside = corpus.package.parent / "not-evidence.bin"
    outside.write_bytes(b"x" * 100)
    manifest = json.loads(space.read("manifest.json"))
    for entry in manifest["recordings"]:  # one entry per link of the recording to the case
        if entry["original"] is not None:  # a windowed link exports no original
            entry["original"]["path"] = "../not-evidence.bin"
    space.write("manifest.json", dump(manifest))
    status, report = report_of(corpus.package)
    assert status == 2
    assert "path '../not-evidence.bin' leads outside the package" in malformed(report)
    originals = report["originals"]
    assert isinstance(originals, list) and originals[0]["kind"] == "intact"


def test_text_that_would_break_the_terminal_is_escaped(corpus: Corpus, space: Workspace) -> None:
    """A lone surrogate cannot be written to a UTF-8 terminal; an escape sequence would be
    obeyed by one. Both are shown escaped, and the case ID is named as no case ID."""
    manifest = json.loads(space.read("manifest.json"))
    manifest["case_id"] = "\ud800\x1b[2J"
    space.write("manifest.json", dump(manifest))
    out = _strict_stream()
    with redirect_stdout(out):
        status = main([str(corpus.package)])
    out.flush()
    text = out.buffer.getvalue().decode()  # type: ignore[attr-defined]
    assert status == 2
    assert "case \\ud800\\x1b[2J, exported" in text
    assert "\x1b" not in text
    assert "MALFORMED manifest: case_id '\\ud800\\x1b[2J' is not a case ID" in text


def test_an_unreadable_key_or_saved_head_from_the_auditor_is_malformed(
    corpus: Corpus, tmp_path: Path
) -> None:
    missing = tmp_path / "nothing.pem"
    status, report = report_of(corpus.package, "--key", str(missing))
    assert status == 2
    assert f"the pinned key is unusable: --key {missing}: missing" in malformed(report)
    status, report = report_of(corpus.package, "--trusted-checkpoint", str(tmp_path))
    assert status == 2
    assert "is unreadable (--trusted-checkpoint" in malformed(report)


def test_a_signed_event_with_values_that_make_no_sense_is_malformed(
    corpus: Corpus, space: Workspace
) -> None:
    """Re-signed with a new key, so the event is proved: its values must still be checked."""
    fuzzer = Fuzzer(corpus, 0)
    fuzzer.space = space
    events = [json.loads(line)["event"] for line in space.read("ledger/events.jsonl").splitlines()]
    for n, raw in enumerate(events):
        event = json.loads(raw)
        if event["action"] == "segment":
            event["detail"]["count"] = 10**12
        elif event["action"] == "segment.stored" and event["detail"]["index"] == 1:
            event["detail"]["start_s"] = float("nan")
        events[n] = json.dumps(event, sort_keys=True, separators=(",", ":"))
    fuzzer._sign(events)
    status, report = report_of(corpus.package)
    assert status == 2
    found = malformed(report)
    assert "(segment) is malformed (1000000000000 is not a segment index or count" in found
    assert "(segment.stored) is malformed (nan is not a finite number)" in found
