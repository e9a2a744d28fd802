"""Audio-only recordings (an interview recorder, a body camera in audio mode) on the custody
path like video ones, with the real ffmpeg on embedded defaults: ingest → stream-copied audio
segments cut on audio packets → SHA-256 chain → catalogue → complete. And a file with neither
video nor audio is refused with a message that says so.

The footage is made here with ffmpeg's lavfi (a tone mixed with noise), in the containers and
codecs such recorders write: AAC in .m4a, MP3, Opus in .ogg and .webm, PCM in .wav.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from vigil_verify.report import verify_package

from catalog.gaps import recording_gaps
from ingest.errors import NotVideo
from integrity.export import export_case
from integrity.match import match_copy
from tests.helpers import ingest_and_process, metadata, object_path, segment_path
from transcode.ffmpeg import ProcessRunner
from transcode.probe import NO_MEDIA, probe
from workers.app import Vigil

pytestmark = pytest.mark.ffmpeg

SECONDS = 25.0
TONE = "sine=frequency=440:duration={d}:sample_rate={r}"
NOISE = "anoisesrc=d={d}:a=0.05:r={r}:seed=7"


@dataclass(frozen=True)
class Kind:
    suffix: str
    codec: str  # as ffmpeg names it
    args: tuple[str, ...]
    rate: int
    segment_ext: str  # what the segments are: MPEG-TS when it carries the codec
    playback: str  # "copy": a browser plays the segments; "proxy": an AAC proxy is made


KINDS = {
    "aac_m4a": Kind("m4a", "aac", ("-c:a", "aac", "-b:a", "64k"), 48000, "ts", "copy"),
    "mp3": Kind("mp3", "mp3", ("-c:a", "libmp3lame", "-b:a", "64k"), 44100, "ts", "copy"),
    "opus_ogg": Kind("ogg", "opus", ("-c:a", "libopus", "-b:a", "48k"), 48000, "mkv", "proxy"),
    "opus_webm": Kind("webm", "opus", ("-c:a", "libopus", "-b:a", "48k"), 48000, "mkv", "proxy"),
    "pcm_wav": Kind("wav", "pcm_s16le", ("-c:a", "pcm_s16le"), 16000, "mkv", "proxy"),
}


def ffmpeg_run(ffmpeg: str, *args: str) -> None:
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
        check=True,
        capture_output=True,
        timeout=120,
    )


def make_audio(ffmpeg: str, out: Path, kind: Kind, seconds: float = SECONDS) -> Path:
    """A tone under noise (as a recorder in a room hears it), encoded as ``kind``."""
    tone = TONE.format(d=seconds, r=kind.rate)
    noise = NOISE.format(d=seconds, r=kind.rate)
    ffmpeg_run(
        ffmpeg, "-f", "lavfi", "-i", tone, "-f", "lavfi", "-i", noise,
        "-filter_complex", "amix=inputs=2:duration=first", *kind.args, str(out),
    )  # fmt: skip
    return out


@pytest.fixture
def audio_file(ffmpeg: str, tmp_path: Path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        kind = KINDS[name]
        return make_audio(ffmpeg, tmp_path / f"interview-{name}.{kind.suffix}", kind)

    return make


def count_rows(app: Vigil, table: str) -> int:
    with app.catalog.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def stored_files(app: Vigil) -> list[Path]:
    return sorted(p for p in app.settings.store_root.rglob("*") if p.is_file())


def only_audio(ffmpeg: str, path: Path, codec: str) -> int:
    """``path`` holds one stream, audio of ``codec``, and no video: its packet count."""
    found = probe(ProcessRunner(default_timeout_s=60), ffmpeg, path, timeout_s=60)
    assert found.video is None
    assert [s.media_type for s in found.streams] == ["audio"]
    assert found.audio is not None and found.audio.stream.codec == codec
    return found.audio.count


@pytest.mark.parametrize("name", list(KINDS))
def test_an_audio_only_recording_is_segmented_chained_and_complete(
    app: Vigil, ffmpeg: str, audio_file: Callable[[str], Path], name: str
) -> None:
    kind = KINDS[name]
    source = audio_file(name)
    source_packets = only_audio(ffmpeg, source, kind.codec)
    rec_id = ingest_and_process(app, source)
    rec = app.catalog.recording(rec_id)
    # Waits on workers.stages.PerceptualStage handling video_codec None (audio fingerprint
    # only); everything before it (status "segmented") is this path's own work.
    assert rec.status == "complete", rec.damage
    assert rec.damage is None
    assert (rec.video_codec, rec.audio_codec) == (None, kind.codec)
    assert (rec.width, rec.height, rec.fps) == (None, None, None)
    assert rec.duration_s == pytest.approx(SECONDS, abs=0.1)
    assert rec.playback == kind.playback

    segments = app.catalog.segments(rec_id)
    assert rec.segment_count == len(segments) == 3  # ~10 s each, cut on audio packets
    assert segments[0].start_s == pytest.approx(0.0, abs=1e-6)  # zero: the first audio packet
    assert segments[-1].end_s == pytest.approx(SECONDS, abs=0.1)
    for prev, nxt in itertools.pairwise(segments):
        assert nxt.start_s == pytest.approx(prev.end_s, abs=1e-6)  # no gap, no overlap
        assert 9.9 <= prev.end_s - prev.start_s <= 10.2
    assert all(s.holes is None for s in segments)
    assert recording_gaps(rec, segments, 1.0) == []  # no false gap between audio packets
    assert sum(s.frame_count for s in segments) == source_packets  # every packet kept
    for s in segments:
        assert s.key.endswith(f".{kind.segment_ext}")
        assert s.keyframes == "[]"  # no pictures, no keyframe hashes
        path = segment_path(app, s)
        assert only_audio(ffmpeg, path, kind.codec) == s.frame_count  # stream copy, audio only

    actions = [e.action for e in app.catalog.events(recording_ids=[rec_id])]
    assert actions.count("segment.stored") == 3
    assert "segment" in actions
    assert "flag.unreadable" not in actions and "flag.damaged" not in actions
    assert rec.playlist_key is not None
    listed = object_path(app, "derived", rec.playlist_key).read_text()
    assert [line for line in listed.splitlines() if line.startswith("seg-")] == [
        s.key.rpartition("/")[2] for s in segments
    ]
    assert "#EXT-X-DISCONTINUITY" not in listed
    if kind.playback == "proxy":  # an audio-only AAC proxy for what a browser cannot play
        proxies = app.catalog.proxy_segments(rec_id)
        assert proxies
        for p in proxies:
            only_audio(ffmpeg, object_path(app, "derived", p.key), "aac")
    # The original is kept byte-exact, and the recording verifies.
    assert object_path(app, "originals", rec.original_key).read_bytes() == source.read_bytes()
    assert app.verifier.verify_recording(rec_id, actor="test").ok


def test_a_hole_in_the_audio_is_one_gap_at_its_place(
    app: Vigil, ffmpeg: str, tmp_path: Path
) -> None:
    """12 s of AAC, 2 s with no packet (a recorder's storage hiccup), 12 s more: the hole is
    found from the audio packets' own cadence, once, where it is; nothing else is a gap."""
    parts = []
    for at, (offset, tone) in enumerate(((0, 300), (14, 500))):
        part = tmp_path / f"part{at}.ts"
        ffmpeg_run(
            ffmpeg, "-f", "lavfi", "-i", f"sine=frequency={tone}:duration=12:sample_rate=48000",
            "-c:a", "aac", "-b:a", "64k", "-output_ts_offset", str(offset),
            "-f", "mpegts", "-muxdelay", "0", "-muxpreload", "0", str(part),
        )  # fmt: skip
        parts.append(part.read_bytes())
    source = tmp_path / "recorder.ts"
    source.write_bytes(b"".join(parts))
    rec_id = ingest_and_process(app, source)
    rec = app.catalog.recording(rec_id)
    assert rec.status == "complete", rec.damage
    segments = app.catalog.segments(rec_id)
    gaps = recording_gaps(rec, segments, 1.0)
    assert len(gaps) == 1
    assert gaps[0].kind == "gap"
    assert gaps[0].start == pytest.approx(12.0, abs=0.05)
    assert gaps[0].seconds == pytest.approx(2.0, abs=0.1)
    assert segments[-1].end_s == pytest.approx(26.0, abs=0.1)


def test_a_file_that_is_not_media_at_all_is_refused(app: Vigil, tmp_path: Path) -> None:
    bogus = tmp_path / "statement.m4a"
    bogus.write_text("a typed statement, not a recording\n" * 100)
    with pytest.raises(NotVideo, match=r"statement\.m4a: ") as info:
        app.ingest.ingest_file(bogus, metadata(bogus.name), actor="test")
    assert "Invalid data" in str(info.value)
    assert str(tmp_path) not in str(info.value)
    assert app.run_pipeline() == 0
    assert stored_files(app) == []
    assert count_rows(app, "recordings") == 0


def test_a_container_with_neither_video_nor_audio_is_refused_and_nothing_is_written(
    app: Vigil, ffmpeg: str, tmp_path: Path
) -> None:
    subtitles = tmp_path / "notes.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:02,000\nsubject arrives\n")
    only_text = tmp_path / "captions.mp4"  # a real MP4, its one track timed text
    ffmpeg_run(ffmpeg, "-i", str(subtitles), "-c:s", "mov_text", str(only_text))
    with pytest.raises(NotVideo, match=f"captions.mp4: .*{NO_MEDIA}") as info:
        app.ingest.ingest_file(only_text, metadata(only_text.name), actor="test")
    assert str(tmp_path) not in str(info.value)
    assert app.run_pipeline() == 0
    assert stored_files(app) == []
    assert count_rows(app, "recordings") == 0
    assert count_rows(app, "custody_events") == 0


