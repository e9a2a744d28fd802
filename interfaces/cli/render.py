"""Plain-text views for the CLI: case timeline, verification (and its ``--json`` form), match
report."""

from __future__ import annotations

import math
from collections.abc import Sequence

from vigil_verify.compare import MatchReport
from vigil_verify.facts import LedgerCheck
from vigil_verify.match_report import match_findings
from vigil_verify.verdicts import Finding, Verdict, report_json

from catalog.ids import InvalidInput, require_window
from catalog.models import Recording
from integrity.timeline import CaseTimeline, RecordingView
from integrity.verify import RecordingVerification


def printable(line: str) -> str:
    """``line`` with every character that is not printable (a newline, an escape sequence, a
    bidirectional control) escaped: stored text never rewrites the terminal or forges a line."""
    if line.isprintable():
        return line
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)


def _lines(lines: Sequence[str]) -> str:
    return "\n".join(printable(line) for line in lines)


def _clock(seconds: float) -> str:
    """``h:mm:ss.sss``; a value that is no time (nan, infinite) as itself."""
    if not math.isfinite(seconds):
        return repr(seconds)
    minutes, secs = divmod(max(seconds, 0.0), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours:d}:{minutes:02d}:{secs:06.3f}"


def _window(view: RecordingView) -> str:
    """The linked window; one stored before windows were checked is flagged, not trusted."""
    lo, hi = view.window
    if lo is None and hi is None:
        return "whole"
    text = f"{_clock(lo or 0)}-{'end' if hi is None else _clock(hi)}"
    try:
        require_window(lo, hi, view.recording.duration_s)
    except InvalidInput as exc:
        return f"{text} (INVALID: {exc})"
    return text


def audio_summary(rec: Recording) -> str:
    """Which audio tracks a recording's segments carry: ``audio 2 tracks (first aac)``,
    ``audio 1 track (aac)``, ``audio none``; ``audio aac`` for one catalogued before its
    tracks were counted, ``audio ?`` before it is probed."""
    codec = rec.audio_codec or "?"
    if rec.audio_tracks is None:
        if rec.audio_codec is not None:
            return f"audio {rec.audio_codec}"
        return "audio ?" if rec.video_codec is None else "audio none"
    if rec.audio_tracks == 0:
        return "audio none"
    if rec.audio_tracks == 1:
        return f"audio 1 track ({codec})"
    return f"audio {rec.audio_tracks} tracks (first {codec})"


def _recording_block(view: RecordingView) -> list[str]:
    rec = view.recording
    window = _window(view)
    offset = "unknown" if rec.clock_offset_s is None else f"{rec.clock_offset_s:+.1f} s"
    lines = [
        f"recording {rec.id}  device {rec.device_id}  officer {rec.officer_id or '-'}"
        f"  window {window}",
        f"  original sha256 {rec.sha256}  {rec.size} bytes  {rec.video_codec or '?'}"
        f" {rec.width or '?'}x{rec.height or '?'} @ {rec.fps or 0:g} fps  {audio_summary(rec)}"
        f"  playback {rec.playback}",
        f"  device start {rec.device_start.isoformat() if rec.device_start else 'unknown'}"
        f"  received {rec.received_at.isoformat()}"
        f"  clock offset {offset}",
        f"  status {rec.status}  chain head {rec.chain_head or '-'}",
        f"  provenance {view.provenance}",
        f"  tracks {view.tracks_kept}",
        *(f"  {gps.describe()}" for gps in view.gps),
    ]
    if view.recovery is not None:
        lines.append(f"  {view.recovery}; the original is kept as it was stored")
    if rec.damage:
        lines.append(f"  FLAGGED: {rec.damage}")
    lines.append(
        "  seg  start        end          wall clock (*: server-corrected) sha256      "
        "perceptual (frames)       integrity"
    )
    gaps = sorted(view.gaps, key=lambda g: g.start)
    for seg in view.segments:
        while gaps and gaps[0].start < seg.start_s - 1e-6:
            gap = gaps.pop(0)
            lines.append(
                f"       !! {gap.kind.upper()} of {gap.seconds:.3f} s at {_clock(gap.start)}"
            )
        wall = seg.wall_start.isoformat(timespec="milliseconds") if seg.wall_start else "-"
        if seg.wall_start_server is not None:
            server = seg.wall_start_server.isoformat(timespec="milliseconds")
            wall = server if server == wall else server + "*"
        phash = f"{seg.phash_digest[:16]} ({seg.phash_frames})" if seg.phash_digest else "pending"
        lines.append(
            f"  {seg.index:3d}  {_clock(seg.start_s)}  {_clock(seg.end_s)}  {wall:<26} "
            f"{seg.sha256[:16]}  {phash:<24}  {seg.integrity}"
        )
        inner = [g for g in gaps if seg.start_s - 1e-6 <= g.start < seg.end_s]
        for gap in inner:
            gaps.remove(gap)
            lines.append(
                f"       !! {gap.kind.upper()} of {gap.seconds:.3f} s at {_clock(gap.start)}"
                f" (inside segment {seg.index})"
            )
    for gap in gaps:
        lines.append(f"       !! {gap.kind.upper()} of {gap.seconds:.3f} s at {_clock(gap.start)}")
    if view.continuous:
        lines.append(f"  continuous: {len(view.segments)} segments, no gap, no overlap")
    else:
        lines.append(f"  NOT continuous: {len(view.gaps)} gap(s)/overlap(s)")
    return lines


