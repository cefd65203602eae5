"""`sendout refresh`: recompute the refreshed tables (message_status, inbound_messages, the
Unsubscribes list, sendout_channel_stats) from messages and events.

Incremental by default: only the events stored since the last refresh (by `events.seq`) are
read, and folded into the stored statuses of their messages, so the cost follows the new
events, not the history. `full=True` rebuilds every row; both give identical tables
(tests/test_refresh.py). Whoever stores events refreshes: the continuous ingester after each
micro-batch, dispatch in the transaction that records its outcomes.
"""

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import polars as pl

from warehouse.db import is_out_of_memory, registered, transaction
from warehouse.inbound import inbound_messages
from warehouse.links import link_events
from warehouse.settings import WarehouseSettings
from warehouse.sql import read_sql, run_script
from warehouse.status import (
    GROUP_KEYS,
    OUTCOME_COLUMNS,
    Prices,
    channel_stats,
    merge_outcomes,
    message_facts,
    message_outcomes,
    message_status,
    move_groups,
    status_groups,
)
from warehouse.unsubscribes import derive_from_events
from warehouse.vocabulary import INBOUND_EVENT_TYPES, STATUS_RANK, Channel, EventType

log = logging.getLogger(__name__)
STATE_NAME = "marts"
# what a message's stored status row says of it, and of its place in the status groups
FACT_COLUMNS = ["message_id", "sendout_id", "channel", "recipient", "sms_segments"]
STORED_FACTS = [
    *FACT_COLUMNS[1:],
    *(k for k in GROUP_KEYS if k not in ("has_outcome", "sendout_id", "channel")),
    "cost",
]
OUTBOUND_TYPES = [str(t) for t in STATUS_RANK] + [str(EventType.UNSUBSCRIBED)]


@dataclass
class RefreshSummary:
    """What one refresh did."""

    mode: str
    messages: int
    sendouts: int
    inbound: int
    unsubscribe_changes: int
    seconds: float


def _frame(con: duckdb.DuckDBPyConnection, query: str, params: dict | None = None) -> pl.LazyFrame:
    return pl.from_arrow(con.sql(query, params=params).arrow().read_all()).lazy()


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """Insert the frame's rows into `table`, by column name."""
    with registered(con, "replacement", frame.to_arrow()):
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM replacement")


def _replace_rows(
    con: duckdb.DuckDBPyConnection, table: str, key: str, frame: pl.DataFrame, keys: str
) -> None:
    """Delete the rows whose `key` is in the temp table `keys`, then insert `frame` by name."""
    con.execute(f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {keys})")
    _insert(con, table, frame)


def _state(con: duckdb.DuckDBPyConnection) -> tuple[datetime | None, int | None]:
    """When the last refresh ran, and the last event (by `seq`) it took in."""
    rows = con.execute(
        "SELECT watermark, folded_seq FROM refresh_state WHERE name = ?", [STATE_NAME]
    ).fetchall()
    return rows[0] if rows else (None, None)


def _take_in_events(
    con: duckdb.DuckDBPyConnection, since: datetime | None, since_seq: int | None
) -> pl.LazyFrame:
    """The events to fold into the statuses, once unmatched events are linked: every outbound
    event of a message (a full refresh, `since_seq` None), or what is new, with the temp table
    `dirty_messages` (whose status it moves)."""
    linked = link_events(con)
    if since_seq is None:  # every event and every message: nothing to narrow down
        return _frame(con, read_sql("outbound_events.sql"), {"outbound": OUTBOUND_TYPES})
    with registered(con, "linked_events", pl.DataFrame({"seq": linked}, schema={"seq": pl.Int64})):
        run_script(
            con,
            "refresh_dirty_messages.sql",
            {"since": since, "since_seq": since_seq, "outbound": OUTBOUND_TYPES},
        )
    return _frame(con, "SELECT * FROM refresh_events")


