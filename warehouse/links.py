"""Joining provider events to our messages (DESIGN §4: events may arrive before the message)."""

import duckdb

from warehouse.sql import run_script


def link_events(con: duckdb.DuckDBPyConnection, since_seq: int | None = None) -> list[int]:
    """Attach unmatched events to their messages; return the `seq` of each event attached.

    With `since_seq`, only events stored after that one are considered.
    """
    linked = run_script(con, "link_events.sql", {"since_seq": since_seq})
    return [row["seq"] for row in linked[-1]]
