"""Joining provider events to our messages (DESIGN §4: events may arrive before the message)."""

from datetime import datetime

import duckdb

from warehouse.sql import run_script


def link_events(
    con: duckdb.DuckDBPyConnection,
    source_file: str | None = None,
    ingested_at: datetime | None = None,
) -> list[int]:
    """Attach unmatched events to their messages; return the `seq` of each event attached.

    With `source_file` and `ingested_at`, only that ingested file's events are considered.
    """
    params = {"source_file": source_file, "ingested_at": ingested_at}
    linked = run_script(con, "link_events.sql", params)
    return [row["seq"] for rows in linked for row in rows]
