"""Reading contacts from a CSV file or from addresses a person typed: every row checked and
normalised, the same person twice merged, and every row that cannot be used kept with the line
it starts on (the header is line 1) and why. Nothing here touches the warehouse: a file is read
whole before it is opened (DESIGN §9: parse before you lock); warehouse/contacts.py writes.

Rejected: a bad email or number, no address, more cells than the header, a cell over MAX_CELL
characters, a number with an extension, a quote never closed (only its own line: reading starts
again on the next one). Line ends may be LF, CRLF or a lone CR; a stray CR inside a line is a
space.
"""

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from warehouse.addresses import (
    InvalidAddressError,
    channel_of,
    e164,
    is_landline,
    normalise_email,
    read_phone,
)
from warehouse.vocabulary import Channel

REQUIRED_COLUMNS = ("first_name", "last_name", "email", "mobile")
MAX_CELL = 1_000  # characters in one cell; a longer one is not a name or an address
MAX_RECORD_LINES = 20  # a quoted cell may hold line breaks; one open for longer is unclosed
PROGRESS_EVERY = 10_000  # rows read between two progress reports

csv.field_size_limit(2**31 - 1)  # a huge cell is reported with its size, not csv's error

Progress = Callable[[int, int], None]  # (lines read, lines in the file)


class ContactImportError(Exception):
    """The file as a whole cannot be imported (unreadable, not CSV, missing columns)."""


@dataclass(frozen=True)
class RowNote:
    row: int  # the line the row starts on in the CSV file, header = 1; or a typed address's place
    reason: str
    typed: bool = False  # an address a person typed (the `row`-th), not a line of a file

    @property
    def where(self) -> str:
        """Where the person finds it: "line 3" of their file, or "typed address 2"."""
        return f"typed address {self.row}" if self.typed else f"line {self.row}"


@dataclass(frozen=True)
class ContactRow:
    row: int
    first_name: str | None
    last_name: str | None
    email: str | None
    mobile: str | None
    mobile_is_landline: bool = False


@dataclass
class ReadContacts:
    """A file's rows, checked and merged, before anything is written."""

    people: list[ContactRow] = field(default_factory=list)
    rejected: list[RowNote] = field(default_factory=list)
    merged: list[RowNote] = field(default_factory=list)
    no_sms: list[RowNote] = field(default_factory=list)
    partly: list[RowNote] = field(default_factory=list)  # kept with its one good address


def _lines(text: str) -> list[str]:
    """The file's lines: ended by LF or CRLF, or by CR alone in files from old Macs. A stray CR
    inside a line is a space (csv refuses it outside quotes; no name or address holds one)."""
    if "\n" not in text and "\r" in text:
        return text.split("\r")
    lines = text.split("\n")
    return [line.removesuffix("\r").replace("\r", " ") if "\r" in line else line for line in lines]


