"""The footage half of a package check: every signed segment against the file in the package.

Per segment, in this order, in the words of ``vigil_verify.verdicts``:

- **missing**: no file where the package keeps it;
- **intact**: its SHA-256 is the signed one;
- otherwise ``vigil_verify.changed`` decides, as the server's ``vigil verify`` does:
  **reordered** or **foreign** when it holds another signed segment (of this recording or of
  another), **bytes altered** when it has the signed size (changed in place), else the picture
  (re-decoded by ffmpeg and hashed with PDQ at the signed rate, compared by timestamp with the
  signed per-frame hashes): **truncated**, **re-encoded**, **edited** (with time ranges),
  **missing** (none of its pictures), **unverifiable** (no ffmpeg, no signed per-frame hashes);
  and its sound, against the signed audio fingerprints (``<segment>.vgat``): sound that is not
  the same makes it **edited** (``vigil_verify.changed.stand_in_hearing``).

A file in a recording's segments folder that no signed event names is **foreign**. An original
is **intact**, **missing**, **bytes altered** (checked by its bytes alone), **unverifiable** (no
signed event gives its hash) or **not exported** (``vigil_verify.report``).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from vigil_verify.audio_tracks import AudioTracks, subprocess_run
from vigil_verify.chain import ChainEntry, link
from vigil_verify.changed import (
    NoDecoder,
    Undecodable,
    changed_segment,
    original_finding,
    placed,
    stand_in_hearing,
)
from vigil_verify.compare import Thresholds
from vigil_verify.frames import FRAME_SIDE, FrameHashes
from vigil_verify.ledger import LedgerCheck, SignedRecording, SignedSegment
from vigil_verify.original import judge_original
from vigil_verify.pdq import pdq_hashes
from vigil_verify.recovered import RECOVERED_STEM, recovered_finding
from vigil_verify.recut import TimedOriginal
from vigil_verify.sampling import FrameTimes, frame_decode_args, repair_times, timed_hashes
from vigil_verify.untrusted import Malformed, guarded, read_document
from vigil_verify.verdicts import Finding, Verdict

__all__ = [
    "DECODE_TIMEOUT_S",
    "SEGMENT_SUFFIXES",
    "Finding",
    "FootageChecker",
    "find_ffmpeg",
    "gray_frames_args",
    "grid_start",
    "segment_frame_hashes",
    "sha256_file",
    "stand_in_hashes",
]

DECODE_TIMEOUT_S = 600.0

_T = TypeVar("_T")


def find_ffmpeg(explicit: str | None = None) -> str | None:
    """``explicit``, $VIGIL_FFMPEG, ffmpeg on PATH, else imageio-ffmpeg's binary if installed."""
    for candidate in (explicit, os.environ.get("VIGIL_FFMPEG"), shutil.which("ffmpeg")):
        if candidate:
            return candidate
    try:
        import imageio_ffmpeg  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    return str(exe) if exe else None


def gray_frames_args(ffmpeg: str, source: Path, *, rate: float, start_time: float) -> list[str]:
    """Decode ``source`` from its first frame (time 0) to 64x64 area-scaled gray frames at
    ``rate``, frame k showing ``start_time + k / rate``: the arguments of Vigil's own hashing."""
    graph = (
        f"fps=fps={rate:g}:start_time={start_time:.6f},"
        f"scale={FRAME_SIDE}:{FRAME_SIDE}:flags=area,format=gray"
    )
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
        "-i", str(source), "-an", "-sn", "-vf", graph, "-f", "rawvideo", "-pix_fmt", "gray",
        "pipe:",
    ]  # fmt: skip


def grid_start(timeline_s: float, rate: float) -> float:
    return math.ceil(timeline_s * rate - 1e-6) / rate


