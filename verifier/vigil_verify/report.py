"""A whole package check: the log, the footage, and the manifest against the signed facts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vigil_verify.compare import Thresholds
from vigil_verify.footage import Finding, FootageChecker, OriginalFinding
from vigil_verify.ledger import LedgerCheck, check_ledger

__all__ = ["PackageReport", "render", "verify_package"]


@dataclass
class PackageReport:
    package: str
    case: str | None
    exported: str | None
    ledger: LedgerCheck
    ffmpeg: str | None
    originals: list[OriginalFinding] = field(default_factory=list)
    segments: list[Finding] = field(default_factory=list)
    log_problems: list[str] = field(default_factory=list)
    manifest_problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return (
            not self.log_problems
            and not self.manifest_problems
            and all(o.kind in ("intact", "not exported") for o in self.originals)
            and all(s.kind == "intact" for s in self.segments)
        )

    def to_json(self) -> dict[str, object]:
        head = self.ledger.head
        return {
            "package": self.package,
            "case": self.case,
            "clean": self.clean,
            "ledger": {
                "key_fingerprint": self.ledger.key_fingerprint,
                "key_source": self.ledger.key_source,
                "tree_size": head.size if head else None,
                "root": head.root.hex() if head else None,
                "signed_at": head.signed_at.isoformat() if head and head.signed_at else None,
                "timestamp": self.ledger.timestamp,
                "events": self.ledger.events_total,
                "events_proved": self.ledger.events_proved,
                "history_checked": self.ledger.history_checked,
            },
            "log_problems": self.log_problems,
            "manifest_problems": self.manifest_problems,
            "originals": [asdict(o) for o in self.originals],
            "segments": [asdict(s) for s in self.segments],
        }


def _load_manifest(package: Path, report_problems: list[str]) -> dict[str, object]:
    path = package / "manifest.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        report_problems.append(f"manifest: unreadable ({exc}); checking against the log alone")
        return {}
    return document if isinstance(document, dict) else {}


def _entries(value: object) -> list[dict[str, object]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def verify_package(
    package: Path,
    *,
    pinned_key: Path | None = None,
    trusted_checkpoint: Path | None = None,
    ffmpeg: str | None = None,
    thresholds: Thresholds = Thresholds(),
) -> PackageReport:
    manifest_problems: list[str] = []
    manifest = _load_manifest(package, manifest_problems)
    case = manifest.get("case_id")
    case_id = case if isinstance(case, str) else None
    ledger = check_ledger(
        package, case_id, pinned_key=pinned_key, trusted_checkpoint=trusted_checkpoint
    )
    exported = manifest.get("exported_at")
    report = PackageReport(
        package=str(package),
        case=case_id,
        exported=exported if isinstance(exported, str) else None,
        ledger=ledger,
        ffmpeg=ffmpeg,
        log_problems=list(ledger.problems),
        manifest_problems=manifest_problems,
    )
    checker = FootageChecker(package, ledger, ffmpeg, thresholds)
    manifest_recs = {
        str(r.get("id")): r for r in _entries(manifest.get("recordings")) if r.get("id")
    }
    linked = [r for r in ledger.facts.values() if r.windows and not r.unlinked]
    rec_ids = sorted({*manifest_recs, *(r.id for r in linked)})
    for rec_id in rec_ids:
        entry = manifest_recs.get(rec_id, {})
        rec = ledger.facts.get(rec_id)
        if rec is None or not rec.segments:
            report.manifest_problems.append(
                f"manifest: lists recording {rec_id}, which no proved event describes"
            )
            report.segments += [
                Finding(rec_id, None, "foreign", "not in any signed chain", str(s.get("file", "")))
                for s in _entries(entry.get("segments"))
            ]
            continue
        if not entry:
            report.manifest_problems.append(
                f"manifest: leaves out recording {rec_id}, which the log links to the case"
            )
        original = entry.get("original") if isinstance(entry.get("original"), dict) else None
        original_path = original.get("path") if isinstance(original, dict) else None
        report.originals.append(
            checker.original(rec, original_path if isinstance(original_path, str) else None)
        )
        if isinstance(original, dict) and original.get("sha256") != rec.original_sha256:
            report.manifest_problems.append(
                f"manifest: {rec_id} original sha256 differs from the signed log"
            )
        report.log_problems += checker.chain_problems(rec)
        for seg in checker.expected(rec):
            report.segments.append(checker.segment(rec, seg))
        report.segments += checker.missing_by_count(rec)
        _cross_check(report, rec_id, entry, ledger)
    report.segments += checker.unsigned_files(rec_ids)
    return report


def _cross_check(
    report: PackageReport, rec_id: str, entry: dict[str, object], ledger: LedgerCheck
) -> None:
    rec = ledger.facts[rec_id]
    for seg_entry in _entries(entry.get("segments")):
        index = seg_entry.get("index")
        signed = rec.segments.get(index) if isinstance(index, int) else None
        if signed is None:
            report.manifest_problems.append(
                f"manifest: lists {rec_id} segment {index}, which no signed event has"
            )
            report.segments.append(
                Finding(
                    rec_id,
                    index if isinstance(index, int) else None,
                    "foreign",
                    "listed by the manifest only: not in the signed chain",
                    str(seg_entry.get("file", "")),
                )
            )
            continue
        for name, value in (
            ("sha256", signed.sha256),
            ("chain", signed.chain),
            ("phash_sha256", signed.phash_sha256),
        ):
            if seg_entry.get(name) != value:
                report.manifest_problems.append(
                    f"manifest: {rec_id} segment {index} {name} differs from the signed log"
                )


def render(report: PackageReport) -> str:
    out: list[str] = []
    led = report.ledger
    out.append(f"vigil-verify {report.package}")
    out.append(f"  case {report.case or '?'}, exported {report.exported or '?'}")
    out.append(f"  ledger key  {led.key_fingerprint or '?'} ({led.key_source})")
    if led.head is not None:
        at = led.head.signed_at.isoformat() if led.head.signed_at else "?"
        out.append(f"  tree head   size {led.head.size}, signed {at}")
    if led.timestamp:
        out.append(f"  timestamp   {led.timestamp}")
    out.append(f"  events      {led.events_proved} of {led.events_total} proved in the signed log")
    out.append(f"  history     {led.history_checked} earlier signed head(s) checked")
    if not report.ffmpeg:
        out.append("  note        no ffmpeg: changed segments cannot be re-decoded")
    for original in report.originals:
        out.append(f"{original.recording}  original {original.kind}: {original.detail}")
        for seg in sorted(
            (s for s in report.segments if s.recording == original.recording),
            key=lambda s: (s.index is None, s.index or 0),
        ):
            where = f"segment {seg.index}" if seg.index is not None else "extra file"
            out.append(f"  {where:<12} {seg.kind:<11} {seg.detail}  [{seg.file}]")
    others = [
        s for s in report.segments if s.recording not in {o.recording for o in report.originals}
    ]
    for seg in others:
        out.append(f"{seg.recording}  {seg.kind}: {seg.detail}  [{seg.file}]")
    for problem in report.log_problems:
        out.append(f"PROBLEM {problem}")
    for problem in report.manifest_problems:
        out.append(f"PROBLEM {problem}")
    counts: dict[str, int] = {}
    for seg in report.segments:
        counts[seg.kind] = counts.get(seg.kind, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    verdict = "CLEAN" if report.clean else "PROBLEMS FOUND"
    out.append(f"RESULT: {verdict} ({summary or 'no segments'})")
    return "\n".join(out) + "\n"