SPEECH = (  # syllables at a varying rate and pitch, pauses, under room noise
    "0.3*sin(2*PI*(150+40*sin(2*PI*0.31*t))*t)*pow(max(0,sin(2*PI*(2.7+0.9*sin(2*PI*0.17*t))*t)),2)"
    "*gt(sin(2*PI*0.23*t+1.3),-0.3)+0.02*(random(0)-0.5)"
)


def make_speech(ffmpeg: str, out: Path, *args: str, seconds: float = SECONDS) -> Path:
    ffmpeg_run(
        ffmpeg, "-f", "lavfi", "-i", f"aevalsrc='{SPEECH}':s=48000:d={seconds}",
        *args, str(out),
    )  # fmt: skip
    return out


def test_an_audio_only_recording_is_fingerprinted_matched_exported_and_verified(
    app: Vigil, ffmpeg: str, tmp_path: Path
) -> None:
    """The sound is all there is, and it is evidence: signed per-segment fingerprints; an MP3
    of the interview is the same; 2 s muted is an edit at its place, in ``vigil match`` and in
    a package ``vigil-verify`` checks; nothing else is flagged."""
    source = make_speech(ffmpeg, tmp_path / "interview.m4a", "-c:a", "aac", "-b:a", "96k")
    rec_id = ingest_and_process(app, source)
    events = app.catalog.events(recording_ids=[rec_id])
    hashed = [json.loads(e.detail or "{}") for e in events if e.action == "segment.hashed"]
    assert len(hashed) == 3 and all(h["audio_tracks"] == 1 and h["audio_sha256"] for h in hashed)

    mp3 = tmp_path / "copy.mp3"
    ffmpeg_run(ffmpeg, "-i", str(source), "-c:a", "libmp3lame", "-b:a", "64k", str(mp3))
    same = match_copy(app.catalog, app.tools, rec_id, mp3, actor="test", ledger=app.ledger)
    assert same.clean and [a.kind for a in same.audio] == ["same"] * 3, same.audio

    muted = tmp_path / "muted.m4a"
    ffmpeg_run(
        ffmpeg, "-i", str(source), "-af", "volume=enable='between(t,13,15)':volume=0",
        "-c:a", "aac", "-b:a", "96k", str(muted),
    )  # fmt: skip
    edited = match_copy(app.catalog, app.tools, rec_id, muted, actor="test", ledger=app.ledger)
    assert not edited.clean
    assert [a.kind for a in edited.audio] == ["same", "edited", "same"], edited.audio
    ((start, end),) = edited.audio[1].ranges
    assert start == pytest.approx(13.0, abs=0.5) and end == pytest.approx(15.0, abs=0.5)

    app.cases.link("CASE-INTERVIEW", rec_id, from_s=None, to_s=None, reason="review", actor="sam")
    package = export_case(
        app.catalog, app.store, app.ledger, "CASE-INTERVIEW", tmp_path / "export",
        actor="sam", reason="disclosure", tolerance_frames=1.0, device_tolerance_s=2.0,
        worm_checkpoints=app.worm_checkpoints(), segment_files=app.segment_files,
    )  # fmt: skip
    assert verify_package(package, ffmpeg=ffmpeg).clean
    (seg,) = [p for p in (package / rec_id / "segments").iterdir() if p.name.startswith("seg-00001")
              and p.suffix in (".ts", ".mkv")]  # fmt: skip
    assert seg.with_suffix(".vgat").is_file()
    stand_in = tmp_path / f"stand-in{seg.suffix}"
    ffmpeg_run(
        ffmpeg, "-i", str(seg), "-af", "volume=enable='between(t,3,5)':volume=0",
        "-c:a", "aac", "-b:a", "96k", str(stand_in),
    )  # fmt: skip
    stand_in.replace(seg)
    report = verify_package(package, ffmpeg=ffmpeg)
    assert {f.index: f.kind for f in report.segments} == {0: "intact", 1: "edited", 2: "intact"}
    (found,) = [f for f in report.segments if f.index == 1]
    assert found.audio == "edited", found
    ((start, end),) = found.audio_ranges
    assert start == pytest.approx(13.0, abs=0.5) and end == pytest.approx(15.0, abs=0.5)
