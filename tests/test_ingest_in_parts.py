"""A file read in many chunks (the next one parsed ahead on a thread, each stored as a part) gives
the warehouse and the summary of one clean read: every event once, every bad line kept once."""

import contextlib
import gzip
import json
import threading
from pathlib import Path

import pytest

from tests.events import sendgrid, ses
from warehouse import ingest, records
from warehouse.db import connect

CHUNK = 8 * 1024  # a file of a few hundred events is read in 20 chunks or more


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(ingest, "READ_CHUNK_BYTES", CHUNK)
    monkeypatch.setattr(records, "ARRAY_BATCH_RECORDS", 50)  # a JSON array in batches too


def event(tag: str, n: int) -> str:
    kind = ("Delivery", "Open", "Click")[n % 3]
    return json.dumps(ses(kind, f"{tag}-{n}@example.com", f"{tag}-{n}"))


def write_lines(path: Path, lines: list) -> Path:
    data = b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def rows(db: Path, sql: str) -> list[tuple]:
    with connect(db, read_only=True) as con:
        return con.sql(sql).fetchall()


def parse_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ingest-parse")]


LINES = 640
BAD = {  # line number: a record that cannot become an event, each in another chunk
    3: '{"eventType": "Delivery", "mail": {"messageId":',
    300: "{}",
    340: '["eventType", "Delivery"]',
    420: b'{"eventType": "Delivery", "mail": "\xff\xfe not UTF-8"}',
    500: '{"eventType": "' + "X" * (3 * CHUNK),  # longer than a chunk, and cut short
}
BLANK, CRLF, LONG_GOOD = 250, 380, 560
GOOD = [n for n in range(1, LINES + 1) if n not in BAD and n != BLANK]


def mixed_file(path: Path) -> Path:
    """SES events with bad lines, a blank line, a `\\r\\n` line and a good line of 3 chunks."""
    long_good = json.dumps({**ses("Delivery", "long@example.com", "long"), "x": "x" * 3 * CHUNK})
    lines = []
    for n in range(1, LINES + 1):
        if n in BAD:
            lines.append(BAD[n])
        else:
            good = long_good if n == LONG_GOOD else event("m", n)
            lines.append({BLANK: "", CRLF: good + "\r"}.get(n, good))
    return write_lines(path, lines)


@pytest.mark.parametrize("hold", [{"hold_seconds": 0}, {}], ids=["part-per-chunk", "default"])
def test_a_file_of_many_chunks_stores_every_good_line_once_and_keeps_every_bad_one(
    hold, db_path, tmp_path
):
    """A user counts on each event stored once and each bad line quarantined once, by its line."""
    path = mixed_file(tmp_path / "ses.ndjson")

    summary = ingest.ingest_paths(db_path, [path], **hold)

    assert rows(db_path, "SELECT source_line FROM events ORDER BY 1") == [(n,) for n in GOOD]
    assert rows(db_path, "SELECT count(DISTINCT (provider, event_id)) FROM events") == [
        (len(GOOD),)
    ]
    kept = rows(db_path, "SELECT source_line, raw, reason, source_file FROM quarantine ORDER BY 1")
    assert [line for line, *_ in kept] == sorted(BAD)
    raw = {line: text for line, text, *_ in kept}
    assert [raw[n] for n in (3, 300, 340, 500)] == [BAD[n] for n in (3, 300, 340, 500)]
    assert all(reason and file == str(path.resolve()) for *_, reason, file in kept)
    assert (summary.files_read, summary.records, summary.events_duplicate) == (1, LINES - 1, 0)
    assert (summary.events_new, summary.quarantined) == (len(GOOD), len(BAD))
    assert not parse_threads()


def test_overlapping_files_store_each_event_once_and_count_the_rest_as_duplicates(
    db_path, tmp_path
):
    """Re-delivered events (in another file, or twice in one) are duplicates, never stored twice."""
    first = write_lines(tmp_path / "1.ndjson", [event("e", n) for n in range(400)])
    later = [event("e", n) for n in range(300, 700)] + [event("e", 650)]
    second = write_lines(tmp_path / "2.ndjson", later)

    summary = ingest.ingest_paths(db_path, [first, second], hold_seconds=0)
    again = ingest.ingest_paths(
        db_path, [write_lines(tmp_path / "3.ndjson", later[::-1])], hold_seconds=0
    )

    assert [(f.events_new, f.events_duplicate) for f in summary.files] == [(400, 0), (300, 101)]
    assert (summary.events_new, summary.events_duplicate) == (700, 101)
    assert (again.files_read, again.events_new, again.events_duplicate) == (1, 0, 401)
    assert rows(db_path, "SELECT count(*), count(DISTINCT event_id) FROM events") == [(700, 700)]
    assert rows(db_path, "SELECT source_file, count(*) FROM events GROUP BY 1 ORDER BY 1") == [
        (str(first.resolve()), 400),
        (str(second.resolve()), 300),
    ]


