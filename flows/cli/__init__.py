"""The `sendout` command: a thin layer over the warehouse that speaks to people.

Library errors are turned into one clear sentence here; the work itself is in warehouse/.
Each group of commands lives in its own module and registers itself on `cli`; a module is
imported only when one of its commands runs, so `sendout --help` answers at once.
"""

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from pydantic import ValidationError

#: Every command: the module that defines it, and its line in `sendout --help` (a test checks
#: that each module defines exactly the commands named here).
COMMANDS = {
    "bounces": ("flows.cli.bounces", "Bounce mail: fetch it over IMAP, or take it from a pipe."),
    "contacts": ("flows.cli.contacts", "The people you message: import a CSV."),
    "dashboard": ("flows.cli.running", "Serve the dashboard until Ctrl-C."),
    "demo": ("flows.cli.running", "Build a demo workspace through the sandbox."),
    "dispatch": ("flows.cli.running", "Send a send-out's messages now."),
    "ingest": ("flows.cli.ingest", "Read provider event files into the warehouse."),
    "ingester": ("flows.cli.running", "Ingest files as they land, until Ctrl-C."),
    "lookup": ("flows.cli.reports", "Why didn't they receive it?"),
    "refresh": ("flows.cli.reports", "Recompute statuses, figures and the Unsubscribes list."),
    "report": ("flows.cli.reports", "Each send-out's status, counts, rates and cost."),
    "sendouts": ("flows.cli.sendouts", "Create, list, cancel and resend send-outs."),
    "snapshot": ("flows.cli.snapshot", "Copy the warehouse for analysts now; print its path."),
    "sns-confirmations": ("flows.cli.reports", "Amazon SNS subscriptions waiting for you."),
    "unsubscribes": ("flows.cli.unsubscribes", "The Unsubscribes list: who is not messaged, why."),
    "up": ("flows.cli.running", "Run everything on this machine, until Ctrl-C."),
    "users": ("flows.cli.users", "Who may log in to the dashboard, and their roles."),
    "webhooks": ("flows.cli.running", "Receive the providers' webhooks, until Ctrl-C."),
}


def _settings_problem(error: "ValidationError") -> str:
    """A $SENDOUT_* setting that pydantic refused, in one sentence naming it."""
    first = error.errors()[0]
    name = "SENDOUT_" + str(first["loc"][0]).upper() if first.get("loc") else "a setting"
    return f"${name} is not valid: {first['msg'].removeprefix('Value error, ')}"


def person_errors() -> tuple[type[Exception], ...]:
    """The warehouse's errors that a person caused and can mend: said in one sentence."""
    from flows.settings import UnknownSettingError
    from warehouse.addresses import InvalidAddressError
    from warehouse.contact_rows import ContactImportError
    from warehouse.db import NotAWarehouseError, WarehouseLockedError
    from warehouse.folders import IngestError
    from warehouse.unsubscribes import UnsubscribeError

    return (
        UnknownSettingError,
        IngestError,
        ContactImportError,
        WarehouseLockedError,
        NotAWarehouseError,
        InvalidAddressError,
        UnsubscribeError,
    )


def echo_json(data: object) -> None:
    """What `--json` prints: one JSON document, times and paths as text."""
    click.echo(json.dumps(data, default=str))


class SendoutGroup(click.Group):
    """Loads a command's module when it is used, and turns the warehouse's own errors into a
    one-line message and exit code 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS and name not in self.commands:
            importlib.import_module(COMMANDS[name][0])  # registers its commands on cli
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, line) for name, (_, line) in sorted(COMMANDS.items())])

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as error:
            if isinstance(error, person_errors()):
                raise click.ClickException(str(error)) from error
            from pydantic import ValidationError  # here: `sendout --help` stays quick

            if isinstance(error, ValidationError):
                raise click.ClickException(_settings_problem(error)) from error
            raise


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
    from warehouse.settings import WarehouseSettings  # here: `sendout --help` stays quick

    ctx.obj = db or WarehouseSettings().db  # $SENDOUT_DB as it is now


def main() -> None:
    """Entry point of the `sendout` script."""
    cli(prog_name="sendout")


__all__ = ["COMMANDS", "cli", "echo_json", "main"]
