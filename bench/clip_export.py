"""Clip export (issue 19) against a bare ``ffmpeg -ss -to -c copy`` of the same window, in the
same run.

Run from the repo root: ``.venv/bin/python bench/clip_export.py [--rounds N]``.

The recording is the 20 s 720p30 H.264 clip of ``bench/pipeline.py --quick`` (a keyframe every
second), ingested and processed on embedded defaults and exported once without clips. Then, for
two 10 s windows, timed, interleaved, fastest of ``--rounds`` kept:

- **bare**: ``ffmpeg -ss FROM -to TO -i original -c copy clip.mp4``, what someone would type;
- **cut**: ``transcode.clips.cut_clip`` alone (from the package's segments);
- **clip export**: ``ClipExporter.export``: cut, C2PA manifest signed (a test CA's ES256 key),
  hashed, its ``export.clip`` custody event written.

Window 10.0-20.0 s starts on a keyframe (stream copy); 10.5-20.0 s does not (x264, whole).
Output: ``bench/results/clip_export.txt``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.pipeline import environment_lines, prepare_clip  # noqa: E402
from ingest.service import RecordingMetadata  # noqa: E402
from integrity.clip_credentials import ClipSigner  # noqa: E402
from integrity.clips import ClipExporter, ClipWindow, clip_bounds, clip_windows  # noqa: E402
from integrity.export import Manifest, export_case  # noqa: E402
from integrity.logfacts import prove  # noqa: E402
from tests.c2pa_ca import TestCA  # noqa: E402
from transcode.clips import ClipJob, clip_method, cut_clip  # noqa: E402
from transcode.ffmpeg import find_ffmpeg  # noqa: E402
from workers.app import build_app  # noqa: E402
from workers.settings import Settings  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CASE = "BENCH-CLIPS"
WINDOWS = ((10.0, 20.0), (10.5, 20.0))


def bare_command(ffmpeg: str, original: Path, lo: float, hi: float, out: Path) -> list[str]:
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-ss", f"{lo:g}", "-to", f"{hi:g}",
        "-i", str(original), "-c", "copy", "-y", str(out),
    ]  # fmt: skip


def cut_only(exporter: ClipExporter, window: ClipWindow, out: Path) -> str:
    lo, hi, covered = clip_bounds(window)
    first = covered[0]
    method = clip_method(lo, [t for s in covered for t in s.keyframes])
    job = ClipJob(
        tuple(s.path for s in covered), out, first.pts_start_s + lo - first.start_s, hi - lo,
        method,
    )  # fmt: skip
    cut_clip(exporter.tools, job)
    return method


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ffmpeg = find_ffmpeg(os.environ.get("VIGIL_FFMPEG"))
    clip, _frames, _gop = prepare_clip(ffmpeg, True)
    lines = environment_lines(ffmpeg)
    ca = TestCA.make("Bench Root CA")
    agency = ca.issue("Bench Agency", "Vigil Bench")
    signer = ClipSigner(agency.chain_pem, agency.key_pem)
    best: dict[tuple[str, int], float] = {}
    methods: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="vigil-bench-clips-") as tmp:
        base = Path(tmp)
        app = build_app(Settings(data_dir=base / "vigil"))  # type: ignore[call-arg]
        try:
            meta = RecordingMetadata(device_id="BENCH-1", original_name=clip.name)
            rec = app.ingest.ingest_file(clip, meta, actor="bench").recording_id
            app.run_pipeline()
            for lo, hi in WINDOWS:
                app.cases.link(CASE, rec, from_s=lo, to_s=hi, reason="bench", actor="bench")
            root = export_case(
                app.catalog, app.store, app.ledger, CASE, base / "export", actor="bench",
                reason="bench", tolerance_frames=1.0, device_tolerance_s=2.0,
                segment_files=app.segment_files,
            )  # fmt: skip
            manifest = Manifest.model_validate_json((root / "manifest.json").read_text())
            facts = prove(app.ledger, app.ledger.public_key, [rec])
            windows = clip_windows(app.catalog, root, manifest.recordings, facts)
            exporter = ClipExporter(app.tools, signer)
            stored = app.catalog.recording(rec).original_key
            original = app.settings.store_root / "originals" / stored
            for _ in range(args.rounds):
                for i, window in enumerate(windows):
                    lo, hi = WINDOWS[i]
                    out = base / f"bare-{i}.mp4"
                    started = time.perf_counter()
                    subprocess.run(bare_command(ffmpeg, original, lo, hi, out), check=True)
                    took = time.perf_counter() - started
                    best[("bare", i)] = min(best.get(("bare", i), float("inf")), took)
                    started = time.perf_counter()
                    methods[i] = cut_only(exporter, window, base / f"cut-{i}.mp4")
                    took = time.perf_counter() - started
                    best[("cut", i)] = min(best.get(("cut", i), float("inf")), took)
                    for old in (root / "clips").glob("*.mp4") if (root / "clips").exists() else []:
                        old.unlink()
                    started = time.perf_counter()
                    exporter.export(
                        app.catalog, root, [window], facts, case_id=CASE, actor="bench",
                        reason="bench",
                    )  # fmt: skip
                    took = time.perf_counter() - started
                    best[("export", i)] = min(best.get(("export", i), float("inf")), took)
        finally:
            app.stop()
    lines.append(f"clip {clip.name}; fastest of {args.rounds} rounds, interleaved")
    for i, (lo, hi) in enumerate(WINDOWS):
        bare, cut, export = best[("bare", i)], best[("cut", i)], best[("export", i)]
        lines += [
            f"window {lo:g}-{hi:g} s ({methods[i]}):",
            f"  bare ffmpeg -ss -to -c copy      {bare:7.3f} s",
            f"  cut from the segments            {cut:7.3f} s",
            f"  clip export (cut, sign, hash, log) {export:5.3f} s  ({export / bare:.1f}x bare)",
        ]
    lines.append(f"load average at end: {os.getloadavg()[0]:.2f}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "clip_export.txt").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