def render_timeline(timeline: CaseTimeline) -> str:
    lines = [f"case {timeline.case_id}: {len(timeline.recordings)} recording(s)"]
    for view in timeline.recordings:
        lines.append("")
        lines.extend(_recording_block(view))
    for gap in timeline.device_gaps:
        lines.append(
            f"!! device {gap.kind} of {gap.seconds:.1f} s between {gap.after} and {gap.before}"
            f" at {gap.start.isoformat()}"
        )
    lines.append("")
    lines.append("case footage: " + ("continuous" if timeline.continuous else "HAS GAPS"))
    return _lines(lines)


def render_verification(results: Sequence[RecordingVerification]) -> str:
    lines: list[str] = []
    for result in results:
        verdict = "OK" if result.ok else "FAILED"
        intact = sum(1 for s in result.segments if s.clean)
        playlist = "not signed" if result.playlist is None else result.playlist.kind
        where = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in result.original.ranges)
        lines.append(
            f"{result.recording_id}: {verdict} — original {result.original.kind}"
            f"{f' at {where}' if where else ''}, "
            f"{intact}/{len(result.segments)} segments intact, chain "
            f"{'intact' if result.chain_break is None else 'BROKEN'}, playlist {playlist}"
        )
        lines.extend(f"  - {problem}" for problem in result.problems)
    return _lines(lines)


def verification_json(
    results: Sequence[RecordingVerification],
    *,
    case: str | None,
    key_fingerprint: str,
    exit_status: int,
) -> dict[str, object]:
    """``vigil verify --json``: the schema of ``vigil-verify --json``
    (``vigil_verify.verdicts.report_json``) for footage in the store rather than a package."""
    heads = [r.log.head for r in results if r.log.head is not None]
    ledger = LedgerCheck(
        key_fingerprint=key_fingerprint,
        key_source="server",
        head=max(heads, key=lambda h: h.size) if heads else None,
        events_total=sum(r.log.events for r in results),
        events_proved=sum(r.log.events_proved for r in results),
    )
    segments: list[Finding] = []
    for result in results:
        segments.extend(result.segments)
        if result.playlist is not None and not result.playlist.clean:
            segments.append(result.playlist)
    report = report_json(
        package=None,
        case=case,
        clean=all(r.ok for r in results),
        ledger=ledger,
        log_problems=list(dict.fromkeys(p for r in results for p in r.log_problems)),
        manifest_problems=[str(f) for r in results for f in r.catalogue],
        malformed=[],
        originals=[r.original for r in results],
        segments=segments,
        scope=[],
    )
    return {**report, "exit_status": exit_status}


def render_match(recording_id: str, name: str, report: MatchReport) -> str:
    lines = [f"{name} against {recording_id}:"]
    for verdict, finding in zip(
        report.segments, match_findings(recording_id, report), strict=False
    ):
        lines.append(
            f"  segment {verdict.index:3d}: {finding.kind:<9} offset {verdict.offset_s:+.2f} s"
            f"  worst window {verdict.max_window_bits:5.1f} bits"
            + (f"  audio {finding.audio}" if finding.audio is not None else "")
            + (f"  {finding.detail}" if finding.kind != Verdict.INTACT else "")
        )
    for extra in report.extra:
        lines.append(f"  inserted: {extra.start:.1f}-{extra.end:.1f} s of the copy, in no segment")
    lines.append("verdict: " + ("same content" if report.clean else "DIFFERS"))
    return _lines(lines)