def segment_frame_hashes(
    ffmpeg: str, path: Path, segment: SignedSegment, rate: float
) -> FrameHashes:
    """Per-frame hashes of a file that stands in for ``segment``, on the segment's grid.

    The file is decoded on its own timeline (its first frame at 0), not on the timestamps it
    carries: an edited or re-encoded copy seldom keeps the original's, and the signed
    segment's first frame is at its signed start. The comparison's offset search absorbs the
    rest.

    Its pictures are turned upright by the segment's signed ``rotation`` with ffmpeg's
    autorotation off (``vigil_verify.sampling``), as the server turned them when it signed
    the hashes: a stored segment has lost its recording's display matrix.
    """
    grid = segment.grid_rate
    if grid is None:
        args = frame_decode_args(ffmpeg, path, rotation=segment.rotation)
    else:
        start = grid_start(segment.start_s, grid)
        args = gray_frames_args(ffmpeg, path, rate=grid, start_time=start - segment.start_s)
    done = subprocess.run(args, capture_output=True, timeout=DECODE_TIMEOUT_S, check=False)
    if done.returncode != 0 and not done.stdout:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        raise ValueError(f"ffmpeg cannot decode it ({tail[0]})")
    side = FRAME_SIDE * FRAME_SIDE
    n = len(done.stdout) // side
    raw = np.frombuffer(done.stdout[: n * side], dtype=np.uint8)
    frames = raw.reshape(n, FRAME_SIDE, FRAME_SIDE)
    if n == 0:
        return FrameHashes.empty(rate)
    hashes, quality = pdq_hashes(frames)
    if grid is None:
        times = FrameTimes()
        for line in done.stderr.decode(errors="replace").splitlines():
            times.line(line)
        fresh = timed_hashes(repair_times(times.raw), hashes, quality, origin=None)
        return FrameHashes(fresh.times + segment.start_s, fresh.rate, fresh.hashes, fresh.quality)
    return FrameHashes.on_grid(start, grid, hashes, quality)


