"""How a file gets into an export package: a stored object copied as it is, or a segment whose
copy is not kept cut again from its original (``integrity.segment_files``)."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from catalog.models import Segment
from integrity.segment_files import CutPlan, SegmentFiles, SegmentNotReproduced
from store.base import Bucket, ObjectStore, sha256_file

logger = logging.getLogger(__name__)


class FileEntry(BaseModel):
    path: str
    sha256: str
    size: int


def copy_object(
    store: ObjectStore, bucket: Bucket, key: str, target: Path, expected: str | None
) -> FileEntry:
    """Copy the stored object as it is. Bytes that differ from the signed log are exported all
    the same (the package is evidence of what is stored; ``vigil-verify`` names the difference
    from the signed facts) and logged here."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with store.open(bucket, key) as src, target.open("wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    return copied(bucket, key, target, expected)


def copied(bucket: Bucket, key: str, target: Path, expected: str | None) -> FileEntry:
    sha, size = sha256_file(target)
    if expected is not None and sha != expected:
        logger.warning(
            "export: %s/%s differs from the signed log (sha256 %s…, signed %s…); exported as"
            " stored, vigil-verify names it",
            bucket, key, sha[:16], expected[:16],
        )  # fmt: skip
    return FileEntry(path="", sha256=sha, size=size)


@dataclass(frozen=True)
class SegmentSource:
    """Where a recording's segment files come from: the store, or (a segment whose copy is
    not kept) cut again from the original, as signed (``integrity.segment_files``)."""

    store: ObjectStore
    files: SegmentFiles | None
    plan: CutPlan | None

    def copy(self, seg: Segment, target: Path, expected: str | None) -> FileEntry:
        """The segment's file into ``target``: its stored copy, or cut again."""
        if seg.kept:
            return copy_object(self.store, "derived", seg.key, target, expected)
        if self.files is None or self.plan is None:
            raise SegmentNotReproduced(f"{seg.key}: no copy is kept and none can be cut here")
        target.parent.mkdir(parents=True, exist_ok=True)
        with self.files.path(self.plan, seg.index) as path:
            shutil.copyfile(path, target)
        # what is served is the signed segment: its signed bytes, or (cut by another ffmpeg)
        # its signed packets at the original's times, which ``vigil-verify`` judges so
        return copied("derived", seg.key, target, None)
