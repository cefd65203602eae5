"""Import contacts from CSV: read and check every row first, then write in short transactions,
never taking over another contact's address or changing a name without saying so.

A file is read whole before the warehouse is touched (DESIGN §9: parse before you lock). Every
row is numbered by the line it starts on (the header is line 1) and ends in one of the report's
lists: rejected (a bad cell, an unclosed quote, no address), merged (the same person again in
the file: one contact, the later cells win), conflict (it would take another contact's address:
nothing written), changed (an existing contact whose name or address it changes), or no SMS
(a landline: kept, never sent SMS). A row is matched to an existing contact by email, else by
mobile; empty cells keep what the contact already has.
"""

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse import audit
from warehouse.addresses import e164, is_landline, normalise_address, read_phone
from warehouse.contact_rows import (
    ContactRow,
    Progress,
    RowNote,
    read_contacts,
)
from warehouse.db import fetch_dicts, open_warehouse, registered, transaction
from warehouse.sql import read_sql, run_script
from warehouse.vocabulary import Channel

WRITE_ROWS = 20_000  # rows written per transaction, so that no write holds the file for long


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    rejected: list[RowNote] = field(default_factory=list)
    conflicts: list[RowNote] = field(default_factory=list)
    merged: list[RowNote] = field(default_factory=list)
    changed: list[RowNote] = field(default_factory=list)
    no_sms: list[RowNote] = field(default_factory=list)
    partly: list[RowNote] = field(default_factory=list)  # kept with their one good address
    contact_ids: list[int] = field(default_factory=list)  # of every row used, in file order

    def add(self, other: "ImportReport") -> None:
        """Take in the report of another part of the same file."""
        self.created += other.created
        self.updated += other.updated
        lists = ("rejected", "conflicts", "merged", "changed", "no_sms", "partly", "contact_ids")
        for name in lists:
            getattr(self, name).extend(getattr(other, name))


INCOMING_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("first_name", pa.string()),
        ("last_name", pa.string()),
        ("email", pa.string()),
        ("mobile", pa.string()),
        ("mobile_is_landline", pa.bool_()),
    ]
)

_CHANGES = (
    ("first name", "first_name"),
    ("last name", "last_name"),
    ("email", "email"),
    ("mobile", "mobile"),
)


def _conflict(planned: dict) -> RowNote:
    if planned["email_owner"] is not None:
        why = (
            f"its email is contact {planned['email_owner']}'s and its mobile "
            f"contact {planned['mobile_owner']}'s"
        )
    else:
        why = (
            f"its mobile {planned['mobile']} is contact {planned['mobile_owner']}'s, "
            f"whose email is {planned['old_email']}"
        )
    return RowNote(planned["row"], f"{why}: nothing changed; correct the row or the contact")


def _changes(planned: dict) -> RowNote:
    said = [
        f"{words} {planned['old_' + column]!r} → {planned[column]!r}"
        for words, column in _CHANGES
        if None not in (planned[column], planned["old_" + column])
        and planned[column] != planned["old_" + column]
    ]
    return RowNote(planned["row"], f"contact {planned['contact_id']}: " + "; ".join(said))


