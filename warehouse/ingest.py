"""Ingest provider event files into the warehouse, idempotently and one transaction per file.

A file whose bytes were already ingested is skipped. Inside a file, events are deduplicated on
(provider, event_id) against everything stored, so overlapping or re-delivered files add nothing.
A record that cannot become an event goes to `quarantine` with its file, line, reason and text.
A crash mid-file rolls the whole file back; running again completes the job.
"""

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.db import open_warehouse, transaction
from warehouse.links import link_events
from warehouse.parsers import Parser, detect_provider, install_macros, load_parser
from warehouse.records import FileFacts, describe, is_readable_file, read_records
from warehouse.sql import read_sql
from warehouse.vocabulary import INBOUND_EVENT_TYPES, INGESTIBLE_PROVIDERS, Provider

DETECT_SAMPLE = 50  # records looked at to tell which provider wrote a file
HOLD_SECONDS = 2.0  # longest we keep the warehouse from other processes between two files


class IngestError(Exception):
    """A path given to ingest cannot be read at all."""


@dataclass
class FileResult:
    """What ingesting one file did."""

    path: str
    provider: str | None = None
    skipped: bool = False
    records: int = 0
    events_new: int = 0
    events_duplicate: int = 0
    quarantined: int = 0
    unmatched: int = 0


@dataclass
class IngestSummary:
    """Totals over a run of `ingest_paths`; `files` keeps each file's own result."""

    files_read: int = 0
    files_skipped: int = 0
    records: int = 0
    events_new: int = 0
    events_duplicate: int = 0
    quarantined: int = 0
    unmatched: int = 0
    files: list[FileResult] = field(default_factory=list)

    def add(self, result: FileResult) -> None:
        self.files.append(result)
        if result.skipped:
            self.files_skipped += 1
            return
        self.files_read += 1
        self.records += result.records
        self.events_new += result.events_new
        self.events_duplicate += result.events_duplicate
        self.quarantined += result.quarantined
        self.unmatched += result.unmatched

    def as_dict(self, with_files: bool = False) -> dict:
        """The summary as plain data (for --json)."""
        data = asdict(self)
        if not with_files:
            data.pop("files")
        return data


