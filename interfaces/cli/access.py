"""``vigil access``: people and devices that may call the API, their tokens, case assignments."""

from __future__ import annotations

from datetime import timedelta

import click

from catalog.access import ROLES, Role
from interfaces.cli.context import running_app
from interfaces.cli.inputs import (
    actor_option,
    case_argument,
    device_option,
    finite,
    label_option,
    officer_option,
    principal_argument,
)

MAX_TOKEN_DAYS = 3660.0


@click.group()
def access() -> None:
    """People, devices and their API tokens; case assignments."""


@access.command("add")
@principal_argument()
@click.option("--role", type=click.Choice(ROLES), required=True)
@label_option("--name", "display_name", what="display name", help="Display name (default: the ID).")
@device_option(help="For a device: its device ID (e.g. BC-0042).")
@officer_option(help="For an officer: their officer ID.")
@actor_option
@click.pass_context
def access_add(
    ctx: click.Context, principal: str, role: Role, display_name: str | None, device: str | None,
    officer: str | None, actor: str,
) -> None:  # fmt: skip
    """Add a person or device that may call the API."""
    with running_app(ctx) as app:
        app.access.add_principal(
            principal, role, display_name=display_name or principal, actor=actor,
            device_id=device, officer_id=officer,
        )  # fmt: skip
    click.echo(f"added {role} {principal}")


@access.command("token")
@principal_argument()
@label_option("--label", what="token label", default="api", show_default=True)
@click.option(
    "--days",
    type=float,
    default=None,
    callback=finite("--days", minimum=0.0, maximum=MAX_TOKEN_DAYS, above=True),
    help="Valid for this many days (default: ever).",
)
@actor_option
@click.pass_context
def access_token(
    ctx: click.Context, principal: str, label: str, days: float | None, actor: str
) -> None:
    """Issue an API token for PRINCIPAL; it is shown once (only its hash is kept)."""
    valid = timedelta(days=days) if days is not None else None
    with running_app(ctx) as app:
        issued = app.access.issue_token(principal, label=label, actor=actor, valid_for=valid)
    click.echo(issued.token)
    click.echo(f"token #{issued.id} for {principal}: store it now, it is not shown again", err=True)


@access.command("revoke")
@click.argument("token_id", type=int)
@actor_option
@click.pass_context
def access_revoke(ctx: click.Context, token_id: int, actor: str) -> None:
    """Revoke token TOKEN_ID (it stops working at once)."""
    with running_app(ctx) as app:
        changed = app.access.revoke_token(token_id, actor=actor)
    click.echo(f"token #{token_id} {'revoked' if changed else 'was already revoked'}")


@access.command("disable")
@principal_argument()
@actor_option
@click.pass_context
def access_disable(ctx: click.Context, principal: str, actor: str) -> None:
    """Disable PRINCIPAL (a lost device, a person who left): all its tokens stop working."""
    with running_app(ctx) as app:
        app.access.disable(principal, actor=actor)
    click.echo(f"{principal} disabled")


@access.command("assign")
@case_argument()
@principal_argument()
@actor_option
@click.pass_context
def access_assign(ctx: click.Context, case_id: str, principal: str, actor: str) -> None:
    """Assign reviewer PRINCIPAL to CASE_ID."""
    with running_app(ctx) as app:
        app.access.assign(case_id, principal, actor=actor)
    click.echo(f"{principal} assigned to {case_id}")


COMMANDS: tuple[click.Command, ...] = (access,)
