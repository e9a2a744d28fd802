"""``vigil verify`` from the signed log against the first wave's verify from the catalogue rows,
on the same recording in the same run.

Run from the repo root: ``.venv/bin/python bench/verify.py [--quick] [--rounds N]``.

The recording is the 5-minute 1080p30 H.264 benchmark clip of ``bench/pipeline.py`` (``--quick``:
its 20 s 720p clip), ingested and processed on embedded defaults. Timed, interleaved, fastest of
``--rounds`` kept:

- **rows** (the first wave's rule): SHA-256 of the original and of every segment file, compared
  with the catalogue rows, the hash chain recomputed over the rows, the outcome written to the
  rows and as a signed custody event: what ``vigil verify`` did before it took its expected
  values from the log;
- **log** (today's ``Verifier.verify_recording``): the same hashing, with every expected value
  from custody events proved included in the latest signed tree head (leaf hashes, inclusion
  proofs, the head's signature), every row compared with its event, the custody event written.

Target (issue 13): log / rows <= 1.2. Output: ``bench/results/verify-<quick|full>.txt``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vigil_verify.chain import ChainEntry, first_break  # noqa: E402

from bench.pipeline import environment_lines, prepare_clip  # noqa: E402
from catalog.repository import Event, now  # noqa: E402
from ingest.service import RecordingMetadata  # noqa: E402
from integrity.verify import VerifyDetail  # noqa: E402
from store.base import sha256_file  # noqa: E402
from transcode.ffmpeg import find_ffmpeg  # noqa: E402
from workers.app import Vigil, build_app  # noqa: E402
from workers.settings import Settings  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def verify_from_rows(app: Vigil, recording_id: str) -> bool:
    """The first wave's verify: hashes against the catalogue rows, the chain over the rows."""
    rec = app.catalog.recording(recording_id)
    segments = app.catalog.segments(rec.id)
    with app.store.local_path("originals", rec.original_key) as path:
        ok = sha256_file(path)[0] == rec.sha256
    for seg in segments:
        with app.store.local_path("derived", seg.key) as path:
            ok &= sha256_file(path)[0] == seg.sha256
    entries = [ChainEntry(s.index, s.start_s, s.end_s, s.sha256, s.chain_digest) for s in segments]
    ok &= first_break(rec.anchor, entries, [s.chain for s in segments]) is None
    # ... and, as it did, the outcome on the rows and as a custody event.
    app.catalog.set_verification(rec.id, {s.index: "verified" for s in segments}, now())
    app.catalog.add_event(Event("verify", "bench", rec.id, detail=VerifyDetail(ok=ok, problems=[])))
    app.ledger.checkpoint()
    return ok


def verify_from_log(app: Vigil, recording_id: str) -> bool:
    return app.verifier.verify_recording(recording_id, actor="bench").ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    ffmpeg = find_ffmpeg(os.environ.get("VIGIL_FFMPEG"))
    clip, _frames, _gop = prepare_clip(ffmpeg, args.quick)
    lines = environment_lines(ffmpeg)
    with tempfile.TemporaryDirectory(prefix="vigil-bench-verify-") as tmp:
        app = build_app(Settings(data_dir=Path(tmp) / "vigil"))
        try:
            meta = RecordingMetadata(device_id="BENCH-1", original_name=clip.name)
            rec = app.ingest.ingest_file(clip, meta, actor="bench").recording_id
            app.run_pipeline()
            app.ledger.checkpoint()
            best = {"rows": float("inf"), "log": float("inf")}
            for _ in range(args.rounds):
                for name, check in (("rows", verify_from_rows), ("log", verify_from_log)):
                    started = time.perf_counter()
                    assert check(app, rec), f"{name}: the untouched recording does not verify"
                    best[name] = min(best[name], time.perf_counter() - started)
            size = app.catalog.recording(rec).size
            count = len(app.catalog.segments(rec))
        finally:
            app.stop()
    lines += [
        f"clip {clip.name}: {size / 1e6:.1f} MB, {count} segments; fastest of {args.rounds}",
        f"verify from the catalogue rows (first wave)      {best['rows']:8.3f} s",
        f"verify from the signed log (proofs, rows checked) {best['log']:8.3f} s",
        f"ratio log/rows: {best['log'] / best['rows']:.2f} (target <= 1.2)",
        f"load average at end: {os.getloadavg()[0]:.2f}",
    ]
    print("\n".join(lines))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"verify-{'quick' if args.quick else 'full'}.txt"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
