"""Dispatch state (DESIGN §8): leases, claims and outcomes, each a short transaction.

One run dispatches a send-out at a time: it holds a lease that it renews with every batch, and
that another run may take over once it is `lease_seconds` old (the holder crashed). Every message
is claimed before the provider call and gets its outcome after it, so a restart resumes with the
messages that have none; a message that was claimed by a run that died is claimed again and
flagged `is_possible_duplicate`. The Unsubscribes list is checked as each message is claimed.
"""

import os
import socket
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import orjson
import polars as pl

from warehouse import audit, unsubscribes
from warehouse.db import registered, transaction
from warehouse.parsers import install_macros
from warehouse.sql import run_script
from warehouse.templates import PLACEHOLDERS, render
from warehouse.vocabulary import Channel, EventType, Provider


def new_run_id() -> str:
    """A dispatch run's id, naming where it runs: host, process id and a random part. A run on
    the same host can then tell that a holder of the lease is dead and take over at once."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def is_dead_here(run_id: str | None) -> bool:
    """True when the run was on this host and its process is gone (killed, crashed)."""
    host, _, rest = (run_id or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another host's run, or one from before ids named their process
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


class DispatchError(RuntimeError):
    """A send-out that cannot be dispatched now (cancelled, not due, held by another run)."""


@dataclass(frozen=True)
class Slice:
    """Slice `index` (from 0) of a send-out cut into `count` recipient ranges of equal size, so
    that several workers (a flow run each) dispatch it together, each its own range first."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise DispatchError(
                f"there is no slice {self.index} of {self.count}: number them from 0"
            )


