"""DESIGN §8 with real processes and a real SMTP server on 127.0.0.1: a dispatch killed with
SIGKILL and restarted at once loses no recipient and sends twice at most the messages in flight
on its connections (the rest of its batch is in its journal), and flags only those; a SIGTERM
finishes the batch in flight, and resuming sends nothing twice."""

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.smtp_sink import start_sink
from tests.warehouse_builders import add_people, create_sendout
from warehouse.db import connect

RECIPIENTS = 5_000
BATCH = 500
CONNECTIONS = 4


@pytest.fixture
def setup(tmp_path: Path):
    sink, controller = start_sink()
    db = tmp_path / "warehouse.duckdb"
    add_people(db, RECIPIENTS)
    sendout_id = create_sendout(db, communication_type="non_marketing")
    env = {
        **os.environ,
        "SENDOUT_EMAIL_SENDER": "smtp",
        "SENDOUT_SMTP_HOST": "127.0.0.1",
        "SENDOUT_SMTP_PORT": str(controller.port),
        "SENDOUT_BATCH_SIZE": str(BATCH),
        "SENDOUT_SMTP_CONNECTIONS": str(CONNECTIONS),
        "SENDOUT_DISPATCH_LEASE_SECONDS": "600",  # a dead run here is taken over at once
        "SENDOUT_LANDING": str(tmp_path / "landing"),
    }
    yield sink, db, sendout_id, env
    controller.stop()


def start_dispatch(db: Path, sendout_id: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "--db", str(db), "dispatch", sendout_id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for(sink, count: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while len(sink.message_ids()) < count and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.01)


def flagged(db: Path) -> set[str]:
    with connect(db, read_only=True) as con:
        rows = con.sql("SELECT message_id FROM messages WHERE is_possible_duplicate").fetchall()
    return {row[0] for row in rows}


def all_message_ids(db: Path) -> set[str]:
    with connect(db, read_only=True) as con:
        return {row[0] for row in con.sql("SELECT message_id FROM messages").fetchall()}


def test_a_killed_dispatch_restarted_loses_nobody_and_flags_its_few_duplicates(setup):
    sink, db, sendout_id, env = setup
    process = start_dispatch(db, sendout_id, env)
    wait_for(sink, RECIPIENTS // 3, process)

    process.send_signal(signal.SIGKILL)
    process.wait()
    restarted = start_dispatch(db, sendout_id, env)  # at once: the holder died on this host
    assert restarted.wait(timeout=300) == 0, restarted.stderr.read().decode()
    said = restarted.stdout.read().decode()

    received = collections.Counter(sink.message_ids())
    duplicates = {message_id for message_id, times in received.items() if times > 1}
    assert set(received) == all_message_ids(db)  # every recipient got it
    # at most what was in flight, a message per connection: the rest of the batch was in the
    # journal (flows/journal.py), which the restarted run stored before claiming
    assert len(duplicates) <= 2 * CONNECTIONS
    assert duplicates <= flagged(db)  # and each of those is flagged
    # and only those: the journal says which messages were going out when the run died
    assert len(flagged(db)) <= CONNECTIONS
    assert f"{len(flagged(db))} of them may have reached their recipient twice" in said


def test_a_sigterm_finishes_the_batch_in_flight_and_nothing_is_sent_twice(setup):
    sink, db, sendout_id, env = setup
    process = start_dispatch(db, sendout_id, env)
    wait_for(sink, RECIPIENTS // 3, process)

    process.send_signal(signal.SIGTERM)
    stopped = process.wait(timeout=60)
    received_when_stopped = len(sink.message_ids())
    resumed = start_dispatch(db, sendout_id, env)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()

    received = collections.Counter(sink.message_ids())
    assert stopped == 1  # it said it stopped with messages to go
    assert received_when_stopped < RECIPIENTS
    assert set(received) == all_message_ids(db)
    assert max(received.values()) == 1
    assert flagged(db) == set()
