"""A corpus of field-style inputs (issue 17), made by ffmpeg at test time, and what Vigil says
about each: ingest completes, ``vigil verify`` is clean, the file and a benign re-encode match
their own recording as "same", the only gaps are the ones built in (each at its time), and
segments keep their target length (10 s) on both sides of a timestamp jump.

tests/integration/test_field_timing.py has the timing cases at 4 s segments with exact lengths
and frame counts; this corpus runs every container and codec a camera hands in through the
whole path, at the default segment length; two clips are written by another ffmpeg version
than the one Vigil reads them with (imageio-ffmpeg's 9.x against Debian's 5.1). Rotation and
moov-less recovery have their own tests. A check that fails today is an
``xfail(strict=True)`` naming the cause.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from catalog.gaps import recording_gaps
from catalog.models import Recording, Segment
from integrity.match import match_copy
from tests.helpers import ingest_and_process, made_once, object_path
from tests.tamper import reencode_command
from transcode.tracks import extra_tracks
from workers.app import Vigil, build_app
from workers.settings import Settings

pytestmark = pytest.mark.ffmpeg

SEGMENT_S = 10.0  # the default target length
GOP_S = 1.0  # every clip has a keyframe each second: a cut lands at most this late
WRAP_S = 2**33 / 90_000  # the 33-bit MPEG-TS clock wraps after this many seconds (~26.5 h)
JUMP_S = 3600.0

# Speech-like: a gliding pitch with a harmonic, in syllables, slowly louder and softer.
VOICE = (
    "aevalsrc='(0.3*sin(2*PI*(220+90*sin(2*PI*0.7*t))*t)"
    "+0.12*sin(4*PI*(220+90*sin(2*PI*0.7*t))*t))"
    "*max(0,sin(2*PI*3.7*t))*(0.6+0.4*sin(2*PI*0.23*t))':s=48000:d={d:g}"
)

X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
AAC = ["-c:a", "aac", "-b:a", "96k"]
KEY_EACH_SECOND = ["-g", "30", "-force_key_frames", "expr:gte(t,n_forced)"]
MJPEG = ["-c:v", "mjpeg", "-q:v", "6", "-pix_fmt", "yuvj420p"]
HEVC = [
    *("-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", "-pix_fmt", "yuv420p"),
    *("-x265-params", "keyint=30:min-keyint=30:scenecut=0:bframes=0:log-level=error"),
]


def _command(
    ffmpeg: str,
    out: Path,
    *,
    seconds: float,
    size: str = "320x240",
    video: list[str],
    audio: list[str] = AAC,
    more: list[str] = (),  # type: ignore[assignment]
    inputs: list[str] = (),  # type: ignore[assignment]
) -> list[str]:
    """testsrc2 at 30 fps with a voice-like track; ``video``/``audio``: codecs and their
    options; ``inputs``: more inputs; ``more``: filters, maps and muxer options."""
    return [
        ffmpeg, "-v", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration={seconds:g}",
        "-f", "lavfi", "-i", VOICE.format(d=seconds), *inputs,
        *video, *audio, *more, str(out),
    ]  # fmt: skip


def _run(cmd: list[str]) -> None:
    """Made once, then copied from the test footage's cache (``made_once``)."""
    made_once(cmd, lambda: subprocess.run(cmd, check=True, timeout=120, capture_output=True))


def _x264(bframes: int = 0) -> list[str]:
    return [*X264, "-bf", str(bframes), *KEY_EACH_SECOND]


def _ts_at(offset_s: float) -> list[str]:
    """MPEG-TS whose first timestamp is ``offset_s`` (no mux delay added)."""
    return [
        "-f",
        "mpegts",
        "-muxdelay",
        "0",
        "-muxpreload",
        "0",
        "-output_ts_offset",
        f"{offset_s}",
    ]


@dataclass(frozen=True)
class Clip:
    name: str
    suffix: str
    build: Callable[[str, Path], None]
    gaps: tuple[tuple[float, float], ...] = ()  # built in: (start on the timeline, seconds)
    notes: str = ""
    xfail: dict[str, str] = field(default_factory=dict)  # check -> why it fails today


def _simple(seconds: float, video: list[str], **kw: object) -> Callable[[str, Path], None]:
    def build(ffmpeg: str, out: Path) -> None:
        _run(_command(ffmpeg, out, seconds=seconds, video=video, **kw))  # type: ignore[arg-type]

    return build


# 30 fps for 9 s, 10 fps (every third frame) for 10 s, 30 fps again for 9 s.
_SLOW_MIDDLE = "lt(t,9)+gte(t,19)+not(mod(n,3))"


