"""A `sendout ingest` killed with SIGKILL mid-run leaves no half file; running it again completes
the job with exactly the rows of a clean run. Uses a real subprocess and a real warehouse file."""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.events import ses
from warehouse import ingest
from warehouse.db import connect, open_warehouse

FILES, EVENTS_PER_FILE = 4, 40_000


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("landing")
    for f in range(FILES):
        lines = []
        for n in range(EVENTS_PER_FILE):
            kind = ("Delivery", "Open", "Click")[n % 3]
            lines.append(json.dumps(ses(kind, f"p{n}@example.com", f"msg-{f}-{n}")))
        # every file repeats a few events of the one before: duplicates across files
        if f:
            lines[:10] = [
                json.dumps(ses("Delivery", f"p{n}@example.com", f"msg-{f - 1}-{n * 3}"))
                for n in range(10)
            ]
        (folder / f"ses-{f}.ndjson").write_text("\n".join(lines) + "\n")
    return folder


def run_ingest(db: Path, landing: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "--db", str(db), "ingest", "--json", str(landing)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def snapshot(db: Path) -> dict[str, list[tuple]]:
    with connect(db, read_only=True) as con:
        return {
            "events": con.sql(
                "SELECT * EXCLUDE (ingested_at, source_file) FROM events ORDER BY ALL"
            ).fetchall(),
            "files": con.sql(
                "SELECT file_hash, records, events_new, quarantined FROM ingested_files "
                "ORDER BY file_hash"
            ).fetchall(),
            "quarantine": con.sql("SELECT count(*) FROM quarantine").fetchall(),
        }


def test_a_killed_ingest_rerun_gives_the_rows_of_a_clean_run(tmp_path: Path, landing: Path):
    clean_db, crashed_db = tmp_path / "clean.duckdb", tmp_path / "crashed.duckdb"
    assert run_ingest(clean_db, landing).wait(timeout=300) == 0
    with open_warehouse(crashed_db):
        pass
    empty_size = crashed_db.stat().st_size

    process = run_ingest(crashed_db, landing)
    deadline = time.monotonic() + 120
    while crashed_db.stat().st_size == empty_size and time.monotonic() < deadline:
        time.sleep(0.005)  # events are being written into the file: the run is under way
    assert process.poll() is None, "the ingest finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()

    after_crash = snapshot(crashed_db)
    per_file = {row[0]: row[2] for row in after_crash["files"]}
    assert len(per_file) < FILES  # the kill came before the end
    assert len(after_crash["events"]) == sum(per_file.values())  # no half file

    assert run_ingest(crashed_db, landing).wait(timeout=300) == 0
    assert snapshot(crashed_db) == snapshot(clean_db)


def big_file(folder: Path, events: int) -> Path:
    """A file of `events` SES events (one in ten not an event: quarantined)."""
    folder.mkdir(exist_ok=True)
    path = folder / "ses-big.ndjson"
    lines = [
        json.dumps(ses("Delivery", f"p{n}@example.com", f"msg-{n}")) if n % 10 != 5 else "{broken"
        for n in range(events)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


READER = """
import sys, time
from pathlib import Path
from warehouse.db import connect
db, done = Path(sys.argv[1]), Path(sys.argv[2])
while not done.exists():
    if db.exists():
        with connect(db, read_only=True) as con:
            tables = [row[0] for row in con.sql("SHOW TABLES").fetchall()]
            if "events" in tables:
                print(con.sql("SELECT count(*) FROM events").fetchall()[0][0], flush=True)
    time.sleep(0.02)
"""


def test_a_big_file_is_stored_in_parts_and_a_reader_gets_in_between(tmp_path: Path, monkeypatch):
    """No write holds the warehouse for long: a file of many chunks is committed part by part
    (here a part per chunk: hold_seconds=0), and a reader polling like the dashboard sees the
    file half stored."""
    monkeypatch.setattr(ingest, "READ_CHUNK_BYTES", 64 * 1024)
    path = big_file(tmp_path / "landing", 3_000)  # about 10 chunks
    db, done = tmp_path / "w.duckdb", tmp_path / "done"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(db), str(done)], stdout=subprocess.PIPE, text=True
    )
    try:
        summary = ingest.ingest_paths(db, [path], hold_seconds=0)
    finally:
        done.touch()
    seen = {int(line) for line in reader.communicate(timeout=60)[0].split()}

    assert reader.returncode == 0
    assert any(0 < count < 2_700 for count in seen), seen
    assert (summary.events_new, summary.quarantined) == (2_700, 300)
    with connect(db, read_only=True) as con:
        assert con.sql("SELECT count(*) FROM events").fetchall() == [(2_700,)]
        assert con.sql("SELECT count(*) FROM ingested_files").fetchall() == [(1,)]


def test_a_crash_between_two_parts_of_a_file_loses_nothing_and_keeps_nothing_twice(
    tmp_path: Path, monkeypatch
):
    monkeypatch.setattr(ingest, "READ_CHUNK_BYTES", 64 * 1024)
    path = big_file(tmp_path / "landing", 3_000)
    db = tmp_path / "w.duckdb"
    parts = []
    finish = ingest.finish_part

    def crash_in_the_third_part(con, *args):
        parts.append(1)
        if len(parts) == 3:
            raise KeyboardInterrupt  # the process stops; the open part is rolled back
        finish(con, *args)

    monkeypatch.setattr(ingest, "finish_part", crash_in_the_third_part)
    with pytest.raises(KeyboardInterrupt) as crash:  # kept, as a log record would keep it
        ingest.ingest_paths(db, [path], hold_seconds=0)
    # the next batch's parse (on its own thread) is over too: none runs into the next ingest's
    assert crash.traceback and not [
        thread for thread in threading.enumerate() if thread.name.startswith("ingest-parse")
    ]
    with connect(db, read_only=True) as con:
        stored = con.sql("SELECT count(*) FROM events").fetchall()[0][0]
    assert 0 < stored < 2_700  # two parts were committed

    monkeypatch.setattr(ingest, "finish_part", finish)
    again = ingest.ingest_paths(db, [path], hold_seconds=0)

    assert (again.events_new, again.events_duplicate) == (2_700 - stored, stored)
    with connect(db, read_only=True) as con:
        assert con.sql("SELECT count(DISTINCT event_id), count(*) FROM events").fetchall() == [
            (2_700, 2_700)
        ]
        assert con.sql("SELECT count(*) FROM quarantine").fetchall() == [(300,)]
        assert con.sql("SELECT count(*) FROM ingested_files").fetchall() == [(1,)]
