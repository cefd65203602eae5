"""Read queries for people: send-out summaries and "why didn't they receive it?"."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import duckdb
import polars as pl

from warehouse.addresses import channel_of, normalise_address
from warehouse.db import fetch_dicts
from warehouse.sql import run_script
from warehouse.unsubscribes import Entry, entries
from warehouse.vocabulary import (
    REASON_WORDS,
    BounceReason,
    Channel,
    CommunicationType,
    DisplayStatus,
    EventType,
    UnsubscribeReason,
    UnsubscribeScope,
    failure_words,
)

NOT_SENT = {str(DisplayStatus.SKIPPED), str(DisplayStatus.QUEUED)}
REJECTED = {str(DisplayStatus.BOUNCED), str(DisplayStatus.BAD_EMAIL), str(DisplayStatus.BAD_NUMBER)}
ARRIVED = {str(DisplayStatus.SENT), str(DisplayStatus.DELIVERED)}
OPENED = {str(DisplayStatus.OPENED), str(DisplayStatus.CLICKED)}
#: bounce reasons that say the receiving side refused the message, not the address
BLOCKED = {str(BounceReason.POLICY), str(BounceReason.AUTHENTICATION)}
#: where a person removes an entry, as said in the advice: the CLI's words by default
REMOVE_BY_COMMAND = "with `sendout unsubscribes remove`"


def sendout_report(con: duckdb.DuckDBPyConnection, sendout_id: str | None = None) -> list[dict]:
    """Rows of `sendout_summary` (one per send-out and channel), newest send-out first."""
    return fetch_dicts(
        con.execute(
            """
            SELECT * FROM sendout_summary
            WHERE $sendout_id IS NULL OR sendout_id = $sendout_id
            ORDER BY created_at DESC, sendout_id, channel
            """,
            {"sendout_id": sendout_id},
        )
    )


@dataclass
class SentMessage:
    sendout_id: str
    sendout_name: str
    communication_type: str
    channel: str
    status: str
    first_sent_at: datetime | None
    delivered_at: datetime | None
    first_opened_at: datetime | None
    status_code: str | None  # of its bounce, when it bounced
    bounce_reason: str | None  # why it failed (warehouse.vocabulary.BounceReason)
    why: str | None = None  # the two as a person reads them


@dataclass
class Lookup:
    """What happened to one address: list entries, messages, and the advice that applies."""

    address: str
    channel: str
    entries: list[Entry] = field(default_factory=list)
    messages: list[SentMessage] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)


def lookup(
    con: duckdb.DuckDBPyConnection,
    raw_address: str,
    remove_hint: str = REMOVE_BY_COMMAND,
    region: str | None = None,
) -> Lookup:
    """Explain what happened to an email address or phone number (without +country code: of
    `region`), with the checklist's advice (`remove_hint` says where the reader removes an
    entry: a command, or a page)."""
    channel = channel_of(raw_address)
    address = normalise_address(channel, raw_address, region)
    found = Lookup(address=address, channel=str(channel))
    found.entries = [e for e in entries(con, address) if e.channel == str(channel)]
    rows = con.execute(
        """
        SELECT status.sendout_id, sendouts.name, sendouts.communication_type, status.channel,
               status.status, status.first_sent_at, status.delivered_at, status.first_opened_at,
               (SELECT max(events.status_code) FROM events
                WHERE events.message_id = status.message_id
                  AND events.event_type IN (SELECT unnest($bounces))) AS status_code,
               status.bounce_reason
        FROM message_status AS status JOIN sendouts USING (sendout_id)
        WHERE status.recipient = $address AND status.channel = $channel
        ORDER BY sendouts.created_at DESC
        """,
        {
            "address": address,
            "channel": str(channel),
            "bounces": [str(EventType.BOUNCED), str(EventType.BAD_EMAIL)],
        },
    ).fetchall()
    found.messages = [
        SentMessage(*row, why=failure_words(row[-1], row[-2], channel)) for row in rows
    ]
    found.advice = advice(found, remove_hint)
    return found


def advice(found: Lookup, remove_hint: str = REMOVE_BY_COMMAND) -> list[str]:
    """The lines of the "emails not received" checklist that apply to this address."""
    lines = []
    for entry in found.entries:
        who = (
            "marketing send-outs skip it; non-marketing messages still reach it"
            if entry.scope == str(UnsubscribeScope.MARKETING)
            else "every send-out on this channel skips it"
        )
        lines.append(
            f"On the Unsubscribes list since {entry.added_at:%Y-%m-%d} "
            f"({REASON_WORDS[UnsubscribeReason(entry.reason)]}): {who}. "
            f"If that is a mistake, remove it {remove_hint} and send again."
        )
    if not found.messages:
        lines.append(
            "Nothing was sent to this address: check that it is the contact's current address "
            "and that the contact was among the send-out's recipients."
        )
        return lines
    is_email = found.channel == str(Channel.EMAIL)
    statuses = {m.status for m in found.messages}
    if str(DisplayStatus.SKIPPED) in statuses:
        lines.append(
            "Some messages were skipped and never sent, at no cost: see the entries above."
        )
    blocked = [m for m in found.messages if m.bounce_reason in BLOCKED]
    if blocked:
        lines.append(
            f"Their provider refused a message ({blocked[0].why}): a filter, not a wrong "
            "address. Ask them to add the sender to their safe senders, "
            "and check with your email provider that your From address's domain is set up for "
            "sending (SPF, DKIM and DMARC records)."
        )
    full = [m for m in found.messages if m.bounce_reason == BounceReason.MAILBOX_FULL]
    if full:
        lines.append(
            f"Their mailbox was full ({full[0].why}): the address is right, and the next "
            "message may well arrive; ask them to make room."
        )
    # a bounce for a reason of its own (a filter, a full mailbox) is no sign of a wrong address
    if any(
        m.status in REJECTED and m.bounce_reason not in {*BLOCKED, BounceReason.MAILBOX_FULL}
        for m in found.messages
    ):
        lines.append(
            "The receiving side rejected a message: check the address for typos, or ask the "
            "person for another one and correct the contact."
        )
    latest = found.messages[0]  # newest first
    if latest.status in OPENED:
        when = f", {latest.first_opened_at:%Y-%m-%d}" if latest.first_opened_at else ""
        lines.append(
            f"They opened the latest message ({latest.sendout_name}{when}): it reached them."
        )
    elif latest.status in ARRIVED and is_email:
        reached = (
            "Delivered to their mail server"
            if latest.status == DisplayStatus.DELIVERED
            else "Sent, with no news yet of its delivery (a relay without delivery reports "
            "says no more),"
        )
        lines.append(
            f"{reached} but not opened: ask them to look in the spam or "
            "junk folder, and to add the sender to their safe senders or contacts. If several "
            "people say so, check with your email provider that your From address's domain is "
            "set up for sending (SPF, DKIM and DMARC records), or providers filter it as spam."
        )
    marketing_only = any(e.scope == str(UnsubscribeScope.MARKETING) for e in found.entries)
    sent_types = {m.communication_type for m in found.messages}
    if marketing_only and str(CommunicationType.NON_MARKETING) in sent_types:
        lines.append(
            "Non-marketing messages (reminders, notices) are still sent to them despite their "
            "marketing unsubscribe."
        )
    return lines


# the Messages page: sendout_summary's rows of a send-out added up over its channels
SENDOUT_LIST = """
SELECT summary.sendout_id, any_value(summary.name) AS name,
       list(summary.channel ORDER BY summary.channel) AS channels,
       any_value(summary.communication_type) AS communication_type,
       any_value(summary.created_at) AS created_at,
       any_value(summary.scheduled_at) AS scheduled_at,
       any_value(summary.sendout_status) AS status,
       coalesce(sum(summary.planned), 0)::INTEGER AS planned,
       coalesce(sum(summary.done), 0)::INTEGER AS done,
       coalesce(any_value(sendouts.recipients), 0)::INTEGER AS recipients  -- people
