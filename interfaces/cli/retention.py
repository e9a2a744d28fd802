"""``vigil retention``: re-categorise footage (longer retention), sweep what has expired."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from interfaces.cli.context import running_app
from interfaces.cli.errors import CHECK_FAILED
from interfaces.cli.inputs import actor_option, reason_option, recording_argument


@click.group()
def retention() -> None:
    """Retention periods: re-categorise footage, delete what has expired."""


@retention.command("set")
@recording_argument()
@click.argument("category")
@reason_option("Why the category changes (at least 3 characters).")
@actor_option
@click.pass_context
def retention_set(
    ctx: click.Context, recording: str, category: str, reason: str, actor: str
) -> None:
    """Re-categorise RECORDING: its retention is extended to CATEGORY's (never shortened)."""
    with running_app(ctx) as app:
        change = app.retention.change(recording, category, actor=actor, reason=reason)
    if not change.recorded:
        click.echo(f"{change.recording_id} is already {category}: nothing changed")
        return
    click.echo(
        f"{change.recording_id}: {change.old_category or 'uncategorised'} -> {change.new_category},"
        f" kept until {change.retain_until.isoformat()} ({change.extended} of {change.objects}"
        " object(s) extended in the store)"
    )


@retention.command("sweep")
@click.option("--dry-run", is_flag=True, help="List what is due; delete nothing.")
@actor_option
@click.pass_context
def retention_sweep(ctx: click.Context, dry_run: bool, actor: str) -> None:
    """Delete footage past its retention that no case holds; each deletion a custody event."""
    with running_app(ctx) as app:
        report = app.retention.sweep(datetime.now(UTC), actor=actor, dry_run=dry_run)
    for item in report.items:
        error = f" ({item.error})" if item.error else ""
        click.echo(
            f"{item.recording_id} {item.outcome}: retention ended {item.retain_until.isoformat()},"
            f" {len(item.objects)} object(s){error}"
        )
    for recording_id in report.kept_uncategorised:
        click.echo(f"{recording_id} kept: past the default period but not yet categorised")
    if report.with_outcome("refused"):
        sys.exit(CHECK_FAILED)


COMMANDS: tuple[click.Command, ...] = (retention,)