def upsert_contacts(
    con: duckdb.DuckDBPyConnection,
    people: list[ContactRow],
    listed: bool = True,
    write: bool = True,
) -> ImportReport:
    """Create or update contacts inside the caller's transaction (or, with `write=False`, only
    say what that would do). With `listed=False` the people are messaged without becoming
    contacts (migration 0008): a listed contact they match is left as it is."""
    with registered(
        con, "incoming_contacts", pa.Table.from_pylist([vars(p) for p in people], INCOMING_SCHEMA)
    ):
        run_script(con, "plan_contacts.sql")
        report = ImportReport()
        changed = " OR ".join(f"{c} <> old_{c}" for _, c in _CHANGES)  # NULL on either: no
        updates = f" OR (action = 'update' AND ({changed}))" if listed else ""
        query = f"SELECT * FROM planned_contacts WHERE action = 'conflict'{updates} ORDER BY row"
        for planned in fetch_dicts(con.execute(query)):
            if planned["action"] == "conflict":
                report.conflicts.append(_conflict(planned))
            else:
                report.changed.append(_changes(planned))
        report.created, report.updated = con.execute(
            "SELECT count(*) FILTER (WHERE action = 'new'),"
            " count(*) FILTER (WHERE action = 'update') FROM planned_contacts"
        ).fetchall()[0]
        if write:
            run_script(con, "apply_contacts.sql", {"listed": listed})
            con.execute(
                "INSERT INTO contacts (first_name, last_name, email, mobile, mobile_is_landline,"
                " is_listed) SELECT first_name, last_name, email, mobile, mobile_is_landline, ?"
                " FROM planned_contacts WHERE action = 'new' ORDER BY row",
                [listed],
            )
            report.contact_ids = [
                row[0] for row in con.execute(read_sql("contacts_of_last_import.sql")).fetchall()
            ]
    return report


def import_contacts(
    db: Path,
    path: Path,
    default_region: str | None = None,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a contacts CSV and report what it did (or, dry, what it would do). The file is
    read before the warehouse is opened; rows are then written WRITE_ROWS at a time, each part
    in its own short transaction, so readers and other writers get in between. Stopped half
    way, an import is run again: rows already written match their contacts and change nothing."""
    read = read_contacts(path, default_region, progress)
    report = ImportReport(
        rejected=read.rejected, merged=read.merged, no_sms=read.no_sms, partly=read.partly
    )
    for start in range(0, max(len(read.people), 1), WRITE_ROWS):
        with open_warehouse(db) as con, transaction(con):
            part = upsert_contacts(con, read.people[start : start + WRITE_ROWS], write=not dry_run)
        report.add(part)
    return report


class CorrectionError(ValueError):
    """A corrected address that cannot be given: no such contact, or another contact's."""


def correct_address(
    con: duckdb.DuckDBPyConnection,
    contact_id: int,
    channel: str,
    raw: str,
    region: str | None = None,
    by: audit.Actor | None = None,
) -> str:
    """Give a contact a corrected email or mobile, recorded in the audit under `by` (else the
    person at the CLI); the bad one stays on the Unsubscribes list, so only the new address is
    messaged from now on (a number without +country code is of `region`). An address that is
    another contact's is refused, as an import refuses it: one person would get every message
    twice. Returns the stored address."""
    if Channel(channel) == Channel.EMAIL:
        column, address, landline = "email", normalise_address(channel, raw, region), False
    else:
        number = read_phone(raw, region)
        column, address, landline = "mobile", e164(number), is_landline(number)
    with transaction(con):
        holders = con.execute(
            f"""
            SELECT concat_ws(' ', first_name, last_name), is_listed
            FROM contacts WHERE {column} = ? AND contact_id <> ?
            ORDER BY is_listed DESC, contact_id LIMIT 1
            """,
            [address, contact_id],
        ).fetchall()
        if holders:
            [(name, is_listed)] = holders
            whose = f"{name}'s" if name else "another person's"
            kept = "" if is_listed else " (messaged once without being a contact)"
            raise CorrectionError(
                f"{address} is already {whose} {channel}{kept}: two people with one address "
                "would each get the other's messages"
            )
        updated = con.execute(
            f"UPDATE contacts SET {column} = ?, updated_at = current_timestamp,"
            " mobile_is_landline = CASE WHEN ? = 'mobile' THEN ? ELSE mobile_is_landline END"
            " WHERE contact_id = ? RETURNING concat_ws(' ', first_name, last_name)",
            [address, column, landline, contact_id],
        ).fetchall()
        if not updated:
            raise CorrectionError(f"there is no contact {contact_id}")
        [(name,)] = updated  # the audit names the person, and the contact's number
        whom = f"{name} (contact {contact_id})" if name else f"contact {contact_id}"
        audit.record(con, by, audit.AuditAction.CORRECT_ADDRESS, whom, address)
    return address
