"""The pieces the API's security rests on, each on its own: no secret with a default in code, the
generated development link secret, the case-window rule, the failed-authentication guard,
bounded Range headers, links bound to what they open, and no server path in a message.
(Through a real server: tests/integration/test_api_security.py; docs/security.md.)"""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest
from fastapi import HTTPException
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from catalog.access import Caller
from catalog.repository import Event
from workers.settings import Settings

# -- 1. secrets: none in code; the link secret configured, or generated per deployment -----------


def test_no_secret_has_a_default_in_code(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)  # type: ignore[call-arg]
    assert settings.api_secret.get_secret_value() == ""
    assert settings.s3_secret_key.get_secret_value() == ""
    secrets = [n for n in Settings.model_fields if any(w in n for w in ("secret", "token"))]
    assert {"api_secret", "s3_secret_key", "metrics_token"} <= set(secrets)
    for name in secrets:  # (the S3 access key is a name, like a user's, not a secret)
        default = Settings.model_fields[name].default
        assert default.get_secret_value() == "", f"{name} has a secret default"


def test_the_s3_store_needs_its_secret_key_configured(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="VIGIL_S3_SECRET_KEY"):
        Settings(data_dir=tmp_path, store="s3")  # type: ignore[call-arg]
    configured = Settings(data_dir=tmp_path, store="s3", s3_secret_key="from-the-vault")  # type: ignore[call-arg,arg-type]
    assert configured.s3_secret_key.get_secret_value() == "from-the-vault"


def test_a_published_or_short_link_secret_is_refused(tmp_path: Path) -> None:
    for weak in ("vigil-dev-secret", "short"):
        with pytest.raises(ValidationError, match="VIGIL_API_SECRET"):
            Settings(data_dir=tmp_path, api_secret=weak)  # type: ignore[call-arg,arg-type]


def test_development_generates_one_link_secret_per_deployment_kept_0600_never_said(
    tmp_path: Path,
) -> None:
    from workers.secrets import link_secret

    settings = Settings(data_dir=tmp_path / "data")  # type: ignore[call-arg]
    found: list[object] = []

    def start() -> None:  # processes starting together on a fresh data folder
        found.append(link_secret(settings))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    values = {s.value for s in found}  # type: ignore[attr-defined]
    assert len(values) == 1 and len(next(iter(values))) == 64
    path = settings.dev_link_secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    notices = [s.notice for s in found]  # type: ignore[attr-defined]
    assert sum("generated a DEVELOPMENT" in n for n in notices) == 1
    secret = next(iter(values)).decode()
    assert all(secret not in n and "VIGIL_API_SECRET" in n for n in notices)
    assert secret not in repr(found[0])
    assert link_secret(settings).value.decode() == secret  # the next start reads it


def test_production_never_signs_links_with_a_generated_secret(tmp_path: Path) -> None:
    from integrity.keys import create_signing_key
    from workers.secrets import SecretError, link_secret

    key = tmp_path / "ledger.pem"
    create_signing_key(key, "x")
    production = Settings(data_dir=tmp_path, environment="production", ledger_key_file=key)  # type: ignore[call-arg]
    with pytest.raises(SecretError, match="VIGIL_API_SECRET"):
        link_secret(production)
    assert not production.dev_link_secret.exists()
    configured = Settings(
        data_dir=tmp_path, environment="production", ledger_key_file=key, api_secret="x" * 32
    )  # type: ignore[call-arg,arg-type]
    assert link_secret(configured).value == b"x" * 32
    assert link_secret(configured).notice is None


