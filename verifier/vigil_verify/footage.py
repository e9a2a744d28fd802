"""The footage half of a package check: every signed segment against the file in the package.

Per segment, in this order:

- **missing**: no file where the package keeps it;
- **intact**: its SHA-256 is the signed one;
- **reordered**: it holds another segment of the same recording (its hash is signed for another
  position);
- **foreign**: it holds a segment of another recording, or a file no signed event names;
- otherwise its bytes changed, and the picture decides (re-decoded by ffmpeg and hashed with PDQ
  at the signed rate, compared by timestamp with the signed per-frame hashes):
  **truncated** when what is there matches but ends early; **re-encoded** when it all matches;
  **edited** when a window of the picture differs, frames are gone from inside it, or its bytes
  were changed in place (same size as the signed file: no re-encode keeps the exact size).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from vigil_verify.chain import ChainEntry, link
from vigil_verify.compare import Thresholds, compare_segment
from vigil_verify.frames import FRAME_SIDE, FrameHashes
from vigil_verify.ledger import LedgerCheck, SignedRecording, SignedSegment
from vigil_verify.pdq import pdq_hashes
from vigil_verify.untrusted import Malformed, guarded, read_document

Kind = Literal[
    "intact", "re-encoded", "edited", "missing", "reordered", "foreign", "truncated", "changed"
]
DECODE_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Finding:
    recording: str
    index: int | None  # None: a file that is no signed segment
    kind: Kind
    detail: str
    file: str


@dataclass(frozen=True)
class OriginalFinding:
    recording: str
    kind: Literal["intact", "missing", "edited", "truncated", "not exported"]
    detail: str


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
    """
    start = grid_start(segment.start_s, rate)
    args = gray_frames_args(ffmpeg, path, rate=rate, start_time=start - segment.start_s)
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
    return FrameHashes.on_grid(start, rate, hashes, quality)


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
            entry = ChainEntry(index, seg.start_s, seg.end_s, seg.sha256)
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
            Finding(rec.id, i, "missing", "no signed event and no file for this position", "")
            for i in range(rec.segment_count)
            if i not in rec.segments
        ]

    # -- one segment --------------------------------------------------------------------------

    def segment(self, rec: SignedRecording, seg: SignedSegment) -> Finding:
        rel = f"{rec.id}/segments/{seg.file_name}"
        path = self.package / rel
        if not path.is_file():
            return Finding(rec.id, seg.index, "missing", f"{rel} is not in the package", rel)
        sha, size = sha256_file(path)
        if sha == seg.sha256:
            return Finding(rec.id, seg.index, "intact", "sha256 as signed", rel)
        owner = self.by_sha.get(sha)
        if owner is not None and owner[0] == rec.id:
            return Finding(
                rec.id, seg.index, "reordered", f"holds segment {owner[1]}'s content", rel
            )
        if owner is not None:
            return Finding(
                rec.id,
                seg.index,
                "foreign",
                f"holds segment {owner[1]} of recording {owner[0]}, not this chain's",
                rel,
            )
        return self._changed(rec, seg, path, rel, same_size=size == seg.size)

    def _reference(self, rec: SignedRecording, seg: SignedSegment) -> FrameHashes | None:
        if seg.phash_sha256 is None:
            return None
        rel = f"{rec.id}/segments/{Path(seg.file_name).stem}.pdq"
        path = self.package / rel
        if not path.is_file():
            return None
        try:
            blob = read_document(path, rel)
            if hashlib.sha256(blob).hexdigest() != seg.phash_sha256:
                return None
            return guarded(rel, FrameHashes.from_bytes, blob)
        except Malformed as exc:
            # Unreadable, or its hash is the signed one and it is still no per-frame hashes.
            self.malformed.append(f"footage: per-frame hashes {exc}")
            return None

    def _changed(
        self, rec: SignedRecording, seg: SignedSegment, path: Path, rel: str, *, same_size: bool
    ) -> Finding:
        def finding(kind: Kind, detail: str) -> Finding:
            return Finding(rec.id, seg.index, kind, detail, rel)

        in_place = " in place (same size as signed)" if same_size else ""

        def undecided(why: str) -> Finding:
            if same_size:
                return finding("edited", f"sha256 differs, bytes changed{in_place} ({why})")
            return finding("changed", f"sha256 differs; cannot tell re-encode from edit ({why})")

        reference = self._reference(rec, seg)
        if self.ffmpeg is None or reference is None:
            return undecided("no ffmpeg" if self.ffmpeg is None else "no signed perceptual hashes")
        try:
            fresh = segment_frame_hashes(self.ffmpeg, path, seg, reference.rate)
        except OSError as exc:
            return undecided(f"ffmpeg {self.ffmpeg} does not run: {exc.strerror or exc}")
        except (ValueError, subprocess.SubprocessError) as exc:
            return finding("edited", f"sha256 differs and {exc}")
        if len(fresh) == 0:
            return finding("edited", "sha256 differs and no picture decodes")
        window = self.thresholds.window_s
        if fresh.end < reference.end - window:
            head = reference.slice_time(reference.start, fresh.end)
            prefix = compare_segment(head, fresh, self.thresholds, index=seg.index)
            if prefix.status == "same" and abs(prefix.offset_s) < 1.5 / reference.rate:
                if same_size:
                    return finding("edited", f"bytes changed{in_place}; picture ends early")
                return finding(
                    "truncated",
                    f"ends {reference.end - fresh.end:.1f} s early, at {fresh.end:.1f} s of"
                    f" {reference.end:.1f} s; what remains matches",
                )
        verdict = compare_segment(reference, fresh, self.thresholds, index=seg.index)
        if verdict.status == "same" and fresh.end >= reference.end - window:
            if same_size:
                return finding(
                    "edited",
                    f"bytes changed{in_place}; the picture still matches"
                    f" (mean {verdict.mean_bits:.1f} bits)",
                )
            return finding(
                "re-encoded",
                f"sha256 differs, same content (mean {verdict.mean_bits:.1f} bits)",
            )
        where = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in verdict.edited_ranges)
        if verdict.status == "missing":
            return finding("edited", "sha256 differs and the picture is another one")
        if not where:
            short = reference.end - fresh.end
            where = f"{short:.1f} s of frames gone"
        return finding("edited", f"sha256 differs and the picture changed at {where}")

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
                    Finding(rec_id, None, "foreign", detail, f"{rec_id}/segments/{path.name}")
                )
        return findings

    # -- originals ----------------------------------------------------------------------------

    def original(self, rec: SignedRecording, manifest_path: str | None) -> OriginalFinding:
        if rec.original_sha256 is None:
            return OriginalFinding(rec.id, "missing", "no signed event gives the original's hash")
        candidates = sorted((self.package / rec.id).glob("original*"))
        if manifest_path:
            candidates.insert(0, self.package / manifest_path)
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            return OriginalFinding(rec.id, "missing", "the original is not in the package")
        sha, size = sha256_file(path)
        if sha == rec.original_sha256:
            return OriginalFinding(rec.id, "intact", f"sha256 as signed ({size} bytes)")
        if rec.original_size is not None and size < rec.original_size:
            return OriginalFinding(
                rec.id,
                "truncated",
                f"sha256 differs: {size} of the signed {rec.original_size} bytes",
            )
        return OriginalFinding(rec.id, "edited", "sha256 differs from the signed one")
