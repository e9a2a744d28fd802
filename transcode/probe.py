"""Probe a media file with ffmpeg alone: streams, packet timing, keyframes, damage.

The probe reads ffmpeg's ``framecrc`` output (see ``commands.probe_command``): a header per
stream and one line per packet. It never decodes, so it runs at hundreds of times realtime,
and it needs no ffprobe, which pip-installed ffmpeg builds do not ship.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from vigil_verify.continuity import Cadence, cadence
from vigil_verify.errors import ErrorKind

from transcode.commands import (
    Media,
    first_packet_command,
    probe_command,
    probe_video_many_command,
    sniff_command,
)
from transcode.errors import TranscodeError
from transcode.ffmpeg import FfmpegFailed, ProcessRunner
from transcode.tracks import AudioTrack, ExtraTrack, audio_languages, extra_tracks, header_rotation

# Codecs a browser plays inside HLS/MPEG-TS without transcoding.
PLAYABLE_VIDEO = frozenset({"h264"})
PLAYABLE_AUDIO = frozenset({"aac"})
# An audio-only recording's: HLS players take AAC or MP3 in MPEG-TS as an audio rendition.
PLAYABLE_AUDIO_ONLY = frozenset({"aac", "mp3"})
NO_MEDIA = "holds neither video nor audio that ffmpeg can read"

NOPTS = -(2**63)  # AV_NOPTS_VALUE, printed for packets without a timestamp
DEFAULT_TOLERANCE_FRAMES = 1.0  # the default of Settings.continuity_tolerance_frames
_HEADER = re.compile(r"^#(?P<key>[a-z_]+) (?P<index>\d+): (?P<value>.*)$")
_INPUT = re.compile(r"^Input #0, (?P<format>.+), from ")
_DURATION = re.compile(r"Duration: (?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)")
_DAMAGE_WORDS = (
    "invalid", "corrupt", "error", "truncat", "missing", "not found", "partial", "incomplete",
    "non monoton", "failed",
)  # fmt: skip


class ProbeError(TranscodeError):
    """The file could not be probed."""


class NotVideoError(ProbeError):
    """The file holds no readable video stream (where video is needed)."""


class NoMediaError(NotVideoError):
    """The file holds neither video nor audio that ffmpeg can read: nothing to segment.

    A ``NotVideoError`` too, so that callers which refuse or flag a file without video do the
    same for one without either; an audio-only file is no longer one of them."""

    kind = ErrorKind.INVALID


@dataclass(frozen=True)
class StreamInfo:
    index: int
    media_type: str
    codec: str
    time_base: Fraction
    width: int | None = None
    height: int | None = None
    sample_rate: int | None = None
    channels: str | None = None  # an audio stream's channel layout, as ffmpeg names it


@dataclass(frozen=True)
class Track:
    """One stream's packets, in file order, as arrays (thousands of packets per minute).

    ``number`` is each packet's place among all the packets ffmpeg passed on for the stream
    (those without timestamps or without data included, which the arrays leave out): what the
    segment muxer counts for ``-segment_frames``. None: packet i is number i.
    """

    stream: StreamInfo
    pts: NDArray[np.int64]
    duration: NDArray[np.int64]
    size: NDArray[np.int64]
    key: NDArray[np.bool_]
    number: NDArray[np.int64] | None = None

    @property
    def count(self) -> int:
        return int(self.pts.size)

    @property
    def numbers(self) -> NDArray[np.int64]:
        return self.number if self.number is not None else np.arange(self.count, dtype=np.int64)

    @property
    def start_s(self) -> float:
        return float(self.pts.min() * self.stream.time_base) if self.count else 0.0

    @property
    def end_s(self) -> float:
        """End of presentation: the last picture's time plus how long it is held (its packet
        duration, or the recording's closing cadence when the pictures come slower than the
        packets claim, as from a variable-rate camera; see ``vigil_verify.continuity``)."""
        if not self.count:
            return 0.0
        last = int(np.argmax(self.pts))
        tb = float(self.stream.time_base)
        held = max(float(max(self.duration[last], 0)) * tb, self.timing().closing_hold_s)
        return float(self.pts[last]) * tb + held

    @property
    def frame_duration_s(self) -> float:
        """The typical frame duration (median of positive packet durations)."""
        positive = self.duration[self.duration > 0]
        if positive.size:
            return float(np.median(positive) * self.stream.time_base)
        ordered = np.sort(self.pts)
        steps = np.diff(ordered)
        return float(np.median(steps) * self.stream.time_base) if steps.size else 0.0

    @property
    def fps(self) -> float:
        frame = self.frame_duration_s
        return 1.0 / frame if frame > 0 else 0.0

    def keyframe_times(self) -> NDArray[np.float64]:
        tb = float(self.stream.time_base)
        return np.sort(self.pts[self.key]).astype(np.float64) * tb

    @cached_property
    def order(self) -> NDArray[np.intp]:
        """Packet positions in presentation order (B-frames put back in place)."""
        return np.argsort(self.pts, kind="stable")

    def times_s(self) -> NDArray[np.float64]:
        """Presentation times in seconds, in presentation order."""
        return self.pts[self.order].astype(np.float64) * float(self.stream.time_base)

    def timing(self, tolerance_frames: float = DEFAULT_TOLERANCE_FRAMES) -> Cadence:
        """The pictures judged against their own cadence (``vigil_verify.continuity``)."""
        if tolerance_frames == DEFAULT_TOLERANCE_FRAMES:
            return self._default_timing
        return cadence(self.times_s(), tolerance_frames)

    @cached_property
    def _default_timing(self) -> Cadence:
        return cadence(self.times_s(), DEFAULT_TOLERANCE_FRAMES)

    @property
    def hold_s(self) -> float:
        """The longest interval between pictures that is not a gap (``timing``).

        One frame for a constant-rate camera; longer for variable-rate ones, which hold a
        picture for a few hundred milliseconds in the dark.
        """
        if self.count < 2:
            return self.frame_duration_s
        return self.timing().longest_hold_s or self.frame_duration_s

    def gaps(self, tolerance_frames: float) -> list[tuple[float, float]]:
        """Where no picture was recorded, judged against the track's own cadence: (end of the
        hold of the picture before, start of the picture after), in seconds."""
        return self.timing(tolerance_frames).holes()

    def jumps(self, tolerance_s: float) -> list[tuple[float, float]]:
        """Holes in the timeline longer than ``tolerance_s``: (end of the frame before, start of
        the frame after), in seconds. One tolerance for the whole track; ``gaps`` judges each
        interval against the cadence around it."""
        if self.count < 2:
            return []
        order = self.order
        pts = self.pts[order]
        ends = pts + np.maximum(self.duration[order], 0)
        tb = float(self.stream.time_base)
        gaps = (pts[1:] - ends[:-1]).astype(np.float64) * tb
        where = np.nonzero(gaps > tolerance_s)[0]
        return [(float(ends[i] * tb), float(pts[i + 1] * tb)) for i in where]


@dataclass(frozen=True)
class ProbeResult:
    container: str | None
    declared_duration_s: float | None
    streams: tuple[StreamInfo, ...]
    video: Track | None
    audio: Track | None
    complaints: tuple[str, ...] = field(default=())
    exit_code: int = 0
    languages: tuple[str | None, ...] = field(default=())  # of the audio streams, in order
    # clockwise degrees (0, 90, 180, 270) that make the video's stored pixels upright, from
    # its display matrix (``transcode.tracks.header_rotation``); stream-copied segments lose
    # the matrix, so it is catalogued and applied wherever a segment is decoded (issue 17)
    rotation: int = 0
    # the subtitle, data and timecode tracks (``transcode.tracks.extra_tracks``): the segments
    # map only video and audio, so the original alone keeps them (issue 17)
    extra_tracks: tuple[ExtraTrack, ...] = field(default=())

    @property
    def audio_tracks(self) -> tuple[AudioTrack, ...]:
        """Every audio stream, in stream order: what the segments carry, each byte-copied.
        ``audio`` is the first of them with packets."""
        audio = [s for s in self.streams if s.media_type == "audio"]
        if not audio and self.audio is not None:  # a result made without its stream list
            audio = [self.audio.stream]
        languages = (*self.languages, *(None,) * len(audio))
        return tuple(
            AudioTrack(s.codec, s.channels, language)
            for s, language in zip(audio, languages, strict=False)
        )

    @property
    def timeline_track(self) -> Track | None:
        """The track the recording's timeline is on: its video, or an audio-only recording's
        audio."""
        return self.video if self.video is not None else self.audio

    @property
    def primary(self) -> Track:
        """``timeline_track``, which there is (``probe`` returns no result with neither)."""
        track = self.timeline_track
        if track is None:
            raise NoMediaError(NO_MEDIA)
        return track

    @property
    def audio_only(self) -> bool:
        return self.video is None and self.audio is not None

    @property
    def playable(self) -> bool:
        """Browser-playable as is: H.264 video and AAC audio (or none), stored upright (a
        stream copy loses a display matrix); audio-only, AAC or MP3."""
        if self.video is None:
            return self.audio is not None and self.audio.stream.codec in PLAYABLE_AUDIO_ONLY
        if self.video.stream.codec not in PLAYABLE_VIDEO or self.rotation:
            return False  # a turned picture: its segments lost the matrix, so play a proxy
        return self.audio is None or self.audio.stream.codec in PLAYABLE_AUDIO

    @property
    def damaged(self) -> bool:
        return self.exit_code != 0 or bool(self.complaints) or self.truncated

    @property
    def truncated(self) -> bool:
        """Fewer seconds of packets than the container header declares (of the video, or of
        an audio-only recording's audio)."""
        track = self.timeline_track
        if track is None or self.declared_duration_s is None:
            return False
        frame = track.frame_duration_s or 0.04
        covered = track.end_s - track.start_s
        return covered + 2 * frame < self.declared_duration_s * 0.98

    def describe_damage(self) -> str:
        parts: list[str] = []
        track = self.timeline_track
        if self.truncated and track is not None and self.declared_duration_s is not None:
            covered = track.end_s - track.start_s
            parts.append(
                f"truncated: packets cover {covered:.2f} s of the {self.declared_duration_s:.2f} s"
                " the container declares"
            )
        parts.extend(self.complaints[:5])
        if self.exit_code and not parts:
            parts.append(f"ffmpeg exited with code {self.exit_code} while reading")
        return "; ".join(parts)


def _parse_header(stderr_head: str) -> tuple[str | None, float | None]:
    container: str | None = None
    duration: float | None = None
    for line in stderr_head.splitlines():
        stripped = line.strip()
        if container is None and (m := _INPUT.match(stripped)):
            container = m.group("format")
        if duration is None and (m := _DURATION.search(stripped)):
            duration = int(m.group("h")) * 3600 + int(m.group("m")) * 60 + float(m.group("s"))
    return container, duration


def _complaints(stderr: str) -> tuple[str, ...]:
    found: list[str] = []
    for line in stderr.splitlines():
        low = line.lower()
        if any(word in low for word in _DAMAGE_WORDS) and line not in found:
            found.append(line.strip())
    return tuple(found)


def parse_framecrc(text: str) -> tuple[tuple[StreamInfo, ...], dict[int, Track]]:
    """Parse ffmpeg ``framecrc`` output into stream descriptions and per-stream packet arrays."""
    headers: dict[int, dict[str, str]] = {}
    rows: dict[int, list[tuple[int, int, int, int, bool]]] = {}
    seen: dict[int, int] = {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("#"):
            if m := _HEADER.match(line):
                headers.setdefault(int(m.group("index")), {})[m.group("key")] = m.group("value")
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 6:
            continue
        index, dts, pts = int(parts[0]), int(parts[1]), int(parts[2])
        duration, size = int(parts[3]), int(parts[4])
        number = seen.get(index, 0)
        seen[index] = number + 1
        if pts == NOPTS:
            if dts == NOPTS:
                continue
            pts = dts
        if size == 0:
            continue  # an empty packet (AVI's "repeat the last frame"): no picture of its own
        key = not any(p.startswith("F=") and int(p[2:], 16) & 1 == 0 for p in parts[6:])
        rows.setdefault(index, []).append((pts, duration, size, number, key))
    streams: list[StreamInfo] = []
    tracks: dict[int, Track] = {}
    for index in sorted(headers):
        h = headers[index]
        num, _, den = h.get("tb", "1/1").partition("/")
        width = height = None
        if "dimensions" in h:
            w, _, hh = h["dimensions"].partition("x")
            width, height = int(w), int(hh)
        info = StreamInfo(
            index=index,
            media_type=h.get("media_type", "unknown"),
            codec=h.get("codec_id", "unknown"),
            time_base=Fraction(int(num), int(den or 1)),
            width=width,
            height=height,
            sample_rate=int(h["sample_rate"]) if "sample_rate" in h else None,
            channels=h.get("channel_layout_name"),
        )
        streams.append(info)
        data = rows.get(index, [])
        arr = np.array([r[:4] for r in data], dtype=np.int64).reshape(-1, 4)
        tracks[index] = Track(
            stream=info,
            pts=arr[:, 0].copy(),
            duration=arr[:, 1].copy(),
            size=arr[:, 2].copy(),
            key=np.array([r[4] for r in data], dtype=np.bool_),
            number=arr[:, 3].copy(),
        )
    return tuple(streams), tracks


def _last_line(text: str, source: Path) -> str:
    """ffmpeg's last word on ``source``, naming the file but not the folder it is in."""
    lines = text.strip().splitlines()
    return lines[-1].strip().replace(str(source), source.name) if lines else ""


def _readable(tracks: dict[int, Track], media_type: str) -> Track | None:
    """The first stream of ``media_type`` with packets, else None."""
    return next((t for t in tracks.values() if t.stream.media_type == media_type and t.count), None)


def probe(
    runner: ProcessRunner,
    ffmpeg: str,
    source: Path,
    timeout_s: float = 600,
    *,
    keyframes_to: Path | None = None,
    on_line: Callable[[str], None] | None = None,
) -> ProbeResult:
    """Probe ``source``: its video and audio packets. An audio-only recording (audio packets,
    no video) gives ``video=None``; ``NoMediaError`` if ffmpeg reads neither.

    ``keyframes_to`` and ``on_line``: see ``probe_command`` (``transcode.keyframes`` uses them).
    Keyframes need pictures: with ``keyframes_to``, a file without video raises
    ``NotVideoError``.
    """
    result = runner.run(
        probe_command(ffmpeg, source, keyframes_to=keyframes_to),
        timeout_s=timeout_s,
        capture_stdout=True,
        check=False,
        on_line=on_line,
    )
    streams, tracks = parse_framecrc(result.stdout.decode("ascii", "replace"))
    container, declared = _parse_header(result.stderr_head)
    video = _readable(tracks, "video")
    audio = _readable(tracks, "audio")
    said = _last_line(result.stderr_tail, source)
    if video is None and keyframes_to is not None:  # ffmpeg read nothing: no video to decode
        raise NotVideoError(f"{source.name}: no readable video stream")
    if video is None and audio is None:
        raise NoMediaError(f"{source.name}: {NO_MEDIA}" + (f" ({said})" if said else ""))
    return ProbeResult(
        container=container,
        declared_duration_s=declared,
        streams=streams,
        video=video,
        audio=audio,
        complaints=_complaints(result.stderr_tail),
        exit_code=result.returncode,
        languages=audio_languages(result.stderr_head),
        rotation=header_rotation(result.stderr_head) if video is not None else 0,
        extra_tracks=extra_tracks(result.stderr_head),
    )


def probe_many(
    runner: ProcessRunner,
    ffmpeg: str,
    sources: Sequence[Path],
    timeout_s: float = 600,
    media: Media = "video",
) -> list[Track]:
    """The ``media`` track (video, or an audio-only file's audio) of each source, read by one
    ffmpeg run. Raises if any is unreadable."""
    if not sources:
        return []
    result = runner.run(
        probe_video_many_command(ffmpeg, sources, media),
        timeout_s=timeout_s,
        capture_stdout=True,
    )
    _streams, tracks = parse_framecrc(result.stdout.decode("ascii", "replace"))
    found: list[Track] = []
    for index, source in enumerate(sources):
        track = tracks.get(index)
        if track is None or track.count == 0 or track.stream.media_type != media:
            raise NotVideoError(f"{source.name}: no readable {media} stream")
        found.append(track)
    return found


def probe_video_many(
    runner: ProcessRunner, ffmpeg: str, sources: Sequence[Path], timeout_s: float = 600
) -> list[Track]:
    """The video track of each source, read by one ffmpeg run. Raises if any is unreadable."""
    return probe_many(runner, ffmpeg, sources, timeout_s, "video")


def first_pts(
    runner: ProcessRunner, ffmpeg: str, source: Path, timeout_s: float = 60, media: Media = "video"
) -> float | None:
    """The presentation time (s) of ``source``'s first ``media`` packet in file order (for
    audio: of an audio-only file), or None."""
    result = runner.run(
        first_packet_command(ffmpeg, source, media), timeout_s=timeout_s, capture_stdout=True
    )
    _streams, tracks = parse_framecrc(result.stdout.decode("ascii", "replace"))
    track = next((t for t in tracks.values() if t.stream.media_type == media), None)
    if track is None or not track.count:
        return None
    return float(track.pts[0] * track.stream.time_base)


def first_video_pts(
    runner: ProcessRunner, ffmpeg: str, source: Path, timeout_s: float = 60
) -> float | None:
    """The presentation time (s) of ``source``'s first video packet in file order, or None."""
    return first_pts(runner, ffmpeg, source, timeout_s, "video")


def has_video(runner: ProcessRunner, ffmpeg: str, source: Path, timeout_s: float = 60) -> bool:
    """Does ffmpeg read a video packet from ``source``?"""
    try:
        return first_video_pts(runner, ffmpeg, source, timeout_s) is not None
    except FfmpegFailed:
        return False


def sniff(runner: ProcessRunner, ffmpeg: str, source: Path, timeout_s: float = 60) -> str | None:
    """A quick look: ``None`` if ffmpeg reads a video or an audio packet, else the reason:
    ``NO_MEDIA`` when the container opens but holds neither stream, else ffmpeg's own last
    line (which may name ``source`` by its full path: the caller puts its own name in)."""
    try:
        result = runner.run(sniff_command(ffmpeg, source), timeout_s=timeout_s, capture_stdout=True)
    except FfmpegFailed as exc:
        if "does not contain any stream" in exc.stderr_tail:
            return NO_MEDIA
        lines = exc.stderr_tail.strip().splitlines()
        return lines[-1].strip() if lines else f"ffmpeg exited with code {exc.returncode}"
    if not any(line and not line.startswith(b"#") for line in result.stdout.splitlines()):
        return "no video or audio packet found"
    return None
