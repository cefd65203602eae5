"""`sendout contacts`: the people you message."""

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from flows.cli import cli, echo_json
from flows.settings import settings
from warehouse.addresses import InvalidAddressError, check_region
from warehouse.contact_rows import RowNote
from warehouse.contacts import ImportReport, import_contacts

SHOWN = 20  # notes of each kind printed; --json has them all

SECTIONS = (  # what the text report lists, in this order
    ("rejected", "Rows not imported"),
    ("conflicts", "Rows that would take another contact's address (nothing changed)"),
    ("changed", "Contacts whose name or address changes"),
    ("merged", "The same person on several lines, merged"),
    ("partly", "Rows kept with one address, the other not valid"),
    ("no_sms", "Landlines (kept, never sent SMS)"),
)


@cli.group()
def contacts() -> None:
    """The people you message."""


def _region(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """--region as a country code phone numbers know, or the option named as wrong."""
    try:
        return check_region(value)
    except InvalidAddressError as error:
        raise click.BadParameter(str(error)) from error


@contacts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--region",
    default=lambda: settings().default_region,
    show_default="$SENDOUT_DEFAULT_REGION or GB",
    help="Country for mobiles written without +country code (ISO 3166 code).",
    callback=_region,
)
@click.option("--dry-run", is_flag=True, help="Say what the import would do, and change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.pass_obj
def import_(db: Path, file: Path, region: str, dry_run: bool, as_json: bool) -> None:
    """Import contacts from a CSV with first_name, last_name, email and mobile columns.

    A row matches an existing contact by email, else by mobile. Every row that is not imported,
    every contact whose name or address changes and every merge is listed; a row that would
    take another contact's address changes nothing."""
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=as_json,
        transient=True,
    ) as progress:
        task = progress.add_task("Reading lines", total=None)

        def show(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = import_contacts(db, file, region, dry_run=dry_run, progress=show)
    if as_json:
        echo_json(
            {"dry_run": dry_run, "created": report.created, "updated": report.updated}
            | {name: _notes(getattr(report, name)) for name, _ in SECTIONS}
        )
        return
    _say(report, dry_run)


def _notes(notes: list[RowNote]) -> list[dict]:
    return [{"row": note.row, "reason": note.reason} for note in notes]


def _say(report: ImportReport, dry_run: bool) -> None:
    not_imported = len(report.rejected) + len(report.conflicts)
    if dry_run:
        click.echo(
            f"Dry run, nothing changed: contacts would be created {report.created}, "
            f"updated {report.updated}; rows that would not be imported {not_imported}"
        )
    else:
        click.echo(
            f"contacts created {report.created}, updated {report.updated}, rejected {not_imported}"
        )
    for name, title in SECTIONS:
        notes = getattr(report, name)
        if not notes:
            continue
        click.echo(f"{title}: {len(notes):,}")
        for note in notes[:SHOWN]:
            click.echo(f"  line {note.row}: {note.reason}")
        if len(notes) > SHOWN:
            click.echo(f"  ... and {len(notes) - SHOWN:,} more (--json lists them all)")
