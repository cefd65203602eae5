"""Many workers, one send-out, on Prefect for real (docs/dispatch.md): a Prefect server, the
dispatch-sendout deployment of prefect.yaml and two process workers of one work pool on this
machine. Two flow runs of slices of a send-out send every recipient between them; when one
worker is killed with its flow run, the other run finishes the killed run's slice."""

import collections
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from flows.up import Stack, wait_healthy
from tests.smtp_sink import free_port, start_sink
from tests.warehouse_builders import add_people, create_sendout
from warehouse.db import connect

RECIPIENTS = 1_500
CONNECTIONS = 2
PROJECT = Path(__file__).resolve().parent.parent


PREFECT = str(Path(sys.executable).with_name("prefect"))
WORKER = [PREFECT, "worker", "start", "--pool", "sendout", "--limit", "1"]  # one run each


@pytest.fixture
def stack(tmp_path: Path):
    """A Prefect server with the dispatch-sendout deployment, two workers, and an SMTP sink."""
    sink, controller = start_sink()
    db = tmp_path / "warehouse.duckdb"
    add_people(db, RECIPIENTS)
    sendout_id = create_sendout(db, communication_type="non_marketing")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "DO_NOT_TRACK": "1",
        "SENDOUT_HOME": str(PROJECT),
        "SENDOUT_DB": str(db),
        "SENDOUT_LANDING": str(tmp_path / "landing"),
        "SENDOUT_EMAIL_SENDER": "smtp",
        "SENDOUT_SMTP_HOST": "127.0.0.1",
        "SENDOUT_SMTP_PORT": str(controller.port),
        "SENDOUT_SMTP_CONNECTIONS": str(CONNECTIONS),
        "SENDOUT_BATCH_SIZE": "50",
        # 15 s a slice: time to kill a worker in the middle, and for the second run to start
        # on a loaded machine before the first, its slice done, takes over the second's
        "SENDOUT_EMAIL_RATE": "50",
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = Stack(env, logs)
    try:
        serve = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        server = processes.start("server", serve)
        wait_healthy(f"http://127.0.0.1:{port}/api/health", server, seconds=180)
        processes.run([PREFECT, "work-pool", "create", "sendout", "--type", "process"])
        processes.run([PREFECT, "deploy", "--name", "dispatch-sendout", "--no-prompt"])
        workers = [processes.start(f"worker{n}", WORKER) for n in (1, 2)]
        yield processes, workers, sink, db, sendout_id
    finally:
        processes.stop()
        controller.stop()


def descendants(pid: int) -> list[int]:
    """Every process started by `pid`, and theirs (a worker's flow run)."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return [pid for child in children for pid in (child, *descendants(child))]


def finished(db: Path, sendout_id: str) -> bool:
    try:
        with connect(db, read_only=True, lock_timeout=5) as con:
            query = "SELECT finished_at IS NOT NULL FROM sendouts WHERE sendout_id = ?"
            return con.execute(query, [sendout_id]).fetchall()[0][0]
    except Exception:  # the runs are writing: look again
        return False


def sent_by_each_run(db: Path) -> list[int]:
    """How many messages each flow run has sent so far (none while the runs hold the file)."""
    try:
        with connect(db, read_only=True, lock_timeout=5) as con:
            query = "SELECT count(*) FROM messages WHERE outcome IS NOT NULL GROUP BY claimed_by"
            return [row[0] for row in con.sql(query).fetchall()]
    except Exception:  # the runs are writing: look again
        return []


def test_two_workers_share_a_send_out_and_one_finishes_the_slice_of_a_killed_one(stack):
    processes, workers, sink, db, sendout_id = stack
    for shard in (0, 1):
        processes.run([PREFECT, "deployment", "run", "dispatch-sendout/dispatch-sendout",
                       "-p", f"sendout_id={sendout_id}", "-p", f"shard={shard}",
                       "-p", "shards=2"])  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not all(descendants(w.pid) for w in workers):
        time.sleep(0.2)  # each worker takes one run (--limit 1)
    sent = []  # a run's first messages come seconds after its process starts
    while time.monotonic() < deadline and not (len(sent) == 2 and min(sent) >= 20):
        time.sleep(1)  # a read holds the runs' writes up for a moment
        sent = sent_by_each_run(db)

    assert all(descendants(w.pid) for w in workers), "each worker should be running a slice"
    assert len(sent) == 2, "both runs should have sent messages of their slices"
    killed = workers[0]
    for pid in (*descendants(killed.pid), killed.pid):
        os.kill(pid, signal.SIGKILL)
    while time.monotonic() < deadline and not finished(db, sendout_id):
        time.sleep(1)

    received = collections.Counter(sink.message_ids())
    with connect(db, read_only=True) as con:
        rows = con.sql(
            "SELECT message_id, outcome, is_possible_duplicate, claimed_by FROM messages"
        ).fetchall()
        [(done, planned)] = con.execute(
            "SELECT done, planned FROM sendout_summary WHERE sendout_id = ?", [sendout_id]
        ).fetchall()
    assert set(received) == {row[0] for row in rows}  # every recipient, the killed slice too
    twice = {message_id for message_id, times in received.items() if times > 1}
    assert len(twice) <= CONNECTIONS
    assert twice <= {row[0] for row in rows if row[2]}  # and flagged
    assert {row[1] for row in rows} == {"sent"}
    assert (done, planned) == (RECIPIENTS, RECIPIENTS)  # progress summed over both runs
    by_run = collections.Counter(row[3] for row in rows)
    assert len(by_run) == 2 and max(by_run.values()) > RECIPIENTS // 2  # the survivor's share
