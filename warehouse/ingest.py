"""Ingest provider event files into the warehouse, idempotently and one transaction per file.

A file whose bytes were already ingested is skipped. Inside a file, events are deduplicated on
(provider, event_id) against everything stored, so overlapping or re-delivered files add nothing.
A record that cannot become an event goes to `quarantine` with its file, line, reason and text.
A file is one transaction; a big one is stored in parts of under a second each, the warehouse
given up to other processes in between (db.WriterHold), each part whole (its events linked and
checked) and the file recorded as read with its last part. A crash rolls back the part it was
in; running again reads the file again, its stored events counted as duplicates and its
quarantined lines not kept twice.

An event time that cannot be (not finite, before 2000, more than a day ahead) quarantines its
record (macros.sql: event_time_problem); an event dated before its message was handed to the
provider is kept with the time of receipt and flagged (sql/distrust_early_events.sql). A file
that cannot be read (a named pipe, no permission, gone) is named in the summary with why, and
the run goes on (warehouse.folders).

Small mail files (a Maildir's messages) are ingested in bundles (mail_files.bundles), one
transaction and one parse per bundle.
"""

import collections
import contextlib
import functools
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.db import HOLD_SECONDS, WriterHold, registered
from warehouse.folders import find_files, unreadable_entries
from warehouse.ingest_results import FileResult, IngestSummary, record_files
from warehouse.ingest_store import finish_part, last_seq, store_batch
from warehouse.mail_files import bundles
from warehouse.parsers import (
    Parser,
    detect_provider,
    install_macros,
    load_parser,
    parse_records,
    parsing_connection,
)
from warehouse.records import (
    CHUNK_BYTES,
    DAMAGE_LINE,
    FileFacts,
    array_reader,
    describe,
    read_mail_bundle,
    read_records,
)
from warehouse.sql import read_sql
from warehouse.vocabulary import Provider

log = logging.getLogger(__name__)
DETECT_SAMPLE = 50  # records looked at to tell which provider wrote a file
LINE_SPAN = 1 << 40  # a bundle numbers the records of its i-th file from i * LINE_SPAN
READ_CHUNK_BYTES = CHUNK_BYTES  # a file is read, parsed and stored this much at a time
HASH_ASIDE_BYTES = 64 << 20  # bigger files are hashed with the warehouse given up (0.5 s a GB)


def _parse(
    con: duckdb.DuckDBPyConnection,
    parser: Parser,
    batch: pa.Table,
    bundle: list[FileFacts],
    received_at: datetime,
) -> pa.Table:
    """Parse a batch of records on `con` (one with the macros), each row with the file it came
    from and its line in that file (a scalar look-up, not a join: rows keep their order)."""
    params = {"span": LINE_SPAN, **_bundle_params(bundle)}
    if parser.needs_receipt_time:
        params["received_at"] = received_at
    return parse_records(con, parser, batch, params, _located)


def _located(query: str) -> str:
    """A parser's query with each row's file and line in that file (a bundle numbers its i-th
    file's lines from i * LINE_SPAN)."""
    return f"""
        SELECT parsed.* REPLACE (parsed.source_line % $span AS source_line),
            $files[parsed.source_line // $span + 1] AS source_file,
            $hashes[parsed.source_line // $span + 1] AS file_hash
        FROM ({query}) parsed
    """


def _bundle_params(bundle: list[FileFacts]) -> dict[str, list[str]]:
    return {"files": [str(f.path) for f in bundle], "hashes": [f.file_hash for f in bundle]}


def _quarantine_unrecognised(
    con: duckdb.DuckDBPyConnection,
    batches: Iterable[pa.Table],
    bundle: list[FileFacts],
    at: datetime,
) -> dict[str, int]:
    """Keep every record of files no parser recognised; return how many per file."""
    totals: dict[str, int] = {}
    for batch in batches:
        with registered(con, "records", batch):
            params = {"span": LINE_SPAN, **_bundle_params(bundle)}
            con.execute(read_sql("quarantine_unrecognised.sql"), {**params, "at": at})
            counted = con.execute(
                "SELECT $files[source_line // $span + 1], count(*) FROM records GROUP BY ALL",
                {"span": LINE_SPAN, "files": params["files"]},
            ).fetchall()
        for path, count in counted:
            totals[path] = totals.get(path, 0) + count
    return totals


