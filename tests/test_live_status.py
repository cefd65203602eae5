"""One truth, live (DESIGN §5): a send-out's status, progress and counts are the same for every
reader at every moment, and the dispatcher's own outcomes count the moment they are stored,
with no ingest or refresh in between."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from flows.dispatch import run_dispatch
from flows.senders.sandbox import SandboxEmail
from flows.settings import Settings
from tests.warehouse_builders import add_people, create_sendout
from warehouse import reports
from warehouse.db import connect
from warehouse.dispatch_state import Outcome, Outgoing
from warehouse.vocabulary import STATUS_COLUMNS

COUNT_COLUMNS = list(STATUS_COLUMNS.values())


def sendout_cli(db: Path, landing: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SENDOUT_LANDING": str(landing)}
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", "--db", str(db), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_right_after_dispatch_returns_the_report_shows_every_outcome(db_path, tmp_path):
    add_people(db_path, 500)
    sendout_id = create_sendout(db_path)

    dispatched = sendout_cli(db_path, tmp_path / "landing", "dispatch", sendout_id)
    report = sendout_cli(db_path, tmp_path / "landing", "report", sendout_id, "--json")

    assert dispatched.returncode == 0, dispatched.stderr
    [row] = json.loads(report.stdout)
    assert row["sendout_status"] in ("Sent", "Delivered")
    assert row["done"] == row["planned"] == 500
    assert sum(row[column] for column in COUNT_COLUMNS) == 500


class GatedSender:
    """The sandbox sender, holding each batch until the test has looked at the warehouse."""

    def __init__(self, config: Settings):
        self.inner = SandboxEmail(config)
        self.waiting = threading.Event()
        self.go = threading.Event()

    def send(self, batch: list[Outgoing]) -> list[Outcome]:
        self.waiting.set()
        self.go.wait(timeout=60)
        self.go.clear()
        return self.inner.send(batch)

    def close(self) -> None:
        self.inner.close()


def the_three_readers(db: Path, landing: Path, sendout_id: str) -> list[dict]:
    """What the Messages page, the details page and `sendout report` show of the send-out."""
    with connect(db, read_only=True) as con:
        listed = reports.sendout_list(con).filter(sendout_id=sendout_id).row(0, named=True)
        details = reports.sendout_report(con, sendout_id)
    cli = json.loads(sendout_cli(db, landing, "report", sendout_id, "--json").stdout)

    def seen(rows: list[dict]) -> dict:
        return {
            "status": rows[0]["sendout_status"],
            "planned": sum(r["planned"] for r in rows),
            "done": sum(r["done"] for r in rows),
            "counts": {c: sum(r[c] for r in rows) for c in COUNT_COLUMNS},
        }

    messages_page = {"status": listed["status"], "planned": listed["planned"]}
    messages_page["done"] = listed["done"]
    return [messages_page, seen(details), seen(cli)]


def test_the_three_readers_agree_at_every_moment_of_a_dispatch(db_path, tmp_path):
    add_people(db_path, 60)
    sendout_id = create_sendout(db_path)
    config = Settings(landing=tmp_path / "landing", batch_size=20, sandbox_seed=3)
    sender = GatedSender(config)
    stored = threading.Semaphore(0)  # released each time a batch's outcomes are stored
    dispatch = threading.Thread(
        target=run_dispatch,
        args=(db_path, sendout_id, config),
        kwargs={"senders": {"email": sender}, "on_batch": lambda _: stored.release()},
    )
    dispatch.start()
    samples = []
    while sender.waiting.wait(timeout=30):  # a batch is about to go out
        sender.waiting.clear()
        if samples:  # the one before it is stored as it goes (and is what the readers see)
            assert stored.acquire(timeout=30)
        samples.append(the_three_readers(db_path, config.landing, sendout_id))
        sender.go.set()
        if samples[-1][1]["done"] == 40:
            break  # the third and last batch is on its way
    dispatch.join(timeout=60)
    samples.append(the_three_readers(db_path, config.landing, sendout_id))

    for messages_page, details_page, report in samples:
        assert details_page == report
        assert messages_page == {k: details_page[k] for k in messages_page}
        assert sum(details_page["counts"].values()) == details_page["planned"] == 60
    progress = [(page["status"], page["done"]) for page, _, _ in samples]
    assert progress == [("Sending...", 0), ("Sent", 20), ("Sent", 40), ("Sent", 60)]
    assert samples[-1][1]["counts"]["queued"] == 0
