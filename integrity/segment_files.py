"""Segment files for whoever reads them (the perceptual stage, playback, export, ``vigil verify
--full``): the stored copy, or, for a segment whose copy is not kept (issue 18), the segment
cut again from the original and checked against its signed SHA-256 before anyone reads it.

A recording is cut again whole (one stream-copy pass over the original, nothing decoded: about
a second for an hour of 1080p on this machine's disk), into a cache folder under the work
folder, and the last few recordings' cuts are kept there for the reads that follow (a reviewer
playing segment after segment, the perceptual stage taking them one by one). The cache is not
evidence: it is made from the original, checked against the log, and may be removed at any
time. Each read gets its own hard link to the file, so an eviction never pulls a file from
under a reader.

A live recording's original is its segments as received, one after the other: its segments are
not cut again but read back from their signed byte ranges in it (``SourceBytes``), a later
session's retimed by its signed shift as when it was recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vigil_verify.ledger import SignedSegment
from vigil_verify.packets import PacketRange, SourceBytes, Stream
from vigil_verify.recut import TimedOriginal

from catalog.models import Recording, Segment
from integrity.audio import tools_run
from integrity.errors import ProofError
from store.base import ObjectStore, sha256_file
from transcode.commands import SegmentContainer, retime_command
from transcode.errors import TranscodeError
from transcode.ffmpeg import FfmpegFailed, Tools, ffmpeg_version
from transcode.segmenter import derive_segments

logger = logging.getLogger(__name__)

CONTAINERS: dict[str, SegmentContainer] = {".ts": "mpegts", ".mkv": "matroska"}
DONE = ".done"
REFUSED = "refused.json"  # index → the SHA-256 its cut made, not the signed one
RECUT = "recut.json"  # index → the SHA-256 of a cut holding the signed packets in other bytes


class SegmentNotReproduced(ProofError):
    """A segment whose copy is not kept could not be cut again as signed."""


@dataclass(frozen=True)
class SegmentFile:
    index: int
    key: str
    sha256: str
    kept: bool


@dataclass(frozen=True)
class CutPlan:
    """How a recording's segments were cut from its original: enough to cut them again."""

    recording_id: str
    original_key: str
    container: SegmentContainer
    cuts: tuple[int, ...]  # the first packet of the stream cut on, of segments 1...
    audio: bool
    video: bool
    files: Mapping[int, SegmentFile]
    # a live recording's: each segment's bytes in the original (then no cut is made: the
    # segment is those bytes, retimed by their shift)
    sources: Mapping[int, SourceBytes] | None = None
    # the ffmpeg that cut them, as signed in the recording's ``segment`` event (None: not said,
    # or not read from the log): what a refusal names
    cutter: str | None = None
    # each segment's signed packet ranges: what a cut in other bytes is judged by
    # (``vigil_verify.recut``)
    packets: Mapping[int, tuple[PacketRange, ...]] | None = None

    @property
    def digest(self) -> str:
        """Names this cut: the same recording with other files is another folder."""
        text = "|".join(f"{i}:{f.sha256}" for i, f in sorted(self.files.items()))
        more = "|".join(f"{i}:{s}" for i, s in sorted((self.sources or {}).items()))
        return hashlib.sha256(f"{self.cuts}|{text}|{more}".encode()).hexdigest()[:16]


def _plan(
    recording: Recording,
    original_key: str,
    files: Sequence[SegmentFile],
    firsts: Sequence[int | None],
    sources: Sequence[SourceBytes | None] = (),
    cutter: str | None = None,
    packets: Sequence[tuple[PacketRange, ...]] = (),
) -> CutPlan | None:
    if files and sources and all(s is not None for s in sources):
        return CutPlan(
            recording_id=recording.id, original_key=original_key, container="mpegts", cuts=(),
            audio=bool(recording.audio_tracks), video=recording.video_codec is not None,
            files={f.index: f for f in files},
            sources={f.index: s for f, s in zip(files, sources, strict=True) if s is not None},
            cutter=cutter,
        )  # fmt: skip
    if not files or any(f is None for f in firsts[1:]):
        return None
    container = CONTAINERS.get(Path(files[0].key).suffix.lower())
    if container is None:
        return None
    return CutPlan(
        recording_id=recording.id,
        original_key=original_key,
        container=container,
        cuts=tuple(f for f in firsts[1:] if f is not None),
        audio=bool(recording.audio_tracks),
        video=recording.video_codec is not None,
        files={f.index: f for f in files},
        cutter=cutter,
        packets={f.index: r for f, r in zip(files, packets, strict=True) if r} or None,
    )


