"""Recovering the video of an MP4 or MOV whose ``moov`` was never written (issue 17): a body
camera whose battery died before it finalised the file leaves its samples in ``mdat`` with no
index saying where each one is, what codec it is, or when it plays.

What untrunc does, in Vigil's terms: the codec setup (the NAL length size, the parameter sets,
the frame rate) is read from a reference recording by the same device (``transcode.isobmff``);
the damaged file's ``mdat`` is walked as length-prefixed NAL units, each one checked against
that setup (``transcode.nal.NalRules``); where the bytes are no such unit (an interleaved audio
chunk, damage) the walk moves on byte by byte until a unit fits again. The units found, from
the first picture that decodes on its own, are grouped into pictures; each picture's place in
display order comes from its picture order count (B-frames are stored out of order), its time
from that place at the reference's frame rate. They are written, as the samples they were, in a
Matroska with the reference's ``avcC``/``hvcC`` (``transcode.matroska``), which ffmpeg copies
into an MP4 (``remux_command``, stream copy: no picture is re-encoded), whose start must decode
without error (``decode_check_command``).

The audio is not recovered: its samples have no header that marks where each starts. The
result says so (``RecoveredStream.not_recovered``). Nothing here touches the damaged file but
to read it.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from vigil_verify.errors import ErrorKind

from transcode import matroska
from transcode.commands import BASE
from transcode.errors import TranscodeError
from transcode.ffmpeg import FfmpegFailed, Tools
from transcode.isobmff import Box, BoxError, Buffer, VideoSetup, top_level, tracks
from transcode.nal import NalRules, Slice

METHOD = "mdat-nal-scan"
"""The method named in the custody event: NAL units found in ``mdat`` by the reference's setup,
stream-copied into a new container."""

_NAMES = {"h264": "H.264", "hevc": "HEVC"}
_ISO_TOP = frozenset({b"ftyp", b"mdat", b"free", b"skip", b"wide", b"moov", b"uuid", b"pnot"})


class RecoveryImpossible(TranscodeError):
    """Recovery cannot be done; the message says why and names the file as the user gave it."""

    kind = ErrorKind.INVALID


@dataclass(frozen=True)
class Unit:
    offset: int  # of its first byte (after the length prefix) in the damaged file
    size: int


@dataclass
class Picture:
    """One access unit: its NAL units in file order (SEI, delimiter, slices)."""

    units: list[Unit]
    idr: bool  # decodes on its own (a keyframe)
    poc_lsb: int | None  # None: the stream's pictures are shown in decoding order
    reference: bool
    resets: bool  # its picture order count starts over


@dataclass
class Scan:
    """What the walk of ``mdat`` found."""

    pictures: list[Picture] = field(default_factory=list)  # from the first that starts over
    dropped: int = 0  # pictures before it: they refer to pictures that are not in the file
    video_bytes: int = 0  # of ``mdat``, in units kept
    skipped_bytes: int = 0  # of ``mdat``, in no unit (audio, damage, a cut-off last sample)
    tail_bytes: int = 0  # after the last unit found (a sample cut off with the file, audio)
    max_poc_lsb: int | None = None  # H.264 picture order count type 0: its lsb's range


@dataclass(frozen=True)
class RecoveredStream:
    path: Path  # the MP4 ffmpeg made (in the caller's work folder)
    codec: str
    width: int
    height: int
    rate: str  # frames a second, as "timescale/delta"
    frames: int
    dropped_frames: int
    mdat_bytes: int  # of the damaged file's mdat, as far as the file goes
    video_bytes: int
    skipped_bytes: int
    mdat_cut: bool  # the mdat's header claims more (or "to the end"): the file was cut off
    not_recovered: tuple[str, ...]  # what the original held that the recovered stream has not


def find_mdat(data: Buffer, name: str) -> Box:
    """The damaged file's ``mdat``; ``RecoveryImpossible`` saying why there is none to read."""
    top = top_level(data)
    if not top or top[0].kind not in _ISO_TOP:
        raise RecoveryImpossible(f"{name}: not an MP4 or MOV (no ISO BMFF box at its start)")
    if any(b.kind == b"moov" and not b.truncated for b in top):
        raise RecoveryImpossible(
            f"{name}: its moov (the index of its samples) is there: it is not an unfinalised"
            " recording, and there is nothing to recover from its mdat"
        )
    mdat = next((b for b in top if b.kind == b"mdat"), None)
    if mdat is None or mdat.end - mdat.body < 16:
        raise RecoveryImpossible(f"{name}: it has no mdat (no media data): nothing to recover")
    return mdat


