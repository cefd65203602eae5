"""`sendout snapshot`: publish the analysts' copy of the warehouse now."""

from pathlib import Path

import click

from flows.cli import cli, echo_json
from flows.settings import settings
from warehouse.db import open_warehouse
from warehouse.snapshot import publish


@cli.command()
@click.option("--json", "as_json", is_flag=True, help='Print {"path": ...}.')
@click.pass_obj
def snapshot(db: Path, as_json: bool) -> None:
    """Publish a copy of the warehouse for analysts now and print its path. Open the copy
    read-only (duckdb -readonly PATH); never the live file, whose writer any open connection
    blocks. Refresh and the continuous ingester publish it too."""
    with open_warehouse(db) as con:
        path = publish(con, settings().snapshot)
    if as_json:
        echo_json({"path": str(path)})
        return
    click.echo(str(path))
