"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine); these tests keep
them consistent with the code: every setting they pass is one the code reads."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from workers.app import STAGE_INPUTS
from workers.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SETTING_NAMES = {f"VIGIL_{name.upper()}" for name in Settings.model_fields}


def compose() -> dict[str, object]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_every_vigil_variable_in_compose_is_a_setting() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    for name, service in services.items():
        env = service.get("environment", {})
        values = {}
        for key, value in env.items():
            if key.startswith("VIGIL_"):
                assert key in SETTING_NAMES, f"{name}: {key} is not read by workers/settings.py"
                values[key.removeprefix("VIGIL_").lower()] = value
        Settings.model_validate(values)  # the service's settings together, as it starts


def vigil_services() -> list[tuple[str, dict[str, object], list[str]]]:
    """Each service that runs Vigil in production: its name, environment and secrets."""
    found = []
    for name, service in services().items():
        env = service.get("environment", {})
        assert isinstance(env, dict)
        if env.get("VIGIL_ENVIRONMENT") != "production":
            continue
        secrets = service.get("secrets", [])
        assert isinstance(secrets, list), name
        found.append((name, env, secrets))
    return found


def test_only_the_ledger_service_holds_the_signing_key() -> None:
    """Workers, the API and the monitor append custody events and check heads with the public
    key; the ledger service alone can sign (issue 13: the key apart from the data)."""
    holders = []
    for name, env, secrets in vigil_services():
        assert env["VIGIL_LEDGER_PUBLIC_KEY_FILE"] == "/run/secrets/ledger_public_key", name
        assert "ledger_public_key" in secrets, name
        if "VIGIL_LEDGER_KEY_FILE" in env or "ledger_key" in secrets:
            holders.append(name)
            assert env["VIGIL_LEDGER_KEY_FILE"] == "/run/secrets/ledger_key", name
            assert "ledger_key" in secrets, name
    assert holders == ["ledger"]
    assert services()["ledger"]["command"] == ["ledger", "run"]


def test_only_the_ledger_service_holds_the_c2pa_key_and_builds_approved_exports() -> None:
    """Issue 19: the agency's C2PA key lives with the ledger key; the API only approves."""
    holders = []
    for name, env, secrets in vigil_services():
        assert env["VIGIL_EXPORTS_BUILT_BY"] == "ledger", name
        if {"VIGIL_C2PA_SIGN_CERT", "VIGIL_C2PA_SIGN_KEY"} & set(env) or "c2pa_sign_key" in secrets:
            holders.append(name)
            assert env["VIGIL_C2PA_SIGN_KEY"] == "/run/secrets/c2pa_sign_key", name
            assert {"c2pa_sign_cert", "c2pa_sign_key"} <= set(secrets), name
    assert holders == ["ledger"]


def services() -> dict[str, dict[str, object]]:
    found = compose()["services"]
    assert isinstance(found, dict)
    return found


def vigil_env(service: str) -> dict[str, str]:
    env = services()[service]["environment"]
    assert isinstance(env, dict)
    return {str(k): str(v) for k, v in env.items()}


def test_every_stage_has_a_worker_service_on_the_vigil_image() -> None:
    for stage in STAGE_INPUTS:
        service = services()[stage]
        assert service["command"] == ["worker", stage]
        assert service["build"] == "."
        assert vigil_env(stage)["VIGIL_BUS"] == "kafka"
        assert vigil_env(stage)["VIGIL_STORE"] == "s3"


def test_worker_settings_point_at_the_compose_services_and_their_ports() -> None:
    env = vigil_env("segment")
    host, _, port = env["VIGIL_KAFKA_BOOTSTRAP"].partition(":")
    assert host == "kafka"
    assert f"PLAINTEXT://kafka:{port}" in str(services()["kafka"]["environment"])
    host, _, port = env["VIGIL_S3_ENDPOINT"].partition(":")
    assert host == "minio"
    assert port in services()["minio"]["expose"]  # type: ignore[operator]
    assert "@postgres:5432/" in env["VIGIL_CATALOG_URL"]
    postgres_env = services()["postgres"]["environment"]
    assert isinstance(postgres_env, dict)
    assert env["VIGIL_CATALOG_URL"].startswith(
        f"postgresql+psycopg://{postgres_env['POSTGRES_USER']}:"
    )
    data_dir = env["VIGIL_DATA_DIR"]
    assert any(str(v).endswith(":" + data_dir) for v in services()["segment"]["volumes"])  # type: ignore[attr-defined]
    assert env["VIGIL_ENVIRONMENT"] == "production"


def test_the_prometheus_config_it_mounts_exists() -> None:
    for volume in services()["prometheus"]["volumes"]:  # type: ignore[attr-defined]
        source = str(volume).split(":")[0]
        assert (ROOT / source).is_file(), source


def test_the_dockerfile_copies_every_package() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for package in {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}:
        assert f"COPY {package} {package}" in text, package
    assert "COPY verifier verifier" in text
    assert 'ENTRYPOINT ["vigil"]' in text


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client")
def test_docker_compose_config_validates_where_the_plugin_exists() -> None:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("docker compose plugin not installed")
    result = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_only_the_api_and_grafana_are_published_and_on_localhost_by_default() -> None:
    published = {name: s["ports"] for name, s in services().items() if s.get("ports")}
    assert set(published) == {"api", "grafana"}
    for ports in published.values():
        assert isinstance(ports, list)
        assert all(str(p).startswith("${VIGIL_PUBLISH_HOST:-127.0.0.1}:") for p in ports), ports


def test_no_password_or_secret_has_a_default() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for name in ("POSTGRES_PASSWORD", "VIGIL_S3_SECRET_KEY", "VIGIL_S3_ROOT_PASSWORD",
                 "VIGIL_API_SECRET", "GRAFANA_ADMIN_PASSWORD"):  # fmt: skip
        assert f"${{{name}:?" in text, name
        assert f"${{{name}:-" not in text, name


def test_workers_use_their_own_least_privilege_s3_user() -> None:
    assert vigil_env("segment")["VIGIL_S3_ACCESS_KEY"] == "vigil-worker"
    minio_env = services()["minio"]["environment"]
    assert isinstance(minio_env, dict) and minio_env["MINIO_ROOT_USER"] != "vigil-worker"
    policy = json.loads((ROOT / "deploy" / "minio" / "vigil-worker-policy.json").read_text())
    resources = {r for st in policy["Statement"] for r in st["Resource"]}
    assert resources <= {
        "arn:aws:s3:::vigil-originals", "arn:aws:s3:::vigil-derived",
        "arn:aws:s3:::vigil-originals/*", "arn:aws:s3:::vigil-derived/*",
    }  # fmt: skip
    actions = {a for st in policy["Statement"] for a in st["Action"]}
    assert not any(a.startswith(("s3:PutBucket", "s3:DeleteBucket", "admin:")) for a in actions)
    assert "s3:BypassGovernanceRetention" not in actions


def test_the_image_runs_as_a_user_and_healthchecks_use_what_the_images_ship() -> None:
    text = (ROOT / "Dockerfile").read_text()
    user = [line for line in text.splitlines() if line.startswith("USER ")]
    assert user and user[-1] != "USER root"
    minio_check = services()["minio"]["healthcheck"]
    assert isinstance(minio_check, dict) and "curl" not in minio_check["test"]
