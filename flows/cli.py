"""The `sendout` command: a thin layer over the warehouse that speaks to people.

Library errors are turned into one clear sentence here; the work itself is in warehouse/.
"""

import json
import os
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from warehouse.addresses import DEFAULT_REGION, REGION_ENV_VAR
from warehouse.contacts import ContactImportError, import_contacts
from warehouse.db import WarehouseLockedError, default_db_path, open_warehouse
from warehouse.ingest import FileResult, IngestError, find_files, ingest_paths
from warehouse.vocabulary import INGESTIBLE_PROVIDERS, Provider

err = Console(stderr=True)
PROVIDER_CHOICES = ["auto", *(str(p) for p in INGESTIBLE_PROVIDERS)]
PROGRESS_MIN_BYTES = 16 * 1024 * 1024  # show a progress bar when there is this much to read


class SendoutGroup(click.Group):
    """Turns the warehouse's own errors into a one-line message and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (IngestError, ContactImportError, WarehouseLockedError) as error:
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


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--provider",
    type=click.Choice(PROVIDER_CHOICES),
    default="auto",
    show_default=True,
    help="Who wrote the files; auto tells each file's provider from its content.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.pass_obj
def ingest(db: Path, paths: tuple[Path, ...], provider: str, as_json: bool) -> None:
    """Read provider event files (or folders of them) into the warehouse."""
    files = find_files(paths)
    total = sum(f.stat().st_size for f in files)
    chosen = None if provider == "auto" else Provider(provider)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=as_json or total < PROGRESS_MIN_BYTES,
        transient=True,
    ) as progress:
        task = progress.add_task("Ingesting", total=total)

        def advance(result: FileResult) -> None:
            progress.advance(task, Path(result.path).stat().st_size)

        summary = ingest_paths(db, files, chosen, on_file=advance)
    if as_json:
        click.echo(json.dumps(summary.as_dict()))
        return
    click.echo(
        f"files read {summary.files_read}, skipped (already ingested) {summary.files_skipped}\n"
        f"events new {summary.events_new}, duplicate {summary.events_duplicate}, "
        f"quarantined {summary.quarantined}, unmatched {summary.unmatched}"
    )
    if summary.quarantined:
        click.echo("Quarantined records are in the `quarantine` table with file, line and reason.")


@cli.group()
def contacts() -> None:
    """The people you message."""


@contacts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--region",
    default=lambda: os.environ.get(REGION_ENV_VAR, DEFAULT_REGION),
    show_default=f"${REGION_ENV_VAR} or {DEFAULT_REGION}",
    help="Country for mobiles written without +country code (ISO 3166 code).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.pass_obj
def import_(db: Path, file: Path, region: str, as_json: bool) -> None:
    """Import contacts from a CSV with first_name, last_name, email and mobile columns."""
    with open_warehouse(db) as con:
        report = import_contacts(con, file, region)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "created": report.created,
                    "updated": report.updated,
                    "rejected": [{"row": r.row, "reason": r.reason} for r in report.rejected],
                }
            )
        )
        return
    click.echo(
        f"contacts created {report.created}, updated {report.updated}, "
        f"rejected {len(report.rejected)}"
    )
    for rejected in report.rejected:
        click.echo(f"  row {rejected.row}: {rejected.reason}")


def main() -> None:
    """Entry point of the `sendout` script."""
    cli(prog_name="sendout")


if __name__ == "__main__":
    main()