@dataclass(frozen=True)
class Outgoing:
    """One message, rendered for its recipient, ready for a sender."""

    message_id: str
    sendout_id: str
    channel: str
    recipient: str
    communication_type: str
    sender: str | None
    subject: str | None
    html_body: str | None
    text_body: str | None
    sms_text: str | None
    is_possible_duplicate: bool
    is_tracked: bool  # open and click tracking, where the sender adds it (SMTP)
    # what happens to SMS replies (the send-out's own; None: the global settings)
    forward_to: str | None = None
    auto_reply_text: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What a sender says happened to one message."""

    message_id: str
    event_type: EventType
    provider: Provider
    occurred_at: datetime
    provider_message_id: str | None = None
    status_code: str | None = None
    reason: str | None = None
    bounce_kind: str | None = None


# the outcomes as SQL reads them (`record_outcomes.sql`); built with polars, not pyarrow,
# whose conversion of Python values imports pandas (0.17 s of a CLI command's start)
OUTCOME_SCHEMA = {name: pl.String for name in Outcome.__dataclass_fields__} | {
    "occurred_at": pl.Datetime("us", "UTC"),
    "payload": pl.String,
}


@dataclass(frozen=True)
class Progress:
    done: int
    planned: int

    @property
    def finished(self) -> bool:
        return self.done == self.planned


def _sendout(con: duckdb.DuckDBPyConnection, sendout_id: str) -> tuple:
    rows = con.execute(
        """
        SELECT cancelled_at, scheduled_at, dispatch_run, dispatch_heartbeat_at,
               communication_type
        FROM sendouts WHERE sendout_id = ?
        """,
        [sendout_id],
    ).fetchall()
    if not rows:
        raise DispatchError(f"there is no send-out {sendout_id}")
    return rows[0]


def start(
    con: duckdb.DuckDBPyConnection,
    sendout_id: str,
    run_id: str,
    now: datetime,
    lease_seconds: float,
    early: bool = False,
    part: Slice | None = None,
    by: audit.Actor | None = None,
) -> tuple[str, str | None]:
    """Take the send-out's lease for this run, or raise DispatchError saying why not; return
    the message ids [low, high) of the run's slice. A lease is free when nobody holds it, its
    holder went quiet for `lease_seconds`, or its holder ran on this host and its process is
    dead (a crash here resumes at once). A run of a slice takes no lease: it claims only
    messages that no live run holds, so slices never overlap. The audit record names `by`,
    the person who started the run, if one did (not the schedule), and only once it starts."""
    with transaction(con):
        cancelled_at, scheduled_at, holder, heartbeat, _ = _sendout(con, sendout_id)
        if cancelled_at is not None:
            raise DispatchError(f"{sendout_id} was cancelled")
        if scheduled_at is not None and scheduled_at > now and not early:
            raise DispatchError(f"{sendout_id} is scheduled for {scheduled_at:%Y-%m-%d %H:%M} UTC")
        fresh = heartbeat is not None and now - heartbeat < timedelta(seconds=lease_seconds)
        if part is None and holder not in (None, run_id) and fresh and not is_dead_here(holder):
            raise DispatchError(
                f"{sendout_id} is being dispatched by run {holder}, last seen "
                f"{(now - heartbeat).total_seconds():.0f} s ago; it can be taken over after "
                f"{lease_seconds:.0f} s"
            )
        con.execute(
            """
            UPDATE sendouts SET started_at = coalesce(started_at, ?),
                dispatch_run = CASE WHEN ? THEN dispatch_run ELSE ? END,
                dispatch_heartbeat_at = CASE WHEN ? THEN dispatch_heartbeat_at ELSE ? END
            WHERE sendout_id = ?
            """,
            [now, part is not None, run_id, part is not None, now, sendout_id],
        )
        if by is not None:
            audit.record(con, by, audit.AuditAction.SEND, sendout_id)
        return _bounds(con, sendout_id, part)


def _bounds(
    con: duckdb.DuckDBPyConnection, sendout_id: str, part: Slice | None
) -> tuple[str, str | None]:
    """The message ids [low, high) of a slice (the messages of a send-out never change)."""
    if part is None:
        return "", None
    total = con.execute("SELECT count(*) FROM messages WHERE sendout_id = ?", [sendout_id])
    total = total.fetchall()[0][0]

    def nth(k: int) -> str | None:
        rows = con.execute(
            "SELECT message_id FROM messages WHERE sendout_id = ? ORDER BY message_id "
            "LIMIT 1 OFFSET ?",
            [sendout_id, k * total // part.count],
        ).fetchall()
        return rows[0][0] if rows else None

    low = nth(part.index) if part.index else ""
    high = nth(part.index + 1) if part.index + 1 < part.count else None
    return low or "", high


def _gone(con: duckdb.DuckDBPyConnection, sendout_id: str, run_id: str) -> list[str]:
    """Other runs that hold messages of the send-out and are dead (they ran here)."""
    rows = con.execute(
        "SELECT DISTINCT claimed_by FROM messages WHERE sendout_id = ? AND outcome IS NULL "
        "AND claimed_by IS NOT NULL AND claimed_by <> ?",
        [sendout_id, run_id],
    ).fetchall()
    return [row[0] for row in rows if is_dead_here(row[0])]


def claim_batch(
    con: duckdb.DuckDBPyConnection,
    sendout_id: str,
    run_id: str,
    size: int,
    now: datetime,
    lease_seconds: float = 30.0,
    bounds: tuple[str, str | None] | None = None,
    journaled_runs: Collection[str] = (),
    started: Collection[str] = (),
) -> list[Outgoing]:
    """Claim up to `size` messages without an outcome that no live run holds, those of the run's
    slice (`bounds`, from `start`) first; skip those the Unsubscribes list blocks. Without
    `bounds`, the run must hold the send-out's lease; a cancelled send-out is a DispatchError.
    A message a dead run had claimed is flagged as maybe sent twice, unless that run's journal
    was read (`journaled_runs`) and does not say it went out (`started`).
    Returns the messages to send; the skipped ones get their outcome (free of charge) at once.
    """
    with transaction(con):
        cancelled_at, _, holder, *_ = _sendout(con, sendout_id)
        if cancelled_at is not None:  # before its first message was claimed (sendouts.cancel)
            raise DispatchError(f"{sendout_id} was cancelled")
        if bounds is None:
            if holder != run_id:
                raise DispatchError(f"run {run_id} lost {sendout_id} to run {holder}")
            con.execute(
                "UPDATE sendouts SET dispatch_heartbeat_at = ? WHERE sendout_id = ?",
                [now, sendout_id],
            )
        low, high = bounds or ("", None)
        params = {
            "sendout_id": sendout_id,
            "run_id": run_id,
            "size": size,
            "now": now,
            "low": low,
            "high": high,
            "gone": _gone(con, sendout_id, run_id),
            "stale_before": now - timedelta(seconds=lease_seconds),
            "journaled_runs": list(journaled_runs),
            "started": list(started),
        }
        claimed = run_script(con, "claim_messages.sql", params)[-1]
        blocked_by = {}
        if claimed:  # all of one send-out, so of one communication type
            addresses = {row["recipient"] for row in claimed}
            kind = claimed[0]["communication_type"]
            blocked_by = unsubscribes.skip_reasons(con, addresses, kind)
        for row in claimed:
            row["blocked_by"] = blocked_by.get((row["channel"], row["recipient"]))
        skipped = [row for row in claimed if row["blocked_by"] is not None]
        _record(
            con,
            run_id,
            [
                Outcome(
                    row["message_id"],
                    EventType.SKIPPED,
                    Provider.SENDOUT,
                    now,
                    reason=f"on the Unsubscribes list ({row['blocked_by']})",
                )
                for row in skipped
            ],
            now,
        )
    return [_render(row) for row in claimed if row["blocked_by"] is None]


def _render(row: dict) -> Outgoing:
    person = {k: row[k] for k in PLACEHOLDERS}
    is_email = row["channel"] == Channel.EMAIL
    return Outgoing(
        message_id=row["message_id"],
        sendout_id=row["sendout_id"],
        channel=row["channel"],
        recipient=row["recipient"],
        communication_type=row["communication_type"],
        sender=row["sender"],
        subject=render(row["subject"], person) if is_email else None,
        html_body=render(row["html_body"], person) if is_email else None,
        text_body=render(row["text_body"], person) if is_email else None,
        sms_text=row["sms_text"],
        is_possible_duplicate=row["is_possible_duplicate"],
        is_tracked=row["is_tracked"],
        forward_to=row["forward_to"],
        auto_reply_text=row["auto_reply_text"],
    )


def record_outcomes(
    con: duckdb.DuckDBPyConnection, run_id: str, outcomes: list[Outcome], now: datetime
) -> None:
    """Store what the senders said, as events and on the messages, in one transaction."""
    with transaction(con):
        _record(con, run_id, outcomes, now)


def _record(
    con: duckdb.DuckDBPyConnection, run_id: str, outcomes: list[Outcome], now: datetime
) -> None:
    if not outcomes:
        return
    # built by column, without asdict's deep copies or json: they cost 100 µs an outcome
    columns = {name: [getattr(o, name) for o in outcomes] for name in Outcome.__dataclass_fields__}
    for name in ("event_type", "provider"):
        columns[name] = [str(value) for value in columns[name]]
    columns["payload"] = [
        orjson.dumps({**vars(o), "occurred_at": str(o.occurred_at)}).decode() for o in outcomes
    ]
    install_macros(con)  # the classifier judges refusals and delays
    with registered(con, "outcomes", pl.DataFrame(columns, schema=OUTCOME_SCHEMA)):
        run_script(con, "record_outcomes.sql", {"run_id": run_id, "now": now})


def record_journaled(
    con: duckdb.DuckDBPyConnection,
    sendout_id: str,
    run_id: str,
    journaled: tuple[list[Outcome], Collection[str], Collection[str]],
    now: datetime,
) -> int:
    """Store what ended runs' journals hold (outcomes, runs, messages started without outcome)
    in one transaction: outcomes of messages still without one, then the runs' other claims
    settled (settle_journaled_claims.sql). Returns how many outcomes were stored."""
    outcomes, runs, started = journaled
    ids = list({o.message_id for o in outcomes})
    with transaction(con):
        open_ids = {
            row[0]
            for row in con.execute(
                "SELECT message_id FROM messages WHERE outcome IS NULL AND message_id IN "
                "(SELECT unnest(?))",
                [ids],
            ).fetchall()
        }
        latest = {o.message_id: o for o in outcomes if o.message_id in open_ids}
        _record(con, run_id, list(latest.values()), now)
        params = {"sendout_id": sendout_id, "runs": list(runs), "started": list(started)}
        run_script(con, "settle_journaled_claims.sql", params)
    return len(latest)


def progress(con: duckdb.DuckDBPyConnection, sendout_id: str) -> Progress:
    """Messages with an outcome, and all messages, of a send-out."""
    done, planned = con.execute(
        "SELECT count(outcome), count(*) FROM messages WHERE sendout_id = ?", [sendout_id]
    ).fetchall()[0]
    return Progress(done, planned)


def finish(
    con: duckdb.DuckDBPyConnection,
    sendout_id: str,
    run_id: str,
    now: datetime,
    unsent: Collection[str] = (),
) -> Progress:
    """Give the lease back (if this run held it) and the claims of messages the run never
    handed to a sender (`unsent`: claimed as it was stopped), so that no later run takes them
    for maybe sent; mark the send-out finished when every message has an outcome, whichever of
    its runs sees it first."""
    with transaction(con):
        if unsent:
            con.execute(
                """
                UPDATE messages SET claimed_by = NULL, claimed_at = NULL, attempts = attempts - 1
                WHERE claimed_by = ? AND outcome IS NULL AND message_id IN (SELECT unnest(?))
                """,
                [run_id, list(unsent)],
            )
        state = progress(con, sendout_id)
        con.execute(
            """
            UPDATE sendouts SET dispatch_run = NULL, dispatch_heartbeat_at = NULL
            WHERE sendout_id = ? AND dispatch_run = ?
            """,
            [sendout_id, run_id],
        )
        if state.finished:
            con.execute(
                "UPDATE sendouts SET finished_at = coalesce(finished_at, ?) WHERE sendout_id = ?",
                [now, sendout_id],
            )
    return state


def due_sendouts(con: duckdb.DuckDBPyConnection, now: datetime) -> list[str]:
    """Send-outs whose time has come and that still have messages without an outcome."""
    return [row["sendout_id"] for row in run_script(con, "due_sendouts.sql", {"now": now})[-1]]
