"""Audio fingerprints (vigil_verify.audio) on real ffmpeg-made copies: benign re-encodes are
"same", muting / replacing / cutting / a mixed-in tone are "edited" and located.

The source is a 10 s speech-like clip made here (a gliding harmonic tone gated at syllable
rate, testsrc2 video, AAC), plus Megamind.avi (AC-3) when the OpenCV samples are installed.
Measurements and the thresholds' margins: docs/audio.md.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from vigil_verify.audio import AudioFingerprint, compare_audio, fingerprint
from vigil_verify.audio_tracks import audio_decode_args

pytestmark = pytest.mark.ffmpeg

MEGAMIND = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")
VOICE = (
    "aevalsrc='(0.3*sin(2*PI*(220+90*sin(2*PI*0.7*t))*t)"
    "+0.12*sin(4*PI*(220+90*sin(2*PI*0.7*t))*t))"
    "*max(0,sin(2*PI*3.7*t))*(0.6+0.4*sin(2*PI*0.23*t))':s=48000:d=10"
)
BENIGN = {
    "aac64": (["-c:a", "aac", "-b:a", "64k"], "m4a"),
    "opus_webm": (["-c:a", "libopus", "-b:a", "64k"], "webm"),
    "mp3": (["-c:a", "libmp3lame", "-b:a", "128k"], "mp3"),
}
EDITS = {
    "mute0.5s": (["-af", "volume=enable='between(t,4,4.5)':volume=0"], 4.0),
    "mute2s": (["-af", "volume=enable='between(t,4,6)':volume=0"], 4.0),
    "cut1s": (["-af", "aselect='not(between(t,4,5))',asetpts=N/SR/TB"], 4.0),
}


def _run(args: list[str]) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=60)


def _fp(ffmpeg: str, path: Path) -> AudioFingerprint:
    pcm = subprocess.run(
        audio_decode_args(ffmpeg, path), capture_output=True, check=True, timeout=60
    ).stdout
    return fingerprint(np.frombuffer(pcm, "<i2"))


@pytest.fixture(scope="module")
def source(ffmpeg: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("audio") / "speech.mp4"
    _run([
        ffmpeg, "-y", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=10",
        "-f", "lavfi", "-i", VOICE, "-c:v", "libx264", "-preset", "ultrafast",
        "-c:a", "aac", "-b:a", "192k", "-shortest", str(out),
    ])  # fmt: skip
    return out


@pytest.fixture(scope="module")
def original(ffmpeg: str, source: Path) -> AudioFingerprint:
    return _fp(ffmpeg, source)


def _variant(ffmpeg: str, source: Path, out: Path, args: list[str]) -> AudioFingerprint:
    _run([ffmpeg, "-y", "-v", "error", "-i", str(source), "-vn", *args, str(out)])
    return _fp(ffmpeg, out)


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_reencode_is_same(
    ffmpeg: str, source: Path, original: AudioFingerprint, tmp_path: Path, name: str
) -> None:
    args, ext = BENIGN[name]
    verdict = compare_audio(original, _variant(ffmpeg, source, tmp_path / f"c.{ext}", args))
    assert verdict.kind == "same", verdict
    assert abs(verdict.offset) < 0.05


@pytest.mark.parametrize("name", sorted(EDITS))
def test_edit_is_found_and_located(
    ffmpeg: str, source: Path, original: AudioFingerprint, tmp_path: Path, name: str
) -> None:
    args, start = EDITS[name]
    copy = _variant(ffmpeg, source, tmp_path / "c.wav", [*args, "-c:a", "pcm_s16le"])
    verdict = compare_audio(original, copy)
    assert verdict.kind == "edited", verdict
    assert abs(verdict.ranges[0][0] - start) < 0.5, verdict.ranges


def test_video_stream_copied_with_muted_audio_is_edited(
    ffmpeg: str, source: Path, original: AudioFingerprint, tmp_path: Path
) -> None:
    """The issue's case: video untouched (stream copy), 2 s of audio muted."""
    out = tmp_path / "muted.mp4"
    _run([
        ffmpeg, "-y", "-v", "error", "-i", str(source), "-c:v", "copy",
        "-af", "volume=enable='between(t,5,7)':volume=0", "-c:a", "aac", str(out),
    ])  # fmt: skip
    verdict = compare_audio(original, _fp(ffmpeg, out))
    assert verdict.kind == "edited"
    assert [round(a) for a in verdict.ranges[0]] == [5, 7]


@pytest.mark.skipif(not MEGAMIND.exists(), reason="OpenCV samples (Megamind.avi) not installed")
def test_megamind_ac3_tone_is_edited_and_aac_is_same(ffmpeg: str, tmp_path: Path) -> None:
    original = _fp(ffmpeg, MEGAMIND)
    aac = _variant(ffmpeg, MEGAMIND, tmp_path / "a.m4a", ["-c:a", "aac", "-b:a", "64k"])
    assert compare_audio(original, aac).kind == "same"
    tone = _variant(
        ffmpeg, MEGAMIND, tmp_path / "t.wav",
        ["-filter_complex",
         "sine=f=1000:d=60:r=48000,volume=-20dB,volume=enable='not(between(t,4,6))':volume=0[t];"
         "[0:a]aformat=channel_layouts=mono:sample_rates=48000[m];"
         "[m][t]amix=inputs=2:duration=first:normalize=0", "-c:a", "pcm_s16le"],
    )  # fmt: skip
    verdict = compare_audio(original, tone)
    assert verdict.kind == "edited"
    start, end = verdict.ranges[0]
    assert 4.0 - 0.5 < start < 6.0 and 4.0 < end < 6.5