def test_a_generated_secret_others_may_read_is_refused(tmp_path: Path) -> None:
    from workers.secrets import SecretError, link_secret

    settings = Settings(data_dir=tmp_path)  # type: ignore[call-arg]
    link_secret(settings)
    settings.dev_link_secret.chmod(0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        link_secret(settings)


# -- 2. media links bound to what they open ------------------------------------------------------


def test_a_link_signature_covers_path_principal_token_case_and_expiry() -> None:
    from interfaces.api.links import LinkClaim, link_url, sign

    claim = LinkClaim("rec-1", "original", "alice", 7, "CASE-A", 1_900_000_000)
    signature = sign(b"k" * 32, claim)
    for changed in (
        LinkClaim("rec-1", "segments/0", "alice", 7, "CASE-A", 1_900_000_000),
        LinkClaim("rec-2", "original", "alice", 7, "CASE-A", 1_900_000_000),
        LinkClaim("rec-1", "original", "bob", 7, "CASE-A", 1_900_000_000),
        LinkClaim("rec-1", "original", "alice", 8, "CASE-A", 1_900_000_000),
        LinkClaim("rec-1", "original", "alice", 7, "CASE-B", 1_900_000_000),
        LinkClaim("rec-1", "original", "alice", 7, "CASE-A", 1_900_000_001),
    ):
        assert sign(b"k" * 32, changed) != signature
    url = link_url(b"k" * 32, claim)
    assert url.startswith("/api/v1/media/rec-1/original?by=alice&tok=7&")


# -- 4. limits: a Range header is bounded before it is parsed ------------------------------------


def test_a_5000_digit_range_is_416_not_a_crash() -> None:
    from interfaces.api.links import _range

    for header in ("bytes=" + "9" * 5000 + "-", "bytes=0-" + "1" * 5000, "bytes=" + "1" * 25 + "-"):
        with pytest.raises(HTTPException) as refused:
            _range(header, 1000)
        assert refused.value.status_code == 416
        assert len(str(refused.value.detail)) < 200
    assert _range("bytes=10-19", 1000) == (10, 10)


# -- 5. case windows -----------------------------------------------------------------------------


def _caller(role: str, cases: tuple[str, ...] = (), officer: str | None = None) -> Caller:
    return Caller(
        id=role, role=role, display_name=role, officer_id=officer,  # type: ignore[arg-type]
        assigned_cases=frozenset(cases),
    )  # fmt: skip


def test_a_case_window_is_all_a_reviewer_sees_through_it() -> None:
    from catalog.scopes import WHOLE, LinkedWindow, Scope, recording_scope

    links = [LinkedWindow("CASE-W", 2.5, 3.5), LinkedWindow("CASE-ALL", None, None)]

    def scope(caller: Caller, via: str | None = None) -> Scope | None:
        return recording_scope(
            caller, "recording.play", officer_id="031245", links=links, duration_s=6.0,
            via_case=via,
        )  # fmt: skip

    windowed = scope(_caller("reviewer", ("CASE-W",)))
    assert windowed == Scope(False, ((2.5, 3.5),))
    assert windowed.covers(3.0, 4.0) and windowed.covers(2.0, 3.0)
    assert not windowed.covers(3.5, 4.5) and not windowed.covers(0.0, 2.5)
    assert scope(_caller("reviewer", ("CASE-ALL",))) == WHOLE
    both = _caller("reviewer", ("CASE-W", "CASE-ALL"))
    assert scope(both) == WHOLE and scope(both, "CASE-W") == Scope(False, ((2.5, 3.5),))
    assert scope(_caller("reviewer", ("CASE-X",))) is None
    assert scope(_caller("reviewer", ("CASE-W",)), "CASE-ALL") is None
    assert scope(_caller("supervisor"), "CASE-W") == WHOLE
    assert scope(_caller("officer", officer="031245")) == WHOLE
    assert scope(_caller("officer", officer="999")) is None
    assert scope(_caller("auditor")) is None and scope(_caller("device")) is None
    # A window from the first frame to the last is the whole recording.
    whole_window = [LinkedWindow("CASE-W", 0.0, 6.0)]
    assert (
        recording_scope(
            _caller("reviewer", ("CASE-W",)),
            "recording.play",
            officer_id=None,
            links=whole_window,
            duration_s=6.0,
        )
        == WHOLE
    )


# -- 3. failed authentication: counted, summarised, throttled ------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _guard(limit: int = 20) -> tuple[object, list[Event], Clock, CollectorRegistry]:
    from interfaces.api.guard import AuthGuard

    events: list[Event] = []
    clock = Clock()
    registry = CollectorRegistry()
    guard = AuthGuard(
        record=events.append, registry=registry, limit=limit, window_s=600, clock=clock
    )
    return guard, events, clock, registry


def test_failed_authentication_is_one_summary_per_address_and_window() -> None:
    guard, events, clock, registry = _guard(limit=1000)
    for _ in range(600):
        guard.failed("203.0.113.9", "unknown token", where="GET /api/v1/" + "x" * 20_000)  # type: ignore[attr-defined]
        clock.t += 0.5
    assert events == []  # not one leaf per request
    clock.t += 600
    guard.failed("198.51.100.1", "no bearer token")  # type: ignore[attr-defined]
    assert len(events) == 1
    event = events[0]
    assert event.action == "access.denied" and event.actor == "unknown"
    assert event.reason == "600 failed attempts from 203.0.113.9 within 10 min"
    assert event.detail is not None
    detail = json.loads(event.detail.model_dump_json())
    assert detail["attempts"] == 600 and len(json.dumps(detail)) < 1000  # no 20 KB path
    assert (
        registry.get_sample_value("vigil_api_auth_failures_total", {"reason": "unknown token"})
        == 600
    )
    assert guard.flush(everything=True) == 1  # type: ignore[attr-defined]
    assert events[1].reason == "1 failed attempts from 198.51.100.1 within 10 min"


def test_a_principal_is_named_only_when_their_token_was_found() -> None:
    guard, events, _clock, _registry = _guard()
    guard.failed("192.0.2.1", "revoked token", principal="bob")  # type: ignore[attr-defined]
    guard.failed("192.0.2.2", "revoked token", principal="bob")  # type: ignore[attr-defined]
    guard.failed("192.0.2.2", "unknown token")  # type: ignore[attr-defined]
    guard.flush(everything=True)  # type: ignore[attr-defined]
    actors = {e.reason.split()[-4]: e.actor for e in events if e.reason}
    assert actors == {"192.0.2.1": "bob", "192.0.2.2": "unknown"}


def test_repeated_failures_from_one_address_are_throttled_with_retry_after() -> None:
    guard, _events, clock, registry = _guard(limit=20)
    for _ in range(19):
        guard.failed("192.0.2.7", "unknown token")  # type: ignore[attr-defined]
        clock.t += 1
    guard.check("192.0.2.7")  # type: ignore[attr-defined]
    guard.failed("192.0.2.7", "unknown token")  # type: ignore[attr-defined]
    with pytest.raises(HTTPException) as throttled:
        guard.check("192.0.2.7")  # type: ignore[attr-defined]
    assert throttled.value.status_code == 429
    assert throttled.value.headers is not None
    assert 0 < int(throttled.value.headers["Retry-After"]) <= 60
    guard.check("192.0.2.8")  # type: ignore[attr-defined]  # another address is not held up
    clock.t += 60
    guard.check("192.0.2.7")  # type: ignore[attr-defined]
    assert registry.get_sample_value("vigil_api_throttled_total") == 1


def test_the_guard_tracks_a_bounded_number_of_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    import interfaces.api.guard as guard_module

    monkeypatch.setattr(guard_module, "MAX_SOURCES", 50)
    guard, events, _clock, _registry = _guard()
    for n in range(500):
        guard.failed(f"10.0.{n // 256}.{n % 256}", "unknown token")  # type: ignore[attr-defined]
    assert len(guard._recent) <= 50 and len(guard._windows) <= 51  # type: ignore[attr-defined]
    guard.flush(everything=True)  # type: ignore[attr-defined]
    assert len(events) <= 51
    assert (
        sum(json.loads(e.detail.model_dump_json())["attempts"] for e in events if e.detail) == 500
    )


# -- 6. no server path in a message --------------------------------------------------------------


def test_server_paths_are_redacted_from_messages(tmp_path: Path) -> None:
    from interfaces.api.errors import redact_paths

    staged = tmp_path / "vigil" / "staging" / "uploads" / "3fa2.part"
    text = (
        f"notes.mp4: not a video or audio recording ({staged}: Invalid data found when processing"
        " input); nothing was stored"
    )
    redacted = redact_paths(text, tmp_path / "vigil")
    assert redacted == (
        "notes.mp4: not a video or audio recording (Invalid data found when processing input);"
        " nothing was stored"
    )
    assert redact_paths(f"cannot read {staged}", tmp_path / "vigil") == "cannot read a server file"
