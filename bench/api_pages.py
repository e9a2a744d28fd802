"""What one reviewer page costs the API server: each page asked in turn by one client, the
server's CPU per request read from /proc, with no other load.

Run from the repo root:

    .venv/bin/python bench/api_pages.py [--requests 300] [--out FILE]

It makes a fresh data dir on embedded defaults (four seed recordings, one case each, as
``bench/api_load.py`` does), serves it as ``vigil api`` does in a subprocess on 127.0.0.1, and
asks each page ``--requests`` times in a row after 20 to warm up: the case list, a case's
timeline, a recording's playback links, a 195 KiB range of its original through the signed
link, the case's custody log (its first page) and ``GET /me`` (authentication and the
framework alone). Every read is a custody ``view`` event, so the custody log grows as the run
goes on: its line says how many bytes its last page was.

Under ``bench/api_load.py``'s closed loop, twenty reviewers asking with no pause wait for each
other, and each page's latency is about twenty times what it costs here: this is the figure to
bring down for that one. The report (git commit, date, machine) is written to
``bench/results/api-pages.txt`` (``--out``: elsewhere).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.api_load import percentile  # noqa: E402
from bench.machine import command_output, cpu_model  # noqa: E402
from bench.uploads import process_cpu_s  # noqa: E402
from tests.load import API, SEED_CASES, make_clips, prepare, serve_process, settings_for  # noqa: E402
from workers.app import build_app  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WARM_UP = 20


def measure(client: httpx.Client, pid: int, path: str, headers: dict[str, str], n: int) -> str:
    """One page asked ``n`` times after the warm-up: latency p50/p99 and server CPU per request."""
    for _ in range(WARM_UP):
        client.get(path, headers=headers)
    before = process_cpu_s(pid)
    latencies: list[float] = []
    size = 0
    for _ in range(n):
        started = time.perf_counter()
        answer = client.get(path, headers=headers)
        latencies.append(time.perf_counter() - started)
        if answer.status_code not in (200, 206):
            raise RuntimeError(f"{path}: HTTP {answer.status_code}")
        size = len(answer.content)
    per_request_ms = (process_cpu_s(pid) - before) / n * 1000
    return (
        f"{statistics.median(latencies) * 1000:8.2f} {percentile(latencies, 99) * 1000:8.2f}"
        f" {per_request_ms:10.2f} {size:>9}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--out", type=Path, default=RESULTS / "api-pages.txt")
    args = parser.parse_args(argv)
    lines = [
        f"git commit: {command_output(['git', 'rev-parse', '--short', 'HEAD'])}"
        f" (worktree {'dirty' if command_output(['git', 'status', '--porcelain']) else 'clean'});"
        f" date {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"machine: {cpu_model()}; {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}",
        f"server: uvicorn subprocess, 127.0.0.1, embedded defaults; one client asking in turn,"
        f" {args.requests} requests a page after {WARM_UP} to warm up",
        "",
        f"{'page':<16} {'p50 ms':>8} {'p99 ms':>8} {'server CPU':>10} {'bytes':>9}",
    ]
    with tempfile.TemporaryDirectory(prefix="vigil-api-pages-") as tmp:
        data_dir = Path(tmp) / "vigil"
        vigil = build_app(settings_for(data_dir))
        try:
            cast = prepare(vigil, 0, 1, make_clips(SEED_CASES))
        finally:
            vigil.stop()
        _pid, case_id, token = cast.reviewers[0]
        with serve_process(data_dir) as (url, pid):
            auth = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=url, headers=auth, timeout=60) as client:
                rec = client.get(f"{API}/cases/{case_id}").json()["recordings"][0]["id"]
                link = client.get(f"{API}/recordings/{rec}/playback").json()["original"]
                pages = {
                    "case list": (f"{API}/cases", {}),
                    "timeline": (f"{API}/cases/{case_id}", {}),
                    "playback link": (f"{API}/recordings/{rec}/playback", {}),
                    "media range": (link, {"Range": "bytes=1000-200999"}),
                    "custody page": (f"{API}/cases/{case_id}/custody", {}),
                    "GET /me": (f"{API}/me", {}),
                }
                for name, (path, headers) in pages.items():
                    lines.append(f"{name:<16} {measure(client, pid, path, headers, args.requests)}")
    lines += [
        "",
        "server CPU: ms per request, user + system, from /proc/PID/stat (with any"
        " children it waited for)",
    ]
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
