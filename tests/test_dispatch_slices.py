"""Many workers, one send-out (DESIGN §8, docs/dispatch.md): runs of slices of a send-out, in
processes of their own over a real SMTP server, send every recipient once between them, and a
run whose process is killed leaves its slice to a run that is still going."""

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

RECIPIENTS = 1_200
CONNECTIONS = 2
RUN_SLICE = """
import sys
from pathlib import Path
from flows.dispatch import run_dispatch
from warehouse.dispatch_state import Slice
result = run_dispatch(Path(sys.argv[1]), sys.argv[2], part=Slice(int(sys.argv[3]), 2))
print(result.sent, result.progress.done, result.progress.planned)
"""


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
        "SENDOUT_BATCH_SIZE": "50",
        "SENDOUT_SMTP_CONNECTIONS": str(CONNECTIONS),
        "SENDOUT_EMAIL_RATE": "300",  # a few seconds a slice: time to kill one in the middle
        "SENDOUT_LANDING": str(tmp_path / "landing"),
    }
    yield sink, db, sendout_id, env
    controller.stop()


def start_slice(db: Path, sendout_id: str, index: int, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUN_SLICE, str(db), sendout_id, str(index)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def messages(db: Path) -> dict[str, tuple]:
    """Each message's (claiming run, outcome, flagged as maybe sent twice)."""
    with connect(db, read_only=True) as con:
        rows = con.sql(
            "SELECT message_id, claimed_by, outcome, is_possible_duplicate FROM messages"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def finished_at(db: Path, sendout_id: str):
    with connect(db, read_only=True) as con:
        query = "SELECT finished_at FROM sendouts WHERE sendout_id = ?"
        return con.execute(query, [sendout_id]).fetchall()[0][0]


def test_two_slices_send_every_recipient_once_and_count_up_to_the_whole(setup):
    sink, db, sendout_id, env = setup
    runs = [start_slice(db, sendout_id, index, env) for index in (0, 1)]
    said = []
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
        said.append([int(word) for word in out.split()])

    received = collections.Counter(sink.message_ids())
    assert set(received) == set(messages(db)) and max(received.values()) == 1
    assert sum(sent for sent, _, _ in said) == RECIPIENTS
    assert [(done, planned) for _, done, planned in said][-1] == (RECIPIENTS, RECIPIENTS)
    assert {outcome for _, outcome, _ in messages(db).values()} == {"sent"}
    assert finished_at(db, sendout_id) is not None


def test_a_killed_slice_is_taken_over_by_the_run_still_going(setup):
    sink, db, sendout_id, env = setup
    first, second = (start_slice(db, sendout_id, index, env) for index in (0, 1))
    deadline = time.monotonic() + 120
    while len(sink.message_ids()) < RECIPIENTS // 6 and time.monotonic() < deadline:
        time.sleep(0.01)

    first.send_signal(signal.SIGKILL)
    first.wait()
    _, err = second.communicate(timeout=300)

    assert second.returncode == 0, err
    by_run = collections.Counter(run for run, _, _ in messages(db).values())
    assert len(by_run) == 2 and max(by_run.values()) > RECIPIENTS // 2  # more than its half
    received = collections.Counter(sink.message_ids())
    rows = messages(db)
    assert set(received) == set(rows)  # nobody missed: the first slice's rest went out too
    twice = {message_id for message_id, times in received.items() if times > 1}
    assert len(twice) <= CONNECTIONS and all(rows[m][2] for m in twice)
    assert {outcome for _, outcome, _ in rows.values()} == {"sent"}
    assert finished_at(db, sendout_id) is not None
