"""Import contacts from CSV: normalise, validate per row, and update rather than duplicate.

A row is matched to an existing contact by email, else by mobile. Empty cells keep what the
contact already has. A row with an invalid email or mobile, or with neither, is reported with its
row number and not imported; every valid row is imported all the same.
"""

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.addresses import (
    InvalidAddressError,
    normalise_email,
    normalise_phone,
)
from warehouse.db import transaction
from warehouse.sql import read_sql, run_script

REQUIRED_COLUMNS = ("first_name", "last_name", "email", "mobile")


class ContactImportError(Exception):
    """The file as a whole cannot be imported (unreadable, not CSV, missing columns)."""


@dataclass(frozen=True)
class RejectedRow:
    row: int  # the line number in the CSV file, header = 1
    reason: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)


@dataclass(frozen=True)
class ContactRow:
    row: int
    first_name: str | None
    last_name: str | None
    email: str | None
    mobile: str | None


def _cell(record: dict[str, str | None], column: str) -> str | None:
    value = (record.get(column) or "").strip()
    return value or None


def parse_contacts_csv(
    text: str, default_region: str | None = None
) -> tuple[list[ContactRow], list[RejectedRow]]:
    """Split CSV text into valid, normalised rows and rejected rows with reasons."""
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise ContactImportError(
            f"the CSV has no column {', '.join(missing)} (a header row is needed)"
        )
    reader.fieldnames = header
    valid: dict[str, ContactRow] = {}
    rejected = []
    for record in reader:
        row = reader.line_num
        problems = []
        email = mobile = None
        if None in record:  # more cells than header columns
            problems.append("more cells than the header has columns")
        if raw_email := _cell(record, "email"):
            try:
                email = normalise_email(raw_email)
            except InvalidAddressError as error:
                problems.append(str(error))
        if raw_mobile := _cell(record, "mobile"):
            try:
                mobile = normalise_phone(raw_mobile, default_region)
            except InvalidAddressError as error:
                problems.append(str(error))
        if not raw_email and not raw_mobile:
            problems.append("no email and no mobile")
        if problems:
            rejected.append(RejectedRow(row, "; ".join(problems)))
            continue
        contact = ContactRow(
            row, _cell(record, "first_name"), _cell(record, "last_name"), email, mobile
        )
        valid[email or mobile] = contact  # a later row for the same person wins
    return list(valid.values()), rejected


def read_csv_text(path: Path) -> str:
    """The file's text (UTF-8, with or without a byte-order mark)."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ContactImportError(f"{path} is not UTF-8 text (byte {error.start})") from error
    except OSError as error:
        raise ContactImportError(f"{path} cannot be read: {error.strerror}") from error


INCOMING_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("first_name", pa.string()),
        ("last_name", pa.string()),
        ("email", pa.string()),
        ("mobile", pa.string()),
    ]
)


def typed_entries(text: str) -> list[str]:
    """The addresses a person typed: one per line, or separated by commas or semicolons."""
    return [e.strip() for e in re.split(r"[\n,;]+", text) if e.strip()]


def typed_people(
    text: str, default_region: str | None = None
) -> tuple[list[ContactRow], list[RejectedRow]]:
    """Email addresses and phone numbers as a person types them (one per line, or separated by
    commas or semicolons), each a row numbered from 1 in the order typed."""
    people, rejected = [], []
    for number, entry in enumerate(typed_entries(text), start=1):
        try:
            if "@" in entry:
                people.append(ContactRow(number, None, None, normalise_email(entry), None))
            else:
                mobile = normalise_phone(entry, default_region)
                people.append(ContactRow(number, None, None, None, mobile))
        except InvalidAddressError as error:
            rejected.append(RejectedRow(number, str(error)))
    return people, rejected


def read_contacts(
    path: Path, default_region: str | None = None
) -> tuple[list[ContactRow], list[RejectedRow]]:
    """A contacts CSV file's valid rows and rejected rows."""
    try:
        return parse_contacts_csv(read_csv_text(path), default_region)
    except csv.Error as error:
        raise ContactImportError(f"{path} is not a readable CSV file: {error}") from error


def upsert_contacts(
    con: duckdb.DuckDBPyConnection, rows: list[ContactRow], listed: bool = True
) -> tuple[int, int, list[int]]:
    """Create or update contacts inside the caller's transaction: created, updated, their ids.
    With `listed=False` the people are messaged without becoming contacts (migration 0008)."""
    con.register(
        "incoming_contacts", pa.Table.from_pylist([vars(r) for r in rows], INCOMING_SCHEMA)
    )
    try:
        run_script(con, "upsert_contacts.sql", {"listed": listed})
        created, updated = con.execute(
            "SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE NOT is_new)"
            " FROM matched_contacts"
        ).fetchall()[0]
        ids = [row[0] for row in con.execute(read_sql("contacts_of_last_import.sql")).fetchall()]
    finally:
        con.unregister("incoming_contacts")
    return created, updated, ids


def import_contacts(
    con: duckdb.DuckDBPyConnection, path: Path, default_region: str | None = None
) -> ImportReport:
    """Import a contacts CSV in one transaction and report what it did."""
    rows, rejected = read_contacts(path, default_region)
    with transaction(con):
        created, updated, _ = upsert_contacts(con, rows)
    return ImportReport(created=created, updated=updated, rejected=rejected)


def correct_address(con: duckdb.DuckDBPyConnection, contact_id: int, channel: str, raw: str) -> str:
    """Give a contact a corrected email or mobile; the bad one stays on the Unsubscribes list,
    so only the new address is messaged from now on. Returns the stored address."""
    address = normalise_email(raw) if channel == "email" else normalise_phone(raw)
    column = "email" if channel == "email" else "mobile"
    with transaction(con):
        updated = con.execute(
            f"UPDATE contacts SET {column} = ?, updated_at = current_timestamp "
            "WHERE contact_id = ?",
            [address, contact_id],
        ).fetchall()[0][0]
    if not updated:
        raise ContactImportError(f"there is no contact {contact_id}")
    return address
