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