class _LineSource:
    """The lines for csv.reader, one at a time, remembering where it is so that reading can
    start again on the line after a record that went wrong."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.next = 0

    def __iter__(self) -> "_LineSource":
        return self

    def __next__(self) -> str:
        if self.next >= len(self.lines):
            raise StopIteration
        self.next += 1
        return self.lines[self.next - 1]


def _records(lines: list[str]) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """(line number, cells, problem) for every non-blank record. A record that csv cannot read,
    or whose quote stays open for more than MAX_RECORD_LINES lines, is a problem on its first
    line only; reading starts again on the next line, so the rows after it are not lost."""
    source = _LineSource(lines)
    reader = csv.reader(source, strict=True)
    while source.next < len(lines):
        start = source.next
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            cells, problem = None, _csv_problem(error)
        else:
            problem = None
            if source.next - start > MAX_RECORD_LINES:
                cells, problem = None, "a quote opened on this line is never closed"
        if problem:
            yield start + 1, None, problem
            source.next = start + 1
            reader = csv.reader(source, strict=True)
        elif cells:
            yield start + 1, cells, None


def _csv_problem(error: csv.Error) -> str:
    text = str(error)
    if "unexpected end of data" in text:
        return "a quote opened on this line is never closed"
    return f"not readable as CSV ({text})"


def _header(cells: list[str]) -> dict[str, int]:
    names = [name.strip().lower() for name in cells]
    missing = [column for column in REQUIRED_COLUMNS if column not in names]
    if missing:
        raise ContactImportError(
            f"the CSV has no column {', '.join(missing)} (a header row is needed)"
        )
    twice = sorted({column for column in REQUIRED_COLUMNS if names.count(column) > 1})
    if twice:
        raise ContactImportError(
            f"the CSV has the column {', '.join(twice)} more than once: which one is meant "
            "cannot be told"
        )
    return {column: names.index(column) for column in REQUIRED_COLUMNS}


def _person(
    row: int, cells: list[str], columns: dict[str, int], width: int, region: str | None
) -> tuple[ContactRow | None, list[str]]:
    """A row's person, or the problems that keep it out. A row with one good address and one
    that is not is kept with the good one, the other's problem said (a person whose email is
    right is not left out for a mobile number mistyped)."""
    if len(cells) > width:
        return None, ["more cells than the header has columns"]
    long = max(len(cell) for cell in cells)
    if long > MAX_CELL:
        return None, [f"a cell of {long:,} characters (at most {MAX_CELL:,})"]
    value = {
        column: (cells[i].strip() or None) if i < len(cells) else None
        for column, i in columns.items()
    }
    problems = []
    email = mobile = None
    landline = False
    if value["email"]:
        try:
            email = normalise_email(value["email"])
        except InvalidAddressError as error:
            problems.append(str(error))
    if value["mobile"]:
        try:
            number = read_phone(value["mobile"], region)
            mobile = e164(number)
            landline = is_landline(number)
        except InvalidAddressError as error:
            problems.append(str(error))
    if not value["email"] and not value["mobile"]:
        problems.append("no email and no mobile")
    if not (email or mobile):
        return None, problems
    person = ContactRow(row, value["first_name"], value["last_name"], email, mobile, landline)
    kept = "email" if email else "mobile"
    return person, [f"{problem}: kept with the {kept} only" for problem in problems]


def parse_contacts_csv(
    text: str, default_region: str | None = None, progress: Progress | None = None
) -> ReadContacts:
    """Every row of CSV text checked and normalised; the same person twice (by email, else by
    mobile) is merged into one row whose later cells win, and said so."""
    lines = _lines(text)
    records = _records(lines)
    columns = None
    width = 0
    for _, cells, problem in records:
        if cells is not None:
            columns, width = _header(cells), len(cells)
            break
        raise ContactImportError(f"the header row is not readable: {problem}")
    if columns is None:
        raise ContactImportError("the file is empty (a header row is needed)")
    read = ReadContacts()
    by_email: dict[str, int] = {}  # email -> index in read.people
    by_mobile: dict[str, int] = {}
    for count, (row, cells, problem) in enumerate(records, start=1):
        if progress and count % PROGRESS_EVERY == 0:
            progress(row, len(lines))
        if problem:
            read.rejected.append(RowNote(row, problem))
            continue
        person, problems = _person(row, cells, columns, width, default_region)
        if person is None:
            read.rejected.append(RowNote(row, "; ".join(problems)))
            continue
        read.partly += [RowNote(row, problem) for problem in problems]
        _merge_or_add(read, person, by_email, by_mobile)
    if progress:
        progress(len(lines), len(lines))
    return read


def _merge_or_add(
    read: ReadContacts, person: ContactRow, by_email: dict[str, int], by_mobile: dict[str, int]
) -> None:
    """Add a row's person, or merge it into the earlier row of the same person (same email, or
    same mobile where one of them has no email). A row whose email is one earlier person's and
    mobile another's, or whose mobile is an earlier person's with another email, is rejected:
    which of them is meant cannot be told."""
    same_email = by_email.get(person.email) if person.email else None
    same_mobile = by_mobile.get(person.mobile) if person.mobile else None
    if same_mobile is not None and same_email != same_mobile:
        earlier = read.people[same_mobile]
        if person.email and (same_email is not None or earlier.email):
            read.rejected.append(
                RowNote(
                    person.row,
                    f"mobile {person.mobile} is also on line {earlier.row}, with "
                    f"{earlier.email or 'no email'}: which person is meant cannot be told",
                )
            )
            return
        same_email = same_email if same_email is not None else same_mobile
    if same_email is None:
        at = len(read.people)
        read.people.append(person)
    else:
        at = same_email
        earlier = read.people[at]
        read.merged.append(
            RowNote(
                person.row,
                f"the same person as line {earlier.row} ({earlier.email or earlier.mobile}): "
                "merged into one contact, this line's cells win",
            )
        )
        read.people[at] = ContactRow(
            person.row,
            person.first_name or earlier.first_name,
            person.last_name or earlier.last_name,
            person.email or earlier.email,
            person.mobile or earlier.mobile,
            person.mobile_is_landline if person.mobile else earlier.mobile_is_landline,
        )
    merged = read.people[at]
    if merged.email:
        by_email[merged.email] = at
    if merged.mobile:
        by_mobile[merged.mobile] = at


def read_csv_text(path: Path, name: str | None = None) -> str:
    """The file's text (UTF-8, with or without a byte-order mark); errors call it `name`."""
    name = name or str(path)
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ContactImportError(
            f"{name} is not UTF-8 text (byte {error.start}): save it from the spreadsheet as "
            "'CSV UTF-8' and try again"
        ) from error
    except OSError as error:
        raise ContactImportError(f"{name} cannot be read: {error.strerror}") from error


def read_contacts(
    path: Path,
    default_region: str | None = None,
    progress: Progress | None = None,
    name: str | None = None,
) -> ReadContacts:
    """A contacts CSV file's rows, checked and merged, and the rows that were not. `name`:
    what the person calls the file (an upload's own name, not where the server keeps it)."""
    read = parse_contacts_csv(read_csv_text(path, name), default_region, progress)
    read.no_sms = [
        RowNote(p.row, f"{p.mobile} is a landline: kept, but it is never sent SMS")
        for p in read.people
        if p.mobile_is_landline
    ]
    return read


def typed_entries(text: str) -> list[str]:
    """The addresses a person typed: one per line, or separated by commas or semicolons."""
    return [e.strip() for e in re.split(r"[\n,;]+", text) if e.strip()]


def typed_people(text: str, default_region: str | None = None) -> ReadContacts:
    """Email addresses and phone numbers as a person types them (one per line, or separated by
    commas or semicolons), each a row numbered from 1 in the order typed."""
    read = ReadContacts()
    for number, entry in enumerate(typed_entries(text), start=1):
        try:
            if channel_of(entry) == Channel.EMAIL:
                read.people.append(ContactRow(number, None, None, normalise_email(entry), None))
            else:
                phone = read_phone(entry, default_region)
                read.people.append(
                    ContactRow(number, None, None, None, e164(phone), is_landline(phone))
                )
        except InvalidAddressError as error:
            read.rejected.append(RowNote(number, str(error), typed=True))
    return read
