"""Joining provider events to our messages (DESIGN §4: events may arrive before the message)."""

import duckdb

from warehouse.sql import run_script
from warehouse.vocabulary import INBOUND_EVENT_TYPES


def link_events(con: duckdb.DuckDBPyConnection, since_seq: int | None = None) -> list[int]:
    """Attach unmatched events to their messages; return the `seq` of each event attached.

    With `since_seq`, only events stored after that one are considered.
    """
    inbound = [str(t) for t in INBOUND_EVENT_TYPES]
    linked = run_script(con, "link_events.sql", {"since_seq": since_seq, "inbound": inbound})
    return [row["seq"] for row in linked[-1]]