def _refresh_messages(
    con: duckdb.DuckDBPyConnection,
    events: pl.LazyFrame,
    prices: Prices,
    now: datetime,
    full: bool,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Fold the new events into the statuses of their messages (the stored status stands for
    every event taken in before), so the cost follows what is new, not the history. Returns
    the messages' new rows and their old ones.

    Rows are found once by their message id and then read and deleted by row id: a look-up by
    id reads the id column of every row, one by row id reads only the rows asked for. What the
    status needs of a message comes from its old row where it has one.
    """
    outcomes = message_outcomes(events)
    old = pl.DataFrame(schema={"message_id": pl.String})
    created = "SELECT message_id, sendout_id, channel, recipient, sms_text FROM messages"
    if not full:
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE dirty_rows AS
            SELECT rowid AS row_id, message_id
            FROM message_status SEMI JOIN dirty_messages USING (message_id);

            CREATE OR REPLACE TEMP TABLE messages_without_status AS
            SELECT message_id FROM dirty_messages ANTI JOIN dirty_rows USING (message_id);
            """
        )
        old = _frame(
            con,
            f"""
            SELECT message_id, {", ".join(OUTCOME_COLUMNS)}, {", ".join(STORED_FACTS)}
            FROM message_status WHERE rowid IN (SELECT row_id FROM dirty_rows)
            """,
        ).collect()
        outcomes = merge_outcomes(old.lazy(), outcomes)
        con.execute("DELETE FROM message_status WHERE rowid IN (SELECT row_id FROM dirty_rows)")
        # only messages without a status row yet are read from `messages` (a look-up by id
        # reads the whole id column)
        created += " SEMI JOIN messages_without_status USING (message_id)"
    facts = [] if full else [old.lazy().select(FACT_COLUMNS)]
    if full or con.execute("SELECT count(*) FROM messages_without_status").fetchall()[0][0]:
        facts.append(message_facts(_frame(con, created)))
    messages = pl.concat(facts, how="vertical_relaxed")
    rows = message_status(messages, outcomes, prices, now).collect()
    _insert(con, "message_status", rows)
    return rows, old


def _refresh_inbound(
    con: duckdb.DuckDBPyConnection, config: WarehouseSettings, prices: Prices
) -> int:
    received = _frame(
        con,
        """
        SELECT event_id, provider_message_id, recipient AS from_number,
               occurred_at AS received_at, body
        FROM events WHERE event_type = $received
        """,
        {"received": str(EventType.RECEIVED)},
    )
    handled = _frame(
        con,
        """
        SELECT provider_message_id, event_type, occurred_at, body
        FROM events WHERE event_type IN ($forwarded, $replied)
        """,
        {"forwarded": str(EventType.FORWARDED), "replied": str(EventType.REPLIED)},
    )
    outbound = _frame(
        con,
        """
        SELECT message_id, sendout_id, recipient,
               coalesce(status.first_sent_at, messages.created_at) AS sent_at
        FROM messages LEFT JOIN message_status AS status USING (message_id, sendout_id, channel,
            recipient)
        WHERE channel = $sms
        """,
        {"sms": str(Channel.SMS)},
    )
    sendouts = _frame(con, "SELECT sendout_id, forward_to, auto_reply_text FROM sendouts")
    rows = inbound_messages(
        received, handled, outbound, sendouts, prices, config.forward_to, config.auto_reply_text
    ).collect()
    con.execute("DELETE FROM inbound_messages")
    _insert(con, "inbound_messages", rows)
    return rows.height


def _inbound_may_have_changed(
    con: duckdb.DuckDBPyConnection, since_seq: int, new_rows: pl.DataFrame
) -> bool:
    """Inbound rows depend on inbound events and on when SMS messages were sent, nothing else
    (a change of forwarding or auto-reply settings shows after `refresh --full`)."""
    if not new_rows.filter(pl.col("channel") == str(Channel.SMS)).is_empty():
        return True
    return con.execute(
        """
        SELECT EXISTS (
            SELECT 1 FROM events
            WHERE seq > $since_seq AND event_type IN (SELECT unnest($inbound))
        )
        """,
        {"since_seq": since_seq, "inbound": [str(t) for t in INBOUND_EVENT_TYPES]},
    ).fetchall()[0][0]


