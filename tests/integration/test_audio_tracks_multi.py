"""Several audio tracks through the real pipeline, with the real ffmpeg on embedded defaults:
every track is kept, byte-copied, in every evidence segment; the catalogue counts them; each
segment's signed ``segment.hashed`` event fingerprints them all; the case timeline (CLI text
and API) says which tracks the recording has. A one-track recording still says one.

The footage is made here with ffmpeg's lavfi: a test picture, and one tone per track at its
own frequency (440 Hz, 1000 Hz), so that a track copied in the place of another would show.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from integrity.timeline import case_timeline
from interfaces.api.routes.cases import _timeline_out
from interfaces.cli.render import render_timeline
from tests.helpers import ingest_and_process, segment_path
from transcode.ffmpeg import ProcessRunner
from transcode.probe import probe
from transcode.tracks import AudioTrack
from workers.app import Vigil

pytestmark = pytest.mark.ffmpeg

SECONDS = 14.0  # two segments of ~10 s
TONES = (440, 1000)
RATE = 48000


def ffmpeg_run(ffmpeg: str, *args: str) -> bytes:
    done = subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return done.stdout


def make_clip(ffmpeg: str, out: Path, audio_codecs: Sequence[str]) -> Path:
    """H.264 test picture, one tone per entry of ``audio_codecs`` (encoded with that codec),
    the first track said to be English."""
    args = [
        "-f", "lavfi", "-i", f"testsrc=size=160x120:rate=25:duration={SECONDS}",
    ]  # fmt: skip
    for tone in TONES[: len(audio_codecs)]:
        args += [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={tone}:duration={SECONDS}:sample_rate={RATE}",
        ]
    args += ["-map", "0:v"]
    for index, codec in enumerate(audio_codecs):
        args += ["-map", f"{index + 1}:a", f"-c:a:{index}", codec]
    if audio_codecs:
        args += ["-metadata:s:a:0", "language=eng"]
    args += [
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", str(out),
    ]  # fmt: skip
    ffmpeg_run(ffmpeg, *args)
    return out


def tone_of(ffmpeg: str, path: Path, track: int) -> float:
    """The loudest frequency (Hz) of audio track ``track`` of ``path``."""
    pcm = ffmpeg_run(
        ffmpeg, "-i", str(path), "-map", f"0:a:{track}", "-ac", "1", "-ar", str(RATE),
        "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1",
    )  # fmt: skip
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / RATE)[int(np.argmax(spectrum))])


def audio_streams(ffmpeg: str, path: Path) -> list[str]:
    """The codec of each audio stream of ``path``, in order (and it has one video stream)."""
    found = probe(ProcessRunner(default_timeout_s=60), ffmpeg, path, timeout_s=60)
    assert [s.media_type for s in found.streams].count("video") == 1
    return [s.codec for s in found.streams if s.media_type == "audio"]


def hashed_tracks(app: Vigil, rec_id: str) -> list[int | None]:
    """``audio_tracks`` of each signed ``segment.hashed`` event of the recording."""
    return [
        json.loads(e.detail or "{}").get("audio_tracks")
        for e in app.catalog.events(recording_ids=[rec_id])
        if e.action == "segment.hashed"
    ]


def timeline_text(app: Vigil, rec_id: str) -> tuple[str, int | None]:
    """The CLI timeline of a case holding the recording, and the API's ``audio_tracks``."""
    app.cases.link("CASE-AUDIO", rec_id, from_s=None, to_s=None, reason="review", actor="sam")
    timeline = case_timeline(
        app.catalog,
        "CASE-AUDIO",
        tolerance_frames=app.settings.continuity_tolerance_frames,
        device_tolerance_s=app.settings.device_gap_tolerance_s,
    )
    return render_timeline(timeline), _timeline_out(timeline).recordings[0].audio_tracks


@pytest.mark.parametrize(
    ("suffix", "codecs", "segment_ext", "playback"),
    [
        ("mp4", ("aac", "aac"), "ts", "copy"),
        # MPEG-TS cannot carry PCM: Matroska segments (every track copied), a review proxy
        ("mov", ("aac", "pcm_s16le"), "mkv", "proxy"),
        ("mkv", ("aac", "pcm_s16le"), "mkv", "proxy"),
    ],
)
def test_every_audio_track_is_kept_counted_hashed_and_said(
    app: Vigil,
    ffmpeg: str,
    tmp_path: Path,
    suffix: str,
    codecs: tuple[str, str],
    segment_ext: str,
    playback: str,
) -> None:
    source = make_clip(ffmpeg, tmp_path / f"two-mics.{suffix}", codecs)
    probed = probe(ProcessRunner(default_timeout_s=60), ffmpeg, source, timeout_s=60)
    assert probed.audio_tracks == (
        AudioTrack(codecs[0], "mono", "eng"),
        AudioTrack(codecs[1], "mono", None),
    )

    rec_id = ingest_and_process(app, source)
    rec = app.catalog.recording(rec_id)
    assert rec.status == "complete", rec.damage
    assert rec.damage is None
    assert (rec.audio_tracks, rec.audio_codec, rec.playback) == (2, codecs[0], playback)

    segments = app.catalog.segments(rec_id)
    assert len(segments) == 2
    for seg in segments:
        assert seg.key.endswith(f".{segment_ext}")
        path = segment_path(app, seg)
        assert audio_streams(ffmpeg, path) == list(codecs)  # both tracks, as recorded
        # each in its own place: the first track's tone first, the second's second
        assert tone_of(ffmpeg, path, 0) == pytest.approx(TONES[0], abs=5)
        assert tone_of(ffmpeg, path, 1) == pytest.approx(TONES[1], abs=5)
    assert hashed_tracks(app, rec_id) == [2, 2]  # signed: both fingerprinted

    text, api_tracks = timeline_text(app, rec_id)
    assert f"audio 2 tracks (first {codecs[0]})" in text
    assert api_tracks == 2
    assert app.verifier.verify_recording(rec_id, actor="test").ok


def test_a_single_track_recording_still_says_one(app: Vigil, ffmpeg: str, tmp_path: Path) -> None:
    source = make_clip(ffmpeg, tmp_path / "one-mic.mp4", ("aac",))
    rec_id = ingest_and_process(app, source)
    rec = app.catalog.recording(rec_id)
    assert rec.status == "complete", rec.damage
    assert (rec.audio_tracks, rec.audio_codec) == (1, "aac")
    for seg in app.catalog.segments(rec_id):
        assert audio_streams(ffmpeg, segment_path(app, seg)) == ["aac"]
    assert hashed_tracks(app, rec_id) == [1, 1]
    text, api_tracks = timeline_text(app, rec_id)
    assert "audio 1 track (aac)" in text
    assert api_tracks == 1


def test_a_recording_without_audio_says_none(app: Vigil, ffmpeg: str, tmp_path: Path) -> None:
    source = make_clip(ffmpeg, tmp_path / "silent.mp4", ())
    rec_id = ingest_and_process(app, source)
    rec = app.catalog.recording(rec_id)
    assert rec.status == "complete", rec.damage
    assert (rec.audio_tracks, rec.audio_codec) == (0, None)
    text, api_tracks = timeline_text(app, rec_id)
    assert "audio none" in text
    assert api_tracks == 0
