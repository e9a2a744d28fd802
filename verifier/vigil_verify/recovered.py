"""The link of a recovered stream to its original (issue 17): a recording whose container was
never finalised keeps its original byte-exact; the footage recovered from it is a derived
object, signed by an ``original.recovered`` custody event with both SHA-256s.

The link holds when the signed event names the original the signed ``ingest`` event gives
(the one the package's original is checked against), and the recovered file has the SHA-256
the event signs. Both sides use this rule: ``vigil-verify`` on a package, ``vigil verify`` on
the store. Pure: it is given what was found.
"""

from __future__ import annotations

from vigil_verify.facts import SignedRecording
from vigil_verify.verdicts import Finding, Verdict

__all__ = ["RECOVERED_STEM", "recovered_finding"]

RECOVERED_STEM = "recovered"
"""A package keeps a recording's recovered stream as ``<id>/recovered.<ext>``."""


def recovered_finding(
    rec: SignedRecording, found: tuple[str, int] | None, file: str | None
) -> Finding | None:
    """The verdict on recording ``rec``'s recovered stream, found at ``file`` with SHA-256
    and size ``found`` (None: not there); None when the signed log recovered nothing."""
    link = rec.recovered
    if link is None:
        return None
    what = f"recovered stream (original.recovered, event #{link.event_id})"
    if rec.original_sha256 is None or link.original_sha256 != rec.original_sha256:
        signed = "no signed original" if rec.original_sha256 is None else rec.original_sha256[:16]
        return Finding(
            kind=Verdict.FOREIGN,
            recording=rec.id,
            detail=f"{what}: the event names original sha256 {link.original_sha256[:16]}…, not"
            f" this recording's ({signed}…): it is not linked to this original",
            file=file,
        )
    if found is None:
        return Finding(
            kind=Verdict.MISSING,
            recording=rec.id,
            detail=f"{what}: not where it is kept",
            file=file,
        )
    sha, size = found
    if sha != link.sha256:
        return Finding(
            kind=Verdict.BYTES_ALTERED,
            recording=rec.id,
            detail=f"{what}: sha256 differs from the signed one ({size} bytes, {link.size} signed)",
            file=file,
        )
    return Finding(
        kind=Verdict.INTACT,
        recording=rec.id,
        detail=f"{what}: sha256 as signed ({size} bytes), recovered from the original sha256"
        f" {link.original_sha256[:16]}… with the codec setup of {link.reference_recording}"
        f" (sha256 {link.reference_sha256[:16]}…)",
        file=file,
    )