FROM sendout_summary AS summary
JOIN sendouts USING (sendout_id)
GROUP BY summary.sendout_id
ORDER BY created_at DESC, summary.sendout_id
"""

# a send-out's recipients on a channel, filtered by status and by a search on name or address
FILTERED_RECIPIENTS = """
SELECT status.message_id, status.recipient, contacts.first_name, contacts.last_name, status.status,
       status.bounce_reason, status.first_sent_at, status.delivered_at, status.first_opened_at,
       status.open_count, status.click_count, status.is_machine_open_only, status.cost,
       messages.is_possible_duplicate
FROM message_status AS status
JOIN messages USING (message_id)
LEFT JOIN contacts USING (contact_id)
WHERE status.sendout_id = $sendout_id AND status.channel = $channel
  AND ($status IS NULL OR status.status = $status)
  AND ($search IS NULL OR status.recipient ILIKE '%' || $search || '%'
       OR concat_ws(' ', contacts.first_name, contacts.last_name) ILIKE '%' || $search || '%')
"""
RECIPIENTS = f"SELECT * FROM ({FILTERED_RECIPIENTS}) ORDER BY recipient LIMIT $limit OFFSET $offset"
# why a message was skipped (the Unsubscribes list's entry, or the provider's words)
SKIP_REASONS = """
SELECT message_id, arg_max(reason, occurred_at) AS skip_reason
FROM events
WHERE event_type = 'skipped' AND list_contains($ids::VARCHAR[], message_id)
GROUP BY message_id
"""
RECIPIENT_COUNT = f"""
SELECT count(*), count(*) FILTER (WHERE is_possible_duplicate) FROM ({FILTERED_RECIPIENTS})
"""

# is_unsubscribed: the number is on the Unsubscribes list for SMS now (a STOP, or added by hand)
REPLIES = """
SELECT inbound.event_id, inbound.received_at, inbound.from_number, inbound.body,
       inbound.keyword, inbound.status, inbound.forwarded_at, inbound.replied_at, inbound.cost,
       contacts.first_name, contacts.last_name,
       EXISTS (SELECT 1 FROM unsubscribes
               WHERE unsubscribes.channel = $sms AND unsubscribes.address = inbound.from_number)
           AS is_unsubscribed
