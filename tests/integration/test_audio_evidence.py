"""Audio evidence through the real pipeline (issue 16, "what it must show"): a clip is
ingested once (segmented, its segments' audio fingerprinted and signed), then copies made by
ffmpeg are compared with it by ``match_copy`` against the signed log, as ``vigil match`` does.

- Benign audio re-encodes (AAC 64k / 128k, MP3, 44.1 kHz, mono downmix, Opus in WebM with VP8
  video) are the same: every segment's pictures and sound.
- Audio edits with the video stream-copied (0.5 s and 2 s muted, 2 s replaced by other speech
  or by noise, 1 s of audio cut, a 1 kHz tone mixed in at -20 dB) are "edited" in exactly the
  segments where they were made, located within 0.5 s on the original's timeline; the other
  segments' sound is the same. A cut moves the later audio 1 s earlier against the pictures:
  the later segments are "desync". Audio delayed by 0.3 s is "desync" everywhere.
- Pauses of digital silence (the synthetic clip without its noise floor) survive AAC 64k.

Clips: Megamind.avi (AC-3, 11 s, ingested as one segment, 0-11.26 s) and a 24 s synthetic
speech-like clip with MP3 audio (three 10 s segments; made here: a gliding harmonic voice gated
at syllable rate with pauses, fricative noise bursts, a faint room-noise floor). The issue's
box.mp4 (MP3) is not on the machines these run on; the synthetic clip's MP3 stands in for it.
The distances behind these verdicts: ``bench/audio_suite.py --pipeline``, docs/audio.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from vigil_verify.audio_tracks import SegmentAudio
from vigil_verify.compare import MatchReport

from integrity.match import match_copy
from tests.conftest import opencv_sample
from tests.helpers import ingest_and_process
from tests.tamper import (
    audio_cut_command,
    audio_delay_command,
    audio_mute_command,
    audio_replace_command,
    audio_tone_command,
    audio_transcode_command,
    run,
)
from workers.app import Vigil, build_app
from workers.settings import Settings

pytestmark = pytest.mark.ffmpeg

TOLERANCE_S = 0.5
SPEECH_S = 24.0


def speech_graph(seconds: float, floor: float) -> str:
    """The synthetic clip's sound: a voice gliding 130-310 Hz with two harmonics, gated at
    3.7 syllables a second and paused 0.74 s every 2.5 s (1.11-1.85 s, 3.61-4.35 s, ...);
    band-passed noise bursts (fricatives); pink room noise at ``floor`` amplitude (0: none,
    digital silence in the pauses)."""
    f0 = "(220+90*sin(2*PI*0.7*t))"
    voice = (
        f"aevalsrc='(0.25*sin(2*PI*{f0}*t)+0.12*sin(4*PI*{f0}*t)+0.06*sin(6*PI*{f0}*t))"
        "*max(0,sin(2*PI*3.7*t))*(0.6+0.4*sin(2*PI*0.23*t))"
        f"*gt(sin(2*PI*0.4*t+1),-0.6)':s=48000:d={seconds}[v];"
        f"anoisesrc=a=0.2:d={seconds}:r=48000:seed=7,bandpass=f=1500:w=800,"
        "volume='0.5*gt(sin(2*PI*1.3*t),0.7)':eval=frame[f];"
    )
    if not floor:
        return voice + "[v][f]amix=inputs=2:normalize=0[a]"
    return (
        voice + f"anoisesrc=c=pink:a={floor}:d={seconds}:r=48000:seed=3[r];"
        "[v][f][r]amix=inputs=3:normalize=0[a]"
    )


def make_speech_clip(ffmpeg: str, out: Path, *, seconds: float, floor: float) -> Path:
    """testsrc2 video (320x240, 25 fps, a key frame a second) and the speech-like sound,
    MP3 192k stereo, in MP4."""
    run([
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
        "-f", "lavfi", "-i", f"testsrc2=s=320x240:r=25:d={seconds}",
        "-filter_complex", speech_graph(seconds, floor), "-map", "0:v", "-map", "[a]",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
        "-c:a", "libmp3lame", "-b:a", "192k", "-ac", "2", "-shortest", str(out),
    ])  # fmt: skip
    return out


@dataclass(frozen=True)
class Recorded:
    name: str
    app: Vigil
    rec_id: str
    source: Path
    spans: dict[int, tuple[float, float]]

    def match(self, copy: Path) -> MatchReport:
        return match_copy(
            self.app.catalog, self.app.tools, self.rec_id, copy,
            actor="test", ledger=self.app.ledger,
        )  # fmt: skip

    def touching(self, start: float, end: float) -> set[int]:
        return {k for k, (a, b) in self.spans.items() if a < end and start < b}


def _recorded(name: str, source: Path, tmp: Path) -> Iterator[Recorded]:
    app = build_app(Settings(data_dir=tmp / "vigil"))
    try:
        rec_id = ingest_and_process(app, source)
        spans = {s.index: (s.start_s, s.end_s) for s in app.catalog.segments(rec_id)}
        assert all(s.audio is not None for s in app.catalog.segments(rec_id))
        yield Recorded(name, app, rec_id, source, spans)
    finally:
        app.stop()


@pytest.fixture(scope="module")
def megamind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    source = opencv_sample("Megamind.avi")
    yield from _recorded("megamind", source, tmp_path_factory.mktemp("megamind"))


@pytest.fixture(scope="module")
def speech(ffmpeg: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    tmp = tmp_path_factory.mktemp("speech")
    source = make_speech_clip(ffmpeg, tmp / "speech.mp4", seconds=SPEECH_S, floor=0.004)
    yield from _recorded("speech", source, tmp)


@pytest.fixture(scope="module", params=["megamind", "speech"])
def clip(request: pytest.FixtureRequest) -> Recorded:
    recorded: Recorded = request.getfixturevalue(request.param)
    return recorded


def audio_of(report: MatchReport) -> dict[int, SegmentAudio]:
    return {a.index: a for a in report.audio}


def summary(report: MatchReport) -> str:
    pictures = [(v.index, v.status) for v in report.segments]
    return f"pictures {pictures}; audio {[(a.index, a.kind, a.detail) for a in report.audio]}"


# -- benign re-encodes: the same ---------------------------------------------------------------

_VP8 = ("-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M")
BENIGN: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "aac64k": (("-c:a", "aac", "-b:a", "64k"), ("-c:v", "copy"), "mkv"),
    "aac128k": (("-c:a", "aac", "-b:a", "128k"), ("-c:v", "copy"), "mkv"),
    "mp3": (("-c:a", "libmp3lame", "-b:a", "128k"), ("-c:v", "copy"), "mkv"),
    "44.1kHz": (("-c:a", "aac", "-b:a", "128k", "-ar", "44100"), ("-c:v", "copy"), "mkv"),
    "mono": (("-c:a", "aac", "-b:a", "96k", "-ac", "1"), ("-c:v", "copy"), "mkv"),
    "opus-webm": (("-c:a", "libopus", "-b:a", "64k"), _VP8, "webm"),
}


@pytest.mark.parametrize("variant", list(BENIGN))
def test_a_benign_audio_re_encode_is_the_same(
    clip: Recorded, ffmpeg: str, tmp_path: Path, variant: str
) -> None:
    audio, video, ext = BENIGN[variant]
    copy = tmp_path / f"copy.{ext}"
    run(audio_transcode_command(ffmpeg, clip.source, copy, audio=audio, video=video))
    report = clip.match(copy)
    assert [v.status for v in report.segments] == ["same"] * len(clip.spans), summary(report)
    assert sorted(audio_of(report)) == sorted(clip.spans), summary(report)
    assert all(a.kind == "same" for a in report.audio), summary(report)
    assert report.clean, summary(report)


# -- edits: found, in the right segments, placed within 0.5 s -----------------------------------


@dataclass(frozen=True)
class AudioEdit:
    start: float  # where it was made, original's timeline (s)
    end: float
    command: Callable[[str, Path, Path], list[str]]
    point: bool = False  # a cut: only its start is a place; the sound after it moved


def _mute(a: float, b: float) -> AudioEdit:
    return AudioEdit(a, b, lambda f, s, o: audio_mute_command(f, s, o, start_s=a, duration_s=b - a))


def _replace(a: float, b: float, source: str) -> AudioEdit:
    return AudioEdit(
        a,
        b,
        lambda f, s, o: audio_replace_command(f, s, o, start_s=a, duration_s=b - a, source=source),
    )


def _cut(at: float) -> AudioEdit:
    return AudioEdit(
        at, at + 1.0, lambda f, s, o: audio_cut_command(f, s, o, at_s=at, duration_s=1.0), True
    )


def _tone(a: float, b: float) -> AudioEdit:
    return AudioEdit(a, b, lambda f, s, o: audio_tone_command(f, s, o, start_s=a, duration_s=b - a))


# Megamind: one segment, 0-11.26 s. Speech: segments 0-10, 10-20, 20-24 s; its voice pauses at
# 1.11-1.85 s + 2.5 k s, so a short mute is placed in speech (12.3-12.8 s).
EDITS: dict[tuple[str, str], AudioEdit] = {
    ("megamind", "mute0.5s"): _mute(4.0, 4.5),
    ("megamind", "mute2s"): _mute(4.0, 6.0),
    ("megamind", "speech2s"): _replace(4.0, 6.0, "speech"),
    ("megamind", "noise2s"): _replace(6.5, 8.5, "noise"),
    ("megamind", "cut1s"): _cut(4.0),
    ("megamind", "tone-20dB"): _tone(4.0, 6.0),
    ("speech", "mute0.5s"): _mute(12.3, 12.8),
    ("speech", "mute2s"): _mute(4.5, 6.5),
    ("speech", "mute2s-across-boundary"): _mute(9.0, 11.0),
    ("speech", "speech2s"): _replace(14.5, 16.5, "speech"),
    ("speech", "noise2s"): _replace(2.0, 4.0, "noise"),
    ("speech", "cut1s"): _cut(5.0),
    ("speech", "tone-20dB"): _tone(21.0, 23.0),
}


XFAIL: dict[tuple[str, str], str] = {}
"""Edits a known limit keeps from being placed (none now: the Megamind tone under speech, once
placed 0.67 s late, is found by its band's level, docs/audio.md)."""


def _edit_param(clip_name: str, edit: str) -> object:
    reason = XFAIL.get((clip_name, edit))
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(clip_name, edit, id=f"{clip_name}-{edit}", marks=marks)


@pytest.mark.parametrize(("clip_name", "edit"), [_edit_param(*key) for key in EDITS])
def test_an_audio_edit_is_found_in_its_segment_and_placed(
    request: pytest.FixtureRequest, ffmpeg: str, tmp_path: Path, clip_name: str, edit: str
) -> None:
    recorded: Recorded = request.getfixturevalue(clip_name)
    made = EDITS[clip_name, edit]
    copy = tmp_path / "copy.mkv"
    run(made.command(ffmpeg, recorded.source, copy))
    report = recorded.match(copy)
    heard = audio_of(report)
    assert [v.status for v in report.segments] == ["same"] * len(recorded.spans), summary(report)
    where = recorded.touching(made.start, made.start + 1e-3 if made.point else made.end)
    after = {k for k, (a, _) in recorded.spans.items() if a >= made.end} if made.point else set()
    expected = {
        k: "edited" if k in where else "desync" if k in after else "same" for k in recorded.spans
    }
    assert {k: a.kind for k, a in heard.items()} == expected, summary(report)
    ranges = sorted(r for k in where for r in heard[k].ranges)
    assert abs(ranges[0][0] - made.start) <= TOLERANCE_S, (made, ranges)
    if not made.point:
        assert abs(max(b for _, b in ranges) - made.end) <= TOLERANCE_S, (made, ranges)


def test_audio_delayed_against_the_pictures_is_out_of_sync(
    clip: Recorded, ffmpeg: str, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.mkv"
    run(audio_delay_command(ffmpeg, clip.source, copy, delay_s=0.3))
    report = clip.match(copy)
    assert [v.status for v in report.segments] == ["same"] * len(clip.spans), summary(report)
    assert {a.index: a.kind for a in report.audio} == dict.fromkeys(clip.spans, "desync"), summary(
        report
    )
    assert all("0.30 s late" in a.detail for a in report.audio), summary(report)


def test_pauses_of_digital_silence_survive_aac_64k(
    ffmpeg: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The synthetic clip without its room-noise floor: pauses of exact silence, where the
    tonality of what a coder leaves is noise (0 dB in the segment, 8.2 dB in an AAC 64k copy
    at 12.8 s): its 0.5 s mean differs by up to 2.3 dB, under the 3 dB threshold (at 1.5 dB,
    12.63-13.09 s and 21.97-22.39 s were called edited)."""
    tmp = tmp_path_factory.mktemp("silent")
    source = make_speech_clip(ffmpeg, tmp / "silent.mp4", seconds=SPEECH_S, floor=0.0)
    with contextmanager(_recorded)("silent-pauses", source, tmp) as recorded:
        copy = tmp / "copy.mkv"
        audio, video, _ = BENIGN["aac64k"]
        run(audio_transcode_command(ffmpeg, source, copy, audio=audio, video=video))
        report = recorded.match(copy)
        assert all(a.kind == "same" for a in report.audio), summary(report)
