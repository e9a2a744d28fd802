"""``vigil case``: link footage to cases, unlink it, show and list cases."""

from __future__ import annotations

import click
from vigil_verify.names import is_id, shown

from catalog.ids import require_window
from catalog.repository import Event
from integrity.timeline import CaseTimeline, case_timeline
from interfaces.cli.context import running_app
from interfaces.cli.inputs import (
    actor_option,
    case_argument,
    parse_offset,
    reason_option,
    recording_argument,
)
from interfaces.cli.render import render_timeline
from workers.app import Vigil


@click.group()
def case() -> None:
    """Link footage to cases and review them."""


@case.command("link")
@case_argument()
@recording_argument()
@click.option("--from", "from_", help="Window start, seconds into the recording (or m:ss).")
@click.option("--to", help="Window end, seconds into the recording (or m:ss).")
@reason_option("Why this footage belongs to the case (at least 3 characters).")
@actor_option
@click.pass_context
def case_link(
    ctx: click.Context,
    case_id: str,
    recording: str,
    from_: str | None,
    to: str | None,
    reason: str,
    actor: str,
) -> None:
    """Link RECORDING (or a time window of it) to CASE_ID. A window is finite, starts before
    it ends and lies inside the recording."""
    lo, hi = require_window(parse_offset(from_, "--from"), parse_offset(to, "--to"))
    with running_app(ctx) as app:
        rec = app.catalog.recording(recording)
        require_window(lo, hi, rec.duration_s)
        app.cases.link(case_id, rec.id, from_s=lo, to_s=hi, reason=reason, actor=actor)
    end = "end" if hi is None else f"{hi:g}"
    window = "whole recording" if lo is None and hi is None else f"{lo or 0:g}-{end} s"
    click.echo(f"linked {rec.id} ({window}) to {case_id}")


@case.command("unlink")
@case_argument()
@recording_argument()
@reason_option("Why the footage no longer belongs to the case (at least 3 characters).")
@actor_option
@click.pass_context
def case_unlink(ctx: click.Context, case_id: str, recording: str, reason: str, actor: str) -> None:
    """Remove RECORDING from CASE_ID (the link stays in the custody log)."""
    with running_app(ctx) as app:
        rec = app.catalog.recording(recording)
        count = app.cases.unlink(case_id, rec.id, reason=reason, actor=actor)
    click.echo(f"unlinked {count} link(s) of {rec.id} from {case_id}")


def timeline_of(app: Vigil, case_id: str) -> CaseTimeline:
    """CASE_ID's timeline under the app's continuity tolerances."""
    return case_timeline(
        app.catalog,
        case_id,
        tolerance_frames=app.settings.continuity_tolerance_frames,
        device_tolerance_s=app.settings.device_gap_tolerance_s,
    )


@case.command("show")
@case_argument()
@actor_option
@click.pass_context
def case_show(ctx: click.Context, case_id: str, actor: str) -> None:
    """The case's footage as a timeline, with gaps and each segment's integrity state."""
    with running_app(ctx) as app:
        timeline = timeline_of(app, case_id)
        app.catalog.add_event(Event("view", actor, case_id=case_id, reason="case show"))
    click.echo(render_timeline(timeline))


@case.command("list")
@click.pass_context
def case_list(ctx: click.Context) -> None:
    """All cases."""
    with running_app(ctx) as app:
        for c in app.catalog.cases():
            links = app.catalog.case_links(c.id)
            # A case named before IDs were checked is shown escaped, and flagged.
            name = c.id if is_id(c.id) else f"{shown(c.id)} (not a valid case ID)"
            click.echo(f"{name}  {len(links)} link(s)  created {c.created_at.isoformat()}")


COMMANDS: tuple[click.Command, ...] = (case,)
