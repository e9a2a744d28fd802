"""``vigil ledger check``: the whole log, then every catalogue row against it.

First the log itself (``Ledger.audit``): every event still hashes to its leaf, every signed head
(the catalogue's and the WORM store's) fits the leaves. Then every recording and segment row is
compared with what the proved events say (``integrity.rows``): a rewritten row is named as
*catalogue altered* with its recording, segment and field.
"""

from __future__ import annotations

from dataclasses import dataclass

from integrity.ledger import Ledger, LedgerAudit, worm_checkpoint_keys
from integrity.logfacts import prove
from integrity.rows import RowFinding, recording_row_findings


@dataclass(frozen=True)
class FullAudit:
    ledger: LedgerAudit
    rows: tuple[RowFinding, ...]
    log_problems: tuple[str, ...]  # events that fail their proofs, heads that fail
    recordings_checked: int

    @property
    def ok(self) -> bool:
        return self.ledger.ok and not self.rows and not self.log_problems


def full_audit(ledger: Ledger) -> FullAudit:
    """The log, then every recording's rows against the proved facts of its events."""
    audit = ledger.audit(worm_checkpoint_keys(ledger.store))
    facts = prove(ledger, ledger.public_key)
    problems = list(facts.problems)
    rows: list[RowFinding] = []
    recordings = ledger.catalog.recordings()
    for rec in recordings:
        proved = facts.of(rec.id)
        problems.extend(f"{rec.id}: {p}" for p in proved.problems)
        rows.extend(recording_row_findings(rec, ledger.catalog.segments(rec.id), proved))
    return FullAudit(audit, tuple(rows), tuple(problems), len(recordings))
