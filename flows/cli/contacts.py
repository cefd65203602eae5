"""`sendout contacts`: the people you message."""

from pathlib import Path

import click

from flows.cli import cli, echo_json
from warehouse.contacts import import_contacts
from warehouse.db import open_warehouse
from warehouse.settings import settings


@cli.group()
def contacts() -> None:
    """The people you message."""


@contacts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--region",
    default=lambda: settings().default_region,
    show_default="$SENDOUT_DEFAULT_REGION or GB",
    help="Country for mobiles written without +country code (ISO 3166 code).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.pass_obj
def import_(db: Path, file: Path, region: str, as_json: bool) -> None:
    """Import contacts from a CSV with first_name, last_name, email and mobile columns."""
    with open_warehouse(db) as con:
        report = import_contacts(con, file, region)
    if as_json:
        rejected = [{"row": r.row, "reason": r.reason} for r in report.rejected]
        echo_json({"created": report.created, "updated": report.updated, "rejected": rejected})
        return
    click.echo(
        f"contacts created {report.created}, updated {report.updated}, "
        f"rejected {len(report.rejected)}"
    )
    for rejected in report.rejected:
        click.echo(f"  row {rejected.row}: {rejected.reason}")
