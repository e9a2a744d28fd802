"""``vigil ledger`` (signed tree heads over the custody log: make a key, sign, check, prove, and
the signing worker) and ``vigil events`` (the custody log itself)."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from catalog.ids import require_case_id, require_recording_id
from integrity.audit import full_audit
from integrity.errors import LedgerError
from integrity.keys import create_signing_key, load_signing_key
from integrity.ledger import canonical_event
from interfaces.cli.context import (
    metrics_port_option,
    on_stop_signals,
    open_app,
    running_app,
    serve_metrics,
    settings_of,
    stopping,
)
from interfaces.cli.errors import CHECK_FAILED
from interfaces.cli.inputs import checked
from interfaces.cli.render import printable
from store.errors import StoreError
from workers.app import Vigil


@click.group()
def ledger() -> None:
    """The custody ledger: signed tree heads, proofs, audit."""


@ledger.command("keygen")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def ledger_keygen(ctx: click.Context, path: Path) -> None:
    """Make an Ed25519 signing key for the ledger at PATH (mode 0600; never overwrites)."""
    settings = settings_of(ctx)
    try:
        key = create_signing_key(path, settings.ledger_name)
    except FileExistsError as exc:
        raise click.ClickException(f"{path} exists; a ledger key is never overwritten") from exc
    public = path.with_suffix(".pub.pem")
    public.write_bytes(key.public_pem)
    click.echo(f"signing key {path} (keep it secret), public key {public}")
    click.echo(f"fingerprint {key.fingerprint}: publish it so anyone can pin it in vigil-verify")


@ledger.command("sign")
@click.option("--force", is_flag=True, help="Sign even if the latest head covers the whole log.")
@click.pass_context
def ledger_sign(ctx: click.Context, force: bool) -> None:
    """Sequence pending custody events and sign a tree head."""
    with running_app(ctx) as app:
        head = app.ledger.checkpoint(force=force)
        for refusal in witness(app, head.size):
            click.echo(f"WARNING {refusal}", err=True)
        stamped = "with RFC 3161 timestamp" if head.timestamp_token else "no timestamp"
        click.echo(f"tree head: size {head.size} root {head.root} ({stamped})")
        click.echo(f"stored as {head.object_key}; key {head.key_id}")


@ledger.command("rotate")
@click.option(
    "--old",
    "old_key",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The key being retired (PEM); VIGIL_LEDGER_KEY_FILE is the new one.",
)
@click.pass_context
def ledger_rotate(ctx: click.Context, old_key: Path) -> None:
    """Hand the ledger over to a new key: its first head is signed by the old key too."""
    settings = settings_of(ctx)
    old = load_signing_key(old_key, settings.ledger_name)
    with running_app(ctx) as app:
        head = app.ledger.hand_over(old)
        click.echo(f"handover head: size {head.size}, signed by {old.fingerprint} (old) and")
        click.echo(f"{head.key_id} (new); publish the new fingerprint, then retire the old key")


@ledger.command("check")
@click.pass_context
def ledger_check(ctx: click.Context) -> None:
    """Recompute every leaf, check every signed head (catalogue and WORM store), and check
    every recording and segment row against the events the signed log proves."""
    with running_app(ctx) as app:
        checked = full_audit(app.ledger)
        head = app.ledger.latest_head()
        refusals = witness(app, head.size) if head is not None and app.ledger.can_sign else []
    audit = checked.ledger
    click.echo(
        f"ledger: {audit.size} events in the log, {audit.pending} pending,"
        f" {audit.heads_checked} signed head(s) checked,"
        f" {checked.recordings_checked} recording(s) checked against their events"
    )
    for problem in audit.problems:
        click.echo(f"  PROBLEM {problem.kind}: {problem.detail}")
    for text in checked.log_problems:
        click.echo(f"  PROBLEM log: {text}")
    for finding in checked.rows:
        click.echo(f"  PROBLEM {finding}")
    for refusal in refusals:
        click.echo(f"  PROBLEM {refusal}")
    if not checked.ok or refusals:
        sys.exit(CHECK_FAILED)
    click.echo("ledger intact: every head is consistent with the log, every row with its events")


@ledger.command("proof")
@click.argument("event_id", type=int)
@click.pass_context
def ledger_proof(ctx: click.Context, event_id: int) -> None:
    """The inclusion proof of custody event EVENT_ID under the latest signed head (JSON)."""
    with running_app(ctx) as app:
        head = app.ledger.checkpoint()
        position, proof = app.ledger.inclusion_proof(event_id, head.size)
        event = next(e for e in app.catalog.events() if e.id == event_id)
        click.echo(
            json.dumps(
                {
                    "position": position,
                    "event": canonical_event(event).decode(),
                    "proof": [p.hex() for p in proof],
                    "checkpoint": head.note,
                },
                indent=2,
                ensure_ascii=False,
            )
        )


def witness(app: Vigil, size: int) -> list[str]:
    """Send the latest head to the witnesses (never raises for one that is down); count the
    failures, set the witnessed size; return the refusals: a witness that finds the log
    inconsistent with what it cosigned before has seen the log rewritten."""
    result = app.ledger.witness_latest()
    refusals: list[str] = []
    for failure in result.failures if result is not None else ():
        kind = "inconsistent" if failure.inconsistent else failure.kind.value
        app.metrics.witness_failures.labels(failure.witness, kind).inc()
        if failure.inconsistent:
            refusals.append(f"log rewritten: witness {failure}")
    witnesses = app.ledger.witnesses
    if witnesses is not None and witnesses.enabled:
        app.metrics.ledger_witnessed_size.set(witnesses.status(size).witnessed_size)
    return refusals


@ledger.command("run")
@metrics_port_option
@click.pass_context
def ledger_run(ctx: click.Context, metrics_port: int | None) -> None:
    """Sign a tree head every VIGIL_LEDGER_INTERVAL_S until SIGTERM (the ledger worker)."""
    settings = settings_of(ctx)
    app = open_app(settings)
    server = serve_metrics(app.metrics.registry, settings, metrics_port, "ledger")
    stop = threading.Event()
    on_stop_signals(stop, grace_s=settings.shutdown_grace_s, kill=app.runner.stop)
    click.echo(f"ledger: signing every {settings.ledger_interval_s:g} s", err=True)
    with stopping(app, server):
        last = -1
        while not stop.is_set():
            try:
                head = app.ledger.checkpoint()
            except (LedgerError, StoreError, SQLAlchemyError) as exc:
                click.echo(f"ledger: could not sign a head ({exc}); retrying", err=True)
            else:
                app.metrics.ledger_size.set(head.size)
                witness(app, head.size)
                if head.size != last:
                    app.metrics.ledger_heads.inc()
                    click.echo(f"ledger: head at size {head.size}", err=True)
                    last = head.size
            if settings.exports_built_by == "ledger":
                build_exports(app)
            stop.wait(settings.ledger_interval_s)


def build_exports(app: Vigil) -> None:
    """Build the packages supervisors approved since the last round (the ledger service holds
    the C2PA signing key, ``VIGIL_EXPORTS_BUILT_BY=ledger``); say which, and which failed."""
    for row in app.exports.build_approved(actor="ledger"):
        state = "ready" if row.status == "ready" else "FAILED (its request says why)"
        click.echo(f"ledger: export {row.id} of {row.case_id}: {state}", err=True)


@click.command()
@click.option(
    "--recording", callback=checked(require_recording_id), help="Only this recording's events."
)
@click.option(
    "--case", "case_id", callback=checked(require_case_id), help="Only this case's events."
)
@click.pass_context
def events(ctx: click.Context, recording: str | None, case_id: str | None) -> None:
    """The custody log."""
    with running_app(ctx) as app:
        ids = [app.catalog.recording(recording).id] if recording else None
        for e in app.catalog.events(recording_ids=ids, case_id=case_id):
            target = e.recording_id or e.case_id or ""
            reason = f"  reason: {e.reason}" if e.reason else ""
            click.echo(
                printable(
                    f"{e.id:6d} {e.at.isoformat()} {e.actor:<10} {e.action:<16} {target}{reason}"
                )
            )


COMMANDS: tuple[click.Command, ...] = (ledger, events)