def _jump(ffmpeg: str, out: Path) -> None:
    """Two 14 s runs of one MPEG-TS, the second's clock an hour ahead: 10 s + 4 s each side."""
    before, after = out.with_name("jump-a.ts"), out.with_name("jump-b.ts")
    _run(_command(ffmpeg, before, seconds=14, video=_x264(), more=_ts_at(10)))
    _run(_command(ffmpeg, after, seconds=14, video=_x264(), more=_ts_at(10 + 14 + JUMP_S)))
    out.write_bytes(before.read_bytes() + after.read_bytes())


def _extra_tracks(ffmpeg: str, out: Path) -> None:
    """MOV with a mov_text subtitle track and a QuickTime timecode (tmcd, a data track)."""
    srt = out.with_name("captions.srt")
    srt.write_text(
        "".join(
            f"{i + 1}\n00:00:{2 * i:02d},000 --> 00:00:{2 * i + 1:02d},500\nline {i + 1}\n\n"
            for i in range(12)
        )
    )
    cmd = _command(
        ffmpeg,
        out,
        seconds=25,
        video=_x264(),
        inputs=["-i", str(srt)],
        more=[
            *("-map", "0:v", "-map", "1:a", "-map", "2:s", "-c:s", "mov_text"),
            *("-timecode", "01:00:00:00"),
        ],
    )
    _run(cmd)


def _other_ffmpeg(system: str) -> str:
    """Another ffmpeg than the one Vigil runs, to write recordings the way other versions do:
    imageio-ffmpeg's build (9.x here, against Debian's 5.1); the system's when it has none."""
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        return system


def _by_other_ffmpeg(seconds: float, video: list[str], **kw: object) -> Callable[[str, Path], None]:
    def build(ffmpeg: str, out: Path) -> None:
        tool = _other_ffmpeg(ffmpeg)
        _run(_command(tool, out, seconds=seconds, video=video, **kw))  # type: ignore[arg-type]

    return build


CLIPS: tuple[Clip, ...] = (
    Clip(
        "vfr-30-10-30",
        "mp4",
        _simple(28, _x264(), more=["-vf", f"select='{_SLOW_MIDDLE}'", "-fps_mode", "vfr"]),
        notes="30 fps, then 10 fps from 9 s to 19 s, then 30 fps",
    ),
    Clip(
        "bodycam-fmp4",
        "mp4",
        _simple(28, _x264(bframes=2), more=["-movflags", "frag_keyframe+empty_moov"]),
        notes="fragmented, B-frames, no edit list: video starts 0.067 s after audio",
    ),
    Clip(
        "cmaf",
        "mp4",
        _simple(
            28,
            _x264(bframes=2),
            more=["-movflags", "cmaf+frag_keyframe+empty_moov+default_base_moof"],
        ),
    ),
    Clip("mov", "mov", _simple(28, _x264(bframes=2))),
    Clip(
        "obs-mkv",
        "mkv",
        _simple(28, _x264(bframes=2), more=["-f", "matroska", "-live", "1"]),
        notes="as OBS writes it while recording: no cues, no duration, 1 ms timestamps",
    ),
    Clip(
        "avi",
        "avi",
        _simple(
            28,
            ["-c:v", "mpeg4", "-q:v", "5", "-bf", "0", *KEY_EACH_SECOND],
            audio=["-c:a", "libmp3lame", "-b:a", "96k"],
        ),
        notes="MPEG-4 Part 2 and MP3 (ffmpeg's AVI muxer writes the 2nd frame as a 0-byte "
        "drop frame: one dropped frame, which is no gap)",
    ),
    Clip(
        "ts-hour-jump",
        "ts",
        _jump,
        gaps=((14.0, JUMP_S),),
        notes="segment 1's stored audio holds packets from after the jump, and its signed "
        "fingerprint the hour of silence aresample=async=1 fills in up to them; a copy with the "
        "gap closed (ffmpeg's defaults close it) is heard against each segment's own span",
    ),
    Clip(
        "ts-pts-wrap",
        "ts",
        _simple(28, _x264(), more=_ts_at(round(WRAP_S - 13, 3))),
        notes="starts 13 s before the 33-bit wrap",
    ),
    Clip("subtitle-timecode", "mov", _extra_tracks),
    Clip(
        "hevc",
        "mp4",
        _simple(22, HEVC),
    ),
    Clip(
        "mjpeg",
        "avi",
        _simple(22, MJPEG, audio=["-c:a", "pcm_s16le"]),
    ),
    Clip("uhd-4k", "mp4", _simple(3, _x264(), size="3840x2160")),
    Clip(
        "other-ffmpeg-mp4",
        "mp4",
        _by_other_ffmpeg(22, _x264(bframes=2)),
        notes="written by another ffmpeg version (imageio-ffmpeg's), B-frames, edit list",
    ),
    Clip(
        "other-ffmpeg-fmp4",
        "mp4",
        _by_other_ffmpeg(22, _x264(bframes=2), more=["-movflags", "frag_keyframe+empty_moov"]),
        notes="fragmented MP4 written by another ffmpeg version",
    ),
)
BY_NAME = {c.name: c for c in CLIPS}


