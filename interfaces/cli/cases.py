"""``vigil case``: link footage to cases, unlink it, show and list cases."""

from __future__ import annotations

import click

from catalog.repository import Event
from integrity.timeline import CaseTimeline, case_timeline
from interfaces.cli.context import actor_option, parse_offset, running_app
from interfaces.cli.render import render_timeline
from workers.app import Vigil


@click.group()
def case() -> None:
    """Link footage to cases and review them."""


@case.command("link")
@click.argument("case_id")
@click.argument("recording")
@click.option("--from", "from_", help="Window start, seconds into the recording (or m:ss).")
@click.option("--to", help="Window end, seconds into the recording (or m:ss).")
@click.option("--reason", required=True, help="Why this footage belongs to the case.")
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
    """Link RECORDING (or a time window of it) to CASE_ID."""
    lo, hi = parse_offset(from_), parse_offset(to)
    if lo is not None and hi is not None and hi <= lo:
        raise click.BadParameter("--to must be after --from")
    with running_app(ctx) as app:
        rec = app.catalog.recording(recording)
        app.cases.link(case_id, rec.id, from_s=lo, to_s=hi, reason=reason, actor=actor)
    window = "whole recording" if lo is None and hi is None else f"{lo or 0:g}-{hi or 'end'} s"
    click.echo(f"linked {rec.id} ({window}) to {case_id}")


@case.command("unlink")
@click.argument("case_id")
@click.argument("recording")
@click.option("--reason", required=True)
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
@click.argument("case_id")
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
            click.echo(f"{c.id}  {len(links)} link(s)  created {c.created_at.isoformat()}")


COMMANDS: tuple[click.Command, ...] = (case,)
