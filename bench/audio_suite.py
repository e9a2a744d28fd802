"""Measure vigil_verify.audio on benign re-encodes and audio edits (issue 16).

Run from the repo root (about 20 s on 2 cores):

    .venv/bin/python bench/audio_suite.py [--clip PATH ...] | tee bench/results/audio_suite.txt

For each clip (Megamind.avi, AC-3, if present; and a synthetic speech-like clip made here by
ffmpeg: a gliding tone with syllable-rate amplitude modulation plus band-passed noise, with a
testsrc2 video track) it makes audio variants, fingerprints them through the same ffmpeg
pipe as the verifier, compares each with the original and prints the verdict, the edited
ranges and the worst smoothed curve values outside / inside the edited stretch (4-6 s; the
0.5 s mute is 4-4.5 s; the cut starts at 4 s).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "verifier"))

from vigil_verify.audio import (
    AudioFingerprint,
    _pair,
    audio_decode_args,
    compare_audio,
    curves,
    fingerprint,
)

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
        " | loud dB out/in | tonal dB out/in |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in VARIANTS:
        copy = fingerprint_file(make_variant(source, name, work))
        verdict = compare_audio(orig, copy)
        shift = round((copy.times[0] - orig.times[0] - verdict.offset) * orig.rate)
        i, j = _pair(orig, copy, shift)
        ber, loud, tonal = curves(orig, copy, i, j)
        inside = (orig.times[i] > EDIT[0] - 0.3) & (orig.times[i] < EDIT[1] + 0.3)
        ranges = ", ".join(f"{a:.2f}-{b:.2f}" for a, b in verdict.ranges) or "-"
        cols = [f"{c[~inside].max():.2f}/{c[inside].max():.2f}" for c in (ber, loud, tonal)]
        print(
            f"| {name} | {verdict.kind} | {verdict.distance:.3f} | {ranges} | "
            + " | ".join(cols)
            + " |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clip", type=Path, action="append", default=[])
    clips: list[Path] = parser.parse_args().clip
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sources = [*clips, *([MEGAMIND] if MEGAMIND.exists() else [])]
        sources.append(make_synthetic(work / "synthetic_speech.mp4"))
        for source in sources:
            measure(source, work)


if __name__ == "__main__":
    main()
