"""The Unsubscribes list (DESIGN §6): append-only history, the current list, and the one question
dispatch and the dashboard ask: would this address be skipped, and why?"""

import csv
import io
from collections.abc import Collection
from dataclasses import dataclass, fields
from datetime import datetime

import duckdb

from warehouse import audit
from warehouse.addresses import normalise_address
from warehouse.db import transaction
from warehouse.sql import run_script
from warehouse.vocabulary import (
    MANUAL_CAUSE,
    SOFT_BOUNCE_STREAK,
    ChangeAction,
    Channel,
    CommunicationType,
    UnsubscribeReason,
    UnsubscribeScope,
    failure_words,
)

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class UnsubscribeError(ValueError):
    """A manual change that cannot be made (nothing to remove, a bad address, no reason)."""


@dataclass(frozen=True)
class Entry:
    """An active entry of the Unsubscribes list."""

    channel: str
    address: str
    reason: str
    scope: str
    sendout_id: str | None
    cause: str
    added_by: str
    added_at: datetime
    note: str | None
    why: str | None = None  # a bounce's reason: "Mailbox does not exist (5.1.1)"


def derive_from_events(con: duckdb.DuckDBPyConnection, since_seq: int | None = None) -> int:
    """Append the changes that events and inbound replies call for; return how many.

    With `since_seq`, only events stored after that one (`events.seq`) are read.
    """
    before = _change_count(con)
    run_script(
        con, "derive_unsubscribes.sql", {"streak": SOFT_BOUNCE_STREAK, "since_seq": since_seq}
    )
    return _change_count(con) - before


