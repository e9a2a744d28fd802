"""The one vocabulary of verdicts: what ``vigil verify``, ``vigil match``, the API's verify and
``vigil-verify`` say of a segment, an original, a file or a catalogue row, and the finding that
carries it.

Each word means the same wherever it is printed. ``MEANINGS`` gives each its one line; the
README's "Verdicts" section lists them. A finding is a ``Finding``: the word (``kind``), the
recording, the segment's index (None: the original, a file that is no signed segment, or a copy's
stretch that is no segment), time ranges in seconds, a detail line, and the file where there is
one. ``Finding.to_json`` is its JSON form, the same in every ``--json`` report and the API.

Ranges are seconds on the recording's timeline (where a segment's picture was edited, what a
truncated segment lacks, the whole segment when none of it is found), except for *inserted*,
whose ranges are on the copy's timeline (``vigil match``: footage in the copy that is in no
segment of the recording).

``report_json`` is the top level of a ``--json`` report, shared by ``vigil-verify --json`` and
``vigil verify --json`` so that both read alike (``REPORT_KEYS``, plus ``exit_status``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from vigil_verify.facts import LedgerCheck

__all__ = [
    "CLEAN",
    "MEANINGS",
    "REPORT_KEYS",
    "Finding",
    "Verdict",
    "ledger_json",
    "report_json",
]


class Verdict(StrEnum):
    """The words. Each is its own string, so ``Verdict.INTACT == "intact"``."""

    INTACT = "intact"
    RE_ENCODED = "re-encoded"
    EDITED = "edited"
    MISSING = "missing"
    REORDERED = "reordered"
    FOREIGN = "foreign"
    TRUNCATED = "truncated"
    INSERTED = "inserted"
    BYTES_ALTERED = "bytes altered"
    CATALOGUE_ALTERED = "catalogue altered"
    UNVERIFIABLE = "unverifiable"
    NOT_EXPORTED = "not exported"
    NOT_LINKED = "not linked to the case"
    OUTSIDE = "outside the linked windows"

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


MEANINGS: Mapping[Verdict, str] = {
    Verdict.INTACT: "its bytes are the signed ones (SHA-256 as signed); for a segment whose copy"
    " is not kept, cut again from its original, its signed packets at the original's times;"
    " for a copy, the same pictures as the segment",
    Verdict.RE_ENCODED: "other bytes of another size, and the signed pictures from start to end:"
    " re-encoded or re-muxed, the content unchanged",
    Verdict.EDITED: "the pictures differ from the signed ones in the time ranges given (changed,"
    " or frames gone); the rest matches",
    Verdict.MISSING: "the footage is not there: no file, no signed event for a position the log"
    " counts, or none of its pictures in the file that stands in for it (range: all of it)",
    Verdict.REORDERED: "holds another segment of the same recording (its SHA-256 is signed for"
    " another position)",
    Verdict.FOREIGN: "holds a segment of another recording, or is a file no signed event names",
    Verdict.TRUNCATED: "its pictures match the signed ones but end early (range: what is gone)",
    Verdict.INSERTED: "footage in a copy that is in no segment of the recording (ranges: the"
    " copy's seconds)",
    Verdict.BYTES_ALTERED: "its bytes differ from the signed ones and no re-encode explains it:"
    " the same size as signed (changed in place, whatever the pictures show), or a file checked"
    " by its bytes alone (an original, a playlist)",
    Verdict.CATALOGUE_ALTERED: "a catalogue row differs from the custody event that signed its"
    " value (the footage itself may be intact)",
    Verdict.UNVERIFIABLE: "cannot be decided here: nothing signed to check it against, bytes"
    " changed and the pictures not comparable (no ffmpeg, no signed per-frame hashes), or bytes"
    " as signed whose pictures no longer match their signed hashes (a decoder change)",
    Verdict.NOT_EXPORTED: "left out of the package on purpose: the original of a recording the"
    " case links by windows only",
    Verdict.NOT_LINKED: "the package holds a recording no standing, signed case link links to"
    " its case",
    Verdict.OUTSIDE: "the package holds a segment (or an original) beyond the windows the"
    " case's signed links give",
}

CLEAN = frozenset({Verdict.INTACT, Verdict.NOT_EXPORTED})
"""The verdicts that are no problem."""

AUDIO_KINDS = ("same", "edited", "truncated", "missing", "extra", "desync")
"""What a finding says of a segment's audio, beside its pictures (``vigil_verify.audio_tracks``):
the same sound; edited in the ranges given (muted, replaced, cut, mixed with something); the
same sound but ending early; a track the segment has is gone; a track it never had was added;
the sound shifted against the pictures by 0.2 s or more."""


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One verdict on one thing: a segment, an original, a file, a copy's stretch."""

    kind: Verdict
    recording: str
    index: int | None = None  # the segment; None: the original, an unsigned file, a copy's stretch
    ranges: tuple[tuple[float, float], ...] = ()  # seconds (see the module's note)
    detail: str = ""
    file: str | None = None  # where it was looked for (in the package or the store)
    audio: str | None = None  # the segment's audio: one of AUDIO_KINDS (None: not compared)
    audio_ranges: tuple[tuple[float, float], ...] = ()  # where the audio was edited (s)

    @property
    def clean(self) -> bool:
        return self.kind in CLEAN

    def to_json(self) -> dict[str, object]:
        return {
            "kind": str(self.kind),
            "recording": self.recording,
            "index": self.index,
            "ranges": [[round(a, 3), round(b, 3)] for a, b in self.ranges],
            "detail": self.detail,
            "file": self.file,
            "audio": None
            if self.audio is None
            else {
                "kind": self.audio,
                "ranges": [[round(a, 3), round(b, 3)] for a, b in self.audio_ranges],
            },
        }

    @classmethod
    def from_json(cls, value: Mapping[str, object]) -> Finding:
        """The finding ``to_json`` gave (``ValueError`` when ``value`` is not one)."""
        index, ranges, file = value.get("index"), value.get("ranges", []), value.get("file")
        recording, detail = value.get("recording"), value.get("detail", "")
        if not isinstance(recording, str) or not isinstance(detail, str):
            raise ValueError("a finding needs a recording and a detail text")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
            raise ValueError(f"index {index!r} is no segment index")
        if file is not None and not isinstance(file, str):
            raise ValueError(f"file {file!r} is no path")
        audio, audio_ranges = _audio(value.get("audio"))
        return cls(
            kind=Verdict(str(value.get("kind"))),
            recording=recording,
            index=index,
            ranges=_ranges(ranges),
            detail=detail,
            file=file,
            audio=audio,
            audio_ranges=audio_ranges,
        )


