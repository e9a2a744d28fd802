"""Helpers shared by the tests."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from catalog.models import Recording, Segment
from catalog.repository import recording_id_for
from ingest.service import RecordingMetadata
from integrity.segment_files import plan_from_rows
from interfaces.devservices.base import cache_root
from store.base import Bucket, ObjectStore, sha256_file
from transcode.ffmpeg import find_ffmpeg
from workers.app import Vigil

VIGIL = (sys.executable, "-m", "interfaces.cli")
"""The ``vigil`` command, run as a module of this interpreter."""

START = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


def metadata(
    name: str, device: str = "BC-0042", start: datetime | None = None
) -> RecordingMetadata:
    return RecordingMetadata(
        device_id=device,
        officer_id="031245",
        device_start=start or datetime(2026, 11, 27, 9, 30, tzinfo=UTC),
        original_name=name,
    )


def ingest_and_process(
    app: Vigil, path: Path, device: str = "BC-0042", start: datetime | None = None
) -> str:
    result = app.ingest.ingest_file(path, metadata(path.name, device, start), actor="test")
    app.run_pipeline()
    return result.recording_id


def object_path(app: Vigil, bucket: str, key: str) -> Path:
    return app.settings.store_root / bucket / key


def segment_path(app: Vigil, seg: Segment) -> Path:
    """A local file of the segment as any reader gets it: its stored copy, or (no copy kept,
    the default) a copy of its cut from the original, checked against its signed SHA-256."""
    if seg.kept:
        return object_path(app, "derived", seg.key)
    rows = app.catalog.segments(seg.recording_id)
    plan = plan_from_rows(app.catalog.recording(seg.recording_id), rows)
    assert plan is not None, f"{seg.key}: no copy kept and no plan to cut it"
    target = app.settings.data_dir / "test-reads" / Path(seg.key).name
    target.parent.mkdir(parents=True, exist_ok=True)
    with app.segment_files.path(plan, seg.index) as path:
        shutil.copyfile(path, target)
    return target


def copy_to(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


def copy_data(src: Path, dst: Path) -> Path:
    """A copy of the data folder ``src`` at ``dst`` for an app to open (file modes kept: the
    stored objects stay read-only)."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


def sha_of(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def recording(
    name: str = "a",
    *,
    device: str = "BC-0042",
    officer: str | None = "031245",
    start: datetime | None = START,
    duration: float | None = 60.0,
    fps: float | None = 25.0,
) -> Recording:
    sha = sha_of(name)
    rid = recording_id_for(sha)
    return Recording(
        id=rid,
        sha256=sha,
        size=1000,
        original_key=f"{rid}/original.mp4",
        original_name=f"{name}.mp4",
        device_id=device,
        officer_id=officer,
        device_start=start,
        received_at=START + timedelta(hours=2),
        status="stored",
        duration_s=duration,
        fps=fps,
    )


RENDERER = Path(__file__).resolve().parents[1] / "transcode" / "samples.py"


@functools.cache
def footage_cache() -> Path:
    """Where rendered test footage is kept: ``<cache_root()>/test-footage/<stamp>`` (by default
    ``~/.cache/vigil/test-footage/...``), shared by every checkout on this machine as Kafka's
    jars are, so that a fresh clone does not render it all again. The stamp is made of the
    ffmpeg that renders (its version line) and the code that describes the footage
    (``transcode/samples.py``): either changed, the footage is rendered anew; each file's own
    name is its spec's or its command's digest."""
    ffmpeg = find_ffmpeg(os.environ.get("VIGIL_FFMPEG"))
    version = subprocess.run(
        [ffmpeg, "-version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()[0]
    stamp = hashlib.sha256(version.encode() + RENDERER.read_bytes()).hexdigest()[:12]
    return cache_root() / "test-footage" / stamp


_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, remembered while its size and mtime stay the same."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)[0]
    return _DIGESTS[key]


def _is_file(arg: str) -> bool:
    try:
        return Path(arg).is_file()
    except (OSError, ValueError):  # a filter graph, too long for a name
        return False


def made_once(cmd: Sequence[str], make: Callable[[], None]) -> None:
    """Make the file ``cmd`` writes last (its final argument, e.g. a re-encoded or tampered
    copy) by ``make()`` once, and afterwards copy it from ``footage_cache()/made``: the same
    command on the same input bytes writes the same bytes (ffmpeg's encoders and muxers here
    are deterministic; the cache's stamp names the ffmpeg). The key is the command with every
    existing file it names replaced by its content's SHA-256, so a copy made from another
    file, or by another ffmpeg binary, is made anew. A command whose output is not one plain
    file (a pattern, a null muxer), or that fails, is only run."""
    out = Path(cmd[-1])
    if not out.suffix or "%" in out.name:
        make()
        return
    parts = [f"file:{_file_digest(Path(arg))}" if _is_file(arg) else arg for arg in cmd[:-1]]
    key = hashlib.sha256("\0".join([*parts, out.suffix]).encode()).hexdigest()[:24]
    kept = footage_cache() / "made" / f"{key}{out.suffix}"
    if kept.is_file():
        shutil.copyfile(kept, out)
        return
    make()
    if out.is_file():
        kept.parent.mkdir(parents=True, exist_ok=True)
        partial = kept.with_name(f".{kept.stem}.{os.getpid()}.partial{kept.suffix}")
        shutil.copyfile(out, partial)
        partial.replace(kept)


def render_once(out: Path, render: Callable[[Path], None]) -> Path:
    """``out``, rendered by ``render(partial)`` into a partial file of this process's own and
    renamed into place unless it is there already: test processes running side by side
    (pytest-xdist workers) may render the same cached file, never into one another's."""
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.stem}.{os.getpid()}.partial{out.suffix}")
        try:
            render(partial)
            partial.replace(out)
        finally:
            partial.unlink(missing_ok=True)
    return out


def listening(port: int) -> bool:
    """Whether a socket listens on loopback ``port`` (read from the kernel's table: a test
    connection would be taken as a live recorder's one camera)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for row in fh.read().splitlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                if local.endswith(f":{port:04X}") and state == "0A":  # 0A: LISTEN
                    return True
    return False


def stored_bytes(app: Vigil) -> dict[str, int]:
    """What the folder store holds, by bucket (its own files, not the catalogue's figures)."""
    root = app.settings.data_dir / "objects"
    return {
        bucket: sum(p.stat().st_size for p in (root / bucket).rglob("*") if p.is_file())
        for bucket in ("originals", "derived")
    }


class CrashingStore:
    """A real store, except that the process 'dies' (``KeyboardInterrupt``) at its
    ``after``-th deletion: what a crash between two deletions leaves."""

    def __init__(self, real: ObjectStore, after: int = 0) -> None:
        self.real = real
        self.left = after

    def delete_expired(self, bucket: Bucket, key: str, now: datetime) -> None:
        if self.left == 0:
            raise KeyboardInterrupt("crash")
        self.left -= 1
        self.real.delete_expired(bucket, key, now)

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)