def _refresh_sendouts(
    con: duckdb.DuckDBPyConnection,
    new_rows: pl.DataFrame,
    old_rows: pl.DataFrame,
    with_inbound: bool,
    full: bool,
) -> int:
    """Move the recomputed messages between their send-outs' status groups, then recompute the
    figures of those send-outs (and, `with_inbound`, of those with replies)."""
    changed = new_rows.select("sendout_id").unique()
    with registered(con, "changed_sendouts", changed.to_arrow()):
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE dirty_sendouts AS
            SELECT sendout_id FROM changed_sendouts
            UNION SELECT DISTINCT sendout_id FROM inbound_messages
            WHERE $with_inbound AND sendout_id IS NOT NULL
            """,
            {"with_inbound": with_inbound},
        )
    if full:
        con.execute("DELETE FROM sendout_status_groups")
        groups = status_groups(new_rows.lazy()).collect()
    else:
        stored = _frame(
            con, "SELECT * FROM sendout_status_groups SEMI JOIN dirty_sendouts USING (sendout_id)"
        )
        old = old_rows.lazy() if old_rows.height else new_rows.lazy().head(0)
        groups = move_groups(stored, new_rows.lazy(), old).collect()
    _replace_rows(con, "sendout_status_groups", "sendout_id", groups, "dirty_sendouts")
    inbound = _frame(
        con,
        """
        SELECT sendout_id, count(*) AS inbound, sum(cost) AS inbound_cost
        FROM inbound_messages SEMI JOIN dirty_sendouts USING (sendout_id)
        GROUP BY sendout_id
        """,
    )
    rows = channel_stats(groups.lazy(), inbound).collect()
    _replace_rows(con, "sendout_channel_stats", "sendout_id", rows, "dirty_sendouts")
    return rows.select("sendout_id").n_unique()


def refresh(
    con: duckdb.DuckDBPyConnection, full: bool = False, config: WarehouseSettings | None = None
) -> RefreshSummary:
    """Bring the refreshed tables up to date in one transaction; see the module docstring.
    `config` gives the prices and the inbound SMS defaults (the embedded ones if none)."""
    with transaction(con):
        return _refresh(con, full, config)


def refresh_figures(
    con: duckdb.DuckDBPyConnection,
    config: WarehouseSettings | None = None,
    raise_out_of_memory: bool = False,
) -> RefreshSummary | None:
    """Refresh right after storing something (a send-out's messages, dispatch's outcomes), so
    it counts in every figure at once. What was stored is committed already: if this refresh
    fails, it is logged and the next refresh (the ingester's, within seconds) takes it in. With
    `raise_out_of_memory`, DuckDB running out of memory is raised instead, for a caller that
    capped DuckDB's memory to lift the cap and try again."""
    try:
        return refresh(con, config=config)
    except Exception as error:  # what was stored stands; never lose it to a failing refresh
        if raise_out_of_memory and is_out_of_memory(error):
            raise
        log.exception("refresh after a write failed; the next refresh catches up")
        return None


def _refresh(
    con: duckdb.DuckDBPyConnection, full: bool, config: WarehouseSettings | None
) -> RefreshSummary:
    started = time.perf_counter()
    config = config or WarehouseSettings.embedded()
    prices = config.prices
    now = datetime.now(UTC)
    since, since_seq = (None, None) if full else _state(con)
    full = full or since_seq is None
    last_seq = con.execute(
        "SELECT max(seq) FROM events WHERE $since_seq IS NULL OR seq > $since_seq",
        {"since_seq": since_seq},
    ).fetchall()[0][0]
    events = _take_in_events(con, None if full else since, since_seq)
    if full:
        for table in ("message_status", "sendout_channel_stats"):
            con.execute(f"DELETE FROM {table}")
    new_rows, old_rows = _refresh_messages(con, events, prices, now, full)
    inbound_changed = full or _inbound_may_have_changed(con, since_seq, new_rows)
    inbound = _refresh_inbound(con, config, prices) if inbound_changed else 0
    changes = derive_from_events(con, since_seq)
    sendouts = _refresh_sendouts(con, new_rows, old_rows, inbound_changed, full)
    con.execute(
        "INSERT OR REPLACE INTO refresh_state (name, watermark, refreshed_at, folded_seq) "
        "VALUES (?, ?, ?, ?)",
        [STATE_NAME, now, now, last_seq if last_seq is not None else since_seq or 0],
    )
    return RefreshSummary(
        mode="full" if full else "incremental",
        messages=new_rows.height,
        sendouts=sendouts,
        inbound=inbound,
        unsubscribe_changes=changes,
        seconds=round(time.perf_counter() - started, 3),
    )