def _audio(value: object) -> tuple[str | None, tuple[tuple[float, float], ...]]:
    if value is None:
        return None, ()
    if not isinstance(value, Mapping) or value.get("kind") not in AUDIO_KINDS:
        raise ValueError(f"audio {value!r} is no audio verdict")
    return str(value["kind"]), _ranges(value.get("ranges", []))


def _ranges(value: object) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list):
        raise ValueError("ranges must be a list of [start, end]")
    out: list[tuple[float, float]] = []
    for pair in value:
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError(f"range {pair!r} is not [start, end]")
        start, end = pair
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in pair):
            raise ValueError(f"range {pair!r} is not two numbers")
        out.append((float(start), float(end)))
    return tuple(out)


REPORT_KEYS = (
    "package",
    "case",
    "clean",
    "ledger",
    "log_problems",
    "manifest_problems",
    "malformed",
    "originals",
    "segments",
    "scope",
    "clips",
)
"""The top-level keys of every ``--json`` verification report, in order; the commands add
``exit_status``."""


def ledger_json(ledger: LedgerCheck) -> dict[str, object]:
    """The signed log the verdicts were read from."""
    head = ledger.head
    return {
        "key_fingerprint": ledger.key_fingerprint,
        "key_source": ledger.key_source,
        "tree_size": head.size if head else None,
        "root": head.root.hex() if head else None,
        "signed_at": head.signed_at.isoformat() if head and head.signed_at else None,
        "timestamp": ledger.timestamp,
        "witnesses": list(ledger.witnesses),
        "events": ledger.events_total,
        "events_proved": ledger.events_proved,
        "history_checked": ledger.history_checked,
    }


def report_json(
    *,
    package: str | None,
    case: str | None,
    clean: bool,
    ledger: LedgerCheck,
    log_problems: Sequence[str],
    manifest_problems: Sequence[str],
    malformed: Sequence[str],
    originals: Sequence[Finding],
    segments: Sequence[Finding],
    scope: Sequence[Mapping[str, object]],
    clips: Sequence[Mapping[str, object]] = (),
) -> dict[str, object]:
    """A verification report's JSON form (``REPORT_KEYS``). ``package`` is None for the
    server's store; ``manifest_problems`` holds the index checked against the log: the
    package's manifest, or the server's catalogue rows (each *catalogue altered*)."""
    return {
        "package": package,
        "case": case,
        "clean": clean,
        "ledger": ledger_json(ledger),
        "log_problems": list(log_problems),
        "manifest_problems": list(manifest_problems),
        "malformed": list(malformed),
        "originals": [o.to_json() for o in originals],
        "segments": [s.to_json() for s in segments],
        "scope": [dict(s) for s in scope],
        "clips": [dict(c) for c in clips],  # exported clips (``vigil_verify.clips``)
    }
