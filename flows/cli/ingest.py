"""`sendout ingest`: provider event files into the warehouse."""

import contextlib
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from flows.cli import cli, echo_json
from flows.senders.sandbox import release_due
from flows.settings import settings
from warehouse.db import open_warehouse
from warehouse.folders import find_files, passed_over
from warehouse.ingest import ingest_paths
from warehouse.ingest_results import FileResult
from warehouse.refresh import refresh
from warehouse.snapshot import publish
from warehouse.vocabulary import INGESTIBLE_PROVIDERS, Provider

PROVIDER_CHOICES = ["auto", *(str(p) for p in INGESTIBLE_PROVIDERS)]
PROGRESS_MIN_BYTES = 16 * 1024 * 1024  # show a progress bar when there is this much to read


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
@click.option(
    "--no-refresh",
    is_flag=True,
    help="Leave statuses and figures for a later `sendout refresh` (a large backfill).",
)
@click.pass_obj
def ingest(
    db: Path, paths: tuple[Path, ...], provider: str, as_json: bool, no_refresh: bool
) -> None:
    """Read provider event files (or folders of them) into the warehouse, then bring statuses
    and figures up to date and publish the analysts' copy (`sendout snapshot`)."""
    release_due(settings().landing)  # the sandbox's events whose time has come
    files = find_files(paths)
    total = sum(f.stat().st_size for f in files)
    chosen = None if provider == "auto" else Provider(provider)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=as_json or total < PROGRESS_MIN_BYTES,
        transient=True,
    ) as progress:
        task = progress.add_task("Ingesting", total=total)

        def advance(result: FileResult) -> None:
            with contextlib.suppress(OSError):  # a file gone since it was read
                progress.advance(task, Path(result.path).stat().st_size)

        summary = ingest_paths(db, paths, chosen, on_file=advance)
    not_understood = [
        Path(f.path)
        for f in summary.files
        if not f.skipped and f.provider is None and not f.unreadable
    ] + passed_over(paths)
    unreadable = [f"{u.path} ({u.reason})" for u in summary.unreadable]
    if (not_understood or unreadable) and not any(f.provider or f.skipped for f in summary.files):
        raise click.ClickException(
            f"no file could be read as provider events: {_names([*not_understood, *unreadable])}."
            " Sendout reads "
            ".json, .ndjson, .jsonl and .txt files (optionally .gz) from the providers it knows, "
            "and bounce mail as .eml, .mbox or Maildir folders (see docs/ingest.md)."
        )
    if summary.events_new and not no_refresh:
        with open_warehouse(db) as con:
            refresh(con, config=settings())
            publish(con, settings().snapshot)  # the analysts' copy (`sendout snapshot`)
    if as_json:
        echo_json(summary.as_dict())
        return
    click.echo(
        f"files read {summary.files_read}, skipped (already ingested) {summary.files_skipped}\n"
        f"events new {summary.events_new}, duplicate {summary.events_duplicate}, "
        f"quarantined {summary.quarantined}, unmatched {summary.unmatched}"
    )
    if summary.quarantined:
        click.echo("Quarantined records are in the `quarantine` table with file, line and reason.")
    if not_understood:
        click.echo(f"Not understood as provider events: {_names(not_understood)}")
    for damaged in (f for f in summary.files if f.damage):
        click.echo(f"Read up to its damage: {damaged.path} ({damaged.damage})")
    if unreadable:
        click.echo(f"Could not read: {_names(unreadable)}")
    if summary.retimed:
        click.echo(
            f"Stored with the time of receipt, their own time not believable: {summary.retimed} "
            "events (events.time_problem says why)."
        )


def _names(paths: list[Path] | list[str], most: int = 10) -> str:
    shown = ", ".join(str(p) for p in paths[:most])
    return shown + (f" and {len(paths) - most} more" if len(paths) > most else "")
