"""`sendout users`: who may log in to the dashboard, and with what role. Every change is in
the audit record under the person at the command line ($SENDOUT_USER, else the system user)."""

import sys
from dataclasses import asdict
from pathlib import Path

import click

from flows.cli import cli, echo_json
from warehouse import users as user_store
from warehouse.audit import operator
from warehouse.db import open_warehouse
from warehouse.users import Role, UserError

ROLES = click.Choice([str(r) for r in Role])


def _password(from_stdin: bool) -> str:
    """The new password: one line of standard input (for scripts), else asked twice, unseen."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _change(db: Path, change) -> object:
    """Run one change on a short connection; a refused change is one sentence and exit 1.
    Users but no admin among them is said: nobody could manage users on the dashboard."""
    with open_warehouse(db) as con:
        try:
            changed = change(con)
        except UserError as error:
            raise click.ClickException(str(error)) from error
        listed = user_store.users(con)
    if listed and not any(u.role == Role.ADMIN for u in listed):
        click.echo(
            "Note: no user is an admin, so nobody can manage users on the dashboard; "
            "make one with 'sendout users set-role NAME admin'.",
            err=True,
        )
    return changed


@cli.group()
def users() -> None:
    """Who may log in to the dashboard: viewer, sender or admin."""


@users.command()
@click.argument("name")
@click.option("--role", type=ROLES, required=True, help="viewer, sender or admin.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--no-password",
    is_flag=True,
    help="Logs in through the identity provider only (SENDOUT_DASHBOARD_LOGIN=oidc).",
)
@click.pass_obj
def add(db: Path, name: str, role: str, password_stdin: bool, no_password: bool) -> None:
    """Add a user (the password is asked for, or read with --password-stdin)."""
    password = None if no_password else _password(password_stdin)
    user = _change(db, lambda con: user_store.add(con, name, role, password, operator()))
    click.echo(f"added {user.user_name} ({user.role})")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the users as JSON.")
@click.pass_obj
def list_(db: Path, as_json: bool) -> None:
    """Every user with their role."""
    with open_warehouse(db) as con:
        found = user_store.users(con)
    if as_json:
        echo_json([asdict(u) for u in found])
        return
    for user in found:
        how = "password" if user.has_password else "identity provider"
        click.echo(f"{user.user_name:<24} {user.role:<7} {how}, since {user.created_at:%Y-%m-%d}")
    if not found:
        click.echo("No users: the dashboard serves this machine only, without a login.")


@users.command()
@click.argument("name")
@click.pass_obj
def remove(db: Path, name: str) -> None:
    """Remove a user; their open sessions end at their next click."""
    user = _change(db, lambda con: user_store.remove(con, name, operator()))
    click.echo(f"removed {user.user_name}")


@users.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_obj
def set_password(db: Path, name: str, password_stdin: bool) -> None:
    """Give a user a new password."""
    password = _password(password_stdin)
    _change(db, lambda con: user_store.set_password(con, name, password, operator()))
    click.echo(f"new password set for {name.strip().lower()}")


@users.command("set-role")
@click.argument("name")
@click.argument("role", type=ROLES)
@click.pass_obj
def set_role(db: Path, name: str, role: str) -> None:
    """Give a user another role."""
    user = _change(db, lambda con: user_store.set_role(con, name, role, operator()))
    click.echo(f"{user.user_name} is now {user.role}")
