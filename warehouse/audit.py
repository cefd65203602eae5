"""The record of who did what: every change a person makes through the dashboard or the CLI is
appended to `audit_entries`, in the same transaction as the change, so the record and the data
never disagree. Rows are never updated or deleted."""

import getpass
import os
from dataclasses import dataclass
from datetime import UTC
from enum import StrEnum

import duckdb

from warehouse.db import fetch_dicts


class AuditAction(StrEnum):
    """What a person did; WORDS says it to a reader."""

    CREATE = "create"
    SCHEDULE = "schedule"
    RESEND = "resend"
    SEND = "send"
    CANCEL = "cancel"
    UNSUBSCRIBE_ADD = "unsubscribe_add"
    UNSUBSCRIBE_REMOVE = "unsubscribe_remove"
    CORRECT_ADDRESS = "correct_address"
    USER_ADD = "user_add"
    USER_REMOVE = "user_remove"
    USER_SET_PASSWORD = "user_set_password"
    USER_SET_ROLE = "user_set_role"
    LOG_IN = "log_in"


WORDS = {
    AuditAction.CREATE: "Created a send-out",
    AuditAction.SCHEDULE: "Scheduled a send-out",
    AuditAction.RESEND: "Resent a send-out",
    AuditAction.SEND: "Started sending",
    AuditAction.CANCEL: "Cancelled a send-out",
    AuditAction.UNSUBSCRIBE_ADD: "Added to the Unsubscribes list",
    AuditAction.UNSUBSCRIBE_REMOVE: "Removed from the Unsubscribes list",
    AuditAction.CORRECT_ADDRESS: "Corrected a contact's address",
    AuditAction.USER_ADD: "Added a user",
    AuditAction.USER_REMOVE: "Removed a user",
    AuditAction.USER_SET_PASSWORD: "Set a user's password",
    AuditAction.USER_SET_ROLE: "Changed a user's role",
    AuditAction.LOG_IN: "Logged in",
}


@dataclass(frozen=True)
class Actor:
    """Who acts, and through what: the dashboard's logged-in user, or a person at the CLI."""

    name: str
    via: str = "cli"


def operator() -> Actor:
    """The person at the command line: $SENDOUT_USER, else the operating-system user (a
    background `sendout dispatch` started by the dashboard is given its user, and
    $SENDOUT_VIA=dashboard, this way)."""
    via = os.environ.get("SENDOUT_VIA") or "cli"
    return Actor(os.environ.get("SENDOUT_USER") or getpass.getuser(), via)


def actor(by: Actor | str | None) -> Actor:
    """An Actor from what a caller gave: a name alone is someone at the CLI; none is the
    operator."""
    if by is None:
        return operator()
    return by if isinstance(by, Actor) else Actor(by)


def record(
    con: duckdb.DuckDBPyConnection,
    by: Actor | str | None,
    action: AuditAction,
    subject: str | None,
    detail: str | None = None,
) -> None:
    """Append one entry: who did `action` to `subject`, and what changed (in words). Call it
    inside the change's own transaction."""
    who = actor(by)
    con.execute(
        "INSERT INTO audit_entries (done_by, via, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
        [who.name, who.via, str(action), subject, detail],
    )


def record_sendout(
    con: duckdb.DuckDBPyConnection,
    by: Actor | str | None,
    sendout_id: str,
    name: str,
    messages: int,
    draft: object,
) -> None:
    """Record a new send-out as what it is to the person: a resend, one scheduled for later,
    or one to send now (a Draft of warehouse/sendouts.py, read by its attributes)."""
    channels = " + ".join(sorted(draft.channels))
    detail = f"{name!r}, {channels}, {messages} {'message' if messages == 1 else 'messages'}"
    if draft.resend_of:
        action, detail = AuditAction.RESEND, f"{detail}, again from {draft.resend_of}"
    elif draft.scheduled_at:
        at = f"{draft.scheduled_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        action, detail = AuditAction.SCHEDULE, f"{detail}, for {at}"
    else:
        action = AuditAction.CREATE
    record(con, by, action, sendout_id, detail)


def entries(
    con: duckdb.DuckDBPyConnection, limit: int = 1000, done_by: str | None = None
) -> list[dict]:
    """The latest entries, newest first (one person's with `done_by`)."""
    return fetch_dicts(
        con.execute(
            """
            SELECT done_at, done_by, via, action, subject, detail
            FROM audit_entries
            WHERE $done_by IS NULL OR done_by = $done_by
            ORDER BY done_at DESC, entry_id DESC
            LIMIT $limit
            """,
            {"done_by": done_by, "limit": limit},
        )
    )