FROM inbound_messages AS inbound
LEFT JOIN messages USING (message_id)
LEFT JOIN contacts USING (contact_id)
WHERE inbound.sendout_id = $sendout_id
ORDER BY inbound.received_at DESC, inbound.event_id
"""

BAD_ADDRESSES = """
SELECT unsubscribes.channel, unsubscribes.address, unsubscribes.reason, unsubscribes.added_at,
       contacts.contact_id, contacts.first_name, contacts.last_name
FROM unsubscribes
LEFT JOIN messages USING (message_id)
LEFT JOIN contacts USING (contact_id)
WHERE unsubscribes.sendout_id = $sendout_id
  AND unsubscribes.reason IN ('bad_email', 'bad_number')
ORDER BY unsubscribes.channel, unsubscribes.address
"""


def sendout_list(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per send-out, newest first: its status and progress, from `sendout_summary`
    like every other reader's."""
    return con.sql(SENDOUT_LIST).pl()


class RecipientPage(NamedTuple):
    """One page of a send-out's recipients on a channel, filtered; how many match, and how
    many of those may have been sent twice (a dispatch run died while sending them)."""

    rows: pl.DataFrame
    total: int
    possibly_twice: int


def recipients(
    con: duckdb.DuckDBPyConnection,
    sendout_id: str,
    channel: str,
    status: str | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> RecipientPage:
    """One page of a send-out's recipients on a channel, filtered by status and by a search
    on name or address."""
    params = {
        "sendout_id": sendout_id,
        "channel": channel,
        "status": status,
        "search": search or None,
    }
    page = con.sql(RECIPIENTS, params={**params, "limit": limit, "offset": offset}).pl()
    [(total, twice)] = con.execute(RECIPIENT_COUNT, params).fetchall()
    skipped = page.filter(pl.col("status") == DisplayStatus.SKIPPED)["message_id"].to_list()
    if not skipped:  # no reason to read: the events are many, the page's skipped ones few
        return RecipientPage(page.with_columns(skip_reason=pl.lit(None, pl.String)), total, twice)
    reasons = con.sql(SKIP_REASONS, params={"ids": skipped}).pl()
    return RecipientPage(page.join(reasons, on="message_id", how="left"), total, twice)


def replies(con: duckdb.DuckDBPyConnection, sendout_id: str) -> pl.DataFrame:
    """The SMS replies to a send-out, newest first."""
    return con.sql(REPLIES, params={"sendout_id": sendout_id, "sms": str(Channel.SMS)}).pl()


def bad_addresses(con: duckdb.DuckDBPyConnection, sendout_id: str) -> pl.DataFrame:
    """The bad email addresses and numbers a send-out found, with their contacts."""
    return con.sql(BAD_ADDRESSES, params={"sendout_id": sendout_id}).pl()


SEARCH_CONTACTS = """
SELECT contact_id,
       -- both addresses: whom an email reaches, and whom an SMS does
       concat_ws(' · ', nullif(concat_ws(' ', first_name, last_name), ''), email, mobile) AS label
FROM contacts
WHERE is_listed
  AND ($text = '' OR concat_ws(' ', first_name, last_name, email, mobile) ILIKE '%' || $text || '%')
ORDER BY contact_id
LIMIT $limit
"""


def search_contacts(con: duckdb.DuckDBPyConnection, text: str, limit: int = 100) -> pl.DataFrame:
    """Contacts whose name, email or mobile contains the text (the first `limit`), with a label."""
    return con.sql(SEARCH_CONTACTS, params={"text": text.strip(), "limit": limit}).pl()


PENDING_SNS_CONFIRMATIONS = "SELECT * FROM pending_sns_confirmations ORDER BY requested_at DESC"


def pending_sns_confirmations(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Amazon SNS subscriptions waiting for an operator to open their link, newest first."""
    return con.sql(PENDING_SNS_CONFIRMATIONS).pl()


def has_started(con: duckdb.DuckDBPyConnection, sendout_id: str) -> bool:
    """Whether a dispatch has claimed or settled any message of the send-out, or a provider
    reported on one: from then on it may have gone out, and it can no longer be cancelled."""
    [row] = run_script(con, "messages_gone_out.sql", {"sendout_id": sendout_id})[-1]
    return row["gone_out"] > 0