def test_a_folder_of_three_shapes_gives_each_file_its_own_correct_result(db_path, tmp_path):
    """Each file of a folder (NDJSON, a JSON array, gzip) is reported and stored as it holds."""
    folder = tmp_path / "landing"
    folder.mkdir()
    ndjson = [event("s", n) for n in range(300)]
    ndjson[6] = "{broken"
    write_lines(folder / "a-ses.ndjson", ndjson)
    array = [sendgrid("open", f"g-{n}@example.com", f"sg-{n}") for n in range(300)]
    (folder / "b-sendgrid.json").write_text(json.dumps([*array, 5]))
    gzipped = [event("z", n) for n in range(300)]
    gzipped[149] = '{"eventType": "Delivery",'
    write_lines(folder / "c-ses.ndjson.gz", gzipped)

    summary = ingest.ingest_paths(db_path, [folder], hold_seconds=0)

    results = {
        Path(f.path).name: (f.provider, f.records, f.events_new, f.events_duplicate, f.quarantined)
        for f in summary.files
    }
    assert results == {
        "a-ses.ndjson": ("ses", 300, 299, 0, 1),
        "b-sendgrid.json": ("sendgrid", 301, 300, 0, 1),
        "c-ses.ndjson.gz": ("ses", 300, 299, 0, 1),
    }
    assert (summary.files_read, summary.events_new, summary.quarantined) == (3, 898, 3)
    name = "regexp_extract(source_file, '[^/]+$')"
    assert rows(db_path, f"SELECT {name}, count(*) FROM events GROUP BY 1 ORDER BY 1") == [
        ("a-ses.ndjson", 299),
        ("b-sendgrid.json", 300),
        ("c-ses.ndjson.gz", 299),
    ]
    assert rows(db_path, f"SELECT {name}, source_line FROM quarantine ORDER BY 1") == [
        ("a-ses.ndjson", 7),
        ("b-sendgrid.json", 301),
        ("c-ses.ndjson.gz", 150),
    ]


@pytest.mark.parametrize(
    "first",
    ["{broken", '["eventType", "Delivery"]', b'{"eventType": "\xff"}'],
    ids=["malformed", "array", "not-utf8"],
)
def test_a_bad_first_line_of_a_json_lines_file_is_quarantined_alone(first, db_path, tmp_path):
    """A JSON-lines file whose first line is bad still has its other lines' events stored."""
    path = write_lines(tmp_path / "ses.ndjson", [first] + [event("f", n) for n in range(300)])

    summary = ingest.ingest_paths(db_path, [path], hold_seconds=0)

    assert (summary.events_new, summary.quarantined) == (300, 1)
    assert rows(db_path, "SELECT source_line FROM quarantine") == [(1,)]
    assert rows(db_path, "SELECT count(*) FROM events") == [(300,)]


def snapshot(db: Path) -> dict[str, list[tuple]]:
    return {
        "events": rows(db, "SELECT * EXCLUDE (ingested_at) FROM events ORDER BY ALL"),
        "quarantine": rows(
            db, "SELECT source_file, source_line, reason, raw FROM quarantine ORDER BY ALL"
        ),
        "files": rows(db, "SELECT file_hash, path, records FROM ingested_files ORDER BY ALL"),
    }


@pytest.mark.parametrize("failing", ["store_batch", "finish_part"])
def test_a_failure_in_the_second_part_then_a_rerun_gives_the_warehouse_of_a_clean_run(
    failing, tmp_path, monkeypatch
):
    """After a failed store, running ingest again leaves exactly what one clean run leaves."""
    path = mixed_file(tmp_path / "ses.ndjson")
    clean, failed = tmp_path / "clean.duckdb", tmp_path / "failed.duckdb"
    ingest.ingest_paths(clean, [path], hold_seconds=0)
    real, calls = getattr(ingest, failing), []

    def fail_the_second_time(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, failing, fail_the_second_time)
    with contextlib.suppress(RuntimeError):  # the run may stop, or go on and name the file
        ingest.ingest_paths(failed, [path], hold_seconds=0)
    assert len(calls) >= 2, f"ingest never called {failing} a second time"
    assert not parse_threads()
    [(stored,)] = rows(failed, "SELECT count(*) FROM events")
    assert 0 < stored < len(GOOD)  # the first part was committed, the second was not
    monkeypatch.setattr(ingest, failing, real)

    again = ingest.ingest_paths(failed, [path], hold_seconds=0)

    assert snapshot(failed) == snapshot(clean)
    assert (again.events_new, again.events_duplicate) == (len(GOOD) - stored, stored)
    assert not parse_threads()


def test_many_runs_in_one_process_keep_each_files_rows_to_its_own_file(tmp_path):
    """Run after run in one process (one shared parse DuckDB), no row lands in another file."""
    dbs = [tmp_path / "one.duckdb", tmp_path / "two.duckdb"]
    expected: dict[Path, dict[str, int]] = {db: {} for db in dbs}
    for run in range(6):
        tag, count = f"run{run}", 150 + run
        if run % 2:
            batch = [sendgrid("open", f"{tag}-{n}@example.com", f"{tag}-{n}") for n in range(count)]
            path = tmp_path / f"{tag}.json"
            path.write_text(json.dumps([*batch, f"{tag}-not-an-event"]))
        else:
            path = write_lines(tmp_path / f"{tag}.ndjson", [event(tag, n) for n in range(count)])
            path.write_text(path.read_text() + f"{{{tag} broken\n")
        db = dbs[(run // 2) % 2]

        summary = ingest.ingest_paths(db, [path], hold_seconds=0)

        assert (summary.events_new, summary.events_duplicate, summary.quarantined) == (count, 0, 1)
        expected[db][str(path.resolve())] = count
    for db in dbs:
        assert dict(rows(db, "SELECT source_file, count(*) FROM events GROUP BY 1")) == expected[db]
        for source_file, recipient in rows(db, "SELECT source_file, recipient FROM events"):
            assert recipient.startswith(Path(source_file).name.split(".")[0] + "-")
        for source_file, raw in rows(db, "SELECT source_file, raw FROM quarantine"):
            assert Path(source_file).name.split(".")[0] in raw
        assert len(rows(db, "SELECT * FROM quarantine")) == len(expected[db])
    assert not parse_threads()
