"""Every audio track of a file, fingerprinted on a timeline, and compared segment by segment.

The server (at ingest, ``vigil match``, ``vigil verify``) and the stand-alone verifier decode
with the same arguments (``audio_decode_args``) and read the same log lines (``AudioLog``), so
both reach the same fingerprints from the same file; numpy does the rest
(``vigil_verify.audio.fingerprint``).

Timing. ffmpeg keeps the file's own timestamps (``-copyts``); ``ashowinfo`` says when the first
decoded audio frame starts, and ``aresample=async=1`` fills holes in the audio with silence, so
sample k of the decoded PCM is at first-pts + k / rate. A stored segment's timeline zero is
its recording's signed ``origin_s``; an outside copy's is its own first video frame (as its
pictures' are, ``vigil_verify.sampling``) or, with no video, its first audio frame. So audio
that was shifted against the video shows as an offset (``desync``), not as the same audio.

A segment's fingerprints are one blob (``AudioTracks``: ``VGAT``, then each track's ``VGAF``
blob), whose SHA-256 the signed ``segment.hashed`` event carries as ``audio_sha256``.
"""

from __future__ import annotations

import math
import re
import struct
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from vigil_verify.audio import (
    LEVEL_STEP,
    RATE,
    AudioFingerprint,
    AudioVerdict,
    compare_audio,
    desync,
    fingerprint,
)
from vigil_verify.showinfo import frame_records


