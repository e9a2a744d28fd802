"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine); these tests keep
them consistent with the code: every setting they pass is one the code reads."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

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
        for key, value in env.items():
            if key.startswith("VIGIL_"):
                assert key in SETTING_NAMES, f"{name}: {key} is not read by workers/settings.py"
                Settings.model_validate({key.removeprefix("VIGIL_").lower(): value})


def test_compose_builds_the_dockerfile_and_keeps_data_on_a_volume() -> None:
    doc = compose()
    services = doc["services"]
    assert isinstance(services, dict)
    vigil = services["vigil"]
    assert vigil["build"] == "."
    data_dir = vigil["environment"]["VIGIL_DATA_DIR"]
    assert any(v.endswith(":" + data_dir) for v in vigil["volumes"])
    volumes = doc["volumes"]
    assert isinstance(volumes, dict)
    assert "vigil-data" in volumes


def test_the_dockerfile_copies_every_package() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for package in ("ingest", "transcode", "integrity", "catalog", "workers"):
        assert f"COPY {package} {package}" in text
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
