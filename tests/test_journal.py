"""The dispatch journal (flows/journal.py): a file per batch, gone once the batch is stored, and
read back after a crash, whatever the version of the run that wrote it."""

import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from flows.journal import Journal, earlier_outcomes
from warehouse.dispatch_state import Outcome
from warehouse.vocabulary import EventType, Provider


def sent(message_id: str) -> Outcome:
    return Outcome(message_id, EventType.SENT, Provider.SMTP, datetime(2026, 12, 3, tzinfo=UTC))


def dead_run() -> str:
    """The id of a run on this host whose process has ended."""
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    return f"{socket.gethostname()}:{finished.stdout.strip()}:0badf00d"


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_batch_s_journal_goes_once_it_is_stored_and_the_next_batch_s_stays(tmp_path):
    journal = Journal(tmp_path, "so_1", "here:1:abc")
    journal.write(sent("m1"))
    journal.next_batch()  # m1's batch is being stored while m2's goes out
    journal.started("m2")
    journal.write(sent("m2"))

    journal.forget_stored()
    assert files(tmp_path) == ["so_1.here_1_abc.1.ndjson"]
    journal.forget_stored(current=True)  # m2's batch stored too, none going out
    journal.close()
    assert [p.read_bytes() for p in tmp_path.iterdir()] == [b""]


def test_a_dead_run_s_journal_is_read_whatever_version_named_it(tmp_path):
    run = dead_run()
    journal = Journal(tmp_path, "so_1", run)
    journal.started("m1")
    journal.started("m2")
    journal.write(sent("m2"))
    journal.next_batch()
    journal.write(sent("m3"))
    journal.close()
    name = run.replace(":", "_")  # the second batch's file as runs before segments named it
    (tmp_path / f"so_1.{name}.1.ndjson").rename(tmp_path / f"so_1.{name}.ndjson")

    found = earlier_outcomes(tmp_path, "so_1")

    assert found.runs == {run}
    assert sorted(o.message_id for o in found.outcomes) == ["m2", "m3"]
    assert found.started == {"m1"}  # went out, no outcome: the one that may go twice
    assert len(found.files) == 2


def test_a_dead_run_s_journal_once_stored_leaves_its_claims_explained(tmp_path):
    """Run A dies with two batches claimed: m0..m3 going out (m0 sent, m1 going out), m4..m7
    claimed next. The run that reads A's journal stores m0, flags m1 and gives the rest back,
    in the warehouse: once A's journal is gone, nothing is left claimed by A for a later run
    to flag (run B then claims its first batch and is not flagged for A's)."""
    from tests.warehouse_builders import add_people, create_sendout
    from warehouse import dispatch_state
    from warehouse.db import connect, open_warehouse

    db = tmp_path / "w.duckdb"
    add_people(db, 8)
    sendout_id = create_sendout(db)
    run_a, now = dead_run(), datetime.now(UTC)
    with open_warehouse(db) as con:
        ids = [
            m.message_id
            for m in dispatch_state.claim_batch(con, sendout_id, run_a, 4, now, bounds=("", None))
        ]
        later = dispatch_state.claim_batch(con, sendout_id, run_a, 4, now, bounds=("", None))
    journal = Journal(tmp_path / "journal", sendout_id, run_a)
    journal.started(ids[0])
    journal.write(sent(ids[0]))
    journal.started(ids[1])
    journal.close()

    found = earlier_outcomes(tmp_path / "journal", sendout_id)
    with open_warehouse(db) as con:
        dispatch_state.record_journaled(con, sendout_id, "here:2:b", found.of(), now)
        # run B claims a batch and dies in turn; run C knows nothing of A's journal
        dispatch_state.claim_batch(con, sendout_id, "here:2:b", 2, now, bounds=("", None))
    with connect(db, read_only=True) as con:
        rows = con.execute(
            "SELECT message_id, outcome IS NOT NULL, is_possible_duplicate, claimed_by, attempts "
            "FROM messages ORDER BY message_id"
        ).fetchall()

    state = {message_id: rest for message_id, *rest in rows}
    assert state[ids[0]] == [True, False, run_a, 1]  # stored from the journal
    assert state[ids[1]][1] is True  # went out, outcome unknown: maybe twice
    assert [state[m.message_id][1] for m in later] == [False] * 4  # never began to go out
    assert not any(by == run_a for done, _, by, _ in state.values() if not done)
    assert sum(flag for _, flag, _, _ in state.values()) == 1
