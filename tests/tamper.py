"""Test helpers that make altered copies of a clip.

The ffmpeg command builders are pure (they return the argument list, first element the ffmpeg
executable); :func:`run` executes one.  Byte-level helpers damage files directly.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path
from typing import Final

_GLOBAL: Final[tuple[str, ...]] = ("-hide_banner", "-nostdin", "-y", "-loglevel", "warning")
_X264: Final[tuple[str, ...]] = ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p")
_AAC: Final[tuple[str, ...]] = ("-c:a", "aac", "-b:a", "128k")
_HIGH_QUALITY_CRF: Final = 18


def _check_crf(crf: int) -> None:
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in [0, 51], got {crf}")


def _check_window(start_s: float, duration_s: float) -> None:
    if not (math.isfinite(start_s) and start_s >= 0):
        raise ValueError(f"start must be >= 0, got {start_s}")
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration must be > 0, got {duration_s}")


def _num(value: float) -> str:
    """Plain decimal text for a number inside a filter expression (no exponent)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def _inputs(ffmpeg: str, src: Path) -> list[str]:
    # First video stream, plus the first audio stream when there is one.
    return [ffmpeg, *_GLOBAL, "-i", str(src), "-map", "0:v:0", "-map", "0:a:0?"]


def reencode_command(
    ffmpeg: str, src: Path, out: Path, *, crf: int, scale: float = 1.0
) -> list[str]:
    """libx264 CRF re-encode of ``src``, optionally resized by ``scale`` (0.5 = half size).

    Audio is kept (re-encoded to AAC so any output container accepts it); frame timestamps are
    passed through unchanged.
    """
    _check_crf(crf)
    if not (math.isfinite(scale) and 0 < scale <= 4):
        raise ValueError(f"scale must be in (0, 4], got {scale}")
    cmd = _inputs(ffmpeg, src)
    if scale != 1.0:
        factor = _num(scale)
        cmd += [
            "-vf",
            f"scale=w=trunc(iw*{factor}/2)*2:h=trunc(ih*{factor}/2)*2:flags=bicubic",
        ]
    cmd += [*_X264, "-crf", str(crf), *_AAC, "-fps_mode", "passthrough", str(out)]
    return cmd


def overlay_command(
    ffmpeg: str,
    src: Path,
    out: Path,
    *,
    start_s: float,
    duration_s: float,
    area: float = 0.08,
) -> list[str]:
    """Hide part of the picture: a filled black box covering ``area`` of the frame (centred),
    shown from ``start_s`` for ``duration_s``; re-encoded at high quality (CRF 18)."""
    _check_window(start_s, duration_s)
    if not (math.isfinite(area) and 0 < area <= 1):
        raise ValueError(f"area must be in (0, 1], got {area}")
    side = _num(math.sqrt(area))  # box side as a fraction of the frame side: side^2 == area
    end_s = start_s + duration_s
    box = (
        f"drawbox=x=(iw-iw*{side})/2:y=(ih-ih*{side})/2:w=iw*{side}:h=ih*{side}"
        f":color=black@1:t=fill:enable='between(t,{_num(start_s)},{_num(end_s)})'"
    )
    return [
        *_inputs(ffmpeg, src),
        "-vf", box,
        *_X264, "-crf", str(_HIGH_QUALITY_CRF), *_AAC,
        "-fps_mode", "passthrough",
        str(out),
    ]  # fmt: skip


def cut_command(
    ffmpeg: str, src: Path, out: Path, *, at_s: float, duration_s: float = 1.0
) -> list[str]:
    """Remove ``[at_s, at_s + duration_s)`` from video and audio and re-timestamp the rest
    continuously (so the splice is not visible as a timestamp jump); re-encoded at CRF 18."""
    _check_window(at_s, duration_s)
    keep = f"lt(t,{_num(at_s)})+gte(t,{_num(at_s + duration_s)})"
    return [
        *_inputs(ffmpeg, src),
        "-vf", f"select='{keep}',setpts=N/FRAME_RATE/TB",
        "-af", f"aselect='{keep}',asetpts=N/SR/TB",
        *_X264, "-crf", str(_HIGH_QUALITY_CRF), *_AAC,
        str(out),
    ]  # fmt: skip


def truncate_file(src: Path, out: Path, fraction: float) -> Path:
    """Copy only the first ``fraction`` (0..1) of ``src``'s bytes to ``out``; return ``out``."""
    if not (math.isfinite(fraction) and 0 <= fraction <= 1):
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    keep = int(src.stat().st_size * fraction)
    with src.open("rb") as reader, out.open("wb") as writer:
        remaining = keep
        while remaining > 0:
            chunk = reader.read(min(remaining, 1 << 20))
            if not chunk:
                break
            writer.write(chunk)
            remaining -= len(chunk)
    return out


def flip_byte(path: Path, offset: int) -> None:
    """XOR the byte at ``offset`` (negative counts from the end) with 0xFF, in place."""
    size = path.stat().st_size
    position = offset + size if offset < 0 else offset
    if not 0 <= position < size:
        raise ValueError(f"offset {offset} outside file of {size} bytes")
    with path.open("r+b") as handle:
        handle.seek(position)
        original = handle.read(1)
        handle.seek(position)
        handle.write(bytes([original[0] ^ 0xFF]))


def copy_file(src: Path, out: Path) -> Path:
    """Plain byte copy (convenience for tests that then damage the copy)."""
    shutil.copyfile(src, out)
    return out


def run(cmd: list[str], timeout_s: float = 300) -> None:
    """Run an ffmpeg command; raise ``RuntimeError`` with the tail of its stderr on failure."""
    try:
        subprocess.run(
            cmd, timeout=timeout_s, check=True, stdin=subprocess.DEVNULL, capture_output=True
        )
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(
            f"command failed (exit {exc.returncode}): {' '.join(cmd[:3])} ...\n{_tail(exc.stderr)}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"command timed out after {timeout_s} s\n{_tail(exc.stderr)}") from exc


def _tail(stderr: bytes | str | None, lines: int = 15) -> str:
    if stderr is None:
        return ""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    return "\n".join(text.strip().splitlines()[-lines:])