def reference_setup(data: Buffer, reference_name: str) -> tuple[VideoSetup, tuple[str, ...]]:
    """The reference's video setup and the sample entry types of its other tracks (what a
    recovered stream of that device lacks, e.g. ``mp4a``)."""
    try:
        found = tracks(data)
    except BoxError as exc:
        raise RecoveryImpossible(
            f"reference {reference_name}: {exc}; its codec setup cannot be read"
        ) from None
    video = [t.video for t in found if t.video is not None]
    if not video:
        kinds = ", ".join(t.entry.decode("latin-1") for t in found if t.entry) or "none"
        raise RecoveryImpossible(
            f"reference {reference_name}: no H.264 or HEVC video track (its tracks: {kinds});"
            " recovery needs one"
        )
    others = tuple(
        f"{t.handler.decode('latin-1')} {t.entry.decode('latin-1')}".strip()
        for t in found
        if t.video is None and t.entry
    )
    return video[0], others


def scan_mdat(data: Buffer, start: int, end: int, setup: VideoSetup) -> Scan:
    """Every NAL unit of ``setup``'s stream in ``data[start:end]``, in order, from the first
    picture that decodes on its own."""
    rules = NalRules.of(setup.codec, setup.parameter_sets)
    n = setup.length_size
    scan = Scan()
    if rules.sps is not None and rules.sps.poc_type == 0 and rules.sps.frame_mbs_only:
        scan.max_poc_lsb = 1 << rules.sps.log2_max_poc_lsb
    elif setup.codec == "hevc":
        scan.max_poc_lsb = 1 << rules.log2_max_poc_lsb
    pending: list[Unit] = []  # units before a picture's first slice (SEI, delimiter)
    started = False
    at = last = start
    with memoryview(data) as view:  # type: ignore[arg-type]
        while at + n < end:
            size = int.from_bytes(view[at : at + n], "big")
            stop = at + n + size
            checked: Slice | bool = False
            if stop <= end:
                checked = rules.check(view[at + n : stop])
            if checked is False:
                at += 1
                scan.skipped_bytes += 1
                continue
            rules.accept(checked)
            unit = Unit(at + n, size)
            if isinstance(checked, Slice):
                started = started or (checked.first and checked.idr)
                _add_slice(scan, checked, [*pending, unit], started=started)
                if started:
                    scan.video_bytes += sum(u.size + n for u in pending) + size + n
                pending = []
            else:
                pending.append(unit)
            at = last = stop
    scan.tail_bytes = end - last
    scan.skipped_bytes += max(end - at, 0) + sum(u.size + n for u in pending)
    return scan


def _add_slice(scan: Scan, found: Slice, units: list[Unit], *, started: bool) -> None:
    """A slice and the units before it: a new picture (its first slice), else more of the
    picture before."""
    if found.first and started:
        scan.pictures.append(
            Picture(units, found.idr, found.poc_lsb, found.reference, found.resets)
        )
    elif found.first:
        scan.dropped += 1
    elif started and scan.pictures:
        scan.pictures[-1].units += units


def display_order(pictures: list[Picture], max_poc_lsb: int | None) -> list[int]:
    """Each picture's place in display order, from its picture order count (H.264 8.2.1.1,
    H.265 8.3.1: the lsb with its wraps counted from the last reference picture, starting
    over at each IDR); pictures without one are shown in decoding order."""
    pocs: list[int] = []
    prev_msb = prev_lsb = 0
    for index, pic in enumerate(pictures):
        if pic.resets:
            prev_msb = prev_lsb = 0
        if pic.poc_lsb is None or max_poc_lsb is None:
            pocs.append(index)
            continue
        lsb, msb = pic.poc_lsb, prev_msb
        if lsb < prev_lsb and prev_lsb - lsb >= max_poc_lsb // 2:
            msb += max_poc_lsb
        elif lsb > prev_lsb and lsb - prev_lsb > max_poc_lsb // 2:
            msb -= max_poc_lsb
        pocs.append(msb + lsb)
        if pic.reference:
            prev_msb, prev_lsb = msb, lsb
    order = [0] * len(pictures)
    starts = [i for i, p in enumerate(pictures) if p.resets or i == 0]
    for start, end in zip(starts, [*starts[1:], len(pictures)], strict=True):
        ranked = sorted(range(start, end), key=lambda i: (pocs[i], i))
        for rank, i in enumerate(ranked):
            order[i] = start + rank
    return order


def write_matroska(data: Buffer, scan: Scan, setup: VideoSetup, out: Path) -> None:
    """The pictures found, in decoding order, each with its presentation time (its place in
    display order at the reference's frame rate, to 0.1 ms), as Matroska with the
    reference's setup."""
    order = display_order(scan.pictures, scan.max_poc_lsb)
    frame_ns = round(1e9 * setup.sample_delta / setup.timescale)
    head = matroska.header(setup.codec, setup.config, setup.width, setup.height, frame_ns)
    n = setup.length_size
    with out.open("wb") as fh, memoryview(data) as view:  # type: ignore[arg-type]
        frames = (
            matroska.Frame(
                round(order[i] * frame_ns / matroska.TIMESTAMP_SCALE_NS),
                pic.idr,
                b"".join(
                    u.size.to_bytes(n, "big") + bytes(view[u.offset : u.offset + u.size])
                    for u in pic.units
                ),
            )
            for i, pic in enumerate(scan.pictures)
        )
        matroska.write(fh, head, frames)


