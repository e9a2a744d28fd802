"""Calibrate the edit threshold of vigil_verify.compare on synthetic and real clips.

Run from the repo root (about 2-3 minutes on 2 cores, sources cached in --workdir):

    /tmp/venvtest/bin/python bench/calibrate_phash.py [--real PATH ...] \
        | tee bench/results/calibrate_phash.txt

For each source it makes copies (re-encoded CRF 23 / CRF 35 / half resolution,
a 2 s black box over 8% and 0.8% of the frame, 1 s cut out), decodes everything
at 10 fps to 64x64 gray through an ffmpeg pipe, hashes with PDQ, matches each
copy against the original's 10 s segments and prints the worst 1 s window mean
per segment. It then times decode vs hashing on the 720p clip.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from numpy.typing import NDArray
from vigil_verify.compare import SegmentReference, Thresholds, match_recording

from integrity.phash import FrameHashes, hash_frames, read_gray_frames

RATE = 10.0
SEGMENT_S = 10.0
BOX_AT = 13.0  # 2 s box inside segment 1
CUT_AT = 24.0  # 1 s cut inside segment 2
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
SYNTH_IMAGE = OPENCV_DATA / "aloeL.jpg"

Kind = Literal["clean", "box", "blur", "cut"]


@dataclass(frozen=True)
class Variant:
    """One way of making a copy of a source."""

    name: str
    kind: Kind
    filters: str  # ffmpeg -vf chain ("" for none)
    crf: int


@dataclass(frozen=True)
class Source:
    name: str
    path: Path
    width: int
    height: int
    duration: float


@dataclass(frozen=True)
class Row:
    """Worst window per segment of one copy, and which segment was altered."""

    source: str
    variant: str
    kind: Kind
    windows: tuple[float, ...]
    offsets: tuple[float, ...]
    statuses: tuple[str, ...]
    jitter: int  # Thresholds.jitter_frames used
    altered: int | None  # index of the altered segment
    ranges: tuple[tuple[float, float], ...]  # edited ranges reported in the altered segment


def run(args: Sequence[str]) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def probe(path: Path) -> tuple[int, int, float]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height:format=duration",
            "-of",
            "csv=p=0:nk=1",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    width, height = (int(v) for v in out[0].split(",")[:2])
    return width, height, float(out[-1])


def make_synthetic(path: Path) -> None:
    """40 s 1280x720 30 fps: panning, bobbing camera over a photo, a moving object, noise."""
    graph = (
        "[0:v]scale=1920:1280,"
        "crop=1280:720:x='320+280*sin(t/7)':y='280+200*sin(t/5)+14*sin(2*PI*1.8*t)'[bg];"
        "[bg][1:v]overlay=x='mod(60*t,1280)-160':y='400+30*sin(t)'[o];"
        "[o]noise=alls=8:allf=t,format=yuv420p"
    )
    run(
        [
            "-loop",
            "1",
            "-framerate",
            "30",
            "-i",
            str(SYNTH_IMAGE),
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=320x240:r=30",
            "-filter_complex",
            graph,
            "-t",
            "40",
            "-r",
            "30",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-g",
            "30",
            str(path),
        ]
    )


def box_filter(width: int, height: int, area: float) -> str:
    w = max(2, round(width * math.sqrt(area)))
    h = max(2, round(height * math.sqrt(area)))
    x, y = round(width * 0.55), round(height * 0.35)
    return (
        f"drawbox=x={x}:y={y}:w={w}:h={h}:color=black:t=fill:"
        f"enable='between(t,{BOX_AT},{BOX_AT + 2 - 0.001})'"
    )


def blur_filter(width: int, height: int, area: float) -> str:
    """Redaction-style blur of a region (even-aligned) for 2 s."""
    w = 2 * max(2, round(width * math.sqrt(area) / 2))
    h = 2 * max(2, round(height * math.sqrt(area) / 2))
    x, y = 2 * round(width * 0.275), 2 * round(height * 0.175)
    radius = max(2, min(w, h) // 6)
    return (
        f"split[a][b];[b]crop={w}:{h}:{x}:{y},boxblur=lr={radius}:lp=2:cr={radius // 2}[r];"
        f"[a][r]overlay={x}:{y}:enable='between(t,{BOX_AT},{BOX_AT + 2 - 0.001})'"
    )


def variants(src: Source) -> list[Variant]:
    return [
        Variant("crf23", "clean", "", 23),
        Variant("crf35", "clean", "", 35),
        Variant("half", "clean", "scale=trunc(iw/4)*2:trunc(ih/4)*2", 23),
        Variant("box8%", "box", box_filter(src.width, src.height, 0.08), 23),
        Variant("box0.8%", "box", box_filter(src.width, src.height, 0.008), 23),
        Variant("blur8%", "blur", blur_filter(src.width, src.height, 0.08), 23),
        Variant(  # keeps the source's timestamps (variable-rate sources), later ones 1 s earlier
            "cut1s",
            "cut",
            f"select='not(between(t,{CUT_AT},{CUT_AT + 1 - 0.001}))',"
            f"setpts='PTS-gte(T,{CUT_AT + 1 - 0.001})/TB'",
            23,
        ),
    ]


def make_copy(src: Source, variant: Variant, path: Path) -> None:
    vf = ["-vf", variant.filters] if variant.filters else []
    run(
        [
            "-i",
            str(src.path),
            *vf,
            "-an",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            str(variant.crf),
            "-pix_fmt",
            "yuv420p",
            str(path),
        ]
    )


def decode(path: Path, threads: int = 0) -> list[NDArray[np.uint8]]:
    cmd = [
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-threads",
        str(threads),
        "-i",
        str(path),
        "-an",
        "-vf",
        f"fps={RATE:g},scale=64:64:flags=area,format=gray",
        "-f",
        "rawvideo",
        "-",
    ]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        frames = list(read_gray_frames(cast(BinaryIO, proc.stdout)))
    if proc.returncode:
        raise RuntimeError(f"decode failed: {path}")
    return frames


def segments_of(hashes: FrameHashes, duration: float) -> list[SegmentReference]:
    count = math.ceil(duration / SEGMENT_S - 1e-6)
    out = []
    for i in range(count):
        t0, t1 = i * SEGMENT_S, min((i + 1) * SEGMENT_S, duration)
        out.append(SegmentReference(i, t0, t1, hashes.slice_time(t0, t1)))
    return out


def altered_segment(kind: Kind) -> int | None:
    at = {"clean": None, "box": BOX_AT, "blur": BOX_AT, "cut": CUT_AT}[kind]
    return None if at is None else int(at // SEGMENT_S)


def evaluate(src: Source, workdir: Path, jitters: Sequence[int]) -> list[Row]:
    original = hash_frames(decode(src.path), start=0.0, rate=RATE)
    segs = segments_of(original, src.duration)
    rows = []
    for variant in variants(src):
        path = workdir / f"{src.name}.{variant.name}.mp4"
        if not path.exists():
            make_copy(src, variant, path)
        copy = hash_frames(decode(path), start=0.0, rate=RATE)
        altered = altered_segment(variant.kind)
        for jitter in jitters:
            report = match_recording(segs, copy, Thresholds(jitter_frames=jitter))
            rows.append(
                Row(
                    src.name,
                    variant.name,
                    variant.kind,
                    tuple(v.max_window_bits for v in report.segments),
                    tuple(v.offset_s for v in report.segments),
                    tuple(v.status for v in report.segments),
                    jitter,
                    altered,
                    report.segments[altered].edited_ranges if altered is not None else (),
                )
            )
    return rows


def print_table(rows: Sequence[Row]) -> None:
    width = max(len(r.windows) for r in rows)
    head = " ".join(f"{'seg' + str(i):>11}" for i in range(width))
    print(f"{'source':<8} {'copy':<8} {head}   edited ranges (altered segment)")
    for r in rows:
        cells = []
        for i, (w, off, st) in enumerate(zip(r.windows, r.offsets, r.statuses, strict=True)):
            mark = "*" if i == r.altered else " "
            cells.append(f"{w:5.1f}{mark}{st[0]}{off:+4.1f}")
        ranges = " ".join(f"[{a:.1f},{b:.1f})" for a, b in r.ranges)
        print(f"{r.source:<8} {r.variant:<8} {' '.join(f'{c:>11}' for c in cells)}   {ranges}")
    print("cell = worst 1 s window mean (bits), * altered segment, status s/e/m, offset (s)")


def summarise(rows: Sequence[Row]) -> None:
    """Threshold from clean vs box/cut segments; blur is reported, not calibrated on."""
    print(f"\n== jitter_frames={rows[0].jitter} ==")
    clean: list[tuple[float, str]] = []
    edits: list[tuple[float, str]] = []
    blurs: list[tuple[float, str]] = []
    for r in rows:
        for i, w in enumerate(r.windows):
            label = f"{r.source}/{r.variant}/seg{i}"
            if i != r.altered:
                clean.append((w, label))
            else:
                (blurs if r.kind == "blur" else edits).append((w, label))
    worst_clean, weakest_edit = max(clean), min(edits)
    chosen = Thresholds().edited_bits
    print(
        f"clean segments: {len(clean)}, worst window {worst_clean[0]:.1f} bits ({worst_clean[1]})"
    )
    print(f"box/cut segments: {len(edits)}, weakest {weakest_edit[0]:.1f} bits ({weakest_edit[1]})")
    print(f"midpoint {(worst_clean[0] + weakest_edit[0]) / 2:.1f} bits")
    print(
        f"chosen Thresholds().edited_bits = {chosen:g}: margin above worst clean "
        f"{chosen - worst_clean[0]:+.1f} bits (x{chosen / max(worst_clean[0], 1e-9):.2f}), "
        f"below weakest box/cut {weakest_edit[0] - chosen:+.1f} bits "
        f"(x{weakest_edit[0] / chosen:.2f})"
    )
    caught = sum(w > chosen for w, _ in blurs)
    print(
        f"blur 8% (not calibrated on): {caught}/{len(blurs)} caught at {chosen:g}; "
        + ", ".join(f"{label} {w:.1f}" for w, label in blurs)
    )
    for kind in ("clean", "box", "blur", "cut"):
        per = [
            w
            for r in rows
            if r.kind == kind
            for i, w in enumerate(r.windows)
            if (i == r.altered) == (kind != "clean")
        ]
        print(
            f"  {kind:<5} copies, {'altered' if kind != 'clean' else 'all'} segments: "
            f"min {min(per):.1f} max {max(per):.1f} bits"
        )


def time_decode_vs_hash(src: Source) -> None:
    t0 = time.perf_counter()
    frames = decode(src.path, threads=1)
    t1 = time.perf_counter()
    hash_frames(frames, start=0.0, rate=RATE)
    t2 = time.perf_counter()
    decode_s, hash_s = t1 - t0, t2 - t1
    print()
    print(f"timing on {src.name} ({src.width}x{src.height}, {src.duration:.0f} s), one thread:")
    print(
        f"  decode + scale to 64x64 gray at {RATE:g} fps: {decode_s:.2f} s "
        f"= {src.duration / decode_s:.1f}x realtime ({len(frames)} frames)"
    )
    print(
        f"  PDQ hashing: {hash_s:.3f} s = {1000 * hash_s / len(frames):.3f} ms/frame "
        f"= {src.duration / hash_s:.0f}x realtime at {RATE:g} fps "
        f"({100 * hash_s / (decode_s + hash_s):.1f}% of decode+hash)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", nargs="*", default=[], type=Path, help="extra real clips")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vigil-calibrate"))
    args = parser.parse_args()
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    synth = workdir / "synthetic.mp4"
    if not synth.exists():
        make_synthetic(synth)
    paths = [synth, OPENCV_DATA / "vtest.avi", OPENCV_DATA / "tree.avi", *args.real]
    sources = [Source(p.stem, p, *probe(p)) for p in paths]
    started = time.perf_counter()
    default = Thresholds().jitter_frames
    jitters = (default, 1 - default) if default in (0, 1) else (default,)
    rows = [row for src in sources for row in evaluate(src, workdir, jitters)]
    print(
        f"copies at {RATE:g} fps, {SEGMENT_S:g} s segments; box {BOX_AT:g}-{BOX_AT + 2:g} s, "
        f"cut {CUT_AT:g}-{CUT_AT + 1:g} s; Thresholds() = {Thresholds()}"
    )
    print_table([r for r in rows if r.jitter == default])
    for jitter in jitters:
        summarise([r for r in rows if r.jitter == jitter])
    time_decode_vs_hash(sources[0])
    print(f"\nevaluation wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