def plan_from_rows(recording: Recording, rows: Sequence[Segment]) -> CutPlan | None:
    """The plan the catalogue describes (what reads it is checked against ``sha256``, which
    the rows check holds to the log); None when a segment has no packet ranges."""
    ordered = sorted(rows, key=lambda s: s.index)
    files = [SegmentFile(s.index, s.key, s.sha256, s.kept) for s in ordered]
    ranges = [s.packet_ranges for s in ordered]
    firsts = [r[0].first if r else None for r in ranges]
    sources = [_source(s) for s in ordered]
    return _plan(recording, recording.original_key, files, firsts, sources, packets=ranges)


def _source(row: Segment) -> SourceBytes | None:
    """The row's bytes in the original; None when it has none it can say (what is read is
    checked against the signed SHA-256 all the same)."""
    try:
        return row.source_bytes
    except (ValueError, TypeError, KeyError):
        return None


def plan_from_log(
    recording: Recording,
    original_key: str,
    signed: Mapping[int, SignedSegment],
    cutter: str | None = None,
) -> CutPlan | None:
    """The plan the signed log gives (``vigil verify``); ``cutter``: the signed ffmpeg that
    cut the segments."""
    ordered = [signed[i] for i in sorted(signed)]
    files = [SegmentFile(s.index, s.key, s.sha256, s.kept) for s in ordered]
    firsts = [s.packets[0].first if s.packets else None for s in ordered]
    sources = [s.source for s in ordered]
    ranges = [s.packets for s in ordered]
    return _plan(recording, original_key, files, firsts, sources, cutter, ranges)


def refusal(plan: CutPlan, index: int, made: str, cutting: str) -> str:
    """Why segment ``index``, cut again from the original by the ffmpeg ``cutting`` into a
    file of SHA-256 ``made``, is not served as the signed segment: named by which ffmpeg cut
    it, when the log says (the same one writes the same packets into the same bytes)."""
    signed = plan.files[index].sha256
    said = f"{plan.recording_id} segment {index}: cut again from the original it is sha256"
    said += f" {made[:16]}…, signed {signed[:16]}…"
    if plan.cutter is None:
        why = f"the original's packets there are not the signed ones, or {cutting}, this"
        why += " machine's ffmpeg, cuts them otherwise than the one that cut it"
    elif plan.cutter == cutting:
        why = f"{cutting}, the ffmpeg that cut it (signed), cuts it otherwise now: the"
        why += " original's packets there are not the signed ones"
    else:
        why = f"it was cut by {plan.cutter} (signed) and now by {cutting}: another ffmpeg may"
        why += " write the same packets into other bytes, or the original's packets there"
        why += " are not the signed ones"
    return f"{said} ({why})"


