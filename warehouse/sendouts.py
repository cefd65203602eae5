"""Send-outs: compose, validate, choose recipients, schedule, cancel and resend (DESIGN §8).

A send-out's messages (one per recipient and channel, DESIGN §8) are created with it, so its
progress has a denominator from the start; the Unsubscribes list is checked when each message is
dispatched, not here. Validation reports every problem at once, field by field, so a form can
show each next to its field and the CLI can print them all.
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse import audit
from warehouse.addresses import InvalidAddressError, normalise_phone
from warehouse.contact_rows import ReadContacts, RowNote, read_contacts, typed_people
from warehouse.contacts import upsert_contacts
from warehouse.db import fetch_dicts, registered, rolled_back, transaction
from warehouse.refresh import refresh_figures
from warehouse.reports import has_started
from warehouse.settings import WarehouseSettings
from warehouse.templates import render, template_problem
from warehouse.vocabulary import ADDRESS_WORDS, Channel, CommunicationType


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class SendoutError(ValueError):
    """A send-out that cannot be created or changed; `errors` says what, field by field."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


@dataclass
class Recipients:
    """Who a send-out goes to: every contact, some contacts, the people in a CSV file (made
    contacts, or messaged without becoming contacts), addresses typed by hand (never contacts)."""

    all_contacts: bool = False
    contact_ids: list[int] = field(default_factory=list)
    csv: Path | None = None
    csv_to_contacts: bool = True
    typed: str = ""  # email addresses and phone numbers, one per line or comma-separated
    csv_read: ReadContacts | None = None  # the CSV's rows, once read
    # the region (ISO 3166) of the draft's numbers without +country code (CSV, typed, forward
    # to): the caller's $SENDOUT_DEFAULT_REGION; none: every number carries its country code
    region: str | None = None

    def read_csv(self) -> ReadContacts | None:
        """The CSV's rows, read once: callers read it before they open the warehouse, so that a
        big file is not parsed while the warehouse is held (ContactImportError if unreadable)."""
        if self.csv is not None and self.csv_read is None:
            self.csv_read = read_contacts(self.csv, self.region)
        return self.csv_read


@dataclass
class Draft:
    """What a person composes."""

    name: str
    channels: list[str]
    communication_type: str
    recipients: Recipients
    subject: str | None = None
    html_body: str | None = None
    text_body: str | None = None
    sms_text: str | None = None
    sender: str | None = None
    scheduled_at: datetime | None = None
    forward_to: str | None = None
    auto_reply_text: str | None = None
    resend_of: str | None = None
    tracking: bool | None = None  # open and click tracking; None: on for marketing email

    @property
    def is_tracked(self) -> bool:
        """Tracking as chosen, else on for marketing email."""
        if self.tracking is not None:
            return self.tracking
        return (
            self.communication_type == CommunicationType.MARKETING
            and Channel.EMAIL in self.channels
        )


@dataclass(frozen=True)
class Created:
    sendout_id: str
    messages: int
    without_address: int  # recipients with no address for a channel (a landline has none for SMS)
    rejected: list[RowNote] = field(default_factory=list)  # CSV rows and typed addresses
    partly: list[RowNote] = field(default_factory=list)  # CSV rows kept with one good address
    people: int = 0  # the people it goes to
    without: dict[str, int] = field(default_factory=dict)  # of `without_address`, by channel


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


TEMPLATE_FIELDS = ("subject", "html_body", "text_body", "sms_text")


def _placeholder_errors(name: str, template: str | None) -> list[FieldError]:
    problem = template_problem(template)
    return [FieldError(name, problem)] if problem else []


