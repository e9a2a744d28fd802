"""Audio fingerprints of stored segments and outside copies, decoded by the process runner
(timeouts, killed on stop) with the stand-alone verifier's own arguments
(``vigil_verify.audio_tracks``), so that both sides fingerprint a file alike."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vigil_verify.audio_tracks import (
    AudioTracks,
    AudioUndecodable,
    Run,
    decode_tracks,
    tracks_from_first,
)

from integrity.frames import timed_frame_hashes
from integrity.phash import FrameHashes
from transcode.ffmpeg import FfmpegFailed, Tools
from transcode.frames import HeardTrack


def tools_run(tools: Tools) -> Run:
    """A ``Run`` on the tools' process runner: ffmpeg's failures come back as what it decoded
    (and its log), never as exceptions; timeouts and stops still raise."""

    def run(args: list[str], on_line: Callable[[str], None]) -> bytes:
        return tools.runner.run(
            args, timeout_s=tools.timeout_s, capture_stdout=True, check=False, on_line=on_line
        ).stdout

    return run


def segment_audio(tools: Tools, path: Path, *, origin_s: float) -> AudioTracks:
    """Every audio track of a stored segment, on its recording's timeline (``origin_s``: the
    source time of the recording's zero, as signed)."""
    return decode_tracks(tools_run(tools), tools.ffmpeg, path, origin=origin_s, first_video=False)


def copy_audio(tools: Tools, path: Path) -> AudioTracks:
    """Every audio track of an outside copy, on the copy's own timeline (zero at its first
    video frame, as its per-frame hashes; at its first audio frame when it has no video)."""
    return decode_tracks(tools_run(tools), tools.ffmpeg, path, origin=None, first_video=None)


@dataclass(frozen=True)
class HeardSegment:
    """A stored segment's pictures and sound, hashed and fingerprinted."""

    hashes: FrameHashes
    audio: AudioTracks | None  # None: its audio does not decode (``unheard`` says why)
    unheard: str | None = None


def segment_media(tools: Tools, path: Path, *, origin_s: float, rotation: int) -> HeardSegment:
    """Every frame of a stored segment that has pictures and sound hashed, and every audio
    track fingerprinted, with one read of the file: the first track is decoded as a second
    output of the picture decode (a second process per segment cost the dense path 13% of
    its time, docs/audio.md). The hashes and fingerprints are those of ``segment_hashes``
    and ``segment_audio``, which the stand-alone verifier computes apart."""
    with tempfile.TemporaryDirectory(prefix="vigil-heard-") as scratch:
        heard = HeardTrack(Path(scratch) / "track0.pcm")
        try:
            hashes = timed_frame_hashes(
                tools, path, origin_s=origin_s, rotation=rotation, heard=heard
            )
        except FfmpegFailed:
            # perhaps the sound failed (a codec this ffmpeg does not decode): pictures alone
            # as before, then the sound apart, which says what is wrong with it
            hashes = timed_frame_hashes(tools, path, origin_s=origin_s, rotation=rotation)
            return _heard_apart(tools, path, hashes, origin_s)
        try:
            audio = tracks_from_first(
                tools_run(tools), tools.ffmpeg, path, heard.pcm_bytes(), heard.log,
                origin=origin_s,
            )  # fmt: skip
        except AudioUndecodable as exc:
            return HeardSegment(hashes, None, str(exc))
    return HeardSegment(hashes, audio)


def _heard_apart(tools: Tools, path: Path, hashes: FrameHashes, origin_s: float) -> HeardSegment:
    try:
        return HeardSegment(hashes, segment_audio(tools, path, origin_s=origin_s))
    except AudioUndecodable as exc:
        return HeardSegment(hashes, None, str(exc))
