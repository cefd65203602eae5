"""`sendout unsubscribes`: the list, by hand."""

from dataclasses import asdict
from pathlib import Path

import click

from flows.cli import cli, echo_json
from flows.settings import settings
from warehouse import unsubscribes as unsubscribe_list
from warehouse.addresses import channel_of, normalise_address
from warehouse.audit import operator
from warehouse.db import open_warehouse
from warehouse.vocabulary import Channel, UnsubscribeReason, UnsubscribeScope

CHANNELS = click.Choice([str(c) for c in Channel])


def manual_change(verb: str):
    """The arguments every manual change takes: the entry, why, and who."""

    def decorate(command):
        for option in reversed(
            [
                click.argument("channel", type=CHANNELS),
                click.argument("address"),
                click.option(
                    "--reason", "note", required=True, help=f"Why it is {verb} (kept in history)."
                ),
                click.option(
                    "--by",
                    "changed_by",
                    default=lambda: operator().name,
                    help="Who makes the change (default: $SENDOUT_USER, else the system user).",
                ),
            ]
        ):
            command = option(command)
        return command

    return decorate


@cli.group()
def unsubscribes() -> None:
    """The Unsubscribes list: who is not messaged, and why."""


@unsubscribes.command("list")
@click.option("--channel", type=CHANNELS, help="Only this channel.")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
@click.pass_obj
def list_(db: Path, channel: str | None, as_json: bool) -> None:
    """The current entries, newest first."""
    with open_warehouse(db, create=False) as con:
        found = [e for e in unsubscribe_list.entries(con) if channel in (None, e.channel)]
    if as_json:
        echo_json([asdict(e) for e in found])
        return
    for e in found:
        click.echo(
            f"{e.added_at:%Y-%m-%d}  {e.channel:5}  {e.address}  {e.reason} ({e.scope})"
            f"  by {e.added_by}: {e.note or e.cause}"
        )
    click.echo(f"{len(found)} entries")


@unsubscribes.command()
@manual_change("added")
@click.option(
    "--scope",
    type=click.Choice([str(s) for s in UnsubscribeScope]),
    default=str(UnsubscribeScope.ALL),
    show_default=True,
    help="all: every send-out skips it; marketing: only marketing send-outs.",
)
@click.pass_obj
def add(db: Path, channel: str, address: str, note: str, scope: str, changed_by: str) -> None:
    """Put an address on the list by hand."""
    with open_warehouse(db) as con:
        entry = unsubscribe_list.add(
            con, channel, address, scope, changed_by, note, region=settings().default_region
        )
    click.echo(f"added {entry.address} ({entry.channel}, scope {entry.scope})")


@unsubscribes.command()
@manual_change("removed")
@click.option(
    "--only",
    type=click.Choice([str(r) for r in UnsubscribeReason]),
    help="Remove only the entry with this reason.",
)
@click.pass_obj
def remove(
    db: Path, channel: str, address: str, note: str, only: str | None, changed_by: str
) -> None:
    """Take an address off the list by hand; the history keeps what it was."""
    with open_warehouse(db) as con:
        removed = unsubscribe_list.remove(
            con, channel, address, changed_by, note, only, region=settings().default_region
        )
    for entry in removed:
        click.echo(f"removed {entry.address} ({entry.channel}, {entry.reason})")


@unsubscribes.command()
@click.argument("address")
@click.pass_obj
def history(db: Path, address: str) -> None:
    """Every change ever made to an address's entries."""
    with open_warehouse(db, create=False) as con:
        rows = unsubscribe_list.history(
            con, normalise_address(channel_of(address), address, settings().default_region)
        )
    for changed_at, chan, reason, action, scope, cause, by, note in rows:
        click.echo(
            f"{changed_at:%Y-%m-%d %H:%M}  {chan}  {action} {reason} ({scope})  "
            f"{cause} by {by}{': ' + note if note else ''}"
        )


@unsubscribes.command()
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File to write."
)
@click.pass_obj
def export(db: Path, output: Path | None) -> None:
    """The list as CSV (cells that a spreadsheet would run as formulas are neutralised)."""
    with open_warehouse(db, create=False) as con:
        text = unsubscribe_list.export_csv(con)
    if output:
        try:
            output.write_text(text)
        except OSError as error:
            raise click.ClickException(f"cannot write {output}: {error.strerror}") from error
    else:
        click.echo(text, nl=False)
