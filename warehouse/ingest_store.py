"""Storing a parsed batch of events (DESIGN §4): the new ones into `events`, once whatever
file they came in (deduplicated on (provider, event_id) against everything stored), the records
that cannot become events into `quarantine`, and, before a part of a file is committed, its
events linked to their messages and their times checked. `warehouse.ingest` reads, parses and
decides what a part is; this is what it stores with.
"""

import collections
from collections.abc import Iterator
from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.db import arrow_table, registered
from warehouse.ingest_results import FileResult
from warehouse.links import link_events
from warehouse.parsers import Parser
from warehouse.sql import read_sql, run_script
from warehouse.vocabulary import INBOUND_EVENT_TYPES, INGESTIBLE_PROVIDERS


def store_batch(
    con: duckdb.DuckDBPyConnection, parser: Parser, parsed: pa.Table, ingested_at: datetime
) -> dict[str, tuple[int, int, int]]:
    """Move the parsed rows into events and quarantine; return each file's new, duplicate and
    bad counts."""
    common = {"provider": str(parser.provider), "ingested_at": ingested_at}
    with registered(con, "staged", _staged(parsed)):
        inserted = arrow_table(
            con, read_sql("insert_new_events.sql"), {**common, "channel": _channel(parser)}
        )
        if parsed.column("problem").null_count < parsed.num_rows:
            con.execute(read_sql("quarantine_staged.sql"), common)
    new = _stored_per_file(inserted)
    counts = _record_counts(parsed)
    return {path: (new[path], valid - new[path], bad) for path, valid, bad in counts}


def _stored_per_file(inserted: pa.Table) -> collections.Counter[str]:
    """How many events the insert stored of each file (what it returned: their files)."""
    counted = pc.value_counts(inserted.column("source_file")).to_pylist()
    return collections.Counter({pair["values"]: pair["counts"] for pair in counted})


def _record_counts(parsed: pa.Table) -> Iterator[tuple[str, int, int]]:
    """Per file of the batch: its rows that are events, and its records (lines) that are not
    (a record of many recipients may have a problem on each)."""
    good = pc.is_null(parsed.column("problem"))
    lines = pa.table(
        {
            "source_file": parsed.column("source_file"),
            "good": pc.cast(good, pa.int64()),
            "bad_line": pc.if_else(good, pa.scalar(None, pa.int64()), parsed.column("source_line")),
        }
    )
    grouped = lines.group_by("source_file").aggregate(
        [("good", "sum"), ("bad_line", "count_distinct")]
    )
    yield from zip(
        grouped.column("source_file").to_pylist(),
        grouped.column("good_sum").to_pylist(),
        grouped.column("bad_line_count_distinct").to_pylist(),
        strict=True,
    )


def _staged(parsed: pa.Table) -> pa.Table:
    """The parsed batch as storing reads it (`staged`), each row numbered in `staged_row`:
    read where it is, not copied into a table (a copy cost a fifth of the parse)."""
    return parsed.append_column("staged_row", pa.array(np.arange(parsed.num_rows)))


def _channel(parser: Parser) -> str:
    return str(INGESTIBLE_PROVIDERS[parser.provider])


def last_seq(con: duckdb.DuckDBPyConnection) -> int:
    """The last stored event's `seq`, after which a part's events come (one writer: nothing
    else comes between)."""
    return con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchall()[0][0]


def finish_part(
    con: duckdb.DuckDBPyConnection,
    part_seq: int,
    received_at: datetime,
    results: dict[str, FileResult],
) -> None:
    """What every stored part needs before it is committed: its events linked to their
    messages, and those dated before their message's send given the time of receipt (from
    what linking found: link_events leaves it in `found_messages`)."""
    link_events(con, since_seq=part_seq)
    for path, unmatched in _unmatched_since(con, part_seq).items():
        results[path].unmatched += unmatched
    for path, retimed in _distrust_early_events(con, part_seq, received_at).items():
        results[path].retimed += retimed


def _unmatched_since(con: duckdb.DuckDBPyConnection, since_seq: int) -> dict[str, int]:
    inbound = [str(t) for t in INBOUND_EVENT_TYPES]
    return dict(
        con.execute(
            """
            SELECT source_file, count(*) FROM events
            WHERE seq > ? AND message_id IS NULL AND NOT list_contains(?, event_type)
            GROUP BY source_file
            """,
            [since_seq, inbound],
        ).fetchall()
    )


def _distrust_early_events(
    con: duckdb.DuckDBPyConnection, since_seq: int, received_at: datetime
) -> dict[str, int]:
    """Give the time of receipt to the new events dated before their message was handed to the
    provider; return how many new events per file have the time of receipt for a time of their
    own that could not be believed."""
    params = {"since_seq": since_seq, "received_at": received_at}
    *_, counted = run_script(con, "distrust_early_events.sql", params)
    return {row["source_file"]: row["retimed"] for row in counted}