@dataclass(frozen=True)
class Recorded:
    clip: Clip
    source: Path
    app: Vigil
    rec_id: str

    @property
    def rec(self) -> Recording:
        return self.app.catalog.recording(self.rec_id)

    @property
    def segments(self) -> list[Segment]:
        return self.app.catalog.segments(self.rec_id)


@pytest.fixture(scope="module")
def corpus(
    ffmpeg: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Recorded]]:
    """Each clip made and ingested once, when a test first asks for it, in its own store."""
    made: dict[str, Recorded] = {}

    def get(name: str) -> Recorded:
        if name not in made:
            clip = BY_NAME[name]
            root = tmp_path_factory.mktemp(name)
            source = root / f"{name}.{clip.suffix}"
            clip.build(ffmpeg, source)
            app = build_app(Settings(data_dir=root / "vigil"))
            made[name] = Recorded(clip, source, app, "")
            made[name] = Recorded(clip, source, app, ingest_and_process(app, source))
        return made[name]

    yield get
    for recorded in made.values():
        recorded.app.stop()


def cases(check: str) -> list[object]:
    """Every clip, the ones failing ``check`` today marked with why."""
    return [
        pytest.param(
            c.name,
            id=c.name,
            marks=[pytest.mark.xfail(strict=True, reason=c.xfail[check])]
            if check in c.xfail
            else [],
        )
        for c in CLIPS
    ]


def _edits(report: object) -> list[tuple[int, str, list[tuple[str, float, float]]]]:
    return [
        (v.index, v.status, [(e.kind, e.start, e.end) for e in v.edits])
        for v in report.segments  # type: ignore[attr-defined]
    ]


# -- the checks, on every clip ------------------------------------------------------------------


@pytest.mark.parametrize("name", cases("ingest"))
def test_ingest_completes(corpus: Callable[[str], Recorded], name: str) -> None:
    recorded = corpus(name)
    rec = recorded.rec
    assert (rec.status, rec.damage) == ("complete", None)
    assert recorded.segments


@pytest.mark.parametrize("name", cases("verify"))
def test_verify_is_clean(corpus: Callable[[str], Recorded], name: str) -> None:
    recorded = corpus(name)
    result = recorded.app.verifier.verify_recording(recorded.rec_id, actor="test")
    assert result.ok, result.problems


@pytest.mark.parametrize("name", cases("match-self"))
def test_the_file_itself_matches_its_recording(
    corpus: Callable[[str], Recorded], name: str
) -> None:
    """By its pictures and sound (decoded), not by its packets."""
    r = corpus(name)
    report = match_copy(
        r.app.catalog, r.app.tools, r.rec_id, r.source, actor="test", ledger=r.app.ledger,
        by_packets=False,
    )  # fmt: skip
    assert report.clean, (_edits(report), report.extra, report.audio)
    assert {v.status for v in report.segments} == {"same"}


@pytest.mark.parametrize("name", cases("packets"))
def test_every_packet_is_signed_and_a_remux_matches_by_them(
    corpus: Callable[[str], Recorded], name: str, ffmpeg: str
) -> None:
    """Issue 18: each segment's packets in the original are signed (stream by stream, with no
    packet left out), and a remux of the file to Matroska holds every one of them."""
    r = corpus(name)
    ranges = [s.packet_ranges for s in r.segments]
    assert all(ranges), [i for i, got in enumerate(ranges) if not got]
    for n in range(len(ranges[0])):
        firsts = [seg[n].first for seg in ranges]
        assert firsts == [sum(seg[n].count for seg in ranges[:k]) for k in range(len(ranges))]
    remux = r.source.with_name(f"{name}-remux.mkv")
    _run([ffmpeg, "-v", "error", "-y", "-i", str(r.source), "-map", "0:v:0", "-map", "0:a?",
          "-c", "copy", str(remux)])  # fmt: skip
    report = match_copy(
        r.app.catalog, r.app.tools, r.rec_id, remux, actor="test", ledger=r.app.ledger
    )
    event = [e for e in r.app.catalog.events(recording_ids=[r.rec_id]) if e.action == "match"][-1]
    assert report.clean, (_edits(report), report.extra, report.audio)
    assert json.loads(event.detail or "{}")["by_packets"] is True