def validate(draft: Draft, now: datetime | None = None) -> list[FieldError]:
    """Every problem with a draft, field by field (empty when it can be created)."""
    now = now or datetime.now(UTC)
    errors = []
    if _blank(draft.name):
        errors.append(FieldError("name", "give the send-out a name"))
    channels = set(draft.channels)
    if not channels:
        errors.append(FieldError("channels", "choose email, SMS or both"))
    for unknown in sorted(channels - {str(c) for c in Channel}):
        errors.append(FieldError("channels", f"{unknown!r} is not a channel (email or sms)"))
    if draft.communication_type not in {str(t) for t in CommunicationType}:
        errors.append(FieldError("communication_type", "choose marketing or non_marketing"))
    if str(Channel.EMAIL) in channels:
        if _blank(draft.subject):
            errors.append(FieldError("subject", "an email needs a subject"))
        elif len((draft.subject or "").splitlines()) > 1:
            errors.append(FieldError("subject", "a subject is one line: it has a line break"))
        if _blank(draft.html_body) and _blank(draft.text_body):
            errors.append(FieldError("body", "an email needs a body (HTML or text)"))
    elif not (_blank(draft.subject) and _blank(draft.html_body) and _blank(draft.text_body)):
        errors.append(FieldError("body", "email content given, but email is not a channel"))
    if str(Channel.SMS) in channels and _blank(draft.sms_text):
        errors.append(FieldError("sms_text", "an SMS needs a text"))
    if str(Channel.SMS) not in channels and not _blank(draft.sms_text):
        errors.append(FieldError("sms_text", "SMS text given, but SMS is not a channel"))
    for name in TEMPLATE_FIELDS:
        errors.extend(_placeholder_errors(name, getattr(draft, name)))
    if draft.scheduled_at is not None:
        if draft.scheduled_at.tzinfo is None:
            errors.append(FieldError("scheduled_at", "give the time zone of the schedule"))
        elif draft.scheduled_at <= now:
            errors.append(FieldError("scheduled_at", "the schedule is in the past"))
    if draft.forward_to is not None:
        try:
            normalise_phone(draft.forward_to, draft.recipients.region)
        except InvalidAddressError as error:
            errors.append(FieldError("forward_to", f"replies cannot be forwarded there: {error}"))
    chosen = draft.recipients
    if not (chosen.all_contacts or chosen.contact_ids or chosen.csv or chosen.typed.strip()):
        errors.append(FieldError("recipients", "choose the recipients"))
    return errors


def _recipient_ids(
    con: duckdb.DuckDBPyConnection, chosen: Recipients
) -> tuple[list[int], list[RowNote], list[RowNote]]:
    """The contacts a send-out goes to, the CSV rows or typed addresses that could not be
    used (the good ones are kept), and the CSV rows kept with one of their two addresses."""
    if chosen.all_contacts:
        query = "SELECT contact_id FROM contacts WHERE is_listed ORDER BY 1"
        return [row[0] for row in con.sql(query).fetchall()], [], []
    ids = list(dict.fromkeys(chosen.contact_ids))
    known = {
        row[0]
        for row in con.execute(
            "SELECT contact_id FROM contacts WHERE contact_id IN (SELECT unnest(?))", [ids]
        ).fetchall()
    }
    unknown = [i for i in ids if i not in known]
    if unknown:
        listed = ", ".join(map(str, unknown[:5])) + (" ..." if len(unknown) > 5 else "")
        raise SendoutError([FieldError("recipients", f"no contact with id {listed}")])
    rejected: list[RowNote] = []
    partly: list[RowNote] = []
    if (read := chosen.read_csv()) is not None:
        used = upsert_contacts(con, read.people, listed=chosen.csv_to_contacts)
        ids += used.contact_ids
        rejected += sorted(read.rejected + used.conflicts, key=lambda r: r.row)
        partly = read.partly
    if chosen.typed.strip():
        read = typed_people(chosen.typed, chosen.region)
        ids += upsert_contacts(con, read.people, listed=False).contact_ids
        rejected += read.rejected
    return list(dict.fromkeys(ids)), rejected, partly