def _change_count(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT count(*) FROM unsubscribe_changes").fetchall()[0][0]


def entries(con: duckdb.DuckDBPyConnection, address: str | None = None) -> list[Entry]:
    """The current list (or one address's entries), newest first; a bounce's entry says why
    the mail bounced (the classifier's reason and the status code of the event that caused it)."""
    rows = con.execute(
        """
        WITH listed AS (
            SELECT * FROM unsubscribes WHERE $address IS NULL OR address = $address
        ),
        causes AS (
            SELECT event_id, message_id, bounce_reason, status_code
            FROM events
            WHERE event_hash IN (SELECT md5_number_lower(cause_event_id) FROM listed)
              AND bounce_reason IS NOT NULL
        )
        SELECT listed.channel, listed.address, listed.reason, listed.scope, listed.sendout_id,
               listed.cause, listed.added_by, listed.added_at, listed.note,
               any_value(causes.bounce_reason), any_value(causes.status_code)
        FROM listed
        LEFT JOIN causes ON causes.event_id = listed.cause_event_id
            AND causes.message_id IS NOT DISTINCT FROM listed.message_id
        GROUP BY ALL
        ORDER BY listed.added_at DESC, listed.channel, listed.address, listed.reason
        """,
        {"address": address},
    ).fetchall()
    return [Entry(*row[:-2], why=failure_words(*row[-2:], channel=row[0])) for row in rows]


def skip_reason(
    con: duckdb.DuckDBPyConnection,
    channel: Channel | str,
    address: str,
    communication_type: CommunicationType | str,
) -> Entry | None:
    """The entry that makes a message to this address skipped (the one whose reason dispatch
    records), or None if it would be sent.

    Entries apply to their channel only; which scopes skip a send-out of which communication
    type is the warehouse's rule (`entry_blocks`, as dispatch asks it: `skip_reasons`).
    """
    channel = str(channel)
    reason = skip_reasons(con, [address], communication_type).get((channel, address))
    listed = (e for e in entries(con, address) if (e.channel, e.reason) == (channel, reason))
    return next(listed, None)


def skip_reasons(
    con: duckdb.DuckDBPyConnection,
    addresses: Collection[str],
    communication_type: CommunicationType | str,
) -> dict[tuple[str, str], str]:
    """`skip_reason` for many addresses at once (a claimed batch), in one query that reads
    only their entries: (channel, address) -> the reason of the entry that skips it."""
    if not addresses:
        return {}
    params = {
        "addresses": list(addresses),
        "communication_type": str(CommunicationType(communication_type)),
    }
    rows = run_script(con, "blocking_unsubscribes.sql", params)[-1]
    return {(row["channel"], row["address"]): row["reason"] for row in rows}


def add(
    con: duckdb.DuckDBPyConnection,
    channel: Channel | str,
    address: str,
    scope: UnsubscribeScope | str,
    changed_by: audit.Actor | str,
    note: str,
    sendout_id: str | None = None,
    region: str | None = None,
) -> Entry:
    """Put an address on the list by hand (reason `manual`), recording who and why, in the
    list's history and in the audit record. A number without +country code is of `region`.
    Adding never narrows: an address kept from all messages by hand is not put back within
    reach of other messages by adding it for marketing only (that is a removal: admins)."""
    address = normalise_address(channel, address, region)  # first: what, then why
    if not note.strip():
        raise UnsubscribeError("say why the address is added: the reason is kept in its history")
    by = audit.actor(changed_by)
    listed = [
        e
        for e in entries(con, address)
        if (e.channel, e.reason) == (str(channel), UnsubscribeReason.MANUAL)
    ]
    if str(scope) != UnsubscribeScope.ALL and any(e.scope == UnsubscribeScope.ALL for e in listed):
        raise UnsubscribeError(
            f"{address} is already kept from all messages; to keep it from marketing only, "
            "remove it first (an admin can) and add it again"
        )
    with transaction(con):
        _record(
            con,
            channel,
            address,
            UnsubscribeReason.MANUAL,
            ChangeAction.ADD,
            scope,
            by.name,
            note,
            sendout_id,
        )
        audit.record(con, by, audit.AuditAction.UNSUBSCRIBE_ADD, address, f"{scope}: {note}")
    return next(e for e in entries(con, address) if e.reason == UnsubscribeReason.MANUAL)


def remove(
    con: duckdb.DuckDBPyConnection,
    channel: Channel | str,
    address: str,
    changed_by: audit.Actor | str,
    note: str,
    reason: UnsubscribeReason | str | None = None,
    region: str | None = None,
) -> list[Entry]:
    """Take an address off the list by hand (every reason, or one); return what was removed.

    The history keeps the entries; the removal is a new row with who and why.
    """
    if not note.strip():
        raise UnsubscribeError("say why the address is removed: the reason is kept in its history")
    address = normalise_address(channel, address, region)
    removed = [
        e
        for e in entries(con, address)
        if e.channel == str(channel) and (reason is None or e.reason == str(reason))
    ]
    if not removed:
        raise UnsubscribeError(f"{address} is not on the {channel} Unsubscribes list")
    by = audit.actor(changed_by)
    with transaction(con):
        for entry in removed:
            _record(
                con,
                channel,
                address,
                entry.reason,
                ChangeAction.REMOVE,
                entry.scope,
                by.name,
                note,
                entry.sendout_id,
            )
        reasons = ", ".join(e.reason for e in removed)
        audit.record(con, by, audit.AuditAction.UNSUBSCRIBE_REMOVE, address, f"{reasons}: {note}")
    return removed


def _record(con, channel, address, reason, action, scope, changed_by, note, sendout_id) -> None:
    con.execute(
        """
        INSERT INTO unsubscribe_changes (channel, address, reason, action, scope, sendout_id,
            cause, changed_by, note, effective_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp)
        """,
        [
            str(channel),
            address,
            str(reason),
            str(action),
            str(scope),
            sendout_id,
            MANUAL_CAUSE,
            changed_by,
            note,
        ],
    )


def history(con: duckdb.DuckDBPyConnection, address: str) -> list[tuple]:
    """Every change ever made to an address's entries, oldest first."""
    return con.execute(
        """
        SELECT changed_at, channel, reason, action, scope, cause, changed_by, note
        FROM unsubscribe_changes WHERE address = ? ORDER BY effective_at, change_id
        """,
        [address],
    ).fetchall()


def safe_cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (OWASP's advice: prefix a ')."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def export_csv(
    con: duckdb.DuckDBPyConnection, only: list[tuple[str, str, str]] | None = None
) -> str:
    """The current list as CSV text, safe against formula injection; with `only`, just the
    entries with those keys (channel, address, reason): what a filtered page shows."""
    keep = None if only is None else set(map(tuple, only))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([f.name for f in fields(Entry)])
    for entry in entries(con):
        if keep is None or (entry.channel, entry.address, entry.reason) in keep:
            writer.writerow([safe_cell(v) for v in vars(entry).values()])
    return out.getvalue()
