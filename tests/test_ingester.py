"""The live path (DESIGN §9-§10): the sandbox reports each event only once its time has come,
and the continuous ingester brings what lands into the figures within seconds, losing and
doubling nothing when it is killed at any moment."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.dispatch import run_dispatch
from flows.ingester import LandingWatcher, ingest_new_files
from flows.senders.sandbox import pending_folder, release_due
from flows.settings import Settings
from tests.events import ses
from tests.warehouse_builders import add_people, create_sendout
from warehouse.db import connect, open_warehouse
from warehouse.ingest import ingest_paths


def event_time(record: dict) -> datetime:
    """When the sandbox says an SES or Twilio event happened."""
    if "sendout_received_at" in record:
        stamp = record["sendout_received_at"]
    else:
        details = [v for k, v in record.items() if k != "mail" and isinstance(v, dict)]
        stamp = next((d["timestamp"] for d in details if "timestamp" in d), None)
        stamp = stamp or record["mail"]["timestamp"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def records(folder: Path, pattern: str) -> list[dict]:
    return [json.loads(line) for path in folder.rglob(pattern) for line in path.open()]


def test_the_sandbox_never_reports_an_event_before_it_happens(db_path, tmp_path):
    add_people(db_path, 300)
    sendout_id = create_sendout(db_path, channels=("email", "sms"))
    config = Settings(landing=tmp_path / "landing", sandbox_seed=5)
    run_dispatch(db_path, sendout_id, config)
    sent = datetime.now(UTC)

    landed = records(config.landing, "*.ndjson")
    waiting = records(pending_folder(config.landing), "*.pending")
    assert landed and waiting  # deliveries come in seconds, opens and replies over hours
    assert max(event_time(r) for r in landed) <= sent
    assert min(event_time(r) for r in waiting) > sent - timedelta(seconds=1)

    in_ten_minutes = sent + timedelta(minutes=10)
    release_due(config.landing, now=in_ten_minutes)
    after_ten_minutes = records(config.landing, "*.ndjson")
    assert max(event_time(r) for r in after_ten_minutes) <= in_ten_minutes
    assert len(after_ten_minutes) > len(landed)

    release_due(config.landing, now=sent + timedelta(days=2))
    assert records(pending_folder(config.landing), "*.pending") == []
    assert len(records(config.landing, "*.ndjson")) == len(landed) + len(waiting)


def start_ingester(db: Path, landing: Path) -> subprocess.Popen:
    env = {**os.environ, "SENDOUT_LANDING": str(landing)}
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "--db", str(db), "ingester", "--poll", "0.2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def sendout_status(db: Path) -> str | None:
    with connect(db, read_only=True) as con:
        rows = con.sql("SELECT sendout_status FROM sendout_summary").fetchall()
    return rows[0][0] if rows else None


def test_the_ingester_brings_the_sandbox_deliveries_to_the_figures_within_seconds(
    db_path, tmp_path
):
    add_people(db_path, 40)
    sendout_id = create_sendout(db_path)
    config = Settings(landing=tmp_path / "landing", sandbox_seed=5)
    ingester = start_ingester(db_path, config.landing)
    try:
        run_dispatch(db_path, sendout_id, config)
        after_dispatch = sendout_status(db_path)
        deadline = time.monotonic() + 60
        while sendout_status(db_path) != "Delivered" and time.monotonic() < deadline:
            time.sleep(0.5)
        delivered_within = time.monotonic() - (deadline - 60)
    finally:
        stop(ingester)

    assert after_dispatch == "Sent"
    assert sendout_status(db_path) == "Delivered"
    assert delivered_within < 45  # deliveries are due 1-8 s after sending; nothing was run


FILES, EVENTS_PER_FILE, PEOPLE = 12, 3_000, 2_000
KINDS = ("Delivery", "Open", "Click", "Bounce", "Complaint", "Subscription")


@pytest.fixture(scope="module")
def warehouse_and_landing(tmp_path_factory) -> tuple[Path, Path]:
    """A warehouse with one send-out, and a landing folder of its events (with duplicates
    across files and events for messages we never sent)."""
    folder = tmp_path_factory.mktemp("live")
    db = folder / "base.duckdb"
    with open_warehouse(db):
        pass
    add_people(db, PEOPLE)
    create_sendout(db)
    with connect(db, read_only=True) as con:
        ids = [row[0] for row in con.sql("SELECT message_id FROM messages ORDER BY 1").fetchall()]
    rng = random.Random(4)
    landing = folder / "incoming"
    landing.mkdir()
    for f in range(FILES):
        lines = []
        for n in range(EVENTS_PER_FILE):
            person = rng.randrange(PEOPLE + 50)  # the last 50 are nobody we sent to
            message_id = ids[person] if person < PEOPLE else f"msg-unknown-{person}"
            at = f"2026-11-02T09:{n % 60:02d}:{f:02d}.000Z"
            event = ses(rng.choice(KINDS), f"p{person}@example.com", message_id, at=at)
            lines.append(json.dumps(event))
        (landing / f"ses-{f:02d}.ndjson").write_text("\n".join(lines) + "\n")
    return db, landing


def tables(db: Path) -> dict[str, list[tuple]]:
    queries = {
        "events": "SELECT * EXCLUDE (ingested_at, source_file, seq) FROM events",
        "message_status": "SELECT * EXCLUDE (refreshed_at) FROM message_status",
        "sendout_channel_stats": "SELECT * FROM sendout_channel_stats",
        # which event an entry cites depends on the batches events came in: the entries do not
        "unsubscribes": "SELECT channel, address, reason, scope FROM unsubscribes",
    }
    with connect(db, read_only=True) as con:
        return {name: con.sql(f"{sql} ORDER BY ALL").fetchall() for name, sql in queries.items()}


def caught_up(db: Path) -> bool:
    with connect(db, read_only=True) as con:
        files, folded, stored = con.sql(
            """
            SELECT (SELECT count(*) FROM ingested_files),
                   (SELECT max(folded_seq) FROM refresh_state),
                   (SELECT max(seq) FROM events)
            """
        ).fetchall()[0]
    return files == FILES and folded is not None and folded == stored


def test_an_ingester_killed_at_any_moment_loses_and_doubles_nothing(
    warehouse_and_landing, tmp_path
):
    base, incoming = warehouse_and_landing
    clean, crashed = tmp_path / "clean.duckdb", tmp_path / "crashed.duckdb"
    for copy in (clean, crashed):
        copy.write_bytes(base.read_bytes())
    for args in (["ingest", str(incoming)], ["refresh", "--full"]):
        subprocess.run([sys.executable, "-m", "flows.cli", "--db", str(clean), *args], check=True)

    landing = tmp_path / "landing"
    landing.mkdir()
    arriving = sorted(incoming.iterdir())
    rng = random.Random(11)
    for run in range(5):  # files keep landing; each run is killed starting, ingesting or refreshing
        for path in arriving[run * 2 : run * 2 + 2]:
            (landing / path.name).write_bytes(path.read_bytes())
        ingester = start_ingester(crashed, landing)
        time.sleep(rng.uniform(0.5, 2.5))
        os.killpg(ingester.pid, signal.SIGKILL)
        ingester.wait()
    for path in arriving[10:]:
        (landing / path.name).write_bytes(path.read_bytes())
    ingester = start_ingester(crashed, landing)
    try:
        deadline = time.monotonic() + 180
        while not caught_up(crashed) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        stop(ingester)

    assert caught_up(crashed)
    assert tables(crashed) == tables(clean)


def test_every_stored_event_carries_the_hash_its_duplicates_are_found_by(db_path, tmp_path):
    add_people(db_path, 20)
    sendout_id = create_sendout(db_path, channels=("email", "sms"))
    config = Settings(landing=tmp_path / "landing", sandbox_seed=5)
    run_dispatch(db_path, sendout_id, config)  # dispatch's own outcomes
    release_due(config.landing, now=datetime.now(UTC) + timedelta(days=2))
    first = ingest_paths(db_path, [config.landing])  # the sandbox's provider files
    for path in config.landing.rglob("*.ndjson"):  # the same events again, in new files
        path.with_name(f"again-{path.name}").write_bytes(path.read_bytes() + b"\n")
    again = ingest_paths(db_path, [config.landing])

    with connect(db_path, read_only=True) as con:
        stored, hashed = con.sql(
            "SELECT count(*), count(*) FILTER (WHERE event_hash = md5_number_lower(event_id)) "
            "FROM events"
        ).fetchall()[0]
    assert stored == hashed > first.events_new
    assert (again.events_new, again.events_duplicate) == (0, first.events_new)


def test_the_sandbox_dates_its_events_in_utc_whatever_the_machines_time_zone(
    db_path, tmp_path, monkeypatch
):
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # nine hours ahead of UTC
    time.tzset()
    try:
        add_people(db_path, 30)
        sendout_id = create_sendout(db_path)
        config = Settings(landing=tmp_path / "landing", sandbox_seed=5)
        run_dispatch(db_path, sendout_id, config)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()

    landed = records(config.landing, "*.ndjson")
    assert landed
    assert max(event_time(r) for r in landed) <= datetime.now(UTC)


def test_the_ingester_rests_between_looks_when_its_landing_folder_is_given_relative(
    db_path, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    landing = Path("data") / "landing"
    (landing / "ses").mkdir(parents=True)
    (landing / "ses" / "a.ndjson").write_text(json.dumps(ses("Delivery")) + "\n")
    watcher = LandingWatcher(landing)

    first = ingest_new_files(db_path, landing, watcher)
    second = ingest_new_files(db_path, landing, watcher)

    assert (first.files, first.events_new) == (1, 1)
    assert second is None  # nothing new: the loop waits before looking again
