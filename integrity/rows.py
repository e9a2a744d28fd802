"""Catalogue rows against the signed log: every recording and segment row field that the log
also holds must say the same. A row that disagrees is *catalogue altered*, named with its
recording, segment and field: its own verdict (``vigil_verify.verdicts``), distinct from what the
footage is (the footage may well be intact; an index someone can edit was changed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from vigil_verify.verdicts import Verdict

from catalog.models import Recording, Segment, shown_source
from integrity.logfacts import ProvedRecording

_TIME_SLACK = 1e-6


@dataclass(frozen=True)
class RowFinding:
    recording_id: str
    segment: int | None  # None: the recording's own row
    field: str
    row: str
    signed: str

    def __str__(self) -> str:
        where = "recording" if self.segment is None else f"segment {self.segment}"
        return (
            f"{Verdict.CATALOGUE_ALTERED}: {self.recording_id} {where} {self.field}"
            f" (the row says {self.row}, the signed log {self.signed})"
        )


def _short(value: object) -> str:
    text = "none" if value is None else str(value)
    return text if len(text) <= 20 else f"{text[:16]}…"


def _differs(row: object, signed: object) -> bool:
    if isinstance(row, float) and isinstance(signed, float):
        return abs(row - signed) > _TIME_SLACK
    return row != signed


def _fields(
    rec_id: str, segment: int | None, pairs: Sequence[tuple[str, object, object]]
) -> Iterator[RowFinding]:
    for name, row, signed in pairs:
        if signed is not None and _differs(row, signed):
            yield RowFinding(rec_id, segment, name, _short(row), _short(signed))


def _sha256(blob: bytes | None) -> str | None:
    return hashlib.sha256(blob).hexdigest() if blob is not None else None


def recording_row_findings(
    rec: Recording, segments: Sequence[Segment], log: ProvedRecording
) -> list[RowFinding]:
    """Every field of ``rec`` and its segment rows that the signed log contradicts."""
    facts = log.facts
    found = list(
        _fields(
            rec.id,
            None,
            [
                ("sha256", rec.sha256, facts.original_sha256),
                ("size", rec.size, facts.original_size),
                ("original key", rec.original_key, log.original_key),
                ("chain anchor", rec.anchor, facts.anchor),
                ("chain head", rec.chain_head, log.chain_head),
                ("segment count", rec.segment_count, facts.segment_count),
                ("playlist sha256", rec.playlist_sha256, log.playlist_sha256),
            ],
        )
    )
    rows = {s.index: s for s in segments}
    for index, signed in sorted(facts.segments.items()):
        row = rows.get(index)
        if row is None:
            found.append(RowFinding(rec.id, index, "row", "gone", f"segment {index}"))
            continue
        pairs: list[tuple[str, object, object]] = [
            ("key", row.key, signed.key),
            ("sha256", row.sha256, signed.sha256),
            ("size", row.size, signed.size),
            ("start", row.start_s, signed.start_s),
            ("end", row.end_s, signed.end_s),
            ("chain link", row.chain, signed.chain),
            ("packet ranges digest", row.packets_digest, signed.packets_digest),
            ("copy kept", row.kept, signed.kept),
            ("bytes in the original", row.source_shown, shown_source(signed.source)),
            # a blob the log signed and the row lost is named as much as one rewritten
            ("per-frame hashes sha256", _sha256(row.phash), signed.phash_sha256),
            ("audio fingerprints sha256", _sha256(row.audio), signed.audio_sha256),
        ]
        found.extend(_fields(rec.id, index, pairs))
    if not log.unsigned:  # every event is signed: a row the log never mentions was added
        found.extend(
            RowFinding(rec.id, index, "row", "present", "no such segment")
            for index in sorted(set(rows) - set(facts.segments))
        )
    return found
