"""A `sendout ingest` killed with SIGKILL mid-run leaves no half file; running it again completes
the job with exactly the rows of a clean run. Uses a real subprocess and a real warehouse file."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.events import ses
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