class SegmentFiles:
    """The file of a recording's segment, stored or cut again (see the module)."""

    def __init__(
        self,
        *,
        store: ObjectStore,
        tools: Tools,
        cache_dir: Path,
        keep_recordings: int = 4,
        keep_s: float = 3600.0,
    ) -> None:
        """The last ``keep_recordings`` recordings' cuts are kept, each for at most
        ``keep_s`` after its last use (footage whose retention has ended does not linger)."""
        self.store = store
        self.tools = tools
        self.cache_dir = cache_dir
        self.keep_recordings = keep_recordings
        self.keep_s = keep_s
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def path(self, plan: CutPlan, index: int) -> Iterator[Path]:
        """A local path to segment ``index``'s file, readable until the block ends. Raises
        ``ObjectMissing`` for a kept copy that is not stored, ``SegmentNotReproduced`` when a
        segment not kept cannot be cut again as signed."""
        wanted = plan.files[index]
        if wanted.kept:
            with self.store.local_path("derived", wanted.key) as path:
                yield path
            return
        private = Path(tempfile.mkdtemp(prefix="read-", dir=self._made_dir()))
        try:
            target = private / Path(wanted.key).name
            with self._lock:  # not evicted by this process between the cut and the link
                folder = self._cut(plan)
                made = json.loads((folder / REFUSED).read_text()).get(str(index))
                if made is not None:  # the SHA-256 of what the cut made
                    cutting = ffmpeg_version(self.tools)
                    raise SegmentNotReproduced(refusal(plan, index, made, cutting))
                os.link(folder / target.name, target)
            yield target
        finally:
            shutil.rmtree(private, ignore_errors=True)

    def recut(self, plan: CutPlan) -> dict[int, str]:
        """The segments of ``plan``'s cut (made by ``path`` or ``prepare``) served in other
        bytes than the signed file's: index → the SHA-256 of what was cut."""
        folder = self.cache_dir / f"{plan.recording_id}-{plan.digest}"
        with self._lock:
            try:
                made = json.loads((folder / RECUT).read_text())
            except FileNotFoundError:
                return {}
        return {int(i): str(sha) for i, sha in made.items()}

    def _made_dir(self) -> Path:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        return self.cache_dir

    def prepare(self, plan: CutPlan, index: int) -> None:
        """Cut ``plan``'s recording again now, if it is not cut already; raises as ``path``
        does for segment ``index``."""
        with self.path(plan, index):
            pass

    def _cut(self, plan: CutPlan) -> Path:
        folder = self.cache_dir / f"{plan.recording_id}-{plan.digest}"
        with self._lock:
            if (folder / DONE).exists():
                os.utime(folder)
                return folder
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix="cut-", dir=self.cache_dir))
            try:
                self._cut_into(plan, work)
                with contextlib.suppress(OSError):  # another process made it first
                    work.rename(folder)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            self._evict(keep=folder)
            return folder

    def _cut_into(self, plan: CutPlan, work: Path) -> None:
        with self.store.local_path("originals", plan.original_key) as original:
            if plan.sources is not None:
                made = self._made(plan, lambda: self._slice(original, plan.sources or {}, work))
            else:
                made = self._made(plan, lambda: self._derive(plan, original, work, listed=True))
                if any(made[i][1] != f.sha256 for i, f in plan.files.items()):
                    # cut before issue 18 (no packet listing in the run): that form too
                    older = self._made(
                        plan, lambda: self._derive(plan, original, work, listed=False)
                    )
                    made = {
                        i: older[i] if older[i][1] == f.sha256 else made[i]
                        for i, f in plan.files.items()
                    }
            timed = TimedOriginal(tools_run(self.tools), self.tools.ffmpeg, original)
            self._keep(plan, made, work, timed)
        for folder in ("cut", "cut-listed", "cut-unlisted"):
            shutil.rmtree(work / folder, ignore_errors=True)
        (work / DONE).touch()

    def _made(self, plan: CutPlan, cut: Callable[[], list[Path]]) -> dict[int, tuple[Path, str]]:
        """What ``cut`` made, by signed index, and each file's SHA-256; raises when it made no
        such set."""
        try:
            made = cut()
        except TranscodeError as exc:
            raise SegmentNotReproduced(
                f"{plan.recording_id}: its segments could not be cut again from the"
                f" original ({exc})"
            ) from exc
        if len(made) != len(plan.files):
            raise SegmentNotReproduced(
                f"{plan.recording_id}: cutting the original again made {len(made)}"
                f" segment(s), {len(plan.files)} are signed"
            )
        return {i: (p, sha256_file(p)[0]) for i, p in zip(sorted(plan.files), made, strict=True)}

    def _derive(self, plan: CutPlan, original: Path, work: Path, *, listed: bool) -> list[Path]:
        """The recording cut again as custody cut it: ``listed``, with its packets listed in
        the same run (every cut since issue 18), else as before it."""
        first = next(iter((plan.packets or {}).values()), ())
        streams = tuple(Stream(r.stream, r.codec) for r in first) if listed else ()
        folder = work / ("cut-listed" if listed else "cut-unlisted")
        return derive_segments(
            self.tools.runner, self.tools.ffmpeg, original, folder,
            container=plan.container, cuts=plan.cuts, audio=plan.audio,
            video=plan.video, timeout_s=self.tools.timeout_s, packets=streams,
        )  # fmt: skip

    def _keep(
        self,
        plan: CutPlan,
        made: Mapping[int, tuple[Path, str]],
        work: Path,
        original: TimedOriginal,
    ) -> None:
        """Each cut that is its signed segment (its signed bytes, or its signed packets at
        the original's times in another ffmpeg's bytes) put in place; the rest refused."""
        refused: dict[str, str] = {}  # index → the SHA-256 of what was cut instead
        recut: dict[str, str] = {}
        for index, wanted in sorted(plan.files.items()):
            path, sha = made[index]
            ranges = (plan.packets or {}).get(index) if plan.sources is None else None
            if sha != wanted.sha256 and (ranges is None or _unlike(original, path, ranges)):
                refused[str(index)] = sha  # never served as the signed segment
                continue
            if sha != wanted.sha256:
                recut[str(index)] = sha
                logger.info(
                    "%s segment %d: cut again by %s into other bytes (sha256 %s…), with every"
                    " signed packet at the original's time: served as the signed segment",
                    plan.recording_id, index, ffmpeg_version(self.tools), sha[:16],
                )  # fmt: skip
            path.rename(work / Path(wanted.key).name)
        (work / REFUSED).write_text(json.dumps(refused))
        (work / RECUT).write_text(json.dumps(recut))

    def _slice(self, original: Path, sources: Mapping[int, SourceBytes], work: Path) -> list[Path]:
        """A live recording's segments: each its bytes in the original, retimed by its shift
        (the same ``retime_command`` that made the signed file). A range the original does
        not hold makes an empty file (refused as not the signed segment)."""
        folder = work / "cut"
        folder.mkdir(parents=True, exist_ok=True)
        made = []
        with original.open("rb") as fh:
            for index, source in sorted(sources.items()):
                raw = folder / f"raw-{index:05d}.ts"
                fh.seek(source.offset)
                with raw.open("wb") as out:
                    left = source.size
                    while left and (block := fh.read(min(left, 1 << 20))):
                        out.write(block)
                        left -= len(block)
                if source.shift_s == 0.0 or raw.stat().st_size < source.size:
                    made.append(raw)
                    continue
                retimed = folder / f"seg-{index:05d}.ts"
                try:
                    self.tools.runner.run(
                        retime_command(self.tools.ffmpeg, raw, retimed, shift_s=source.shift_s),
                        timeout_s=self.tools.timeout_s,
                    )
                except FfmpegFailed:
                    retimed.write_bytes(b"")  # refused below, the others still served
                raw.unlink()
                made.append(retimed)
        return made

    def _evict(self, keep: Path) -> None:
        """Remove all but the ``keep_recordings`` most recently used cuts, and any unused for
        ``keep_s``."""
        cuts = sorted(
            (p for p in self.cache_dir.iterdir() if (p / DONE).exists() and p != keep),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        oldest = time.time() - self.keep_s
        for n, cut in enumerate(cuts):
            if n >= self.keep_recordings - 1 or cut.stat().st_mtime < oldest:
                shutil.rmtree(cut, ignore_errors=True)
        for stale in self.cache_dir.iterdir():  # a cut or a read a crash left behind
            if stale.name.startswith(("cut-", "read-")) and stale.stat().st_mtime < oldest:
                shutil.rmtree(stale, ignore_errors=True)


def _unlike(original: TimedOriginal, cut: Path, ranges: tuple[PacketRange, ...]) -> bool:
    """True when ``cut`` is not the segment ``ranges`` sign, by its packets and their times
    (``vigil_verify.recut``); why is logged."""
    try:
        why = original.problem(cut, ranges)
    except TranscodeError as exc:
        why = f"its packets could not be read ({exc})"
    if why is not None:
        logger.warning("%s: not the signed segment: %s", cut.name, why)
    return why is not None