def find_files(paths: Iterable[Path]) -> list[Path]:
    """The files to read: each file named, and every readable file under each folder, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and is_readable_file(p)))
        elif path.is_file():
            found.append(path)
        else:
            raise IngestError(f"{path} does not exist")
    return found


def passed_over(paths: Iterable[Path]) -> list[Path]:
    """The files under the folders in `paths` that are of no kind ingest reads."""
    return [
        p
        for path in paths
        if path.is_dir()
        for p in sorted(path.rglob("*"))
        if p.is_file() and not is_readable_file(p)
    ]


def _already_ingested(con: duckdb.DuckDBPyConnection, facts: FileFacts) -> bool:
    found = con.execute(
        "SELECT count(*) FROM ingested_files WHERE file_hash = ? AND provider IS NOT NULL",
        [facts.file_hash],
    ).fetchall()
    return found[0][0] > 0


def _stage(con: duckdb.DuckDBPyConnection, parser: Parser, batch: pa.Table, received_at) -> None:
    # small record batches let DuckDB spread the parsing over every core
    con.register("records", pa.Table.from_batches(batch.to_batches(max_chunksize=8192)))
    try:
        params = {"received_at": received_at} if parser.needs_receipt_time else None
        con.execute(f"CREATE OR REPLACE TEMP TABLE staged AS {parser.query}", params)
    finally:
        con.unregister("records")


def _store_batch(
    con: duckdb.DuckDBPyConnection, parser: Parser, facts: FileFacts, ingested_at: datetime
) -> tuple[int, int, int]:
    """Move the staged rows into events and quarantine; return new, duplicate and bad counts."""
    common = {
        "provider": str(parser.provider),
        "source_file": str(facts.path),
        "ingested_at": ingested_at,
    }
    new = con.execute(
        read_sql("insert_new_events.sql"), {**common, "channel": _channel(parser)}
    ).fetchall()[0][0]
    con.execute(read_sql("quarantine_staged.sql"), {**common, "file_hash": facts.file_hash})
    valid, bad = con.execute(
        """
        SELECT count(*) FILTER (WHERE problem IS NULL),
               count(DISTINCT source_line) FILTER (WHERE problem IS NOT NULL)
        FROM staged
        """
    ).fetchall()[0]
    return new, valid - new, bad


def _channel(parser: Parser) -> str:
    return str(INGESTIBLE_PROVIDERS[parser.provider])


def _quarantine_unrecognised(
    con: duckdb.DuckDBPyConnection, facts: FileFacts, batches: Iterable[pa.Table], at: datetime
) -> int:
    total = 0
    for batch in batches:
        con.register("records", batch)
        try:
            con.execute(
                read_sql("quarantine_unrecognised.sql"),
                {"source_file": str(facts.path), "file_hash": facts.file_hash, "at": at},
            )
        finally:
            con.unregister("records")
        total += batch.num_rows
    return total


def _ingest_batches(
    con: duckdb.DuckDBPyConnection,
    parser: Parser,
    facts: FileFacts,
    batches: Iterable[pa.Table],
    ingested_at: datetime,
    result: FileResult,
) -> None:
    """Parse, deduplicate and store every batch of a file; count into `result`."""
    received_at = datetime.fromtimestamp(facts.path.stat().st_mtime, UTC)
    # the file's events are those stored after this one (one writer: nothing else comes between)
    last_seq = con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchall()[0][0]
    for statement in parser.setup:
        con.execute(statement)
    for batch in batches:
        _stage(con, parser, batch, received_at)
        new, duplicate, bad = _store_batch(con, parser, facts, ingested_at)
        result.records += batch.num_rows
        result.events_new += new
        result.events_duplicate += duplicate
        result.quarantined += bad
    link_events(con, since_seq=last_seq)
    result.unmatched = _unmatched_since(con, last_seq)


def ingest_file(
    con: duckdb.DuckDBPyConnection, path: Path, provider: Provider | None = None
) -> FileResult:
    """Ingest one file in one transaction; `provider=None` detects it from the content."""
    facts = describe(path.resolve())
    result = FileResult(path=str(facts.path))
    with transaction(con):
        if _already_ingested(con, facts):
            result.skipped = True
            return result
        ingested_at = datetime.now(UTC)
        batches = read_records(facts.path, con=con)
        first = next(batches, None)
        if first is not None:
            batches = itertools.chain([first], batches)
            sample = first.column("record").slice(0, DETECT_SAMPLE).to_pylist()
            provider = provider or detect_provider(sample)
            if provider is None:
                result.quarantined = _quarantine_unrecognised(con, facts, batches, ingested_at)
                result.records = result.quarantined
            else:
                _ingest_batches(
                    con, load_parser(con, provider), facts, batches, ingested_at, result
                )
        result.provider = str(provider) if provider else None
        con.execute(
            """
            INSERT INTO ingested_files (file_hash, path, provider, size_bytes, records,
                events_new, events_duplicate, quarantined, ingested_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                facts.file_hash,
                str(facts.path),
                result.provider,
                facts.size_bytes,
                result.records,
                result.events_new,
                result.events_duplicate,
                result.quarantined,
                ingested_at,
            ],
        )
    return result


def _unmatched_since(con: duckdb.DuckDBPyConnection, last_seq: int) -> int:
    inbound = [str(t) for t in INBOUND_EVENT_TYPES]
    return con.execute(
        """
        SELECT count(*) FROM events
        WHERE seq > ? AND message_id IS NULL AND NOT list_contains(?, event_type)
        """,
        [last_seq, inbound],
    ).fetchall()[0][0]


def ingest_paths(
    db_path: Path,
    paths: Iterable[Path],
    provider: Provider | None = None,
    on_file: Callable[[FileResult], None] | None = None,
    hold_seconds: float = HOLD_SECONDS,
) -> IngestSummary:
    """Ingest every file under `paths`, one transaction per file.

    The connection is kept across files for at most `hold_seconds` and then closed, so that
    other processes (the dashboard, another writer) get the warehouse between files.
    """
    summary = IngestSummary()
    files = find_files(paths)
    while len(summary.files) < len(files):
        with open_warehouse(db_path) as con:
            ingest_files(con, files[len(summary.files) :], summary, provider, on_file, hold_seconds)
    return summary


def ingest_files(
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    summary: IngestSummary,
    provider: Provider | None = None,
    on_file: Callable[[FileResult], None] | None = None,
    hold_seconds: float = HOLD_SECONDS,
) -> None:
    """Ingest files in order on an open connection, each in its own transaction, into
    `summary`, until they are done or `hold_seconds` have passed (the caller then lets other
    processes have the warehouse before going on with the rest)."""
    install_macros(con)
    opened = time.monotonic()
    for path in files:
        result = ingest_file(con, path, provider)
        summary.add(result)
        if on_file:
            on_file(result)
        if time.monotonic() - opened >= hold_seconds:
            return
