"""``vigil access``: people and devices that may call the API, their tokens, case assignments."""

from __future__ import annotations

from datetime import timedelta

import click

from catalog.access import ROLES, Role
from interfaces.cli.context import actor_option, running_app


@click.group()
def access() -> None:
    """People, devices and their API tokens; case assignments."""


@access.command("add")
@click.argument("principal")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", "display_name", help="Display name (default: the ID).")
@click.option("--device", help="For a device: its device ID (e.g. BC-0042).")
@click.option("--officer", help="For an officer: their officer ID.")
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
@click.argument("principal")
@click.option("--label", default="api", show_default=True)
@click.option("--days", type=float, default=None, help="Valid for this many days (default: ever).")
@actor_option
@click.pass_context
def access_token(
    ctx: click.Context, principal: str, label: str, days: float | None, actor: str
) -> None:
    """Issue an API token for PRINCIPAL; it is shown once (only its hash is kept)."""
    valid = timedelta(days=days) if days else None
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
@click.argument("principal")
@actor_option
@click.pass_context
def access_disable(ctx: click.Context, principal: str, actor: str) -> None:
    """Disable PRINCIPAL (a lost device, a person who left): all its tokens stop working."""
    with running_app(ctx) as app:
        app.access.disable(principal, actor=actor)
    click.echo(f"{principal} disabled")


@access.command("assign")
@click.argument("case_id")
@click.argument("principal")
@actor_option
@click.pass_context
def access_assign(ctx: click.Context, case_id: str, principal: str, actor: str) -> None:
    """Assign reviewer PRINCIPAL to CASE_ID."""
    with running_app(ctx) as app:
        app.access.assign(case_id, principal, actor=actor)
    click.echo(f"{principal} assigned to {case_id}")


COMMANDS: tuple[click.Command, ...] = (access,)
