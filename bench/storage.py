"""Issue 18: stored bytes per byte of original, per kind of source, and what signing each
segment's packets in the original costs the custody path.

Run from the repo root:

    .venv/bin/python bench/storage.py [--rounds N] [--seconds S]

For each kind of source (rendered once with ``transcode.samples``, cached under
``.cache/bench/``): a fresh app on embedded defaults ingests it and runs every stage; what the
store then holds for the recording (``originals/`` and ``derived/``: segments, playlists, the
review proxy, GPS...) is summed and divided by the original's size.

Both forms: ``VIGIL_SEGMENT_COPIES=keep`` (every segment's copy stored) and ``derive`` (no copy
that the original makes again; each segment cut again when read). And a live recording: the
MPEG-TS clip pulled as a camera's stream by the live recorder (one session), whose original
is its segments as received.

Custody speed: the same H.264/AAC MP4 put on record (``CustodyPath.segment``: probe, cut,
SHA-256, keyframes, store, chain, catalogue) with copies and no packet pass (before this issue),
with copies and the packet pass, and with no copies, interleaved, fastest of ``--rounds``.

Results: ``bench/results/storage.txt``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ingest.segmenting as segmenting  # noqa: E402
from bench.pipeline import environment_lines  # noqa: E402
from catalog.proxy_cache import ProxyCache  # noqa: E402
from ingest.live import LiveSource  # noqa: E402
from ingest.service import RecordingMetadata  # noqa: E402
from transcode.ffmpeg import find_ffmpeg  # noqa: E402
from transcode.samples import SampleSpec, make_sample  # noqa: E402
from workers.app import Vigil, build_app  # noqa: E402
from workers.settings import Settings  # noqa: E402

CACHE = ROOT / ".cache" / "bench"
RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Kind:
    name: str
    spec: SampleSpec


LIVE = "H.264/AAC live stream 720p (recorded live)"


def kinds(seconds: float) -> list[Kind]:
    return [
        Kind("H.264/AAC MP4 720p (browser-playable)", SampleSpec(duration_s=seconds, seed=7)),
        Kind("H.264/AAC MPEG-TS 720p (as live recording writes)",
             SampleSpec(duration_s=seconds, seed=7, container="ts")),
        Kind("MPEG-4 Part 2/PCM AVI 720p (needs a proxy)",
             SampleSpec(duration_s=seconds, seed=7, codec="mpeg4", container="avi")),
    ]  # fmt: skip


def clip(ffmpeg: str, spec: SampleSpec) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"storage-{hashlib.sha256(repr(spec).encode()).hexdigest()[:16]}.{spec.container}"
    return out if out.exists() else make_sample(ffmpeg, spec, out)


def _meta(path: Path) -> RecordingMetadata:
    return RecordingMetadata(device_id="BENCH-18", original_name=path.name)


def stored_ratio(app: Vigil, path: Path) -> tuple[int, int, float]:
    """Bytes of the original, bytes derived from it, and (original + derived) / original; with
    a proxy cache, once the proxy has expired (at rest)."""
    rec = app.ingest.ingest_file(path, _meta(path), actor="bench").recording_id
    app.run_pipeline()
    days = app.settings.proxy_cache_days
    if days is not None:
        cache = ProxyCache(catalog=app.catalog, store=app.store, keep_days=days)
        cache.expire(datetime.now(UTC) + timedelta(days=days + 1), actor="bench", apply=True)
    root = app.settings.store_root
    original = sum(f.stat().st_size for f in (root / "originals" / rec).rglob("*") if f.is_file())
    derived = sum(f.stat().st_size for f in (root / "derived" / rec).rglob("*") if f.is_file())
    return original, derived, (original + derived) / original


def live_ratio(app: Vigil, path: Path) -> tuple[int, int, float]:
    """As ``stored_ratio``, for ``path`` recorded as a live stream (pulled as the camera's
    MPEG-TS; one session) rather than uploaded: its original is the segments as received."""
    meta = RecordingMetadata(device_id="BENCH-18-LIVE", original_name="live.ts")
    rec = app.live_recorder().record(LiveSource(str(path)), meta, actor="bench").recording_id
    app.run_pipeline()
    root = app.settings.store_root
    original = sum(f.stat().st_size for f in (root / "originals" / rec).rglob("*") if f.is_file())
    derived = sum(f.stat().st_size for f in (root / "derived" / rec).rglob("*") if f.is_file())
    return original, derived, (original + derived) / original


def _without_packets(real: Callable[..., object]) -> Callable[..., object]:
    def cut(*args: object, **kwargs: object) -> object:
        return real(*args, **{**kwargs, "hash_packets": False})

    return cut


FORMS: list[tuple[Literal["keep", "derive"], float | None]] = [
    ("keep", None),
    ("derive", None),
    ("derive", 30.0),
]

MODES = {
    "copies, no packets": (True, False),  # before issue 18
    "copies kept": (True, True),  # VIGIL_SEGMENT_COPIES=keep
    "no copies": (False, True),  # VIGIL_SEGMENT_COPIES=derive
}


def custody_once(path: Path, work: Path, *, mode: str) -> float:
    """Seconds ``CustodyPath.segment`` takes on ``path`` in a fresh app."""
    keep, packets = MODES[mode]
    app = build_app(Settings(data_dir=work))
    try:
        rec = app.ingest.ingest_file(path, _meta(path), actor="bench").recording_id
        custody = segmenting.CustodyPath(
            catalog=app.catalog, store=app.store, tools=app.tools,
            work_dir=app.settings.work_dir, segment_s=app.settings.segment_seconds,
            phash_fps=app.settings.phash_fps,
            gap_tolerance_frames=app.settings.continuity_tolerance_frames, keep_copies=keep,
        )  # fmt: skip
        real = segmenting.segment_file
        if not packets:
            segmenting.segment_file = _without_packets(real)  # type: ignore[assignment]
        try:
            started = time.perf_counter()
            done = custody.segment(rec)
            elapsed = time.perf_counter() - started
        finally:
            segmenting.segment_file = real
        if done is None or not done.segments:
            raise RuntimeError("custody put nothing on record")
        signed = all(s.packets for s in done.segments)
        kept = all(s.kept for s in done.segments)
        if signed != packets or kept != keep:
            raise RuntimeError(f"packets signed: {signed}, kept: {kept}; asked for {mode}")
        return elapsed
    finally:
        app.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "storage.txt")
    args = parser.parse_args(argv)
    ffmpeg = find_ffmpeg(os.environ.get("VIGIL_FFMPEG"))
    lines = environment_lines(ffmpeg)
    lines.append("stored bytes / original bytes, after every stage (segments, proxy, playlists)")
    found = [(k, clip(ffmpeg, k.spec)) for k in kinds(args.seconds)]
    with tempfile.TemporaryDirectory(prefix="vigil-bench-storage-") as tmp:
        for copies, cache in FORMS:
            expired = f", VIGIL_PROXY_CACHE_DAYS={cache:g}, after it expired" if cache else ""
            default = " (the default)" if copies == Settings().segment_copies and not cache else ""
            lines.append(f" VIGIL_SEGMENT_COPIES={copies}{expired}{default}")
            for n, (kind, path) in enumerate(found):
                folder = Path(tmp) / f"ratio-{copies}-{cache}-{n}"
                settings = Settings(data_dir=folder, segment_copies=copies, proxy_cache_days=cache)
                app = build_app(settings)
                try:
                    original, derived, ratio = stored_ratio(app, path)
                finally:
                    app.stop()
                lines.append(
                    f"  {kind.name:<52} original {original / 1e6:7.1f} MB, derived"
                    f" {derived / 1e6:7.1f} MB: {ratio:.2f}x"
                )
            if cache is None:  # a live recording has no proxy
                folder = Path(tmp) / f"ratio-{copies}-live"
                app = build_app(Settings(data_dir=folder, segment_copies=copies))
                try:
                    original, derived, ratio = live_ratio(app, found[1][1])
                finally:
                    app.stop()
                lines.append(
                    f"  {LIVE:<52} original {original / 1e6:7.1f} MB, derived"
                    f" {derived / 1e6:7.1f} MB: {ratio:.2f}x"
                )
        mp4 = found[0][1]
        best = dict.fromkeys(MODES, float("inf"))
        for r in range(args.rounds):
            for n, mode in enumerate(MODES):
                work = Path(tmp) / f"custody-{r}-{n}"
                best[mode] = min(best[mode], custody_once(mp4, work, mode=mode))
    today = best["copies kept"]
    lines += [
        f"custody (CustodyPath.segment) on {found[0][0].name}, {args.seconds:g} s,"
        f" fastest of {args.rounds} interleaved:",
        *(
            f"  {mode:<20} {seconds:7.3f} s  {seconds / today:.3f}x"
            for mode, seconds in best.items()
        ),
        "  (ratios against 'copies kept', the custody path before the copies were dropped;"
        " target <= 1.05)",
        f"load average at end: {os.getloadavg()[0]:.2f}",
    ]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