def _ingest_batches(
    hold: WriterHold,
    parser: Parser,
    batches: Iterable[pa.Table],
    bundle: list[FileFacts],
    received_at: datetime,
    ingested_at: datetime,
    results: dict[str, FileResult],
) -> None:
    """Parse, deduplicate and store every batch of a bundle; count into each file's result. A
    big file is stored in parts: when the hold is due, the part is finished and committed."""

    def parse(con: duckdb.DuckDBPyConnection, batch: pa.Table) -> pa.Table:
        return _parse(con, parser, batch, bundle, received_at)

    if parser.reads_warehouse:  # on the connection of the moment, when the batch's turn comes
        parsed_batches = (lambda b=batch: parse(hold.prepared(), b) for batch in batches)
    else:
        parsed_batches = _parsed_ahead(batches, functools.partial(parse, parsing_connection()))
    part_seq = last_seq(hold.con)
    # closed however the loop ends: a parse still running on the shared parsing connection
    # is waited for here, not left to run into the next file's
    with contextlib.closing(parsed_batches):
        for index, parsed in enumerate(parsed_batches):
            if index and hold.due():  # more to store: end this part (one batch is whole)
                finish_part(hold.con, part_seq, received_at, results)
                hold.next_part()
                part_seq = last_seq(hold.con)
            stored = store_batch(hold.con, parser, parsed(), ingested_at)
            for path, (new, duplicate, bad) in stored.items():
                results[path].events_new += new
                results[path].events_duplicate += duplicate
                results[path].quarantined += bad
    finish_part(hold.con, part_seq, received_at, results)


def _parsed_ahead(
    batches: Iterable[pa.Table], parse: Callable[[pa.Table], pa.Table]
) -> Iterator[Callable[[], pa.Table]]:
    """Each batch read and parsed on a thread of its own while the one before is stored (and
    while other processes have the warehouse between two parts): reading, parsing and storing
    run in Arrow and DuckDB, which let go of Python's lock. Yields a getter per batch."""
    batches = iter(batches)

    def read_and_parse() -> pa.Table | None:
        batch = next(batches, None)
        return None if batch is None else parse(batch)

    # closing the generator (the caller stops early) waits for the batch in hand to be parsed
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-parse") as worker:
        coming = worker.submit(read_and_parse)
        while (parsed := coming.result()) is not None:
            coming = worker.submit(read_and_parse)
            yield lambda parsed=parsed: parsed


def ingest_bundle(
    hold: WriterHold, paths: list[Path], provider: Provider | None = None
) -> list[FileResult]:
    """Ingest files of one kind (one file, or small mail files) in one transaction (a big
    file's in parts), parsed together; `provider=None` detects it from the first records. A
    result per file, in order."""
    paths = [path.resolve() for path in paths]
    hashed = lambda: [describe(path) for path in paths]  # noqa: E731
    big = hold.can_share() and sum(path.stat().st_size for path in paths) > HASH_ASIDE_BYTES
    described = hold.share(meanwhile=hashed) if big else hashed()
    results = {str(f.path): FileResult(path=str(f.path)) for f in described}
    with hold.transaction():
        fresh = _not_yet_ingested(hold.con, described)
        taken = {id(facts) for facts in fresh}
        for facts in described:
            results[str(facts.path)].skipped = id(facts) not in taken
        if fresh:
            _ingest_fresh(hold, fresh, provider, results)
    return [results[str(f.path)] for f in described]


def _not_yet_ingested(
    con: duckdb.DuckDBPyConnection, described: list[FileFacts]
) -> list[FileFacts]:
    hashes = [f.file_hash for f in described]
    ingested = {
        row[0]
        for row in con.execute(
            """
            SELECT file_hash FROM ingested_files
            WHERE file_hash IN (SELECT unnest($hashes)) AND provider IS NOT NULL
            """,
            {"hashes": hashes},
        ).fetchall()
    }
    fresh, seen = [], set()
    for facts in described:
        if facts.file_hash not in ingested and facts.file_hash not in seen:
            fresh.append(facts)
            seen.add(facts.file_hash)
    return fresh


