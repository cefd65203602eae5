"""The dispatch journal: each outcome on disk within milliseconds of the provider's answer.

Dispatch stores outcomes in the warehouse once per batch; a crash between a message going out
and its batch being stored used to send the whole batch again. Now every outcome is appended to
a journal file of its run the moment the sender has it, and a thread makes the file durable
(fsync) every few milliseconds, for all the outcomes written since (group commit). A run that
starts replays what the journals of earlier runs of the same send-out hold for messages still
without an outcome, so a crash sends again only what was in flight in the last milliseconds.
Each message is also noted as it goes out: those noted without an outcome are the only ones a
crash can have sent twice, and the only ones flagged so.
Each batch is journaled in a file of its own (a segment), removed once the batch is stored:
the next batch goes out while the last one is stored, so a journal holds at most two batches.
When a run ends, what its journal still holds (a sender failed mid-batch) is stored and the
files removed.
"""

import os
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import orjson

from warehouse.dispatch_state import Outcome, is_dead_here
from warehouse.vocabulary import EventType, Provider

FLUSH_SECONDS = 0.005


def journal_folder(db: Path) -> Path:
    """Where the journals of a warehouse's dispatch runs are kept: beside it."""
    return Path(db).parent / "dispatch-journal"


class Journal:
    """The outcomes of one run of one send-out, appended and made durable in groups."""

    def __init__(self, folder: Path, sendout_id: str, run_id: str):
        folder.mkdir(parents=True, exist_ok=True)
        self.stem = folder / f"{sendout_id}.{run_id.replace(':', '_')}"
        self.segment = 0
        self.path = self.stem.with_name(f"{self.stem.name}.0.ndjson")
        self.handle = self.path.open("ab")
        self.done: list[tuple[Path, BinaryIO]] = []  # segments of batches sent, not yet stored
        self.lock = threading.Lock()  # over the current file: writers and the flusher
        self.sync_lock = threading.Lock()  # a file is not closed while it is being synced
        self.dirty = False
        self.closed = threading.Event()
        self.flusher = threading.Thread(target=self._flush_often, daemon=True)
        self.flusher.start()

    def write(self, *outcomes: Outcome) -> None:
        """Append outcomes in one write (durable within FLUSH_SECONDS); safe from any sender
        thread."""
        self._append(b"".join(orjson.dumps(o) + b"\n" for o in outcomes))  # a dataclass's fields

    def started(self, *message_ids: str) -> None:
        """Note that messages are going out now: after a crash, only the messages so noted
        and without an outcome can have reached their recipient twice."""
        self._append(b"".join(b'{"started":' + orjson.dumps(m) + b"}\n" for m in message_ids))

    def _append(self, line: bytes) -> None:
        with self.lock:
            self.handle.write(line)
            self.handle.flush()
            self.dirty = True

    def _flush_often(self) -> None:
        while not self.closed.wait(FLUSH_SECONDS):
            self._sync()

    def _sync(self) -> None:
        with self.sync_lock:
            with self.lock:
                if not self.dirty:
                    return
                self.dirty = False
                descriptor = self.handle.fileno()
            # outside the lock: senders keep appending while the disk catches up (holding it
            # here made every write wait out an fsync, 80 µs a message)
            os.fsync(descriptor)

    def next_batch(self) -> None:
        """Journal from now on in a new segment (call it between batches): what the last
        batch's segment holds is durable, and goes once that batch is stored."""
        self._sync()
        with self.lock:
            self.done.append((self.path, self.handle))
            self.segment += 1
            self.path = self.stem.with_name(f"{self.stem.name}.{self.segment}.ndjson")
            self.handle = self.path.open("ab")

    def forget_stored(self, current: bool = False) -> None:
        """Remove the segments of the batches before the current one, and with `current` the
        current one's too (none is going out): they are stored in the warehouse now."""
        if current:
            self.next_batch()
        with self.sync_lock, self.lock:
            done, self.done = self.done, []
        for path, handle in done:
            handle.close()
            path.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop writing: what it holds is durable, for `earlier_outcomes` to store."""
        self.closed.set()
        self.flusher.join()
        self._sync()
        for _, handle in [*self.done, (self.path, self.handle)]:
            handle.close()


@dataclass
class Journaled:
    """What the journals of runs that ended hold."""

    outcomes: list[Outcome] = field(default_factory=list)
    started: set[str] = field(default_factory=set)  # went out, outcome unknown: maybe twice
    runs: set[str] = field(default_factory=set)  # the runs whose journals were read
    files: list[Path] = field(default_factory=list)

    def of(self) -> tuple[list[Outcome], set[str], set[str]]:
        """What `dispatch_state.record_journaled` stores: outcomes, runs, messages started."""
        return self.outcomes, self.runs, self.started

    def add(self, other: "Journaled") -> None:
        """Remember what another look at the journals found (their files are gone by then)."""
        self.started |= other.started
        self.runs |= other.runs


def earlier_outcomes(folder: Path, sendout_id: str, own_run: str | None = None) -> Journaled:
    """What the journals of a send-out's ended runs (crashed, or `own_run`) hold; the journal
    of a run still going (another slice's) is its own. A last line cut short by a crash is
    left out."""
    found = Journaled()
    for path in sorted(folder.glob(f"{sendout_id}.*.ndjson")):
        run = _run_of(path, sendout_id)
        if run == own_run or is_dead_here(run):
            found.files.append(path)
            found.runs.add(run)
    for path in found.files:
        for line in path.read_bytes().split(b"\n"):
            try:
                fields = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # blank, or written half when the run died
            if "started" in fields:
                found.started.add(fields["started"])
                continue
            found.outcomes.append(
                Outcome(
                    **{
                        **fields,
                        "event_type": EventType(fields["event_type"]),
                        "provider": Provider(fields["provider"]),
                        "occurred_at": datetime.fromisoformat(fields["occurred_at"]),
                    }
                )
            )
    found.started -= {outcome.message_id for outcome in found.outcomes}
    return found


def _run_of(path: Path, sendout_id: str) -> str:
    """The run id a journal's name was made from (`<send-out>.host_pid_random.<segment>`, the
    run's colons made "_"; journals written before segments have no `.<segment>`)."""
    name = path.name[len(sendout_id) + 1 : -len(".ndjson")]
    run, dot, segment = name.rpartition(".")
    if not (dot and segment.isdigit()):
        run = name
    parts = run.rsplit("_", 2)
    return ":".join(parts) if len(parts) == 3 else ""
