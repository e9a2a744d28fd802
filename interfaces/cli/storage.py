"""``vigil storage compact``: recordings stored with every segment's copy moved to the form
without copies (``integrity.compact``; issue 18)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from catalog.proxy_cache import ProxyCache
from integrity.compact import Compactor
from interfaces.cli.context import running_app
from interfaces.cli.inputs import actor_option


@click.group()
def storage() -> None:
    """What the store holds: segment copies no longer needed."""


@storage.command("compact")
@click.option(
    "--apply/--dry-run",
    default=False,
    help="--dry-run (the default) lists what would be done; --apply does it.",
)
@click.argument("recordings", nargs=-1)
@actor_option
@click.pass_context
def storage_compact(
    ctx: click.Context, apply: bool, recordings: tuple[str, ...], actor: str
) -> None:
    """Delete the segment copies the original makes again, byte for byte (every recording, or
    RECORDINGS). Each recording compacted is a custody event (segment.uncopied) before any copy
    is deleted; a copy under legal hold or retention is left until the store allows it."""
    with running_app(ctx) as app:
        compactor = Compactor(
            catalog=app.catalog, store=app.store, ledger=app.ledger,
            segment_files=app.segment_files,
        )  # fmt: skip
        report = compactor.run(apply=apply, actor=actor, recording_ids=recordings or None)
    for item in report.items:
        size = f", {item.freed_bytes / 1e6:.1f} MB" if item.freed_bytes else ""
        click.echo(f"{item.recording_id} {item.state}: {item.detail}{size}")
        for kept in item.retained:
            click.echo(f"  left: {kept}")
    verb = "freed" if apply else "would free"
    click.echo(f"{verb} {report.freed_bytes / 1e6:.1f} MB")


@storage.command("expire-proxies")
@click.option(
    "--apply/--dry-run",
    default=False,
    help="--dry-run (the default) lists the review proxies due; --apply expires them.",
)
@actor_option
@click.pass_context
def storage_expire_proxies(ctx: click.Context, apply: bool, actor: str) -> None:
    """Expire the review proxies unused for VIGIL_PROXY_CACHE_DAYS: each a custody event
    (proxy.expired), its files deleted; playing the recording makes it again."""
    with running_app(ctx) as app:
        days = app.settings.proxy_cache_days
        if days is None:
            raise click.UsageError("VIGIL_PROXY_CACHE_DAYS is not set: proxies are kept")
        cache = ProxyCache(catalog=app.catalog, store=app.store, keep_days=days)
        expired = cache.expire(datetime.now(UTC), actor=actor, apply=apply)
    for item in expired:
        size = f", {item.freed_bytes / 1e6:.1f} MB" if item.freed_bytes else ""
        click.echo(f"{item.recording_id} {item.state}{size}")
    verb = "freed" if apply else "would free"
    click.echo(f"{verb} {sum(i.freed_bytes for i in expired) / 1e6:.1f} MB")


COMMANDS: tuple[click.Command, ...] = (storage,)
