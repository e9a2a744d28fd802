"""``vigil services up`` and ``down`` for real, as a developer runs them: Kafka, SeaweedFS and
PostgreSQL come up in a folder of their own, each answers at the address the printed exports
give (a topic made and listed, an object locked in an Object Lock bucket, the catalogue's
database reached), ``vigil`` itself runs on those exports, a second ``up`` says it is up, and
``down`` leaves no process and no folder."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.retention import Retention
from sqlalchemy.engine import make_url

from interfaces.devservices.base import pid_alive
from interfaces.devservices.kafka import create_topics
from interfaces.devservices.stack import ENV_FILE, STATE_FILE, StackState

pytestmark = [pytest.mark.services, pytest.mark.slow]


def vigil(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interfaces.cli", *args],
        capture_output=True, text=True, check=False, timeout=900, env=env,
    )  # fmt: skip


def exports(text: str) -> dict[str, str]:
    """``export NAME=value`` lines, read back by a real shell."""
    shown = subprocess.run(
        ["sh", "-c", f"{text}\nenv -0"],
        capture_output=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    ).stdout.decode()
    return dict(item.split("=", 1) for item in shown.split("\0") if item.startswith("VIGIL_"))


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """The stack's folder; whatever a failed test leaves up is stopped."""
    where = tmp_path / "stack"
    yield where
    if where.exists():
        vigil("services", "down", "--dir", str(where))


def _kafka_answers(bootstrap: str) -> None:
    from kafka import KafkaAdminClient

    topic = f"vigil-test-services-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, [topic])
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="vigil-test-services")
    try:
        assert topic in admin.list_topics()
    finally:
        admin.close()


def _s3_locks_objects(env: dict[str, str]) -> None:
    s3 = Minio(
        env["VIGIL_S3_ENDPOINT"], env["VIGIL_S3_ACCESS_KEY"], env["VIGIL_S3_SECRET_KEY"],
        secure=False,
    )  # fmt: skip
    bucket = f"vigil-test-{uuid.uuid4().hex[:8]}"
    s3.make_bucket(bucket, object_lock=True)
    written = s3.put_object(
        bucket, "clip.mp4", io.BytesIO(b"evidence"), 8,
        retention=Retention(COMPLIANCE, datetime.now(UTC) + timedelta(days=1)),
    )  # fmt: skip
    with pytest.raises(S3Error) as refused:
        s3.remove_object(bucket, "clip.mp4", version_id=written.version_id)
    assert refused.value.code == "AccessDenied"
    wrong = Minio(env["VIGIL_S3_ENDPOINT"], "vigil", "not-the-secret", secure=False)
    with pytest.raises(S3Error):
        wrong.list_buckets()


def _postgres_has_the_database(catalog_url: str) -> None:
    url = make_url(catalog_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database, connect_timeout=10
    ) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
    assert row == ("vigil",)


def test_services_up_answer_and_down_leaves_nothing(folder: Path) -> None:
    started = vigil("services", "up", "--dir", str(folder))
    assert started.returncode == 0, started.stderr
    env = exports(started.stdout)
    assert env["VIGIL_BUS"] == "kafka" and env["VIGIL_STORE"] == "s3"
    assert env["VIGIL_DATA_DIR"] == str(folder / "data")
    assert exports((folder / ENV_FILE).read_text()) == env
    assert (folder / ENV_FILE).stat().st_mode & 0o777 == 0o600
    state = StackState.model_validate_json((folder / STATE_FILE).read_text())
    assert [r.name for r in state.services] == ["postgres", "seaweedfs", "kafka"]
    processes = [p for r in state.services for p in (r.leader, r.main)]
    assert all(p.alive for p in processes)

    _kafka_answers(env["VIGIL_KAFKA_BOOTSTRAP"])
    _s3_locks_objects(env)
    _postgres_has_the_database(env["VIGIL_CATALOG_URL"])
    # vigil itself on the exports: migrates the catalogue, makes its buckets and topics
    listed = vigil("recordings", env={**os.environ, **env})
    assert listed.returncode == 0, listed.stderr

    again = vigil("services", "up", "--dir", str(folder))
    assert again.returncode == 0, again.stderr
    assert exports(again.stdout) == env
    assert "already up" in again.stderr

    stopped = vigil("services", "down", "--dir", str(folder))
    assert stopped.returncode == 0, stopped.stderr
    assert not folder.exists()
    assert not any(pid_alive(p.pid, p.started) for p in processes)
    outside = [Path(r.outside) for r in state.services if r.outside is not None]
    assert not any(p.exists() for p in outside)
    assert "nothing is up" in vigil("services", "down", "--dir", str(folder)).stderr
