"""The HTTP API fuzzed from its own OpenAPI description (schemathesis), on a real server.

What is fuzzed: every operation ``/openapi.json`` lists (uploads, cases, recordings, media,
exports, custody, ledger, statistics), each with schemathesis' positive examples (valid by the
schema) and negative ones (invalid by it), sent to a uvicorn server on loopback serving
``create_api`` over a throwaway catalogue seeded with two cases (``CASE-A``, ``CASE-B``), one
recording each, an open upload and a pending export request. Every operation is fuzzed as three
callers, each its own test: a **supervisor** (the widest role: every case), a **reviewer**
assigned to ``CASE-A`` only and a **device** (uploads, reads nothing), so that 403 paths are
reached as well as 200s. Mutating operations (uploads, export approval and denial,
verification) run too: the catalogue is thrown away afterwards.

Every response must pass, in the installed schemathesis' names: ``not_a_server_error`` (no
5xx), ``status_code_conformance`` (the status is documented for the operation),
``content_type_conformance`` (the Content-Type is documented) and
``response_schema_conformance`` (the body matches the documented schema). Examples are bounded
(``MAX_EXAMPLES`` per operation, mode and caller: 50 per operation and caller), derandomized
(Hypothesis derives the seed from the test, so a failure reproduces), not shrunk (the server's
state moves on) and without deadline; the module takes a minute or two. Every failure of every
operation is collected and reported at once. Schemathesis' own pytest plugin
(``schema.parametrize``) does not run on pytest 9, so each operation's strategy is driven with
Hypothesis' ``@given`` here; a negative run that cannot be generated at all (an operation whose
only parameter is the optional ``Authorization`` header) is skipped.

Steering, because random values only ever meet the first check of a handler:

- IDs: a path ID is, in about half the examples, one the catalogue holds (a case, a recording,
  the export request, the open upload, a segment index) instead of a random one (always 404).
- The bearer token is the caller's: the ``authorization`` header the schema lists (FastAPI's
  ``Header()``) is replaced, so the fuzzer does not spend its examples on 401s.
- Media links (``by``, ``tok``, ``exp``, ``sig``) are, in about half the examples, correctly
  signed for the object in the path, the caller and their token (with the API's ``sign`` and
  the server's secret; otherwise every one is a 403 of the signature check), and the ``Range``
  header is then sometimes a well-formed ``bytes=a-b``, sometimes one of thousands of digits
  (a 416, never a 500). The server's failed-authentication throttle is raised for the run
  (``api_auth_failure_limit``): the unsigned half would otherwise have it answer 429 to all.
- The chunk ``PUT`` only appends a chunk whose SHA-256 matches ``X-Chunk-SHA256`` and that starts
  at the confirmed offset: about half the examples send the body's real hash (and offset 0 for
  the seeded upload). Whatever the fuzzer sends, the answer must be a documented 2xx/4xx, never
  a 5xx.
- A device's ``POST /uploads`` names its own device ID about half the time (another's is a 403).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, BaseSchema, Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err
from schemathesis.transport.serialization import Binary

from interfaces.api.links import LinkClaim, sign
from tests.load import SECRET, serve_in_thread
from transcode.samples import SampleSpec
from workers.app import build_app
from workers.settings import Settings

if TYPE_CHECKING:
    Operation = APIOperation[Any, Any, Any, Any]

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

START = datetime(2024, 5, 14, 14, 3, 27, tzinfo=UTC)
MAX_EXAMPLES = 25  # per operation, generation mode (positive, negative) and caller
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CALLERS = {"supervisor": "sam", "reviewer": "alice", "device": "bc-0042"}
# Answers the steering must reach (else the fuzzer only ever met the first check).
REACHED = {
    "supervisor": {
        ("GET /api/v1/cases/{case_id}", 200),
        ("GET /api/v1/media/{recording_id}/original", 206),
        ("POST /api/v1/uploads", 403),
    },
    "reviewer": {
        ("GET /api/v1/cases/{case_id}", 200),
        ("GET /api/v1/cases/{case_id}", 403),
        ("GET /api/v1/ledger/checkpoint", 403),
    },
    "device": {
        ("POST /api/v1/uploads", 201),
        ("PUT /api/v1/uploads/{upload_id}", 200),
        ("GET /api/v1/cases", 403),
    },
}


@dataclass
class Seeded:
    url: str
    tokens: dict[str, str]
    ids: dict[str, list[Any]] = field(default_factory=dict)
    token_ids: dict[str, int] = field(default_factory=dict)


def _upload(client: httpx.Client, data: bytes, name: str) -> str:
    started = client.post(
        "/api/v1/uploads",
        json={
            "device_id": "BC-0042",
            "size": len(data),
            "original_name": name,
            "device_start": START.isoformat(),
        },
    )
    assert started.status_code == 201, started.text
    upload_id = started.json()["upload_id"]
    sent = client.put(
        f"/api/v1/uploads/{upload_id}",
        params={"offset": 0},
        content=data,
        headers={"X-Chunk-SHA256": hashlib.sha256(data).hexdigest()},
    )
    assert sent.status_code == 200, sent.text
    done = client.post(
        f"/api/v1/uploads/{upload_id}/finish", json={"sha256": hashlib.sha256(data).hexdigest()}
    )
    assert done.status_code == 200, done.text
    recording_id: str = done.json()["recording_id"]
    return recording_id


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory, make_clip: Callable[[SampleSpec], Path]
) -> Iterator[Seeded]:
    data_dir = tmp_path_factory.mktemp("fuzz") / "vigil"
    app = build_app(Settings(data_dir=data_dir, api_auth_failure_limit=10**6))  # type: ignore[call-arg]
    tokens, token_ids = {}, {}
    for pid, role, extra in (
        ("sam", "supervisor", {}),
        ("alice", "reviewer", {}),
        ("bc-0042", "device", {"device_id": "BC-0042"}),
    ):
        app.access.add_principal(pid, role, display_name=pid, actor="setup", **extra)  # type: ignore[arg-type]
        issued = app.access.issue_token(pid, label="fuzz", actor="setup")
        tokens[pid], token_ids[pid] = issued.token, issued.id
    try:
        with serve_in_thread(app) as url:
            device = httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {tokens['bc-0042']}"}, timeout=120
            )
            with device:
                recordings = {}
                for case_id, seed in (("CASE-A", 51), ("CASE-B", 52)):
                    clip = make_clip(SampleSpec(duration_s=3.0, width=320, height=240, seed=seed))
                    rec = _upload(device, clip.read_bytes(), f"{case_id}.mp4")
                    app.cases.link(
                        case_id, rec, from_s=None, to_s=None, reason="for review", actor="sam"
                    )
                    recordings[case_id] = rec
                app.access.assign("CASE-A", "alice", actor="sam")
                open_upload = device.post(
                    "/api/v1/uploads", json={"device_id": "BC-0042", "size": 4096}
                ).json()["upload_id"]
            export = app.exports.request("CASE-A", requested_by="alice", reason="for the court")
            segments = max(len(app.catalog.segments(r)) for r in recordings.values())
            # alice's token predates her assignment: assignments are read at authentication.
            yield Seeded(
                url,
                {role: tokens[pid] for role, pid in CALLERS.items()},
                {
                    "case_id": ["CASE-A", "CASE-B"],
                    "recording_id": list(recordings.values()),
                    "export_id": [export.id],
                    "upload_id": [open_upload],
                    "index": list(range(segments + 1)),
                },
                {role: token_ids[pid] for role, pid in CALLERS.items()},
            )
    finally:
        app.stop()


@pytest.fixture(scope="module")
def api_schema(seeded: Seeded) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{seeded.url}/openapi.json")


def _steer(case: Case[Any], data: st.DataObject, seeded: Seeded, who: str) -> None:
    """Point about half the examples at what the seeded catalogue holds (see the docstring)."""
    for name in list(case.path_parameters or {}):
        known = seeded.ids.get(name)
        if known and data.draw(st.booleans(), label=f"real {name}"):
            case.path_parameters[name] = data.draw(st.sampled_from(known), label=name)
    path = case.operation.path
    if path.startswith("/api/v1/media/") and data.draw(st.booleans(), label="signed"):
        _sign_media(case, data, seeded, who)
    if case.method == "PUT" and path == "/api/v1/uploads/{upload_id}":
        body = case.body
        if isinstance(body, Binary):  # a str subclass holding the bytes sent
            body = body.data
        elif isinstance(body, str):
            body = body.encode()
        if isinstance(body, bytes) and data.draw(st.booleans(), label="matching hash"):
            case.headers["x-chunk-sha256"] = hashlib.sha256(body).hexdigest()
            case.query = {**(case.query or {}), "offset": 0}
    if (
        who == "device"
        and case.method == "POST"
        and path == "/api/v1/uploads"
        and isinstance(case.body, dict)
        and data.draw(st.booleans(), label="own device")
    ):
        case.body["device_id"] = "BC-0042"


def _sign_media(case: Case[Any], data: st.DataObject, seeded: Seeded, who: str) -> None:
    """Sign the media link in ``case`` as the server would for ``who``, and steer its Range."""
    params = case.path_parameters or {}
    recording = str(params.get("recording_id", ""))
    tail = case.operation.path.removeprefix("/api/v1/media/{recording_id}/")
    claim = LinkClaim(
        recording,
        tail.replace("{index}", str(params.get("index", ""))),
        CALLERS[who],
        seeded.token_ids[who],
        str((case.query or {}).get("case", "")),
        int(time.time()) + 240,
    )
    signature = sign(SECRET.encode(), claim)
    query = {"by": claim.principal, "tok": claim.token_id, "exp": claim.expires, "sig": signature}
    case.query = {**(case.query or {}), **query}
    if "range" not in case.headers:
        return
    kind = data.draw(st.sampled_from(["as drawn", "valid", "valid", "huge"]), label="range")
    if kind == "valid":
        first = data.draw(st.integers(0, 200_000), label="first")
        last = data.draw(st.one_of(st.none(), st.integers(first, first + 100_000)))
        case.headers["range"] = f"bytes={first}-{'' if last is None else last}"
    elif kind == "huge":
        case.headers["range"] = "bytes=" + "9" * data.draw(st.integers(20, 5000)) + "-"


def _fuzz(
    operation: Operation, mode: GenerationMode, who: str, seeded: Seeded, seen: set[int]
) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def fuzz(case: Case[Any], data: st.DataObject) -> None:
        _steer(case, data, seeded, who)
        case.headers["Authorization"] = f"Bearer {seeded.tokens[who]}"
        seen.add(case.call_and_validate(checks=CHECKS, timeout=120).status_code)

    fuzz()


@pytest.mark.parametrize("who", list(CALLERS))
def test_every_operation_answers_as_documented_and_never_with_a_5xx(
    who: str, seeded: Seeded, api_schema: BaseSchema
) -> None:
    """Each operation, positive and negative examples; every failure is collected, so one run
    lists them all (schemathesis' own pytest plugin does not run on this pytest)."""
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    for result in api_schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"the schema: {result.err()}")
            continue
        operation = result.ok()
        seen = statuses.setdefault(operation.label, set())
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, who, seeded, seen)
            except Unsatisfiable:
                if mode is GenerationMode.NEGATIVE and _nothing_to_negate(operation):
                    continue  # only the optional Authorization header: no invalid request
                failures.append(f"{operation.label} ({mode.value}, as {who}): unsatisfiable")
            except (Exception, BaseExceptionGroup) as exc:  # FailureGroup is a BaseExceptionGroup
                failures.append(f"{operation.label} ({mode.value}, as {who}):\n{exc}")
    for label, seen in statuses.items():
        print(f"{who:<10} {label:<55} {sorted(seen)}")
    assert len(statuses) >= 20
    reached = {(label, status) for label, seen in statuses.items() for status in seen}
    assert REACHED[who] <= reached, f"never answered: {sorted(REACHED[who] - reached)}"
    assert not failures, f"{len(failures)} failing:\n\n" + "\n\n".join(failures)


def _nothing_to_negate(operation: Operation) -> bool:
    raw = operation.definition.raw
    parameters = raw.get("parameters", [])
    return "requestBody" not in raw and all(p["name"] == "authorization" for p in parameters)
