"""The scope half of a package check: every recording a package holds is there because the
signed log links it to the package's case, and holds only what the links cover.

A recording is *held* when the manifest lists it or the package has a folder named by it (its
segments, its original). It is *linked* when a ``case.link`` event of the package's case, proved
in the signed log, links it and no later proved ``case.unlink`` undoes it
(``vigil_verify.facts.apply_event`` keeps those windows). A held recording that is not linked is
**not linked to the case**; for a linked recording, a signed segment the package holds that lies
outside every linked window, or the original of a recording linked by windows only, is
**outside the linked windows**. Which segments the windows cover is the footage check's rule
(``FootageChecker.expected``, the server's ``catalog.scopes.overlaps``); when a link covers the
whole recording is the server's ``catalog.scopes.is_whole``, with the duration the server
records (the last segment's end less the first's start).

``scope_findings`` is the pure rule; ``held_recordings`` reads what the package holds without
following anything it names and without raising on what it finds.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vigil_verify.facts import SignedRecording
from vigil_verify.footage import SEGMENT_SUFFIXES, FootageChecker
from vigil_verify.names import is_id

__all__ = [
    "NOT_LINKED",
    "OUTSIDE",
    "Held",
    "ScopeFinding",
    "check_scope",
    "held_recordings",
    "links_whole",
    "scope_findings",
]

ScopeKind = Literal["not linked to the case", "outside the linked windows"]
NOT_LINKED: ScopeKind = "not linked to the case"
OUTSIDE: ScopeKind = "outside the linked windows"

RESERVED = frozenset({"ledger", "clips"})
"""Folders of the package that are no recording's."""


@dataclass(frozen=True)
class ScopeFinding:
    recording: str
    index: int | None  # the segment; None: the recording as a whole, or its original
    kind: ScopeKind
    detail: str
    file: str


@dataclass
class Held:
    """What a package holds of one recording."""

    recording: str
    listed: bool = False  # the manifest lists it
    folder: bool = False  # the package has a folder named by it
    segments: dict[int, str] = field(default_factory=dict)  # index -> file, manifest or folder
    original: str | None = None  # the original's file, when the package holds (or lists) one


def links_whole(rec: SignedRecording) -> bool:
    """Does a standing link cover the recording from its first frame to its last?"""
    ordered = [rec.segments[i] for i in sorted(rec.segments)]
    duration = ordered[-1].end_s - ordered[0].start_s if ordered else None
    return any(
        (lo is None or lo <= 0) and (hi is None or (duration is not None and hi >= duration))
        for lo, hi in rec.windows
    )


def _seconds(value: float | None, open_end: str) -> str:
    return open_end if value is None else f"{value:g} s"


def windows_text(windows: list[tuple[float | None, float | None]]) -> str:
    """``12 s to 18 s, 40 s to the end``."""
    return ", ".join(
        f"{_seconds(lo, 'the start')} to {_seconds(hi, 'the end')}" for lo, hi in windows
    )


def scope_findings(case: str, rec: SignedRecording | None, held: Held) -> list[ScopeFinding]:
    """What of ``held`` (recording ``rec`` as the signed log knows it, None when no proved
    event names it) the package's ``case`` does not link."""
    rec_id = held.recording
    if rec is None or not rec.windows:
        where = " and ".join(
            text
            for text, present in (
                ("the manifest lists it", held.listed),
                (f"the package has its folder {rec_id}/", held.folder),
            )
            if present
        )
        why = (
            f"the signed log unlinks it from case {case} and no later link stands"
            if rec is not None and rec.unlinked
            else f"no case.link event proved in the signed log links it to case {case}"
        )
        return [ScopeFinding(rec_id, None, NOT_LINKED, f"{why}, yet {where}", f"{rec_id}/")]
    if links_whole(rec):
        return []
    windows = windows_text(rec.windows)
    covered = {seg.index for seg in FootageChecker.expected(rec)}
    found: list[ScopeFinding] = []
    for index in sorted(held.segments):
        seg = rec.segments.get(index)
        if seg is None or index in covered:
            continue  # covered, or no signed segment: the footage check names that file
        found.append(
            ScopeFinding(
                rec_id,
                index,
                OUTSIDE,
                f"{seg.start_s:g}-{seg.end_s:g} s of the recording, outside every window the"
                f" log links to case {case} ({windows})",
                held.segments[index],
            )
        )
    if held.original is not None:
        found.append(
            ScopeFinding(
                rec_id,
                None,
                OUTSIDE,
                f"the original holds the whole recording; the log links to case {case} only"
                f" {windows}",
                held.original,
            )
        )
    return found


def _entries(value: object) -> list[dict[str, object]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _from_manifest(manifest: Mapping[str, object], held: dict[str, Held]) -> None:
    """Every entry of the manifest's recordings (one per link: all of them count)."""
    for entry in _entries(manifest.get("recordings")):
        rec_id = entry.get("id")
        if not is_id(rec_id):
            continue  # the report names it malformed
        rec = held.setdefault(rec_id, Held(rec_id))
        rec.listed = True
        for seg in _entries(entry.get("segments")):
            index, file = seg.get("index"), seg.get("file")
            if isinstance(index, int) and not isinstance(index, bool):
                rec.segments.setdefault(index, file if isinstance(file, str) else "")
        original = entry.get("original")
        if isinstance(original, dict):
            path = original.get("path")
            rec.original = path if isinstance(path, str) else f"{rec_id}/original"


def _from_folder(folder: Path, facts: Mapping[str, SignedRecording], held: dict[str, Held]) -> None:
    """The package's ``folder`` named by a recording ID, if it is a folder: the recording is
    held, with the signed segments and the original in it (a link is not followed)."""
    if not folder.is_dir():
        return
    rec_id = folder.name
    found = held.setdefault(rec_id, Held(rec_id))
    found.folder = True
    if folder.is_symlink():
        return
    rec = facts.get(rec_id)
    names = {s.file_name: s.index for s in rec.segments.values()} if rec else {}
    segments = folder / "segments"
    if segments.is_dir() and not segments.is_symlink():
        for path in sorted(segments.iterdir()):
            index = names.get(path.name)
            if index is not None and path.suffix in SEGMENT_SUFFIXES and path.is_file():
                found.segments[index] = f"{rec_id}/segments/{path.name}"
    for path in sorted(folder.glob("original*")):
        if path.is_file():
            found.original = f"{rec_id}/{path.name}"
            break


def held_recordings(
    package: Path, manifest: Mapping[str, object], facts: Mapping[str, SignedRecording]
) -> dict[str, Held]:
    """Every recording ``package`` holds, by ID: listed by ``manifest`` or with a folder (an ID
    that is no recording's folder name is left to the checks that read it)."""
    held: dict[str, Held] = {}
    _from_manifest(manifest, held)
    try:
        children = sorted(package.iterdir())
    except OSError:
        children = []
    for path in children:
        if is_id(path.name) and path.name not in RESERVED:
            # What cannot be read is held all the same, as far as it was read.
            with suppress(OSError):
                _from_folder(path, facts, held)
    return held


def check_scope(
    package: Path,
    case: str,
    manifest: Mapping[str, object],
    facts: Mapping[str, SignedRecording],
) -> list[ScopeFinding]:
    """Every recording ``package`` holds against the signed links of ``case``."""
    found: list[ScopeFinding] = []
    for rec_id, held in sorted(held_recordings(package, manifest, facts).items()):
        found += scope_findings(case, facts.get(rec_id), held)
    return found