def create(
    con: duckdb.DuckDBPyConnection,
    draft: Draft,
    now: datetime | None = None,
    by: audit.Actor | None = None,
    config: WarehouseSettings | None = None,
) -> Created:
    """Create a send-out and its messages in one transaction, or raise SendoutError; the audit
    record says who (`by`, else the person at the CLI). Figures are refreshed with `config`."""
    now = now or datetime.now(UTC)
    errors = validate(draft, now)
    if errors:
        raise SendoutError(errors)
    with transaction(con):
        created = _store(con, draft, now, by)
    refresh_figures(con, config)  # its recipients count, as Queued, from this moment
    return created


def preview(con: duckdb.DuckDBPyConnection, draft: Draft, by: audit.Actor | None = None) -> Created:
    """What `create` would make of the draft (whom it reaches, who is left out and why), or its
    SendoutError; nothing is kept (rolled back; ids drawn from sequences stay drawn)."""
    now = datetime.now(UTC)
    errors = validate(draft, now)
    if errors:
        raise SendoutError(errors)
    with rolled_back(con):
        return _store(con, draft, now, by)


def _no_one(rejected: list[RowNote], channels: list[str] | None = None) -> SendoutError:
    """There is no one to send to: none given could be used, or (`channels`) none of them has
    an address there."""
    why = "; ".join(f"{r.where}: {r.reason}" for r in rejected[:3])
    if channels is not None:
        needed = " or ".join(ADDRESS_WORDS[Channel(c)] for c in sorted(set(channels)))
        why = f"none of them has {needed}" + (f"; {why}" if why else "")
    text = "there is no one to send to" + (f" ({why})" if why else "")
    return SendoutError([FieldError("recipients", text)])


