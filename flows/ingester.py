"""The continuous ingester (DESIGN §9): landing files in, statuses and figures up to date, a
second or so after each file appears.

One loop, one writer. Every `poll_seconds` it releases the sandbox's events that have fallen due,
looks for landing files it has not looked at yet (by name, size and modification time), ingests
them (one short transaction per file; a file whose bytes were ingested before is skipped by its
content hash) and refreshes incrementally (one short transaction). A kill at any moment loses
nothing and counts nothing twice: a file whose transaction had not committed is read again on
the next start, and refresh takes in exactly the events stored since the last one.

It also keeps the analysts' copy of the warehouse current: after a turn, when the live file has
changed since the last publish (by its own refresh or any other writer's), it publishes one, at
most once every $SENDOUT_SNAPSHOT_SECONDS (warehouse/snapshot.py).
"""

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flows.senders.sandbox import release_due
from flows.settings import settings
from warehouse.db import WarehouseLockedError, WriterHold
from warehouse.folders import find_files
from warehouse.ingest import ingest_files
from warehouse.ingest_results import IngestSummary
from warehouse.parsers import install_macros
from warehouse.refresh import refresh
from warehouse.snapshot import SnapshotSchedule

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5


@dataclass
class Batch:
    """What one turn of the loop did."""

    files: int
    events_new: int
    refreshed_messages: int
    seconds: float


class LandingWatcher:
    """Tells which files under a folder are new or changed since they were last read."""

    def __init__(self, folder: Path):
        self.folder = Path(folder).resolve()  # ingest reports files by their resolved path
        self.read: dict[str, tuple[int, int]] = {}

    def new_files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return [p for p in find_files([self.folder]) if self.read.get(str(p)) != _looks(p)]

    def mark_read(self, path: Path) -> None:
        path = path.resolve()
        with contextlib.suppress(FileNotFoundError):  # gone since: nothing to look at again
            self.read[str(path)] = _looks(path)


def _looks(path: Path) -> tuple[int, int]:
    """What tells a file changed: its size and modification time."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def ingest_new_files(db: Path, landing: Path, watcher: LandingWatcher) -> Batch | None:
    """One micro-batch: release what is due, ingest the new files and refresh, on one short
    connection (each file, and the refresh, a transaction of its own); None if no file."""
    release_due(landing)
    files = watcher.new_files()
    if not files:
        return None
    started = time.perf_counter()
    summary = IngestSummary()
    with WriterHold(db, prepare=install_macros) as hold:
        try:
            ingest_files(hold, files, summary, on_file=lambda r: watcher.mark_read(Path(r.path)))
        except Exception as error:  # one bad file must not stop the service
            failed = files[len(summary.files)]
            log.error("cannot ingest %s: %s; it is read again at the next start", failed, error)
            watcher.mark_read(failed)
        refreshed = refresh(hold.con, config=settings())
    return Batch(
        files=summary.files_read,
        events_new=summary.events_new,
        refreshed_messages=refreshed.messages,
        seconds=round(time.perf_counter() - started, 3),
    )


def run_ingester(
    db: Path,
    landing: Path,
    stop: threading.Event,
    poll_seconds: float = POLL_SECONDS,
    on_batch: Callable[[Batch], None] | None = None,
    snapshot_seconds: float | None = None,
) -> None:
    """Ingest and refresh as files arrive, and publish the analysts' copy at most every
    `snapshot_seconds` ($SENDOUT_SNAPSHOT_SECONDS), until `stop` is set. A turn that fails (the
    warehouse locked too long, a disk error) is logged and tried again: the service stays up."""
    if not landing.is_dir():  # watched, it would be watched in vain: made, and said where
        landing.mkdir(parents=True, exist_ok=True)
        log.warning("the landing folder %s did not exist: made it, and watching it", landing)
    watcher = LandingWatcher(landing)
    every = settings().snapshot_seconds if snapshot_seconds is None else snapshot_seconds
    snapshots = SnapshotSchedule(db, every, settings().snapshot)
    while not stop.is_set():
        batch = None
        try:
            batch = ingest_new_files(db, landing, watcher)
            snapshots.publish_if_due()
        except WarehouseLockedError as error:
            log.warning("%s; trying again", error)
        except Exception:
            log.exception("this turn failed; trying again in %.1f s", poll_seconds)
        if batch and on_batch:
            on_batch(batch)
        if not (batch and batch.files):  # straight on while files keep coming
            stop.wait(poll_seconds)
