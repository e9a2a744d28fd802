"""A real single-node Apache Kafka broker (KRaft: broker and controller in one JVM) on loopback.

The broker's jars come from Maven Central: ``kafka-pom.xml`` beside this file names
``org.apache.kafka:kafka_2.13`` plus an slf4j -> log4j2 bridge, and ``mvn
dependency:copy-dependencies`` copies them, once per version, into
``<cache_root()>/kafka/<version>/libs`` (``~/.cache/vigil/kafka/...``). That needs ``mvn`` and
a Java 17+ ``java`` (``./run test`` apt-installs both on Debian).

    kafka = KafkaService(tmp / "kafka")
    kafka.start()                       # resolves jars if needed, formats once, starts, waits
    kafka.bootstrap                     # "127.0.0.1:PORT"
    kafka.restart(down_s=2)             # same ports, same data
    kafka.stop()
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from interfaces.devservices.base import (
    HOST,
    ManagedProcess,
    ServiceError,
    cache_root,
    file_lock,
    free_port,
    port_open,
    wait_until,
)

POM = Path(__file__).with_name("kafka-pom.xml")
DEFAULT_VERSION = "4.4.0"

# Console (= the ManagedProcess log file) only; WARN and up, plus the broker's own
# "started"/"shut down" lines so the log shows the lifecycle.
LOG4J2_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <Console name="out" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d{HH:mm:ss.SSS}] %-5p %c{1}: %m%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Logger name="kafka.server.KafkaRaftServer" level="INFO"/>
    <Logger name="kafka.server.BrokerServer" level="INFO"/>
    <Root level="WARN"><AppenderRef ref="out"/></Root>
  </Loggers>
</Configuration>
"""


def java_binary() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise ServiceError(
            "no `java` (Java 17+) on PATH: apt-get install default-jre-headless (Debian)"
        )
    return found


def kafka_cache() -> Path:
    """Where the jars of each Kafka version are kept: ``<cache_root()>/kafka``."""
    return cache_root() / "kafka"


def resolve_libs(version: str = DEFAULT_VERSION, cache: Path | None = None) -> Path:
    """The folder of Kafka ``version``'s runtime jars, downloading them with Maven if missing."""
    cache = kafka_cache() if cache is None else cache
    libs = cache / version / "libs"
    done = libs / ".complete"
    if done.exists():
        return libs
    with file_lock(cache / f"{version}.lock"):
        if done.exists():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ServiceError(
                "no `mvn` on PATH to fetch the Kafka jars: apt-get install maven (Debian)"
            )
        staging = cache / version / f"libs.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(POM),
            f"-Dkafka.version={version}", "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
        ]  # fmt: skip
        started = time.monotonic()
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
        if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            out = (result.stdout + result.stderr)[-4000:]
            raise ServiceError(f"resolving Kafka {version} with Maven failed:\n{out}")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        done.write_text(f"resolved in {time.monotonic() - started:.1f} s\n")
    return libs


def random_cluster_id() -> str:
    """A cluster ID as Kafka writes them: a random UUID, URL-safe base64 without padding."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # the command line would read it as an option
            return text


class KafkaService:
    """One KRaft broker+controller JVM on free loopback ports, data under ``work``."""

    def __init__(
        self, work: Path, version: str = DEFAULT_VERSION, cache: Path | None = None
    ) -> None:
        self.work = work
        self.version = version
        self.cache = kafka_cache() if cache is None else cache
        self.port = free_port()
        self.controller_port = free_port()
        while self.controller_port == self.port:
            self.controller_port = free_port()
        self.bootstrap = f"{HOST}:{self.port}"
        self.data = work / "data"
        self.config = work / "server.properties"
        self.log = work / "kafka.log"
        self._libs = self.cache / version / "libs"
        self._process: ManagedProcess | None = None
        # Seconds the last start took (jar resolution excluded) and the first resolve, if any.
        self.last_start_s: float | None = None
        self.resolve_s: float | None = None

    # -- set-up -------------------------------------------------------------------------------

    def _write_config(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": "0",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # After kill(), the controller waits out the dead incarnation's session before the
            # restarted broker is caught up: 4 s instead of the default 9 s.
            "broker.session.timeout.ms": "4000",
            "broker.heartbeat.interval.ms": "500",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "log.retention.check.interval.ms": "300000",
        }
        self.config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.work / "log4j2.xml").write_text(LOG4J2_XML)

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            java_binary(), "-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.work / 'log4j2.xml'}",
            "-cp", f"{self._libs}/*", main, *args,
        ]  # fmt: skip

    def _format(self) -> None:
        if (self.data / "meta.properties").exists():
            return
        cmd = self._java("kafka.tools.StorageTool", "format", "--config", str(self.config),
                         "--cluster-id", random_cluster_id())  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            out = (result.stdout + result.stderr)[-4000:]
            raise ServiceError(f"formatting Kafka's storage failed:\n{out}")

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout_s: float = 90) -> None:
        if self._process is not None and self._process.running:
            return
        began = time.monotonic()
        fresh = not (self._libs / ".complete").exists()
        self._libs = resolve_libs(self.version, self.cache)
        if fresh:
            self.resolve_s = time.monotonic() - began
        self._write_config()
        began = time.monotonic()
        self._format()
        self._process = ManagedProcess(
            "kafka", self._java("kafka.Kafka", str(self.config)), self.log, cwd=self.work
        )
        self._process.start()
        process = self._process
        try:
            wait_until(
                self._ready, timeout_s, f"Kafka {self.version} at {self.bootstrap}", self.log,
                alive=lambda: process.running,
            )  # fmt: skip
        except BaseException:
            process.stop(grace_s=10)
            raise
        self.last_start_s = time.monotonic() - began

    def _ready(self) -> bool:
        from kafka import KafkaAdminClient

        if not port_open(self.port):
            return False
        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            client_id="vigil-test-ready",
            request_timeout_ms=5000,
            bootstrap_timeout_ms=5000,
        )
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def pid(self) -> int | None:
        """The broker JVM's PID (the leader of its own process group)."""
        return None if self._process is None else self._process.pid

    def stop(self) -> None:
        """Clean shutdown (SIGTERM, then SIGKILL after a grace period); the data is kept."""
        if self._process is not None:
            self._process.stop(grace_s=30)

    def kill(self) -> None:
        """SIGKILL, as a crash would; the data is kept (what reached the page cache)."""
        if self._process is not None:
            self._process.kill()

    def restart(self, down_s: float = 0) -> None:
        """Stop, stay down ``down_s`` seconds, start again on the same ports and data."""
        self.stop()
        if down_s > 0:
            time.sleep(down_s)
        self.start()


def create_topics(bootstrap: str, names: Sequence[str], partitions: int = 1) -> None:
    """Create topics (the test broker does not auto-create them) and wait until they have
    leaders, so a producer's first send does not race the metadata."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="vigil-test-admin")
    try:
        admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
        )

        def ready() -> bool:
            described = admin.describe_topics(list(names))
            return all(
                t.get("error_code", 0) == 0
                and len(t["partitions"]) == partitions
                and all(p.get("leader_id", p.get("leader", -1)) >= 0 for p in t["partitions"])
                for t in described
            )

        wait_until(ready, 30, f"topics {', '.join(names)}", None)
    finally:
        admin.close()