def stand_in_hashes(
    ffmpeg: str | None, path: Path, segment: SignedSegment, reference: FrameHashes
) -> FrameHashes:
    """``segment_frame_hashes`` of the file at ``path`` that stands in for ``segment`` and is
    not its signed bytes, on the footing of its signed per-frame hashes ``reference``; why there
    are none as ``vigil_verify.changed`` wants it (``NoDecoder``, ``Undecodable``). The server's
    ``vigil verify`` decodes a changed segment with it too."""
    if ffmpeg is None:
        raise NoDecoder("no ffmpeg")
    try:
        return segment_frame_hashes(ffmpeg, path, segment, reference.rate)
    except OSError as exc:
        raise NoDecoder(f"ffmpeg {ffmpeg} does not run: {exc.strerror or exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise NoDecoder(f"ffmpeg did not finish in {DECODE_TIMEOUT_S:g} s") from exc
    except (ValueError, subprocess.SubprocessError) as exc:
        raise Undecodable(str(exc)) from exc


def sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


SEGMENT_SUFFIXES = (".ts", ".mkv")
"""Evidence segments: MPEG-TS, or Matroska for codecs MPEG-TS cannot carry."""


class FootageChecker:
    def __init__(
        self, package: Path, ledger: LedgerCheck, ffmpeg: str | None, thresholds: Thresholds
    ) -> None:
        self.package = package
        self.ledger = ledger
        self.ffmpeg = ffmpeg
        self.thresholds = thresholds
        self.malformed: list[str] = []  # per-frame hash files that cannot be read
        # each recording's original in the package, when its bytes are the signed ones
        self.originals: dict[str, TimedOriginal] = {}
        # Every signed segment hash in the package: sha256 -> (recording, index).
        self.by_sha: dict[str, tuple[str, int]] = {}
        for rec in ledger.facts.values():
            for seg in rec.segments.values():
                self.by_sha.setdefault(seg.sha256, (rec.id, seg.index))

    # -- chain ------------------------------------------------------------------------------

    def chain_problems(self, rec: SignedRecording) -> list[str]:
        if not rec.segments:
            return []
        if rec.anchor is None:
            return [f"log: {rec.id} has no signed ingest event to anchor its hash chain"]
        problems: list[str] = []
        previous = rec.anchor
        for index in range(max(rec.segments) + 1):
            seg = rec.segments.get(index)
            if seg is None:
                problems.append(f"log: {rec.id} segment {index} has no signed event")
                return problems
            entry = ChainEntry(index, seg.start_s, seg.end_s, seg.sha256, seg.chain_digest)
            if seg.previous != previous or link(previous, entry) != seg.chain:
                problems.append(
                    f"log: {rec.id} hash chain breaks at segment {index}: the signed link does"
                    " not follow from the segments before it"
                )
                return problems
            previous = seg.chain
        return problems

    # -- which segments the package must hold ---------------------------------------------------

    @staticmethod
    def expected(rec: SignedRecording) -> list[SignedSegment]:
        """Signed segments inside the case's signed link windows (all, without windows)."""
        segments = [rec.segments[i] for i in sorted(rec.segments)]
        if not rec.windows or any(w == (None, None) for w in rec.windows):
            return segments
        wanted: list[SignedSegment] = []
        for seg in segments:
            for lo, hi in rec.windows:
                if (hi is None or seg.start_s < hi) and (lo is None or seg.end_s > lo):
                    wanted.append(seg)
                    break
        return wanted

    def missing_by_count(self, rec: SignedRecording) -> list[Finding]:
        """Positions the signed summary counts that have no signed segment at all."""
        if rec.segment_count is None or rec.windows:
            return []
        return [
            Finding(
                kind=Verdict.MISSING,
                recording=rec.id,
                index=i,
                detail="no signed event and no file for this position",
            )
            for i in range(rec.segment_count)
            if i not in rec.segments
        ]

    # -- one segment --------------------------------------------------------------------------

    def segment(self, rec: SignedRecording, seg: SignedSegment) -> Finding:
        rel = f"{rec.id}/segments/{seg.file_name}"
        path = self.package / rel
        if not path.is_file():
            return Finding(
                kind=Verdict.MISSING,
                recording=rec.id,
                index=seg.index,
                detail=f"{rel} is not in the package",
                file=rel,
            )
        sha, size = sha256_file(path)
        if sha == seg.sha256:
            return Finding(
                kind=Verdict.INTACT,
                recording=rec.id,
                index=seg.index,
                detail="sha256 as signed",
                file=rel,
            )
        moved = placed(rec.id, seg.index, self.by_sha.get(sha), rel)
        if moved is not None:
            return moved
        return self._recut(rec, seg, path, rel) or self._changed(rec, seg, path, rel, size=size)

    def _recut(
        self, rec: SignedRecording, seg: SignedSegment, path: Path, rel: str
    ) -> Finding | None:
        """A segment whose copy is not kept, cut again from the original for the package by
        another ffmpeg: intact when it holds its signed packets at the original's times
        (``vigil_verify.recut``); None when it is not that (judged as a changed file)."""
        original = self.originals.get(rec.id)
        if seg.kept or not seg.packets or original is None:
            return None
        if original.problem(path, seg.packets) is not None:
            return None
        return Finding(
            kind=Verdict.INTACT,
            recording=rec.id,
            index=seg.index,
            detail="no copy kept: cut again from the original into other bytes than the signed"
            " file's (another ffmpeg), holding every signed packet, unchanged and in order, at"
            " the original's times",
            file=rel,
        )

    def signed_frames(self, rec: SignedRecording, seg: SignedSegment) -> FrameHashes | None:
        """The segment's per-frame hashes in the package, if they are the signed ones."""
        return self._reference(rec, seg)

    def signed_audio(self, rec: SignedRecording, seg: SignedSegment) -> AudioTracks | None:
        """The segment's audio fingerprints in the package, if they are the signed ones."""
        return self._audio_reference(rec, seg)

    def _reference(self, rec: SignedRecording, seg: SignedSegment) -> FrameHashes | None:
        return self._signed_beside(
            rec, seg, ".pdq", seg.phash_sha256, FrameHashes.from_bytes, "per-frame hashes"
        )

    def _audio_reference(self, rec: SignedRecording, seg: SignedSegment) -> AudioTracks | None:
        return self._signed_beside(
            rec, seg, ".vgat", seg.audio_sha256, AudioTracks.from_bytes, "audio fingerprints"
        )

    def _signed_beside(
        self,
        rec: SignedRecording,
        seg: SignedSegment,
        suffix: str,
        signed_sha256: str | None,
        parse: Callable[[bytes], _T],
        what: str,
    ) -> _T | None:
        """The file beside the segment (its stem, ``suffix``) parsed, only if its SHA-256 is
        the signed one (None: none signed, none here, or another)."""
        if signed_sha256 is None:
            return None
        rel = f"{rec.id}/segments/{Path(seg.file_name).stem}{suffix}"
        path = self.package / rel
        if not path.is_file():
            return None
        try:
            blob = read_document(path, rel)
            if hashlib.sha256(blob).hexdigest() != signed_sha256:
                return None
            return guarded(rel, parse, blob)
        except Malformed as exc:
            # Unreadable, or its hash is the signed one and it still does not parse.
            self.malformed.append(f"footage: {what} {exc}")
            return None

    def _changed(
        self, rec: SignedRecording, seg: SignedSegment, path: Path, rel: str, *, size: int
    ) -> Finding:
        run = subprocess_run(DECODE_TIMEOUT_S)
        return changed_segment(
            rec.id,
            seg,
            size=size,
            file=rel,
            reference=self._reference(rec, seg),
            decode=lambda reference: stand_in_hashes(self.ffmpeg, path, seg, reference),
            thresholds=self.thresholds,
            hear=stand_in_hearing(run, self.ffmpeg, path, seg, self._audio_reference(rec, seg)),
        )

    # -- files nobody signed ------------------------------------------------------------------

    def unsigned_files(self, rec_ids: Sequence[str]) -> list[Finding]:
        findings: list[Finding] = []
        for rec_id in rec_ids:
            rec = self.ledger.facts.get(rec_id)
            names = {s.file_name for s in rec.segments.values()} if rec else set()
            folder = self.package / rec_id / "segments"
            if not folder.is_dir():
                continue
            media = (
                p for p in sorted(folder.iterdir()) if p.suffix in SEGMENT_SUFFIXES and p.is_file()
            )
            for path in media:
                if path.name in names:
                    continue
                sha, _ = sha256_file(path)
                owner = self.by_sha.get(sha)
                detail = (
                    f"segment {owner[1]} of recording {owner[0]} placed here"
                    if owner
                    else "no signed event names this file: not in the chain"
                )
                findings.append(
                    Finding(
                        kind=Verdict.FOREIGN,
                        recording=rec_id,
                        detail=detail,
                        file=f"{rec_id}/segments/{path.name}",
                    )
                )
        return findings

    # -- originals ----------------------------------------------------------------------------

    def original(self, rec: SignedRecording, manifest_path: str | None) -> Finding:
        if rec.original_sha256 is None:
            return Finding(
                kind=Verdict.UNVERIFIABLE,
                recording=rec.id,
                detail="no signed event gives the original's hash",
            )
        candidates = sorted((self.package / rec.id).glob("original*"))
        if manifest_path:
            candidates.insert(0, self.package / manifest_path)
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            return Finding(
                kind=Verdict.MISSING, recording=rec.id, detail="the original is not in the package"
            )
        sha, size = sha256_file(path)
        by_bytes = original_finding(
            rec.id,
            sha,
            size,
            rec.original_sha256,
            rec.original_size,
            str(path.relative_to(self.package)),
        )
        run = subprocess_run(DECODE_TIMEOUT_S)
        if by_bytes.clean:
            if self.ffmpeg is not None:
                self.originals[rec.id] = TimedOriginal(run, self.ffmpeg, path)
            return by_bytes
        return judge_original(run, self.ffmpeg, path, rec.segments, by_bytes)[0]

    def recovered(self, rec: SignedRecording, manifest_path: str | None) -> Finding | None:
        """The recovered stream of ``rec`` against its signed link (None: none is signed)."""
        if rec.recovered is None:
            return None
        suffix = Path(rec.recovered.file_name).suffix
        candidates = [self.package / rec.id / f"{RECOVERED_STEM}{suffix}"]
        if manifest_path:
            candidates.insert(0, self.package / manifest_path)
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            return recovered_finding(rec, None, str(candidates[-1].relative_to(self.package)))
        return recovered_finding(rec, sha256_file(path), str(path.relative_to(self.package)))
