"""``vigil-verify`` against mutated packages: the full fuzz run of issue 14.

Run from the repo root: ``.venv/bin/python bench/verifier_fuzz.py [--count 10000] [--seed N]``.

Makes the small export package of ``tests/unit/test_verifier_fuzz.py`` (a 6 s clip in three
2 s segments, heads timestamped by a local OpenSSL TSA), then runs ``--count`` mutations of it
through ``vigil_verify.cli.main`` in-process, with the test's machinery (``Fuzzer``: bytes,
DER structure of the timestamp token, JSON values of the wrong type, notes, events re-signed
so the change is proved, hostile per-frame hash blobs, files deleted or replaced, the auditor's
``--key`` and ``--trusted-checkpoint``). Prints the tally: runs, exit statuses, runs per family
and every crash (an exception that escaped, the last-resort handler speaking, a status other
than 0/1/2, or output that does not fit the status), and writes it to
``bench/results/verifier-fuzz.txt``. Exit status 1 if anything crashed. Needs ffmpeg and openssl.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.unit.test_verifier_fuzz import CLIP, Outcome, Tally, build_corpus, fuzz  # noqa: E402
from transcode.ffmpeg import find_ffmpeg  # noqa: E402
from transcode.samples import find_font, make_sample  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def render(tally: Tally, count: int, seed: int, seconds: float) -> str:
    lines = [
        f"vigil-verify fuzz: {tally.runs} mutated packages (--count {count}, --seed {seed}),"
        f" {seconds:.1f} s ({1000 * seconds / max(tally.runs, 1):.1f} ms a run)",
        "exit statuses: "
        + ", ".join(f"{status}: {n}" for status, n in sorted(tally.statuses.items(), key=str)),
        "families: " + ", ".join(f"{name} {n}" for name, n in sorted(tally.families.items())),
        f"crashes: {len(tally.crashes)}",
    ]
    for outcome in tally.crashes[:20]:
        lines += ["", f"CRASH {outcome.mutation}", (outcome.crash or "").rstrip()]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="vigil-verify against mutated packages")
    parser.add_argument("--count", type=int, default=10_000, help="mutations to run")
    parser.add_argument("--seed", type=int, default=20261204, help="the mutations' seed")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vigil-fuzz-") as tmp:
        work = Path(tmp)
        clip = work / "clip.mp4"
        make_sample(find_ffmpeg(None), CLIP, clip, font=find_font())
        corpus = build_corpus(work, clip)
        started = time.monotonic()

        def progress(outcome: Outcome) -> None:
            if outcome.crashed:
                print(f"CRASH {outcome.mutation}", file=sys.stderr)

        tally = fuzz(corpus, args.count, args.seed, on_outcome=progress)
        seconds = time.monotonic() - started
    text = render(tally, args.count, args.seed, seconds)
    print(text, end="")
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "verifier-fuzz.txt").write_text(text)
    return 1 if tally.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
