"""A whole package check: the log, the footage, the manifest against the signed facts, and the
scope: every recording the package holds is linked to its case by the signed log
(``vigil_verify.scope``).

Nothing in a package can make the check raise: every file is read through
``vigil_verify.untrusted``, what cannot be read is listed in ``PackageReport.malformed`` (and
the check goes on with what it can read), and a recording whose check fails in a way nobody
foresaw is listed there too, named. IDs from the package name folders only when they fit the ID
grammar (``vigil_verify.names``), and a path from the manifest is followed only inside the
package. ``render`` prints nothing a terminal would act on: every line is made printable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from vigil_verify.clips import ClipFinding, check_clip
from vigil_verify.compare import Thresholds
from vigil_verify.footage import FootageChecker
from vigil_verify.ledger import LedgerCheck, SignedRecording, WitnessPolicy, check_ledger
from vigil_verify.names import is_id, shown
from vigil_verify.recovered import RECOVERED_STEM
from vigil_verify.scope import NOT_LINKED, ScopeFinding, check_scope, links_whole
from vigil_verify.untrusted import Malformed, guarded, parse_json, read_document
from vigil_verify.verdicts import Finding, Verdict, report_json

__all__ = ["UNCHECKED", "PackageReport", "render", "verify_package"]

UNCHECKED = "could not be checked"
"""What the report says of a recording whose check failed in a way nobody foresaw (a bug, which
the fuzz tests count as a crash): the rest of the package is still checked."""


@dataclass
class PackageReport:
    package: str
    case: str | None
    exported: str | None
    ledger: LedgerCheck
    ffmpeg: str | None
    originals: list[Finding] = field(default_factory=list)
    segments: list[Finding] = field(default_factory=list)
    log_problems: list[str] = field(default_factory=list)
    manifest_problems: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)  # what could not be read as it must be
    scope: list[ScopeFinding] = field(default_factory=list)  # held beyond what the case links
    clips: list[ClipFinding] = field(default_factory=list)  # clips/*.mp4 (``--clip`` exports)

    @property
    def clean(self) -> bool:
        return (
            not self.log_problems
            and not self.manifest_problems
            and not self.malformed
            and not self.scope
            and all(c.faithful for c in self.clips)
            and all(o.clean for o in self.originals)
            and all(s.kind == Verdict.INTACT for s in self.segments)
        )

    def to_json(self) -> dict[str, object]:
        """The report's JSON form: ``vigil_verify.verdicts.report_json``, the schema ``vigil
        verify --json`` shares."""
        return report_json(
            package=self.package,
            case=self.case,
            clean=self.clean,
            ledger=self.ledger,
            log_problems=self.log_problems,
            manifest_problems=self.manifest_problems,
            malformed=self.malformed,
            originals=self.originals,
            segments=self.segments,
            scope=[asdict(s) for s in self.scope],
            clips=[asdict(c) for c in self.clips],
        )


def _load_manifest(package: Path, malformed: list[str]) -> dict[str, object]:
    try:
        document = parse_json(
            read_document(package / "manifest.json", "manifest.json"), "manifest.json"
        )
        if not isinstance(document, dict):
            raise Malformed("manifest.json: not a JSON object")
    except Malformed as exc:
        malformed.append(f"manifest: unreadable ({exc}); checking against the log alone")
        return {}
    return document


def _manifest_recordings(
    manifest: dict[str, object], malformed: list[str]
) -> dict[str, dict[str, object]]:
    """The manifest's recordings by ID; an entry whose ID is no recording ID is malformed. A
    recording linked to the case more than once has an entry per link: the one that exports
    its original (a whole link) is the one checked."""
    found: dict[str, dict[str, object]] = {}
    for entry in _entries(manifest.get("recordings")):
        rec_id = entry.get("id")
        if is_id(rec_id):
            known = found.get(rec_id)
            if known is None or known.get("original") is None:
                found[rec_id] = entry
        else:
            malformed.append(f"manifest: recording id {shown(rec_id)} is not a recording ID")
    return found


def _inside(package: Path, relative: object, malformed: list[str]) -> str | None:
    """``relative``, a path the manifest gives, if it names something inside the package."""
    if not isinstance(relative, str) or not relative:
        return None
    try:
        base = package.resolve()
        inside = (base / relative).resolve().is_relative_to(base)
    except (OSError, ValueError, RuntimeError):
        inside = False
    if not inside or Path(relative).is_absolute():
        malformed.append(f"manifest: path {shown(relative)} leads outside the package")
        return None
    return relative


def _entries(value: object) -> list[dict[str, object]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _windowed_only(rec: SignedRecording) -> bool:
    """Does the signed log link this recording to the case by windows only (none whole)? Then
    the package rightly holds its segments in the windows and not its original."""
    return bool(rec.windows) and not links_whole(rec)


def verify_package(
    package: Path,
    *,
    pinned_key: Path | None = None,
    trusted_checkpoint: Path | None = None,
    ffmpeg: str | None = None,
    thresholds: Thresholds = Thresholds(),
    witnesses: WitnessPolicy | None = None,
    c2pa_trust: str | None = None,
) -> PackageReport:
    malformed: list[str] = []
    manifest = _load_manifest(package, malformed)
    case = manifest.get("case_id")
    case_id = case if isinstance(case, str) else None
    if case is not None and not is_id(case):
        malformed.append(f"manifest: case_id {shown(case)} is not a case ID")
    ledger = check_ledger(
        package, case_id, pinned_key=pinned_key, trusted_checkpoint=trusted_checkpoint,
        witnesses=witnesses,
    )  # fmt: skip
    exported = manifest.get("exported_at")
    report = PackageReport(
        package=str(package),
        case=case_id,
        exported=exported if isinstance(exported, str) else None,
        ledger=ledger,
        ffmpeg=ffmpeg,
        log_problems=list(ledger.problems),
        malformed=[*malformed, *ledger.malformed],
    )
    checker = FootageChecker(package, ledger, ffmpeg, thresholds)
    manifest_recs = _manifest_recordings(manifest, report.malformed)
    linked = [r for r in ledger.facts.values() if r.windows and not r.unlinked]
    rec_ids = sorted({*manifest_recs, *(r.id for r in linked)})
    for rec_id in rec_ids:
        try:
            guarded("", _check_recording, report, checker, rec_id, manifest_recs.get(rec_id, {}))
        except Malformed as exc:
            report.malformed.append(f"{rec_id}: {UNCHECKED} ({exc})")
    try:
        report.segments += guarded("", checker.unsigned_files, rec_ids)
    except Malformed as exc:
        report.malformed.append(f"footage: the files nobody signed {UNCHECKED} ({exc})")
    if is_id(case_id):  # else the manifest is malformed: no case to check the links of
        try:
            report.scope += guarded("", check_scope, package, case_id, manifest, ledger.facts)
        except Malformed as exc:
            report.malformed.append(f"scope: the recordings' links {UNCHECKED} ({exc})")
    for entry in _entries(manifest.get("clips")):
        try:
            report.clips.append(guarded("", check_clip, checker, entry, ledger, c2pa_trust))
        except Malformed as exc:
            report.malformed.append(f"clip {shown(entry.get('file'))}: {UNCHECKED} ({exc})")
    report.malformed += checker.malformed
    return report


def _check_recording(
    report: PackageReport, checker: FootageChecker, rec_id: str, entry: dict[str, object]
) -> None:
    """Recording ``rec_id``: its original, chain and segments against the signed facts, and its
    manifest ``entry`` (empty when the manifest leaves it out) against them."""
    rec = report.ledger.facts.get(rec_id)
    if rec is None or not rec.segments:
        report.manifest_problems.append(
            f"manifest: lists recording {rec_id}, which no proved event describes"
        )
        report.segments += [
            Finding(
                kind=Verdict.FOREIGN,
                recording=rec_id,
                detail="not in any signed chain",
                file=str(s.get("file", "")),
            )
            for s in _entries(entry.get("segments"))
        ]
        return
    if not entry:
        report.manifest_problems.append(
            f"manifest: leaves out recording {rec_id}, which the log links to the case"
        )
    original = entry.get("original") if isinstance(entry.get("original"), dict) else None
    original_path = original.get("path") if isinstance(original, dict) else None
    path = _inside(checker.package, original_path, report.malformed)
    if original is None and _windowed_only(rec):
        report.originals.append(
            Finding(
                kind=Verdict.NOT_EXPORTED,
                recording=rec_id,
                detail="the case links a window of it, not all",
            )
        )
    else:
        report.originals.append(checker.original(rec, path))
    if isinstance(original, dict) and original.get("sha256") != rec.original_sha256:
        report.manifest_problems.append(
            f"manifest: {rec_id} original sha256 differs from the signed log"
        )
    if original is not None:  # the recovered stream goes with the original (issue 17)
        _check_recovered(report, checker, rec, entry)
    report.log_problems += checker.chain_problems(rec)
    for seg in checker.expected(rec):
        report.segments.append(checker.segment(rec, seg))
    report.segments += checker.missing_by_count(rec)
    _cross_check(report, rec_id, entry, report.ledger)


def _check_recovered(
    report: PackageReport, checker: FootageChecker, rec: SignedRecording, entry: dict[str, object]
) -> None:
    """The recovered stream of ``rec`` (if the log signs one) against its signed link to the
    original, and the manifest's entry for it against the same."""
    listed = entry.get("recovered") if isinstance(entry.get("recovered"), dict) else None
    listed_path = listed.get("path") if isinstance(listed, dict) else None
    found = checker.recovered(rec, _inside(checker.package, listed_path, report.malformed))
    if found is not None:
        report.segments.append(found)
    signed = rec.recovered.sha256 if rec.recovered is not None else None
    if isinstance(listed, dict) and listed.get("sha256") != signed:
        report.manifest_problems.append(
            f"manifest: {rec.id} recovered stream sha256 differs from the signed log"
        )


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
                    kind=Verdict.FOREIGN,
                    recording=rec_id,
                    index=index if isinstance(index, int) else None,
                    detail="listed by the manifest only: not in the signed chain",
                    file=str(seg_entry.get("file", "")),
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
    out.extend(f"  witness     {verdict}" for verdict in led.witnesses)
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
            where = f"segment {seg.index}" if seg.index is not None else _unindexed(seg)
            out.append(f"  {where:<12} {seg.kind:<13} {seg.detail}  [{seg.file or ''}]")
        out.extend(_scope_line(f) for f in report.scope if f.recording == original.recording)
    out.extend(f"{clip.detail}  [C2PA: {clip.c2pa}]" for clip in report.clips)
    checked = {o.recording for o in report.originals}
    for seg in report.segments:
        if seg.recording not in checked:
            out.append(f"{seg.recording}  {seg.kind}: {seg.detail}  [{seg.file or ''}]")
    for found in report.scope:
        if found.recording not in checked:
            out.append(f"{found.recording}  {found.kind}: {found.detail}  [{found.file}]")
    for problem in report.log_problems:
        out.append(f"PROBLEM {problem}")
    for problem in report.manifest_problems:
        out.append(f"PROBLEM {problem}")
    for problem in report.malformed:
        out.append(f"MALFORMED {problem}")
    counts: dict[str, int] = {}
    for kind in [*(s.kind for s in report.segments), *(f.kind for f in report.scope)]:
        counts[kind] = counts.get(kind, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    verdict = "CLEAN" if report.clean else "PROBLEMS FOUND"
    if report.malformed:
        verdict = "MALFORMED PACKAGE"
    out.append(f"RESULT: {verdict} ({summary or 'no segments'})")
    return "".join(_printable(line) + "\n" for line in out)


def _unindexed(found: Finding) -> str:
    """What a finding with no segment index is about: the recovered stream, or a file."""
    name = (found.file or "").rpartition("/")[2]
    return RECOVERED_STEM if name.startswith(RECOVERED_STEM + ".") else "extra file"


def _scope_line(found: ScopeFinding) -> str:
    """A scope finding in its recording's block of the report."""
    if found.index is not None:
        where = f"segment {found.index}"
    else:
        where = "recording" if found.kind == NOT_LINKED else "original"
    return f"  {where:<12} {found.kind}: {found.detail}  [{found.file}]"


def _printable(line: str) -> str:
    """``line`` with every character a terminal could act on (a newline, an escape sequence, a
    bidirectional control, a lone surrogate) escaped: a package cannot forge or hide a line."""
    if line.isprintable():
        return line
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