def _ingest_fresh(
    hold: WriterHold,
    fresh: list[FileFacts],
    provider: Provider | None,
    results: dict[str, FileResult],
) -> None:
    ingested_at = datetime.now(UTC)
    batches = _bundle_records(fresh, results)
    first = next(batches, None)
    if first is not None:
        batches = itertools.chain([first], batches)
        sample = first.column("record").slice(0, DETECT_SAMPLE).to_pylist()
        provider = provider or detect_provider(sample)
        if provider is None:
            quarantined = _quarantine_unrecognised(hold.con, batches, fresh, ingested_at)
            for path, count in quarantined.items():
                results[path].quarantined = count
        else:
            received_at = _received_at(fresh, ingested_at)
            parser = load_parser(hold.con, provider)
            _ingest_batches(hold, parser, batches, fresh, received_at, ingested_at, results)
    for facts in fresh:
        result = results[str(facts.path)]
        result.provider = str(provider) if provider else None
        if provider is None:
            result.records = result.quarantined
    record_files(hold.con, fresh, results, ingested_at)


def _received_at(fresh: list[FileFacts], ingested_at: datetime) -> datetime:
    """When the files arrived: the newest modification time, but never after now (a file
    touched by a clock that runs ahead is still received by now)."""
    newest = max(datetime.fromtimestamp(f.path.stat().st_mtime, UTC) for f in fresh)
    return min(newest, ingested_at)


def _bundle_records(fresh: list[FileFacts], results: dict[str, FileResult]) -> Iterator[pa.Table]:
    """One file's records, or a bundle's (the i-th file's lines numbered from i * LINE_SPAN);
    each file's result counts its records."""
    if len(fresh) == 1:
        result = results[str(fresh[0].path)]
        for batch in read_records(fresh[0].path, READ_CHUNK_BYTES, array_reader()):
            result.records += batch.num_rows  # no per-row count on the bulk path
            if batch.num_rows and batch.column("source_line")[0].as_py() == DAMAGE_LINE:
                result.damage = batch.column("problem")[0].as_py()
            yield batch
        return
    for batch in read_mail_bundle([f.path for f in fresh], LINE_SPAN):
        files = pc.divide(batch.column("source_line"), LINE_SPAN).to_pylist()
        for index, count in collections.Counter(files).items():
            results[str(fresh[index].path)].records += count
        yield batch


def ingest_paths(
    db_path: Path,
    paths: Iterable[Path],
    provider: Provider | None = None,
    on_file: Callable[[FileResult], None] | None = None,
    hold_seconds: float = HOLD_SECONDS,
) -> IngestSummary:
    """Ingest every file under `paths`, one transaction per file (a big file's in parts),
    giving the warehouse up to other processes (the dashboard, another writer) after every
    `hold_seconds` of work."""
    paths = list(paths)
    summary = IngestSummary(unreadable=unreadable_entries(paths))
    files = find_files(paths)
    with WriterHold(db_path, hold_seconds, install_macros) as hold:
        while len(summary.files) < len(files):
            ingest_files(hold, files[len(summary.files) :], summary, provider, on_file)
            if len(summary.files) < len(files):
                hold.share()
    return summary


def ingest_files(
    hold: WriterHold,
    files: list[Path],
    summary: IngestSummary,
    provider: Provider | None = None,
    on_file: Callable[[FileResult], None] | None = None,
) -> None:
    """Ingest files in order, each in its own transaction, into `summary`, until they are done
    or the hold is due (the caller then lets other processes have the warehouse, or refreshes,
    before going on with the rest). Parsers that read the warehouse parse on the hold's
    connection, readied by its `prepare` (`install_macros`)."""
    for group in bundles(files):
        for result in _ingest_group(hold, group, provider):
            summary.add(result)
            if on_file:
                on_file(result)
        if hold.due():
            return


def _ingest_group(
    hold: WriterHold, group: list[Path], provider: Provider | None
) -> list[FileResult]:
    """A bundle in one go; should it fail, its files one by one, so that one bad file stops
    only itself and the error names it."""
    if len(group) == 1:
        return _ingest_file(hold, group[0], provider)
    try:
        return ingest_bundle(hold, group, provider)
    except Exception:  # rolled back: nothing of the bundle is stored
        log.warning("a bundle of %d mail files failed; ingesting them one by one", len(group))
        return [result for path in group for result in _ingest_file(hold, path, provider)]


def _ingest_file(hold: WriterHold, path: Path, provider: Provider | None) -> list[FileResult]:
    """One file; if it cannot be read (no permission, gone, a read error), its result says why
    and the part being stored is rolled back (a big file's earlier parts stay: reading it again
    completes it), and the run goes on."""
    try:
        return ingest_bundle(hold, [path], provider)
    except OSError as error:
        reason = f"cannot be read: {error.strerror or error}"
        log.warning("%s %s", path, reason)
        return [FileResult(path=str(path.resolve()), unreadable=reason)]
