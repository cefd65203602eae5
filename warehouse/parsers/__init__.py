"""Provider event parsers: one SQL file per provider maps raw records to canonical events.

Each parser reads a relation `records(source_line, record, problem)` and returns the columns of
`CANONICAL_COLUMNS`, one row per event, or one row with `problem` set for a record that cannot
become an event. The mapping runs inside DuckDB, so a file of millions of events is parsed
without a Python loop per event.
"""

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import duckdb
import orjson
import pyarrow as pa

from warehouse.db import arrow_table, registered
from warehouse.records import array_reader
from warehouse.sql import read_sql
from warehouse.vocabulary import Provider

PACKAGE = "warehouse.parsers"
# batches up to this many records are tried without the classifier first (Parser.queries): its
# planning, ~18 ms, weighs next to parsing a micro-batch; a big batch holding a failure would
# parse part of itself twice (0.16 s of 7.5 for bench/ingest.py's 300,000 events)
CHEAPER_FIRST_RECORDS = 10_000
NEEDS_CLASSIFIER = "a failure to classify"  # what classify_failure_later raises (classify.sql)

CANONICAL_COLUMNS = (
    "source_line",
    "event_id",
    "event_type",
    "sendout_message_id",
    "provider_message_id",
    "recipient",
    "occurred_at",
    "is_machine_open",
    "url",
    "bounce_kind",
    "status_code",
    "bounce_reason",
    "reason",
    "body",
    "payload",
    "time_problem",
    "problem",
)


@dataclass(frozen=True)
class Parser:
    """A provider's mapping: statements that define its macros, then the query."""

    provider: Provider
    setup: tuple[str, ...]
    query: str

    @property
    def needs_receipt_time(self) -> bool:
        """Twilio callbacks carry no event time: the parser takes the time of receipt."""
        return "$received_at" in self.query

    @property
    def queries(self) -> tuple[str, ...]:
        """The queries to try in turn. Where the parser classifies failures, first its query
        without the classifier (classify.sql, classify_failure_later), which plans in half the
        time and stops at the first record that needs it (`needs_classifier`). A parser that
        reads the warehouse (bounce mail: nearly all failures) parses inside its transaction,
        which such a stop would abort: it goes straight to the whole query."""
        if "classify_failure(" not in self.query or self.reads_warehouse:
            return (self.query,)
        return (self.query.replace("classify_failure(", "classify_failure_later("), self.query)

    @property
    def reads_warehouse(self) -> bool:
        """Our own records and bounce mail are joined to our messages as they are parsed; the
        providers' records are parsed from themselves alone."""
        return re.search(r"\b(FROM|JOIN)\s+messages\b", self.query) is not None


def load_parser(con: duckdb.DuckDBPyConnection, provider: Provider) -> Parser:
    """Read the provider's SQL file, split into its setup statements and its final query."""
    statements = [s.query for s in con.extract_statements(read_sql(f"{provider}.sql", PACKAGE))]
    return Parser(provider=provider, setup=tuple(statements[:-1]), query=statements[-1])


def needs_classifier(error: duckdb.Error) -> bool:
    """Whether a parser's query without the classifier stopped at a record that needs it."""
    return isinstance(error, duckdb.InvalidInputException) and NEEDS_CLASSIFIER in str(error)


def parse_records(
    con: duckdb.DuckDBPyConnection,
    parser: Parser,
    records: pa.Table,
    params: dict,
    around: Callable[[str], str] = lambda query: query,
) -> pa.Table:
    """Parse `records` (source_line, record, problem) on `con`, a connection with the macros:
    a small batch with the parser's cheaper query first, the whole one if a record needs it
    (Parser.queries). `around` puts the parser's query inside the caller's own; `params` are
    its parameters."""
    for statement in parser.setup:
        con.execute(statement)
    # small record batches let DuckDB spread the parsing over every core
    batches = pa.Table.from_batches(records.to_batches(max_chunksize=8192))
    *cheaper, whole = parser.queries
    if records.num_rows > CHEAPER_FIRST_RECORDS:
        cheaper = []
    with registered(con, "records", batches):
        for query in cheaper:
            try:
                return arrow_table(con, around(query), params)
            except duckdb.Error as error:
                if not needs_classifier(error):
                    raise
        return arrow_table(con, around(whole), params)


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create the helper macros every parser uses and the classifier (temporary, for this
    connection)."""
    for name in ("macros.sql", "classify.sql"):
        for statement in con.extract_statements(read_sql(name, PACKAGE)):
            con.execute(statement)


@functools.cache
def parsing_connection() -> duckdb.DuckDBPyConnection:
    """A connection with the macros to the process's in-memory DuckDB (the one that splits JSON
    arrays, records.array_reader), where the providers' records are parsed: their parsers read
    nothing of the warehouse, so ingest parses while other processes have it."""
    con = array_reader().cursor()
    install_macros(con)
    return con


def _provider_of(event: dict) -> Provider | None:
    keys = event.keys()
    if "sendout_mail" in keys:
        return Provider.MAIL
    if "sendout_event" in keys:
        return Provider.SMTP
    if {"eventType", "notificationType"} & keys or ("TopicArn" in keys and "Type" in keys):
        return Provider.SES
    if "RecordType" in keys:
        return Provider.POSTMARK
    if "event-data" in keys or ("event" in keys and "recipient" in keys and "id" in keys):
        return Provider.MAILGUN
    if "sg_event_id" in keys or "sg_message_id" in keys or {"event", "email"} <= keys:
        return Provider.SENDGRID
    if {"MessageSid", "SmsSid", "AccountSid"} & keys:
        return Provider.TWILIO
    return None


def detect_provider(records: Iterable[str | None], look_at: int = 20) -> Provider | None:
    """Which provider wrote these records, judged by the keys of the first JSON objects."""
    seen = 0
    for record in records:
        if record is None:
            continue
        try:
            event = orjson.loads(record)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict) and (provider := _provider_of(event)):
            return provider
        seen += 1
        if seen >= look_at:
            break
    return None