class SegmentVerdictLike(Protocol):
    """What ``match_audio`` reads of a segment's picture verdict (``compare.SegmentVerdict``)."""

    @property
    def index(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def offset_s(self) -> float: ...


_MAGIC = b"VGAT"
_VERSION = 1
_HEADER = struct.Struct("<4sHH")  # magic, version, track count
_LENGTH = struct.Struct("<Q")
MAX_TRACKS = 64

_INPUT_STREAM = re.compile(r"^\s*Stream #0:\d+\S*: (Audio|Video):")


def audio_decode_args(
    ffmpeg: str, source: Path, *, track: int = 0, first_video: bool = False
) -> list[str]:
    """ffmpeg arguments: audio track ``track`` of ``source`` on its own timestamps, downmixed
    to mono ``RATE`` Hz s16le PCM on stdout, holes filled with silence; ``ashowinfo`` logs
    when each decoded frame starts. With ``first_video``, one video frame is decoded too (to a
    null output) so that ``showinfo`` says when the pictures start."""
    args = [
        ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info", "-copyts",
        "-i", str(source), *audio_output_args(track, "pipe:1"),
    ]  # fmt: skip
    if first_video:
        args += [
            "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", "showinfo", "-fps_mode", "passthrough",
            "-frames:v", "1", "-f", "null", "-",
        ]  # fmt: skip
    return args


def audio_output_args(track: int, target: str) -> list[str]:
    """The output half of ``audio_decode_args``: track ``track`` of input 0 as mono ``RATE`` Hz
    s16le PCM into ``target``, with ``ashowinfo`` and holes filled. The worker adds it as a
    second output of its picture decode (``vigil_verify.sampling.frame_decode_args``), so the
    same bytes come from one process instead of two."""
    return [
        "-map", f"0:a:{track}", "-vn", "-sn", "-dn",
        "-af", "ashowinfo,aresample=async=1", "-ac", "1", "-ar", str(RATE),
        "-f", "s16le", "-acodec", "pcm_s16le", target,
    ]  # fmt: skip


class AudioLog:
    """What an audio decode's stderr says: how many audio tracks the input has, and when its
    first decoded audio frame and (when asked for) its first video frame start (seconds)."""

    def __init__(self) -> None:
        self.audio_tracks = 0
        self.video_tracks = 0
        self.audio_start: float | None = None
        self.video_start: float | None = None
        self.last = ""
        self._in_input = False

    def line(self, text: str) -> None:
        if text.strip():
            self.last = text.strip()
        if text.startswith("Input #"):
            self._in_input = True
        elif text.startswith(("Output #", "Stream mapping")):
            self._in_input = False
        elif self._in_input and (stream := _INPUT_STREAM.match(text)) is not None:
            if stream.group(1) == "Audio":
                self.audio_tracks += 1
            else:
                self.video_tracks += 1
        for record in frame_records(text):
            if record.number != 0:
                continue
            if record.kind == "audio" and self.audio_start is None:
                self.audio_start = record.seconds
            elif record.kind == "video" and self.video_start is None:
                self.video_start = record.seconds


def track_fingerprint(pcm: bytes, log: AudioLog, origin: float | None) -> AudioFingerprint:
    """The fingerprint of one decoded track on a timeline whose zero is ``origin`` (source
    seconds); None: the first video frame, else the first audio frame."""
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")
    first = log.audio_start if log.audio_start is not None else 0.0
    if origin is None:
        origin = log.video_start if log.video_start is not None else first
    return fingerprint(samples, start=first - origin)


Run = Callable[[list[str], Callable[[str], None]], bytes]
"""Runs ffmpeg with these arguments, handing each stderr line to the callback; returns stdout
(what was decoded, also when ffmpeg stopped with an error)."""


def frames_between(fp: AudioFingerprint, lo: float, hi: float) -> AudioFingerprint:
    """The frames of ``fp`` centred in ``[lo, hi)``, from the first that starts a band-level
    row (levels are kept per ``LEVEL_STEP`` frames, so a slice starts on a row)."""
    a = int(np.searchsorted(fp.times, lo, side="left"))
    a = -(-a // LEVEL_STEP) * LEVEL_STEP
    b = max(a, int(np.searchsorted(fp.times, hi, side="left")))
    first = a // LEVEL_STEP
    rows = fp.levels[first : first + -(-(b - a) // LEVEL_STEP)]
    return AudioFingerprint(
        fp.times[a:b], fp.rate, fp.bits[a:b], fp.loudness[a:b], fp.tonality[a:b], rows
    )


class AudioUndecodable(ValueError):
    """The file has audio tracks that do not decode."""


def subprocess_run(timeout_s: float) -> Run:
    """A ``Run`` on ``subprocess`` (the stand-alone verifier's, and the benches')."""

    def run(args: list[str], on_line: Callable[[str], None]) -> bytes:
        done = subprocess.run(args, capture_output=True, timeout=timeout_s, check=False)
        for line in done.stderr.decode(errors="replace").splitlines():
            on_line(line)
        return done.stdout

    return run


def _decode_first(
    run: Run, ffmpeg: str, source: Path, first_video: bool | None
) -> tuple[bytes, AudioLog]:
    """Track 0, with the first video frame's time when asked (None: when there is video)."""
    log = AudioLog()
    pcm = run(audio_decode_args(ffmpeg, source, first_video=first_video is not False), log.line)
    if first_video is None and log.audio_tracks and not log.video_tracks:
        log = AudioLog()
        pcm = run(audio_decode_args(ffmpeg, source), log.line)
    return pcm, log


def decode_tracks(
    run: Run, ffmpeg: str, source: Path, *, origin: float | None, first_video: bool | None
) -> AudioTracks:
    """Every audio track of ``source`` fingerprinted on the timeline ``track_fingerprint``
    says (``origin`` None: the file's own, from its first video frame); no tracks when it has
    no audio. ``first_video``: whether to read the first video frame's time (None: if the file
    has video). Raises ``AudioUndecodable`` when a track it has does not decode."""
    pcm, log = _decode_first(run, ffmpeg, source, first_video)
    if origin is None:
        origin = log.video_start if log.video_start is not None else log.audio_start
    return tracks_from_first(run, ffmpeg, source, pcm, log, origin=origin)


def tracks_from_first(
    run: Run, ffmpeg: str, source: Path, pcm: bytes, log: AudioLog, *, origin: float | None
) -> AudioTracks:
    """Every audio track of ``source``, its first already decoded (``pcm`` and the ``log`` of
    that decode); the others decoded now. Raises ``AudioUndecodable`` as ``decode_tracks``."""
    if not log.audio_tracks:
        return AudioTracks(())
    found: list[AudioFingerprint] = []
    for track in range(min(log.audio_tracks, MAX_TRACKS)):
        if track:
            log = AudioLog()
            pcm = run(audio_decode_args(ffmpeg, source, track=track), log.line)
        if not pcm and log.audio_start is None:
            raise AudioUndecodable(f"audio track {track} does not decode ({log.last})")
        found.append(track_fingerprint(pcm, log, origin))
    return AudioTracks(tuple(found))


@dataclass(frozen=True)
class AudioTracks:
    """The fingerprints of a file's audio tracks, in stream order (none: no audio)."""

    tracks: tuple[AudioFingerprint, ...]

    def __len__(self) -> int:
        return len(self.tracks)

    def between(self, lo: float, hi: float) -> AudioTracks:
        """Each track's frames centred in ``[lo, hi)`` (``frames_between``)."""
        return AudioTracks(tuple(frames_between(t, lo, hi) for t in self.tracks))

    def shifted(self, by: float) -> AudioTracks:
        """The same fingerprints ``by`` seconds later."""
        return AudioTracks(
            tuple(
                AudioFingerprint(t.times + by, t.rate, t.bits, t.loudness, t.tonality, t.levels)
                for t in self.tracks
            )
        )

    def to_bytes(self) -> bytes:
        parts = [_HEADER.pack(_MAGIC, _VERSION, len(self.tracks))]
        for track in self.tracks:
            blob = track.to_bytes()
            parts += [_LENGTH.pack(len(blob)), blob]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> AudioTracks:
        if len(data) < _HEADER.size:
            raise ValueError("audio tracks blob too short")
        magic, version, count = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != _VERSION or count > MAX_TRACKS:
            raise ValueError(f"not a version-{_VERSION} audio tracks blob")
        at, tracks = _HEADER.size, []
        for _ in range(count):
            if at + _LENGTH.size > len(data):
                raise ValueError("audio tracks blob is cut short")
            (length,) = _LENGTH.unpack_from(data, at)
            at += _LENGTH.size
            if at + length > len(data):
                raise ValueError("audio tracks blob is cut short")
            tracks.append(AudioFingerprint.from_bytes(bytes(data[at : at + length])))
            at += length
        if at != len(data):
            raise ValueError("audio tracks blob has bytes after its last track")
        return cls(tuple(tracks))


@dataclass(frozen=True)
class SegmentAudio:
    """The audio verdict on one segment: ``kind`` one of ``verdicts.AUDIO_KINDS``,
    ``ranges`` on the recording's timeline, ``detail`` one line for people."""

    index: int
    kind: str
    ranges: tuple[tuple[float, float], ...] = ()
    detail: str = ""

    @property
    def same(self) -> bool:
        return self.kind == "same"


def _where(ranges: tuple[tuple[float, float], ...]) -> str:
    return ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in ranges)


def _track(k: int, count: int) -> str:
    return f"audio track {k}" if count > 1 else "audio"


def segment_audio(
    index: int,
    span: tuple[float, float],
    reference: AudioTracks,
    copy: AudioTracks,
    video_offset: float,
) -> SegmentAudio | None:
    """Compare segment ``index`` (``span`` on the recording's timeline, ``reference`` its
    signed fingerprints) with a copy's tracks, whose pictures sit ``video_offset`` s later
    than the recording's there. None when neither has audio."""
    count = max(len(reference), len(copy))
    if not count:
        return None
    kinds: list[str] = []
    ranges: list[tuple[float, float]] = []
    notes: list[str] = []
    for k in range(count):
        name = _track(k, count)
        if k >= len(copy):
            kinds.append("missing")
            ranges.append(span)
            notes.append(f"{name} missing")
            continue
        if k >= len(reference):
            kinds.append("extra")
            notes.append(f"{name} added (the segment has none)")
            continue
        verdict = compare_audio(reference.tracks[k], copy.tracks[k], hint=video_offset)
        kind, note, where = _judge(verdict, video_offset, span)
        kinds.append(kind)
        ranges.extend(where)
        if note:
            notes.append(f"{name} {note}")
    order = ("edited", "desync", "missing", "truncated", "extra")
    kind = next((k for k in order if k in kinds), "same")
    return SegmentAudio(index, kind, tuple(sorted(set(ranges))), "; ".join(notes))


def _judge(
    verdict: AudioVerdict, video_offset: float, span: tuple[float, float]
) -> tuple[str, str, tuple[tuple[float, float], ...]]:
    if verdict.kind == "missing":
        return "missing", "missing", (span,)
    if verdict.kind == "extra":
        return "extra", "added", ()
    if verdict.kind == "edited":
        return "edited", f"edited {_where(verdict.ranges)}", verdict.ranges
    if verdict.kind == "truncated":
        return "truncated", f"ends early: {_where(verdict.ranges)} gone", verdict.ranges
    if desync(verdict.offset, video_offset):
        shift = verdict.offset - video_offset
        late = "late" if shift > 0 else "early"
        return "desync", f"out of sync: {abs(shift):.2f} s {late} against the pictures", (span,)
    return "same", "", ()


def match_audio(
    pictures: Sequence[SegmentVerdictLike],
    spans: Mapping[int, tuple[float, float]],
    references: Mapping[int, AudioTracks],
    copy: AudioTracks,
) -> tuple[SegmentAudio, ...]:
    """Each segment's sound against a whole copy's: where the copy's pictures of that segment
    are (``pictures``: the video verdicts, whose offset says where), or at no offset when
    none of its pictures were found. Segments without signed fingerprints are left out.
    Each is heard over its own span only: a segment's audio packets may run past its pictures
    (across a clock jump, with the silence the fingerprint fills in up to them), and the
    next segment's fingerprints hear that time."""
    found: list[SegmentAudio] = []
    last = max(spans, default=0)
    for verdict in pictures:
        reference = references.get(verdict.index)
        if reference is None:
            continue
        offset = verdict.offset_s if verdict.status != "missing" else 0.0
        offset = offset if np.isfinite(offset) else 0.0
        span = spans[verdict.index]
        until = span[1] if verdict.index < last else math.inf  # the recording's last sound
        heard = segment_audio(verdict.index, span, reference.between(span[0], until), copy, offset)
        if heard is not None:
            found.append(heard)
    return tuple(found)