def _store(
    con: duckdb.DuckDBPyConnection, draft: Draft, now: datetime, by: audit.Actor | None
) -> Created:
    """The send-out and its messages, in the caller's transaction."""
    sendout_id = f"so_{uuid.uuid4().hex[:12]}"
    contact_ids, rejected, partly = _recipient_ids(con, draft.recipients)
    if not contact_ids:
        raise _no_one(rejected)
    con.execute(
        """
        INSERT INTO sendouts (sendout_id, name, channels, communication_type, subject,
            html_body, text_body, sms_text, sender, scheduled_at, created_at, resend_of,
            forward_to, auto_reply_text, is_tracked)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            sendout_id,
            draft.name.strip(),
            sorted(set(draft.channels)),
            draft.communication_type,
            draft.subject,
            draft.html_body,
            draft.text_body,
            draft.sms_text,
            draft.sender,
            draft.scheduled_at,
            now,
            draft.resend_of,
            normalise_phone(draft.forward_to, draft.recipients.region)
            if draft.forward_to
            else None,
            draft.auto_reply_text,
            draft.is_tracked,
        ],
    )
    messages, without = _create_messages(con, sendout_id, draft, contact_ids)
    if not messages:
        raise _no_one(rejected, draft.channels)
    con.execute(
        """
        UPDATE sendouts SET recipients = (
            SELECT count(DISTINCT contact_id) FROM messages WHERE sendout_id = $id
        ) WHERE sendout_id = $id
        """,
        {"id": sendout_id},
    )
    _keep_left_out(con, sendout_id, rejected)
    audit.record_sendout(con, by, sendout_id, draft.name.strip(), messages, draft)
    people = con.execute(
        "SELECT recipients FROM sendouts WHERE sendout_id = ?", [sendout_id]
    ).fetchall()[0][0]
    return Created(sendout_id, messages, sum(without.values()), rejected, partly, people, without)


def _keep_left_out(con: duckdb.DuckDBPyConnection, sendout_id: str, rows: list[RowNote]) -> None:
    """Keep the people given who could not be sent to, for the send-out's page."""
    left_out = pa.table(
        {
            "position": list(range(1, len(rows) + 1)),
            "row_number": [r.row for r in rows],
            "is_typed": [r.typed for r in rows],
            "reason": [r.reason for r in rows],
        },
        schema=pa.schema(
            [
                ("position", pa.int32()),
                ("row_number", pa.int32()),
                ("is_typed", pa.bool_()),
                ("reason", pa.string()),
            ]
        ),
    )
    with registered(con, "left_out", left_out):
        con.execute(
            "INSERT INTO sendout_left_out BY NAME SELECT ? AS sendout_id, * FROM left_out",
            [sendout_id],
        )


def left_out(con: duckdb.DuckDBPyConnection, sendout_id: str) -> list[RowNote]:
    """The people given for the send-out who could not be sent to, in the order given."""
    rows = con.execute(
        "SELECT row_number, reason, is_typed FROM sendout_left_out WHERE sendout_id = ? "
        "ORDER BY position",
        [sendout_id],
    ).fetchall()
    return [RowNote(*row) for row in rows]


def _create_messages(
    con: duckdb.DuckDBPyConnection, sendout_id: str, draft: Draft, contact_ids: list[int]
) -> tuple[int, dict[str, int]]:
    contacts = con.execute(
        """
        SELECT contact_id, first_name, last_name, email, mobile,
            CASE WHEN NOT mobile_is_landline THEN mobile END AS sms_number
        FROM contacts WHERE contact_id IN (SELECT unnest(?)) ORDER BY contact_id
        """,
        [contact_ids],
    ).fetchall()
    rows = {"message_id": [], "contact_id": [], "channel": [], "recipient": [], "sms_text": []}
    without = dict.fromkeys(sorted(set(draft.channels)), 0)
    for contact_id, first_name, last_name, email, mobile, sms_number in contacts:
        person = {
            "first_name": first_name,
            "last_name": last_name,
            "email": email,
            "mobile": mobile,
        }
        for channel in sorted(set(draft.channels)):
            address = email if channel == Channel.EMAIL else sms_number
            if address is None:
                without[channel] += 1
                continue
            rows["message_id"].append(f"msg_{uuid.uuid4().hex}")
            rows["contact_id"].append(contact_id)
            rows["channel"].append(channel)
            rows["recipient"].append(address)
            rows["sms_text"].append(
                render(draft.sms_text, person) if channel == Channel.SMS else None
            )
    with registered(con, "new_messages", pa.table(rows)):
        con.execute(
            """
            INSERT INTO messages (message_id, sendout_id, contact_id, channel, recipient, sms_text)
            SELECT message_id, ?, contact_id, channel, recipient, sms_text FROM new_messages
            ON CONFLICT DO NOTHING
            """,
            [sendout_id],
        )
    return len(rows["message_id"]), without


def sendout_row(con: duckdb.DuckDBPyConnection, sendout_id: str) -> dict:
    """The send-out's row, or SendoutError when there is none."""
    rows = fetch_dicts(con.execute("SELECT * FROM sendouts WHERE sendout_id = ?", [sendout_id]))
    if not rows:
        raise SendoutError([FieldError("sendout_id", f"there is no send-out {sendout_id}")])
    return rows[0]


def cancel(
    con: duckdb.DuckDBPyConnection,
    sendout_id: str,
    now: datetime | None = None,
    by: audit.Actor | None = None,
) -> None:
    """Cancel a send-out before its first message goes: scheduled for later, or due while no
    dispatch has claimed any of its messages (none ran, or it died before the first). A
    dispatch that meets a cancelled send-out ends (dispatch_state.claim_batch)."""
    now = now or datetime.now(UTC)
    with transaction(con):
        sendout = sendout_row(con, sendout_id)
        if sendout["cancelled_at"] is not None:
            raise SendoutError([FieldError("sendout_id", f"{sendout_id} is already cancelled")])
        if has_started(con, sendout_id):
            why = f"{sendout_id} has started sending; it can be cancelled only before that"
            raise SendoutError([FieldError("sendout_id", why)])
        con.execute("UPDATE sendouts SET cancelled_at = ? WHERE sendout_id = ?", [now, sendout_id])
        audit.record(con, by, audit.AuditAction.CANCEL, sendout_id, repr(sendout["name"]))
