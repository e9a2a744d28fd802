"""A real Prometheus server (Debian's ``prometheus`` package) on loopback, scraping given targets.

``PrometheusService(work, targets).start()`` writes a config with one static job per target
group (scrape every second), starts ``prometheus`` with its data in ``work/data`` and waits for
``/-/ready``; ``query(promql)`` asks the HTTP API for an instant vector.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from interfaces.devservices.base import HOST, ManagedProcess, ServiceError, free_port, wait_until


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("no `prometheus` binary: the test command installs Debian's prometheus")
        pytest.skip("no `prometheus` binary (install Debian's prometheus)")
    return found


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


class PrometheusService:
    def __init__(self, work: Path, jobs: dict[str, list[str]], interval_s: float = 1.0) -> None:
        """``jobs``: job name -> ["host:port", ...] scraped at ``/metrics``."""
        self.work = work
        self.jobs = jobs
        self.interval_s = interval_s
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.config = work / "prometheus.yml"
        self.log = work / "prometheus.log"
        self._process: ManagedProcess | None = None

    def _write_config(self) -> None:
        # JSON is YAML: no YAML writer needed.
        config = {
            "global": {
                "scrape_interval": f"{self.interval_s:g}s",
                "evaluation_interval": f"{self.interval_s:g}s",
            },
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": targets}]}
                for job, targets in self.jobs.items()
            ],
        }
        self.config.write_text(json.dumps(config, indent=2))

    def start(self, timeout_s: float = 60) -> None:
        binary = prometheus_binary()
        self.work.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._process = ManagedProcess(
            "prometheus",
            [
                binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.work / 'data'}",
                f"--web.listen-address={HOST}:{self.port}",
            ],
            self.log,
            cwd=self.work,
        )
        self._process.start()
        process = self._process
        wait_until(
            lambda: urllib.request.urlopen(f"{self.url}/-/ready", timeout=2).status == 200,
            timeout_s,
            "prometheus",
            self.log,
            alive=lambda: process.running,
        )

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def query(self, promql: str) -> list[Sample]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as response:
            document = json.loads(response.read())
        if document.get("status") != "success":
            raise ServiceError(f"prometheus query {promql!r} failed: {document}")
        return [
            Sample(dict(item["metric"]), float(item["value"][1]))
            for item in document["data"]["result"]
        ]

    def value(self, promql: str) -> float | None:
        """The single value of a query (None while it has no result)."""
        samples = self.query(promql)
        return samples[0].value if len(samples) == 1 else None
