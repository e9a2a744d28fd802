"""Audio fingerprints of stored segments and outside copies, decoded by the process runner
(timeouts, killed on stop) with the stand-alone verifier's own arguments
(``vigil_verify.audio_tracks``), so that both sides fingerprint a file alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vigil_verify.audio_tracks import AudioTracks, Run, decode_tracks

from transcode.ffmpeg import Tools


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