@pytest.mark.parametrize("name", cases("match-crf23"))
def test_a_crf23_reencode_matches_its_recording(
    corpus: Callable[[str], Recorded], ffmpeg: str, name: str
) -> None:
    r = corpus(name)
    copy = r.source.with_name(f"{name}-crf23.mkv")
    _run(reencode_command(ffmpeg, r.source, copy, crf=23))
    report = match_copy(
        r.app.catalog, r.app.tools, r.rec_id, copy, actor="test", ledger=r.app.ledger
    )
    assert report.clean, (_edits(report), report.extra, report.audio)
    assert {v.status for v in report.segments} == {"same"}


@pytest.mark.parametrize("name", cases("match-defaults"))
def test_a_reencode_with_ffmpegs_defaults_matches_its_recording(
    corpus: Callable[[str], Recorded], ffmpeg: str, name: str
) -> None:
    """What a reviewer or the defence does without thinking about it, ``ffmpeg -i FILE
    copy.mp4``: a constant frame rate where the muxer wants one, every picture change rounded
    to its grid, new audio priming. Timing, not content: "same"."""
    r = corpus(name)
    copy = r.source.with_name(f"{name}-defaults.mp4")
    _run([ffmpeg, "-v", "error", "-nostdin", "-y", "-i", str(r.source), str(copy)])
    report = match_copy(
        r.app.catalog, r.app.tools, r.rec_id, copy, actor="test", ledger=r.app.ledger
    )
    assert report.clean, (_edits(report), report.extra, report.audio)
    assert {v.status for v in report.segments} == {"same"}


@pytest.mark.parametrize("name", cases("gaps"))
def test_the_only_gaps_are_the_ones_built_in(corpus: Callable[[str], Recorded], name: str) -> None:
    r = corpus(name)
    tolerance = r.app.settings.continuity_tolerance_frames  # what `vigil case show` uses
    found = recording_gaps(r.rec, r.segments, tolerance)
    assert [(g.kind, round(g.start, 2), round(g.seconds, 2)) for g in found] == [
        ("gap", pytest.approx(start, abs=0.05), pytest.approx(seconds, abs=0.05))
        for start, seconds in r.clip.gaps
    ]


@pytest.mark.parametrize("name", cases("lengths"))
def test_segments_keep_their_target_length(corpus: Callable[[str], Recorded], name: str) -> None:
    """Every segment but the last of a run (before a built-in gap, or the end) is 10 s, cut at
    the first keyframe at or after 10 s: not a segment per keyframe after a jump."""
    r = corpus(name)
    segments = r.segments
    gap_starts = [start for start, _ in r.clip.gaps]
    lengths = [round(s.end_s - s.start_s, 3) for s in segments]
    for s, length in zip(segments[:-1], lengths, strict=False):
        if any(abs(s.end_s - g) < 0.05 for g in gap_starts):
            assert length <= SEGMENT_S + GOP_S + 1e-3, lengths
        else:
            assert SEGMENT_S - 1e-3 <= length <= SEGMENT_S + GOP_S + 1e-3, lengths
    assert lengths[-1] <= SEGMENT_S + GOP_S + 1e-3, lengths


# -- subtitle, data and timecode tracks ---------------------------------------------------------


def _header(ffmpeg: str, path: Path) -> str:
    return subprocess.run(
        [ffmpeg, "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stderr


def test_extra_tracks_are_kept_in_the_stored_original(
    corpus: Callable[[str], Recorded], ffmpeg: str
) -> None:
    r = corpus("subtitle-timecode")
    rec = r.rec
    stored = object_path(r.app, "originals", rec.original_key)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == rec.sha256
    kinds = [t.kind for t in extra_tracks(_header(ffmpeg, stored))]
    assert kinds == ["subtitle", "timecode"]


def test_segments_carry_only_video_and_audio(
    corpus: Callable[[str], Recorded], ffmpeg: str
) -> None:
    """What happens: MPEG-TS segments cannot carry mov_text or tmcd, so the segments have the
    video and audio only (the original keeps the rest)."""
    r = corpus("subtitle-timecode")
    segment = r.segments[0]
    path = object_path(r.app, "derived", segment.key)
    assert extra_tracks(_header(ffmpeg, path)) == ()


def test_extra_tracks_are_listed_in_the_catalogue_saying_where_they_are_kept(
    corpus: Callable[[str], Recorded],
) -> None:
    rec = corpus("subtitle-timecode").rec
    listed = getattr(rec, "extra_tracks", None) or getattr(rec, "tracks", None)
    assert listed, "the catalogue lists no subtitle/data/timecode track"
    assert "subtitle" in str(listed) and "timecode" in str(listed)
    assert "original" in str(listed)  # where each is kept: the segments cannot carry them
