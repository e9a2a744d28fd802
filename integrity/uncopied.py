"""The verdict on a segment whose copy is not kept (issue 18): it is the original's packets in
its range, cut again whenever it is wanted, so it is judged by what the original's packets say
of it (``vigil_verify.original.judge_packets``), not by a file of its own; a live segment by its
signed bytes in the original (``judge_bytes``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vigil_verify.ledger import SignedSegment
from vigil_verify.packets import RangeFinding
from vigil_verify.verdicts import Finding, Verdict

from integrity.segment_files import CutPlan


@dataclass(frozen=True)
class FromOriginal:
    """What the original's check found, for the segments cut from it."""

    finding: Finding  # the original's
    packets: Mapping[int, RangeFinding] | None  # per signed segment (None: not read)
    key: str
    plan: CutPlan | None  # how to cut its segments again (``vigil verify --full``)


def uncopied_finding(recording_id: str, signed: SignedSegment, original: FromOriginal) -> Finding:
    """The segment judged by the original it is cut from."""

    def found(kind: Verdict, detail: str) -> Finding:
        return Finding(
            kind=kind,
            recording=recording_id,
            index=signed.index,
            detail=f"no copy kept: {detail}",
            file=signed.key,
        )

    whole = original.finding
    if whole.kind == Verdict.INTACT:
        return found(Verdict.INTACT, "cut from the original, whose bytes are as signed")
    if whole.kind == Verdict.MISSING:
        return found(Verdict.MISSING, f"the original it is cut from ({original.key}) is gone")
    said = original.packets.get(signed.index) if original.packets is not None else None
    if said is None:
        return found(
            Verdict.UNVERIFIABLE,
            f"the original it is cut from is {whole.kind}, and its packets there could not be read",
        )
    what = "bytes" if signed.source is not None else "packets"  # a live segment: its bytes
    streams = f" (stream {', '.join(str(s) for s in said.streams)})" if said.streams else ""
    if said.same:
        return found(
            Verdict.INTACT,
            f"its {what} in the original are as signed (the original changed elsewhere)",
        )
    if said.status == "short":
        return found(Verdict.TRUNCATED, f"the original ends before its signed {what} do{streams}")
    return found(
        Verdict.BYTES_ALTERED, f"its {what} in the original differ from the signed ones{streams}"
    )
