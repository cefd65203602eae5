"""The `sendout` command: a thin layer over the warehouse that speaks to people.

Library errors are turned into one clear sentence here; the work itself is in warehouse/.
Each group of commands lives in its own module and registers itself on `cli`.
"""

import json
from pathlib import Path

import click

from warehouse.addresses import InvalidAddressError
from warehouse.contacts import ContactImportError
from warehouse.db import WarehouseLockedError, default_db_path
from warehouse.ingest import IngestError
from warehouse.unsubscribes import UnsubscribeError

PERSON_ERRORS = (
    IngestError,
    ContactImportError,
    WarehouseLockedError,
    InvalidAddressError,
    UnsubscribeError,
)


def echo_json(data: object) -> None:
    """What `--json` prints: one JSON document, times and paths as text."""
    click.echo(json.dumps(data, default=str))


class SendoutGroup(click.Group):
    """Turns the warehouse's own errors into a one-line message and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PERSON_ERRORS as error:
            raise click.ClickException(str(error)) from error


@click.group(cls=SendoutGroup)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Warehouse file [default: $SENDOUT_DB or data/sendout.duckdb].",
)
@click.pass_context
def cli(ctx: click.Context, db: Path | None) -> None:
    """Sendout: track every email and SMS you send."""
    ctx.obj = db or default_db_path()


from flows.cli import (  # noqa: E402  (each registers its commands on cli)
    contacts,
    ingest,
    reports,
    running,
    sendouts,
    unsubscribes,
)


def main() -> None:
    """Entry point of the `sendout` script."""
    cli(prog_name="sendout")


__all__ = ["cli", "contacts", "ingest", "main", "reports", "running", "sendouts", "unsubscribes"]
