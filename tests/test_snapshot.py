"""Analysts read a copy of the warehouse, never the live file (DESIGN §9, issue 16 part 3), with
real processes and real files: an analyst holding the copy open blocks neither dispatch, ingest,
refresh nor the continuous ingester; each of them leaves the copy showing what it did; a
publish killed at any point leaves the previous copy whole."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.warehouse_builders import add_people, create_sendout
from warehouse.db import connect, open_warehouse
from warehouse.settings import WarehouseSettings
from warehouse.snapshot import (
    SnapshotMissingError,
    SnapshotSchedule,
    is_stale,
    publish,
    query,
    snapshot_path,
)

FIGURES = "SELECT * FROM sendout_channel_stats ORDER BY ALL"
# an analyst in a process of their own: opens the copy read-only, says what it sees, keeps the
# connection open until told to look again on the same connection, then leaves
ANALYST = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    look = "SELECT count(*) FROM messages WHERE outcome IS NOT NULL"
    print(con.sql(look).fetchall()[0][0], flush=True)
    sys.stdin.readline()
    print(con.sql(look).fetchall()[0][0], flush=True)
    """
)


def sendout(db: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the `sendout` command in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", "--db", str(db), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def figures(path: Path) -> list[tuple]:
    with connect(path, read_only=True) as con:
        return con.sql(FIGURES).fetchall()


def messages(path: Path) -> int:
    with connect(path, read_only=True) as con:
        return con.sql("SELECT count(*) FROM messages").fetchall()[0][0]


def events(path: Path) -> int:
    with connect(path, read_only=True) as con:
        return con.sql("SELECT count(*) FROM events").fetchall()[0][0]


@pytest.fixture
def analyst_on(tmp_path):
    """Start an analyst holding `path` open; yields a function that starts one."""
    started = []

    def start(path: Path) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", ANALYST, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        process.first_look = int(process.stdout.readline())  # connected: the file is held
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def look_again(analyst: subprocess.Popen) -> int:
    """What the analyst sees on the connection they kept open all along."""
    out, _ = analyst.communicate("again\n", timeout=30)
    assert analyst.returncode == 0
    return int(out)


def test_sendout_snapshot_publishes_a_copy_next_to_the_warehouse_and_prints_its_path(db_path):
    add_people(db_path, 5)
    create_sendout(db_path)

    as_json = sendout(db_path, "snapshot", "--json")
    plain = sendout(db_path, "snapshot")

    assert as_json.returncode == 0, as_json.stderr
    path = Path(json.loads(as_json.stdout)["path"])
    assert path == db_path.with_name("warehouse.snapshot.duckdb")
    assert plain.stdout == f"{path}\n"
    assert figures(path) == figures(db_path) and messages(path) == 5
    assert path.stat().st_mode & 0o222 == 0  # a copy, not for writing


def test_an_analyst_on_the_snapshot_blocks_neither_dispatch_nor_ingest_nor_refresh(
    db_path, tmp_path, analyst_on
):
    add_people(db_path, 30)
    sendout_id = create_sendout(db_path, channels=("email", "sms"))
    env = {**os.environ, "SENDOUT_LANDING": str(tmp_path / "landing")}
    path = Path(json.loads(sendout(db_path, "snapshot", "--json").stdout)["path"])
    analyst = analyst_on(path)

    runs = {
        "dispatch": sendout(db_path, "dispatch", sendout_id, env=env),
        "ingest": sendout(db_path, "ingest", str(tmp_path / "landing"), env=env),
        "refresh": sendout(db_path, "refresh", env=env),
    }

    assert {name: run.returncode for name, run in runs.items()} == dict.fromkeys(runs, 0), {
        name: run.stderr[-500:] for name, run in runs.items()
    }
    with connect(path, read_only=True) as con:
        [(planned, done)] = con.sql(
            "SELECT sum(planned)::INT, sum(done)::INT FROM sendout_summary"
        ).fetchall()
    assert (planned, done) == (60, 60)  # the copy shows the dispatch that ran under it
    assert figures(path) == figures(db_path)
    assert look_again(analyst) == analyst.first_look == 0  # their old copy never moved


def test_the_ingest_command_publishes_what_it_took_in(db_path, tmp_path, analyst_on):
    add_people(db_path, 10)
    sendout_id = create_sendout(db_path)
    env = {**os.environ, "SENDOUT_LANDING": str(tmp_path / "landing")}
    assert sendout(db_path, "dispatch", sendout_id, env=env).returncode == 0
    analyst = analyst_on(Path(json.loads(sendout(db_path, "snapshot", "--json").stdout)["path"]))
    before = events(snapshot_path(db_path))

    ingested = sendout(db_path, "ingest", str(tmp_path / "landing"), "--json", env=env)

    assert ingested.returncode == 0, ingested.stderr
    assert json.loads(ingested.stdout)["events_new"] > 0
    assert events(snapshot_path(db_path)) == events(db_path) > before
    assert look_again(analyst) == 10


def test_the_continuous_ingester_keeps_the_snapshot_current_under_an_analyst(
    db_path, tmp_path, analyst_on
):
    add_people(db_path, 20)
    sendout_id = create_sendout(db_path)
    landing = tmp_path / "landing"
    env = {**os.environ, "SENDOUT_LANDING": str(landing), "SENDOUT_SNAPSHOT_SECONDS": "1"}
    ingester = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "--db", str(db_path), "ingester", "--poll", "0.2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        path = snapshot_path(db_path)
        wait_until(path.exists, "the ingester publishes a snapshot when it starts")
        analyst = analyst_on(path)

        dispatched = sendout(db_path, "dispatch", sendout_id, env=env)
        assert dispatched.returncode == 0, dispatched.stderr
        wait_until(
            lambda: delivered(path) > 0, "the sandbox's deliveries reach the snapshot in seconds"
        )
    finally:
        ingester.send_signal(signal.SIGTERM)
        ingester.wait(timeout=30)
    assert ingester.returncode == 0, ingester.stderr.read()[-2000:]
    assert look_again(analyst) == 0


def delivered(path: Path) -> int:
    with connect(path, read_only=True) as con:
        return con.sql("SELECT coalesce(sum(delivered), 0) FROM sendout_summary").fetchall()[0][0]


def wait_until(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.2)


# a publish that dies at a chosen point (SIGKILL, from inside, so the point is exact): half
# through copying the file, or with the copy complete but not yet renamed into place
DYING_PUBLISH = textwrap.dedent(
    """
    import os, shutil, signal, sys
    from warehouse import snapshot
    from warehouse.db import open_warehouse

    def die(*_):
        os.kill(os.getpid(), signal.SIGKILL)

    def copy_half(source, target):
        with open(source, "rb") as whole, open(target, "wb") as half:
            half.write(whole.read(os.path.getsize(source) // 2))
        die()

    if sys.argv[2] == "copying":
        shutil.copyfile = copy_half
    else:
        os.replace = die
    with open_warehouse(sys.argv[1]) as con:
        con.execute("DELETE FROM messages")
        snapshot.publish(con)
    """
)


def analysts_files(folder: Path) -> list[str]:
    """What an analyst sees as databases in the folder."""
    return sorted(p.name for p in folder.glob("*.duckdb"))


@pytest.mark.parametrize("when", ["copying", "renaming"])
def test_a_publish_killed_midway_leaves_the_previous_snapshot_whole(db_path, when):
    add_people(db_path, 8)
    create_sendout(db_path)
    with open_warehouse(db_path) as con:
        path = publish(con)

    killed = subprocess.run([sys.executable, "-c", DYING_PUBLISH, str(db_path), when])

    assert killed.returncode == -signal.SIGKILL
    assert messages(path) == 8  # the previous snapshot, whole
    assert analysts_files(db_path.parent) == ["warehouse.duckdb", "warehouse.snapshot.duckdb"]
    with open_warehouse(db_path) as con:
        assert publish(con) == path
    assert messages(path) == 0
    assert sorted(p.name for p in db_path.parent.iterdir()) == [
        "warehouse.duckdb",
        "warehouse.snapshot.duckdb",
    ]  # what the dead publisher left is gone


def test_a_publish_killed_from_outside_while_copying_leaves_the_previous_snapshot_whole(db_path):
    with open_warehouse(db_path) as con:  # some 60 MB, so that a copy takes a moment to catch
        con.execute("CREATE TABLE ballast AS SELECT random()::VARCHAR AS r FROM range(3000000)")
    for _attempt in range(5):
        with open_warehouse(db_path) as con:
            path = publish(con)
            con.execute("DELETE FROM ballast WHERE rowid = (SELECT min(rowid) FROM ballast)")
        published = count_ballast(path)
        publisher = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "--db", str(db_path), "snapshot"],
            stdout=subprocess.DEVNULL,
        )
        caught = caught_writing(publisher, db_path)
        publisher.kill()
        publisher.wait()
        if caught:
            break
    else:
        pytest.fail("never caught a publish while it copied")

    assert count_ballast(path) == published  # the previous snapshot, whole
    assert analysts_files(db_path.parent) == ["warehouse.duckdb", "warehouse.snapshot.duckdb"]


