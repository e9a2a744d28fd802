"""SQLite writers under contention: the catalogue's engine with its writers queued on one
lock in the process (``catalog.db.one_writer_at_a_time``) against SQLite's busy handler alone,
in the same run.

    .venv/bin/python bench/sqlite_writers.py [--threads 20] [--writes 30]

Each thread commits small custody-event-sized rows one at a time (a short pause between), as
the API's upload chunks, reviewers' audit events and the pipeline do; ``synchronous=FULL``, so
each commit waits for an fsync. Prints the commit latency p50/p95/p99/max and the wall time of
each mode, and writes them to ``bench/results/sqlite_writers.txt``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench.machine import command_output, cpu_model  # noqa: E402
from catalog.db import make_engine  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def run(folder: Path, *, queued: bool, threads: int, writes: int) -> tuple[list[float], float]:
    """Commit latencies (seconds) of every write, and the wall time, in one mode."""
    engine = make_engine(f"sqlite:///{folder / f'q{int(queued)}.sqlite'}", queue_writers=queued)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE e (id INTEGER PRIMARY KEY, at TEXT, detail TEXT)"))
    latencies: list[float] = []

    def writer() -> None:
        for _ in range(writes):
            started = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(
                    text("INSERT INTO e (at, detail) VALUES (:at, :d)"),
                    {"at": str(started), "d": "x" * 300},
                )
            latencies.append(time.perf_counter() - started)
            time.sleep(0.005)

    workers = [threading.Thread(target=writer) for _ in range(threads)]
    began = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - began
    engine.dispose()
    return sorted(latencies), wall


def _rank(values: list[float], q: float) -> float:
    return values[max(0, min(len(values) - 1, int(q * len(values) + 0.5) - 1))] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--writes", type=int, default=30)
    args = parser.parse_args(argv)
    lines = [
        f"git commit: {command_output(['git', 'rev-parse', '--short', 'HEAD'])};"
        f" date {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"machine: {cpu_model()}; load {command_output(['cat', '/proc/loadavg']).split()[0]}",
        f"{args.threads} threads x {args.writes} commits, synchronous=FULL, WAL",
        "",
        "mode                       p50 ms   p95 ms   p99 ms   max ms   wall s",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for queued, name in ((False, "SQLite busy handler only"), (True, "queued in the process")):
            lat, wall = run(Path(tmp), queued=queued, threads=args.threads, writes=args.writes)
            cells = " ".join(f"{_rank(lat, q):8.1f}" for q in (0.5, 0.95, 0.99, 1.0))
            lines.append(f"{name:25} {cells} {wall:8.2f}")
    report = "\n".join(lines) + "\n"
    print(report, end="")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sqlite_writers.txt").write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
