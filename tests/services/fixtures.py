"""pytest fixtures for the real services (``interfaces.devservices``, as ``vigil services up``
starts them): each starts once per test session, on first use, under one temp folder, and
stops at the end of the session.

Load them with ``pytest_plugins = ["tests.services.fixtures"]`` (a test module, or the root
conftest). Point them at services run elsewhere instead:

    VIGIL_TEST_KAFKA_BOOTSTRAP=host:port   no broker is started; restart()/kill() tests skip
    VIGIL_TEST_DATABASE_URL=postgresql+psycopg://user@host:port/db
                                           databases are created on that server (needs CREATEDB)

Function-scoped helpers keep tests apart on a shared service: ``database_url`` (a fresh
database, dropped afterwards), ``kafka_topics_prefix`` and ``kafka_group_id`` (uuid-named).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from interfaces.devservices.kafka import KafkaService
from interfaces.devservices.postgres import ExternalPostgres, PostgresService
from interfaces.devservices.seaweed import SeaweedService

KAFKA_ENV = "VIGIL_TEST_KAFKA_BOOTSTRAP"
DATABASE_ENV = "VIGIL_TEST_DATABASE_URL"
S3_ENV = "VIGIL_TEST_S3_ENDPOINT"


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's folder for service data and logs (one sub-folder per service)."""
    return tmp_path_factory.mktemp("services")


def unique_name(kind: str) -> str:
    """``vigil-test-<kind>-<12 hex>``: a topic, group or bucket name no other test uses."""
    return f"vigil-test-{kind}-{uuid.uuid4().hex[:12]}"


# -- Kafka --------------------------------------------------------------------------------------


class KafkaBroker(Protocol):
    bootstrap: str

    def restart(self, down_s: float = 0) -> None: ...
    def stop(self) -> None: ...
    def kill(self) -> None: ...


class ExternalKafka:
    """A broker run elsewhere: only ``bootstrap``; what would stop it skips the test."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def _skip(self) -> None:
        pytest.skip(f"{KAFKA_ENV} names an external broker: it is not ours to stop")

    def restart(self, down_s: float = 0) -> None:
        self._skip()

    def stop(self) -> None:
        self._skip()

    def kill(self) -> None:
        self._skip()


@pytest.fixture(scope="session")
def kafka_service(services_dir: Path) -> Iterator[KafkaBroker]:
    """A running broker for the session: ``.bootstrap`` is "host:port"."""
    if external := os.environ.get(KAFKA_ENV):
        yield ExternalKafka(external)
        return
    kafka = KafkaService(services_dir / "kafka")
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
def kafka_topics_prefix() -> str:
    """A uuid-named prefix for this test's topics ("vigil-test-t-<hex>-"); the broker does not
    auto-create topics: create them with ``interfaces.devservices.kafka.create_topics``."""
    return unique_name("t") + "-"


@pytest.fixture
def kafka_group_id() -> str:
    return unique_name("group")


# -- PostgreSQL ---------------------------------------------------------------------------------


class DatabaseServer(Protocol):
    def url(self, database: str = "postgres") -> str: ...
    def create_database(self) -> str: ...
    def drop_database(self, database_url: str) -> None: ...


@pytest.fixture(scope="session")
def postgres_service(services_dir: Path) -> Iterator[DatabaseServer]:
    """A running PostgreSQL server for the session (or the one $VIGIL_TEST_DATABASE_URL names)."""
    if external := os.environ.get(DATABASE_ENV):
        yield ExternalPostgres(external)
        return
    postgres = PostgresService(services_dir / "postgres")
    postgres.start()
    try:
        yield postgres
    finally:
        postgres.destroy()


@pytest.fixture
def database_url(postgres_service: DatabaseServer) -> Iterator[str]:
    """A fresh, empty database for this test (not migrated); dropped after it."""
    url = postgres_service.create_database()
    yield url
    with contextlib.suppress(Exception):  # a test that stopped the server leaves it be
        postgres_service.drop_database(url)


# -- S3 (SeaweedFS) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExternalS3:
    """An S3 endpoint named by $VIGIL_TEST_S3_ENDPOINT (keys in ..._ACCESS_KEY/_SECRET_KEY)."""

    endpoint: str
    access_key: str
    secret_key: str

    def stop(self) -> None:
        pytest.skip("an external store is not ours to stop")

    def start(self, timeout_s: float = 60) -> None:
        pytest.skip("an external store is not ours to start")


@pytest.fixture(scope="session")
def seaweed_service(services_dir: Path) -> Iterator[SeaweedService | ExternalS3]:
    """A running S3 store with Object Lock for the session (SeaweedFS, or $VIGIL_TEST_S3_*)."""
    if endpoint := os.environ.get(S3_ENV):
        yield ExternalS3(
            endpoint,
            os.environ.get(S3_ENV.replace("ENDPOINT", "ACCESS_KEY"), ""),
            os.environ.get(S3_ENV.replace("ENDPOINT", "SECRET_KEY"), ""),
        )
        return
    seaweed = SeaweedService(services_dir / "seaweed")
    seaweed.start()
    try:
        yield seaweed
    finally:
        # The session's data is thrown away: no graceful stop to wait for at the end of the
        # run (~2 s, and now and then the 10 s grace of a weed that hangs stopping its filer).
        seaweed.kill()