def count_ballast(path: Path) -> int:
    with connect(path, read_only=True) as con:
        return con.sql("SELECT count(*) FROM ballast").fetchall()[0][0]


def caught_writing(publisher: subprocess.Popen, live: Path) -> bool:
    """Wait until the publisher has a file open next to the live one, other than the live one
    and its log (what it writes the copy into, whatever its name); False if it ended first."""
    descriptors = Path(f"/proc/{publisher.pid}/fd")
    while publisher.poll() is None:
        try:
            opened = [Path(os.readlink(d)) for d in descriptors.iterdir()]
        except OSError:  # a descriptor closed while we looked
            continue
        if any(p.parent == live.parent and not p.name.startswith(live.name) for p in opened):
            return True
        time.sleep(0.001)
    return False


def test_the_snapshot_is_stale_once_anyone_writes_and_not_before(db_path):
    assert is_stale(db_path)  # none yet
    with open_warehouse(db_path) as con:
        publish(con)
    with open_warehouse(db_path):  # opening and closing changes nothing
        pass
    assert not is_stale(db_path)

    add_people(db_path, 1)

    assert is_stale(db_path)


def test_the_schedule_publishes_a_change_at_most_every_so_many_seconds(db_path):
    now = [1000.0]
    schedule = SnapshotSchedule(db_path, every=60, clock=lambda: now[0])

    assert schedule.publish_if_due() == snapshot_path(db_path).absolute()
    add_people(db_path, 1)
    now[0] += 30
    assert schedule.publish_if_due() is None  # changed, but published 30 s ago
    now[0] += 30
    assert schedule.publish_if_due() is not None
    now[0] += 600
    assert schedule.publish_if_due() is None  # nothing changed since
    assert messages(snapshot_path(db_path)) == 0 and not is_stale(db_path)


def test_notebooks_read_the_snapshot_and_say_when_there_is_none(db_path):
    config = WarehouseSettings(db=db_path)
    with pytest.raises(SnapshotMissingError, match="`sendout snapshot` publishes one"):
        query(config, "SELECT 1")
    add_people(db_path, 3)
    with open_warehouse(db_path) as con:
        publish(con)
        con.execute("DELETE FROM contacts")  # the live file moves on; the copy has not yet

    assert query(config, "SELECT count(*) AS n FROM contacts")["n"].to_list() == [3]