def remux_command(ffmpeg: str, written: Path, out: Path) -> list[str]:
    """Copy the Matroska written into an MP4, packets and their times as they are."""
    return [
        ffmpeg, *BASE, "-f", "matroska", "-i", str(written), "-map", "0:v:0", "-c", "copy",
        "-f", "mp4", "-y", str(out),
    ]  # fmt: skip


DECODE_CHECK_S = 10.0
"""Seconds of a recovered stream decoded before it is accepted: a reference of the same codec
but other settings gives units whose headers fit and whose pictures do not decode."""

_POINTER = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\] ")


def decode_check_command(ffmpeg: str, path: Path) -> list[str]:
    """Decode the first ``DECODE_CHECK_S`` of ``path``'s video, printing decoding errors only."""
    return [
        ffmpeg, *BASE, "-loglevel", "error", "-t", f"{DECODE_CHECK_S:g}", "-i", str(path),
        "-map", "0:v:0", "-f", "null", "-",
    ]  # fmt: skip


def _decodes(tools: Tools, path: Path) -> str | None:
    """The first decoding error of the recovered stream's start (None: it decodes)."""
    run = tools.runner.run(
        decode_check_command(tools.ffmpeg, path), timeout_s=tools.timeout_s, check=False
    )
    lines = [line for line in run.stderr_head.splitlines() if line.strip()]
    if run.returncode == 0 and not lines:
        return None
    if not lines:
        return f"ffmpeg exited with {run.returncode}"
    return _POINTER.sub("", lines[0]).replace(str(path), "the recovered stream")


def recover_mp4(
    tools: Tools, damaged: Path, reference: Path, work: Path, *, name: str, reference_name: str
) -> RecoveredStream:
    """Recover the video of ``damaged`` (an MP4/MOV without ``moov``) with the codec setup of
    ``reference`` into ``work``. ``name`` and ``reference_name`` are how the user calls them
    (every message names them so, never a path of the store)."""
    work.mkdir(parents=True, exist_ok=True)
    with _mapped(reference) as ref:
        setup, others = reference_setup(ref, reference_name)
    with _mapped(damaged) as data:
        mdat = find_mdat(data, name)
        scan = scan_mdat(data, mdat.body, mdat.end, setup)
        if not scan.pictures:
            raise RecoveryImpossible(
                f"{name}: no {_NAMES[setup.codec]} picture in its mdat fits the codec setup of"
                f" reference {reference_name} ({setup.width}x{setup.height}, {scan.dropped}"
                " picture(s) with no keyframe before them): the reference is not of the same"
                " device and settings, or the footage is not there"
            )
        written = work / "recovered.mkv"
        write_matroska(data, scan, setup, written)
        cut = mdat.truncated or mdat.end == len(data)
    out = work / "recovered.mp4"
    try:
        tools.runner.run(remux_command(tools.ffmpeg, written, out), timeout_s=tools.timeout_s)
    except FfmpegFailed as exc:
        lines = exc.stderr_tail.strip().splitlines() or ["no output"]
        said = _POINTER.sub("", lines[-1]).replace(str(written), "the stream")
        raise RecoveryImpossible(
            f"{name}: ffmpeg cannot wrap the {len(scan.pictures)} pictures found with the codec"
            f" setup of reference {reference_name} ({said})"
        ) from None
    finally:
        written.unlink(missing_ok=True)
    error = _decodes(tools, out)
    if error is not None:
        raise RecoveryImpossible(
            f"{name}: the {len(scan.pictures)} pictures found do not decode with the codec setup of"
            f" reference {reference_name} ({error}): the reference is not of the same device"
            " and settings"
        )
    not_recovered = [f"{what} track: not recovered" for what in others]
    if scan.dropped:
        not_recovered.append(f"{scan.dropped} picture(s) before the first keyframe")
    if cut and scan.tail_bytes:
        not_recovered.append(
            f"the last {scan.tail_bytes} bytes of mdat, after the last picture (cut off)"
        )
    return RecoveredStream(
        path=out,
        codec=setup.codec,
        width=setup.width,
        height=setup.height,
        rate=setup.rate,
        frames=len(scan.pictures),
        dropped_frames=scan.dropped,
        mdat_bytes=mdat.end - mdat.body,
        video_bytes=scan.video_bytes,
        skipped_bytes=scan.skipped_bytes,
        mdat_cut=cut,
        not_recovered=tuple(not_recovered),
    )


@contextmanager
def _mapped(path: Path) -> Iterator[Buffer]:
    """A file mapped read-only (an empty file maps as empty bytes)."""
    with path.open("rb") as fh:
        if path.stat().st_size == 0:
            yield b""
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            yield mapped
