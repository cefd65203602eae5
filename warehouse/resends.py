"""Sending a send-out's content again: to other recipients, or to those who did not open its
email; each resend is a new send-out linked to the original (`resend_of`)."""

from datetime import datetime

import duckdb

from warehouse import audit
from warehouse.sendouts import (
    Created,
    Draft,
    FieldError,
    Recipients,
    SendoutError,
    create,
    preview,
    sendout_row,
)
from warehouse.settings import WarehouseSettings
from warehouse.sql import read_sql
from warehouse.vocabulary import Channel


def _resend_draft(sendout: dict, recipients: Recipients, channels: list[str]) -> Draft:
    return Draft(
        name=f"{sendout['name']} (resend)",
        channels=channels,
        communication_type=sendout["communication_type"],
        recipients=recipients,
        subject=sendout["subject"] if Channel.EMAIL in channels else None,
        html_body=sendout["html_body"] if Channel.EMAIL in channels else None,
        text_body=sendout["text_body"] if Channel.EMAIL in channels else None,
        sms_text=sendout["sms_text"] if Channel.SMS in channels else None,
        sender=sendout["sender"],
        forward_to=sendout["forward_to"],
        auto_reply_text=sendout["auto_reply_text"],
        resend_of=sendout["sendout_id"],
        tracking=sendout["is_tracked"],
    )


def resend_to(
    con: duckdb.DuckDBPyConnection,
    sendout_id: str,
    recipients: Recipients,
    now: datetime | None = None,
    by: audit.Actor | None = None,
    config: WarehouseSettings | None = None,
) -> Created:
    """The same content to other recipients: a new send-out linked to the original."""
    return create(con, _draft_to(con, sendout_id, recipients), now, by, config)


def preview_resend_to(
    con: duckdb.DuckDBPyConnection,
    sendout_id: str,
    recipients: Recipients,
    by: audit.Actor | None = None,
) -> Created:
    """Whom `resend_to` would reach, and who it would leave out, without keeping anything."""
    return preview(con, _draft_to(con, sendout_id, recipients), by=by)


def _draft_to(con: duckdb.DuckDBPyConnection, sendout_id: str, recipients: Recipients) -> Draft:
    sendout = sendout_row(con, sendout_id)
    return _resend_draft(sendout, recipients, list(sendout["channels"]))


def non_openers(
    con: duckdb.DuckDBPyConnection, sendout_id: str, exclude_machine_openers: bool = False
) -> list[int]:
    """Contacts whose email from this send-out was not opened, as of the last refresh.

    Left out: messages skipped, bounced, bad or complained about, people who unsubscribed since
    (by the email or on the list now), and with `exclude_machine_openers` those whose only opens
    were machine opens (by default they count as not opened: a machine is not a reader).
    """
    sendout = sendout_row(con, sendout_id)
    rows = con.execute(
        read_sql("non_openers.sql"),
        {
            "sendout_id": sendout_id,
            "exclude_machine_openers": exclude_machine_openers,
            "communication_type": sendout["communication_type"],
        },
    ).fetchall()
    return [row[0] for row in rows]


def resend_to_non_openers(
    con: duckdb.DuckDBPyConnection,
    sendout_id: str,
    exclude_machine_openers: bool = False,
    now: datetime | None = None,
    by: audit.Actor | None = None,
    config: WarehouseSettings | None = None,
) -> Created:
    """The email again, to the recipients who have not opened it (see `non_openers`)."""
    sendout = sendout_row(con, sendout_id)
    if str(Channel.EMAIL) not in sendout["channels"]:
        raise SendoutError([FieldError("sendout_id", f"{sendout_id} sent no email to open")])
    contact_ids = non_openers(con, sendout_id, exclude_machine_openers)
    if not contact_ids:
        raise SendoutError([FieldError("recipients", "everyone who could open it has opened it")])
    region = config.default_region if config else None  # of a forward-to number stored as typed
    chosen = Recipients(contact_ids=contact_ids, region=region)
    draft = _resend_draft(sendout, chosen, [str(Channel.EMAIL)])
    return create(con, draft, now, by, config)
