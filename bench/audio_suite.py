"""Measure vigil_verify.audio on benign re-encodes and audio edits (issue 16).

Run from the repo root (about 20 s on 2 cores):

    .venv/bin/python bench/audio_suite.py [--clip PATH ...] | tee bench/results/audio_suite.txt

For each clip (Megamind.avi, AC-3, if present; and a synthetic speech-like clip made here by
ffmpeg: a gliding tone with syllable-rate amplitude modulation plus band-passed noise, with a
testsrc2 video track) it makes audio variants, fingerprints them through the same ffmpeg
pipe as the verifier, compares each with the original and prints the verdict, the edited
ranges and the worst smoothed curve values outside / inside the edited stretch (4-6 s; the
0.5 s mute is 4-4.5 s; the cut starts at 4 s).

With ``--pipeline`` it measures through the pipeline instead (about 2 minutes on 2 cores):

    .venv/bin/python bench/audio_suite.py --pipeline | tee bench/results/audio_suite.txt

Each clip (Megamind.avi; the 24 s synthetic speech-like clip of
tests/integration/test_audio_evidence.py, MP3, with a faint room-noise floor; the same clip
with pauses of digital silence) is ingested (segmented, fingerprinted, signed), then the
copies of that test (benign audio re-encodes, audio edits with the video stream-copied, audio
delayed 0.3 s) are compared by ``match_copy`` against the signed log. The curves printed are
the ones ``compare_audio`` decided on (captured as it computes them, per segment, along its
alignment): the worst 0.5 s-smoothed BER, |loudness difference| and |tonality difference|,
over the whole copy for benign copies, and inside the edit (its window +-0.3 s) / outside it
for edits, and the worst of the three as a multiple of its threshold (> 1: edited there).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "verifier"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vigil_verify import audio
from vigil_verify.audio import (
    BER_THRESHOLD,
    LEVEL_THRESHOLD_DB,
    LOUDNESS_THRESHOLD_DB,
    TONALITY_THRESHOLD_DB,
    AudioFingerprint,
    _pair,
    compare_audio,
    curves,
    fingerprint,
)
from vigil_verify.audio_tracks import audio_decode_args
from vigil_verify.compare import MatchReport

MEGAMIND = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")
FFMPEG = "ffmpeg"
EDIT = (4.0, 6.0)
_MONO48 = "aformat=channel_layouts=mono:sample_rates=48000"
_OUTSIDE = "volume=enable='not(between(t,4,6))':volume=0"

VARIANTS: dict[str, tuple[list[str], str]] = {
    "aac64": (["-c:a", "aac", "-b:a", "64k"], "m4a"),
    "aac128": (["-c:a", "aac", "-b:a", "128k"], "m4a"),
    "mp3": (["-c:a", "libmp3lame", "-b:a", "128k"], "mp3"),
    "resample44k": (["-ar", "44100", "-c:a", "pcm_s16le"], "wav"),
    "mono": (["-ac", "1", "-c:a", "aac", "-b:a", "96k"], "m4a"),
    "opus_webm": (["-c:a", "libopus", "-b:a", "64k"], "webm"),
    "mute0.5s": (["-af", "volume=enable='between(t,4,4.5)':volume=0", "-c:a", "pcm_s16le"], "wav"),
    "mute2s": (["-af", "volume=enable='between(t,4,6)':volume=0", "-c:a", "pcm_s16le"], "wav"),
    "noise2s": (
        [
            "-filter_complex",
            f"anoisesrc=a=0.1:d=60:r=48000,{_OUTSIDE}[n];"
            f"[0:a]{_MONO48},volume=enable='between(t,4,6)':volume=0[m];"
            "[m][n]amix=inputs=2:duration=first:normalize=0",
            "-c:a", "pcm_s16le",
        ],
        "wav",
    ),
    "cut1s": (["-af", "aselect='not(between(t,4,5))',asetpts=N/SR/TB", "-c:a", "pcm_s16le"], "wav"),
    "tone-20dB": (
        [
            "-filter_complex",
            f"sine=f=1000:d=60:r=48000,volume=-20dB,{_OUTSIDE}[t];"
            f"[0:a]{_MONO48}[m];[m][t]amix=inputs=2:duration=first:normalize=0",
            "-c:a", "pcm_s16le",
        ],
        "wav",
    ),
}  # fmt: skip
BENIGN = ("aac64", "aac128", "mp3", "resample44k", "mono", "opus_webm")


def make_synthetic(out: Path, seconds: float = 12.0) -> Path:
    """A speech-like clip: a gliding 150-400 Hz tone with harmonics, gated at ~4 Hz syllables
    with pauses, plus band-passed noise bursts (fricatives); testsrc2 video; AAC in MP4."""
    voice = (
        "aevalsrc='(0.25*sin(2*PI*(220+90*sin(2*PI*0.7*t))*t)"
        "+0.12*sin(4*PI*(220+90*sin(2*PI*0.7*t))*t)+0.06*sin(6*PI*(220+90*sin(2*PI*0.7*t))*t))"
        "*max(0,sin(2*PI*3.7*t))*(0.6+0.4*sin(2*PI*0.23*t))"
        f"*gt(sin(2*PI*0.4*t+1),-0.6)':s=48000:d={seconds}[v];"
        f"anoisesrc=a=0.2:d={seconds}:r=48000:seed=7,bandpass=f=1500:w=800,"
        "volume='0.5*gt(sin(2*PI*1.3*t),0.7)':eval=frame[f];"
        "[v][f]amix=inputs=2:normalize=0[a]"
    )
    subprocess.run(
        [
            FFMPEG, "-y", "-v", "error", "-f", "lavfi",
            "-i", f"testsrc2=s=320x240:r=25:d={seconds}",
            "-filter_complex", voice, "-map", "0:v", "-map", "[a]", "-c:v", "libx264",
            "-preset", "ultrafast", "-c:a", "aac", "-b:a", "192k", "-shortest", str(out),
        ],
        check=True,
    )  # fmt: skip
    return out


def fingerprint_file(path: Path) -> AudioFingerprint:
    pcm = subprocess.run(audio_decode_args(FFMPEG, path), capture_output=True, check=True).stdout
    return fingerprint(np.frombuffer(pcm, "<i2"))


def make_variant(source: Path, name: str, work: Path) -> Path:
    args, ext = VARIANTS[name]
    out = work / f"{source.stem}.{name}.{ext}"
    cmd = [FFMPEG, "-y", "-v", "error", "-i", str(source), "-vn", *args, str(out)]
    subprocess.run(cmd, check=True)
    return out


def measure(source: Path, work: Path) -> None:
    orig = fingerprint_file(source)
    print(f"\n## {source.name}: {len(orig)} frames")
    print(
        "| variant | verdict | mean BER | ranges (s) | BER out/in"
        " | loud dB out/in | tonal dB out/in | level dB out/in |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in VARIANTS:
        copy = fingerprint_file(make_variant(source, name, work))
        verdict = compare_audio(orig, copy)
        shift = round((copy.times[0] - orig.times[0] - verdict.offset) * orig.rate)
        i, j = _pair(orig, copy, shift)
        ber, loud, tonal, level = curves(orig, copy, i, j)
        inside = (orig.times[i] > EDIT[0] - 0.3) & (orig.times[i] < EDIT[1] + 0.3)
        ranges = ", ".join(f"{a:.2f}-{b:.2f}" for a, b in verdict.ranges) or "-"
        cols = [f"{c[~inside].max():.2f}/{c[inside].max():.2f}" for c in (ber, loud, tonal, level)]
        print(
            f"| {name} | {verdict.kind} | {verdict.distance:.3f} | {ranges} | "
            + " | ".join(cols)
            + " |"
        )


# -- through the pipeline (--pipeline) ------------------------------------------------------

Timed = tuple[
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
]
"""Original-timeline times, then ``vigil_verify.audio.Curves``: smoothed BER, |loudness
difference| dB, |tonality difference| dB, largest |band level difference| dB."""
LIMITS = (BER_THRESHOLD, LOUDNESS_THRESHOLD_DB, TONALITY_THRESHOLD_DB, LEVEL_THRESHOLD_DB)
NAMES = ("BER", "loud", "tonal", "level")


@contextmanager
def captured_curves() -> Iterator[list[Timed]]:
    """Every curve ``compare_audio`` computes while inside, with the original frames' times
    (one entry per segment and track compared)."""
    found: list[Timed] = []
    real = audio.curves

    def spy(
        orig: AudioFingerprint,
        copy: AudioFingerprint,
        i: NDArray[np.int64],
        j: NDArray[np.int64],
    ) -> audio.Curves:
        ber, loud, tonal, level = real(orig, copy, i, j)
        found.append((orig.times[i], ber, loud, tonal, level))
        return ber, loud, tonal, level

    with mock.patch.object(audio, "curves", side_effect=spy):
        yield found


@dataclass(frozen=True)
class Worst:
    """The worst value of each curve over some frames, and the worst against its threshold."""

    values: tuple[float, float, float, float]

    @classmethod
    def of(cls, parts: list[Timed], keep: NDArray[np.bool_] | None = None) -> Worst:
        times = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
        mask = np.ones(times.size, dtype=bool) if keep is None else keep
        values = tuple(
            float(np.concatenate([p[k] for p in parts])[mask].max()) if mask.any() else 0.0
            for k in (1, 2, 3, 4)
        )
        return cls((values[0], values[1], values[2], values[3]))

    @property
    def ratio(self) -> tuple[float, str]:
        ratios = [v / t for v, t in zip(self.values, LIMITS, strict=True)]
        k = int(np.argmax(ratios))
        return ratios[k], NAMES[k]

    def cell(self) -> str:
        ratio, name = self.ratio
        ber, loud, tonal, level = self.values
        return f"{ber:.2f} | {loud:.2f} | {tonal:.2f} | {level:.2f} | {ratio:.2f} ({name})"


def _verdict(report: MatchReport) -> str:
    pictures = {v.status for v in report.segments}
    sound = " ".join(f"{a.index}:{a.kind}" for a in report.audio)
    ranges = "; ".join(f"{x:.2f}-{y:.2f}" for a in report.audio for x, y in a.ranges)
    return f"{'/'.join(sorted(pictures))} | {sound} | {ranges or '-'}"


def _pipeline_clip(name: str, edits_of: str, source: Path, work: Path) -> str:
    """One clip ingested, its copies matched; prints its tables, returns its margin row."""
    from integrity.match import match_copy
    from tests.helpers import ingest_and_process
    from tests.integration.test_audio_evidence import BENIGN, EDITS, XFAIL
    from tests.tamper import audio_delay_command, audio_transcode_command, run
    from workers.app import build_app
    from workers.settings import Settings

    started = time.monotonic()
    app = build_app(Settings(data_dir=work / name / "vigil"))
    try:
        rec_id = ingest_and_process(app, source)
        spans = [(round(s.start_s, 2), round(s.end_s, 2)) for s in app.catalog.segments(rec_id)]
        print(f"\n## {name} ({source.name}): segments {spans}")

        def match(copy: Path) -> tuple[MatchReport, list[Timed]]:
            with captured_curves() as parts:
                report = match_copy(
                    app.catalog, app.tools, rec_id, copy, actor="bench", ledger=app.ledger
                )
            return report, parts

        print("\nBenign (worst over the whole copy):\n")
        print(
            "| copy | pictures | audio per segment | audio ranges (s) | BER | loud dB | tonal dB"
            " | level dB | worst x threshold |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        benign: list[float] = []
        for variant, (audio_args, video_args, ext) in BENIGN.items():
            copy = work / name / f"{variant}.{ext}"
            run(audio_transcode_command(FFMPEG, source, copy, audio=audio_args, video=video_args))
            report, parts = match(copy)
            worst = Worst.of(parts)
            benign.append(worst.ratio[0])
            print(f"| {variant} | {_verdict(report)} | {worst.cell()} |")
        print("\nEdits (worst inside the edit +-0.3 s / outside it):\n")
        print(
            "| copy | pictures | audio per segment | audio ranges (s) | BER in/out"
            " | loud dB in/out | tonal dB in/out | level dB in/out | worst in / out x threshold |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        inside_worst: list[float] = []
        for (clip_name, edit), made in EDITS.items():
            if clip_name != edits_of:
                continue
            copy = work / name / f"{edit}.mkv"
            run(made.command(FFMPEG, source, copy))
            report, parts = match(copy)
            times = np.concatenate([p[0] for p in parts])
            near = (times > made.start - 0.3) & (times < made.end + 0.3)
            inside, outside = Worst.of(parts, near), Worst.of(parts, ~near)
            inside_worst.append(inside.ratio[0])
            cells = " | ".join(
                f"{x:.2f} / {y:.2f}" for x, y in zip(inside.values, outside.values, strict=True)
            )
            known = " (xfail)" if (clip_name, edit) in XFAIL else ""
            print(
                f"| {edit} {made.start:g}-{made.end:g} s{known} | {_verdict(report)} | {cells}"
                f" | {inside.ratio[0]:.2f} ({inside.ratio[1]}) /"
                f" {outside.ratio[0]:.2f} ({outside.ratio[1]}) |"
            )
        copy = work / name / "delay0.3s.mkv"
        run(audio_delay_command(FFMPEG, source, copy, delay_s=0.3))
        report, _ = match(copy)
        detail = "; ".join(a.detail for a in report.audio)
        print(f"\nAudio delayed 0.3 s: {_verdict(report)} ({detail})")
        return (
            f"| {name} | {max(benign):.2f} | {min(inside_worst):.2f} |"
            f" {time.monotonic() - started:.0f} s |"
        )
    finally:
        app.stop()


def pipeline(work: Path) -> None:
    from tests.integration.test_audio_evidence import SPEECH_S, make_speech_clip

    speech = make_speech_clip(FFMPEG, work / "speech.mp4", seconds=SPEECH_S, floor=0.004)
    silent = make_speech_clip(FFMPEG, work / "silent.mp4", seconds=SPEECH_S, floor=0.0)
    clips = [
        *([("megamind", "megamind", MEGAMIND)] if MEGAMIND.exists() else []),
        ("speech", "speech", speech),
        ("silent-pauses", "speech", silent),  # the speech clip's edits, at the same places
    ]
    print(
        f"Thresholds: BER {BER_THRESHOLD}, loudness {LOUDNESS_THRESHOLD_DB} dB, tonality"
        f" {TONALITY_THRESHOLD_DB} dB (0.5 s means), band level {LEVEL_THRESHOLD_DB} dB (1 s"
        " mean); worst x threshold > 1 is edited there."
    )
    rows = [_pipeline_clip(name, edits_of, source, work) for name, edits_of, source in clips]
    print("\n## Margin: worst benign copy against the mildest edit (x threshold)\n")
    print("| clip | worst benign | mildest edit (inside) | time |")
    print("|---|---|---|---|")
    print("\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clip", type=Path, action="append", default=[])
    parser.add_argument("--pipeline", action="store_true", help="ingest and match_copy")
    args = parser.parse_args()
    clips: list[Path] = args.clip
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.pipeline:
            pipeline(work)
            return
        sources = [*clips, *([MEGAMIND] if MEGAMIND.exists() else [])]
        sources.append(make_synthetic(work / "synthetic_speech.mp4"))
        for source in sources:
            measure(source, work)


if __name__ == "__main__":
    main()
