"""The HTTP API under load: 50 devices uploading at once while 20 reviewers read, on loopback.

Run from the repo root:

    .venv/bin/python bench/api_load.py [--devices 50] [--reviewers 20] [--think S] [--in-process]

It makes a fresh data dir on embedded defaults (folder store, SQLite, in-process bus), adds one
device principal per uploader, one reviewer per reader and a supervisor, ingests and links a few
seed recordings into cases (each reviewer is assigned one), and then serves the API the way
``vigil api`` does (``build_app`` + ``create_api`` + ``uvicorn.run``) in a subprocess on
127.0.0.1 (``--in-process``: a uvicorn thread in this process instead).

Load, from one asyncio client process (httpx.AsyncClient, one client per principal):

- every device uploads its own distinct clip (3-5 s, 320x240 testsrc2 H.264/AAC with its own
  noise seed, caption and tone, a few hundred KB; rendered once with ffmpeg and cached under
  ``~/.cache/vigil/test-footage/<stamp>/api-load``) by the resumable protocol:
  ``POST /uploads``, ``PUT`` 256 KiB chunks with their SHA-256 at the confirmed offset,
  ``POST .../finish`` with the file's hash; all devices start together;
- every reviewer loops, until the last upload has finished, over: its case list, its case's
  timeline, playback links of a recording of it, a random byte range (up to 256 KiB) of that
  original through the signed link (the first time, a one-byte range tells the size) and the
  case's custody log (its first page). By default with no pause: twenty reviewers ask as fast
  as the server answers, which measures its capacity, not a person's pace. ``--think S``: each
  pauses S seconds on average (uniform, half to one and a half times) after each answer, as a
  person reading the page would (written to ``api-load-thinkS.txt``).

Requests are bounded (300 s each, 1200 s for the whole run); latencies are nearest-rank
percentiles per endpoint.

Any response other than the one the protocol expects (201 / 200 / 206), and any transport
error, counts as an error. It prints per-endpoint p50/p95/p99 latency, wall time, uploads/s,
MB/s (10^6 bytes of uploaded clips per second of wall time), requests/s, and the lines
``uploads: N ok, M errors``, ``reviewer requests: N ok, M errors``, ``p99 upload chunk: X ms``,
``p99 reviewer: X ms``, ``throughput: X MB/s``; the report (with the git commit, the date, the
machine and its load) is also written to ``bench/results/api-load.txt``.

The load itself is ``tests/load.py`` (``run_load``); ``tests/integration/test_api_load.py``
runs it at full scale and checks the catalogue
afterwards (``LoadResult.data_dir``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from bench.machine import command_output, cpu_model  # noqa: E402
from tests.load import CHUNK, LoadResult, run_load  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# -- the report ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def after_first(latencies: Sequence[float], first: Sequence[float]) -> list[str]:
    """The reviewers' p99 without each one's first page, and those first pages apart: all
    seventy clients send their first request at the same instant, so the first pages wait for
    the whole burst and decide the p99 of a short run."""
    rest = Counter(latencies)
    rest.subtract(first)
    steady = list(rest.elements())
    if not steady or not first:
        return []
    return [
        f"p99 reviewer after each one's first page: {percentile(steady, 99) * 1000:.1f} ms"
        f" ({len(steady)} requests); the {len(first)} first pages, sent with the devices'"
        f" starts at once: p50 {statistics.median(first) * 1000:.1f}, max"
        f" {max(first) * 1000:.1f} ms"
    ]


def report(
    result: LoadResult, *, devices: int, reviewers: int, mode: str, think_s: float
) -> list[str]:
    stats = result.stats
    total_bytes = sum(u.size for u in result.uploads if u.recording_id is not None)
    requests = sum(len(v) for v in stats.latencies.values())
    ok_uploads = len(result.uploads) - result.upload_errors
    reviewer_ok, reviewer_failed = result.reviewer_counts()
    reviewer_latencies = [x for label in result.reviewer_labels for x in stats.latencies[label]]
    lines = [
        f"git commit: {command_output(['git', 'rev-parse', '--short', 'HEAD'])}"
        f" (worktree {'dirty' if command_output(['git', 'status', '--porcelain']) else 'clean'});"
        f" date {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"machine: {cpu_model()}; {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}",
        f"server: {mode}, 127.0.0.1, embedded defaults (folder store, SQLite, in-process bus)",
        f"load: {devices} devices uploading at once ({CHUNK >> 10} KiB chunks,"
        f" {total_bytes / 1e6:.1f} MB in {len(result.uploads)} clips) and {reviewers} reviewers"
        f" ({result.reviewer_rounds} review rounds; "
        + (
            f"each pauses {think_s:g} s on average after each page)"
            if think_s
            else "no pause between pages: each asks again at once)"
        ),
        "",
        f"{'endpoint':<18} {'count':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        f" {'max ms':>8}",
    ]
    for label, values in stats.latencies.items():
        ms = [v * 1000 for v in values]
        lines.append(
            f"{label:<18} {len(ms):>6} {stats.failed[label]:>6} {statistics.median(ms):>8.1f}"
            f" {percentile(ms, 95):>8.1f} {percentile(ms, 99):>8.1f} {max(ms):>8.1f}"
        )
    wall = result.wall_s
    lines += [
        "",
        f"wall: {wall:.1f} s (until the last upload finished); uploads/s: {ok_uploads / wall:.2f};"
        f" requests/s: {requests / result.all_s:.1f} ({requests} in {result.all_s:.1f} s)",
        f"uploads: {ok_uploads} ok, {result.upload_errors} errors",
        f"reviewer requests: {reviewer_ok} ok, {reviewer_failed} errors",
        f"p99 upload chunk: {percentile(stats.latencies['PUT chunk'], 99) * 1000:.1f} ms"
        if stats.latencies["PUT chunk"]
        else "p99 upload chunk: n/a",
        f"p99 reviewer: {percentile(reviewer_latencies, 99) * 1000:.1f} ms"
        if reviewer_latencies
        else "p99 reviewer: n/a",
        *after_first(reviewer_latencies, stats.first),
        f"throughput: {total_bytes / 1e6 / wall:.2f} MB/s",
    ]
    if stats.errors:
        lines += ["", f"first errors ({len(stats.errors)} in all):", *stats.errors[:10]]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--reviewers", type=int, default=20)
    parser.add_argument("--in-process", action="store_true", help="uvicorn in a thread here")
    parser.add_argument("--work", type=Path, help="data dir parent (default: a temporary one)")
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="each reviewer's mean pause after a page, in seconds (default 0: none)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vigil-api-load-", dir=args.work) as tmp:
        result = run_load(
            Path(tmp) / "vigil",
            devices=args.devices,
            reviewers=args.reviewers,
            in_process=args.in_process,
            think_s=args.think,
        )
    mode = "uvicorn thread in the client process" if args.in_process else "uvicorn subprocess"
    lines = report(
        result, devices=args.devices, reviewers=args.reviewers, mode=mode, think_s=args.think
    )
    print("\n".join(lines))
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"api-load-think{args.think:g}.txt" if args.think else "api-load.txt"
    (RESULTS / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0 if not result.stats.errors and not result.upload_errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
