"""The analysts' copy of the warehouse (DESIGN §9): a `.duckdb` file next to the live one,
replaced whole after each refresh, that analysts and notebooks open read-only.

Why a copy: any connection another process holds on the live file blocks its one writer, so an
analyst's long session would stall dispatch, ingest and refresh. Analysts open the snapshot
instead; a publish renames a new file over it, and an analyst who has the old one open keeps
reading it (the old inode) until they reconnect, blocking nothing.

How: the publisher holds the live file read-write (an exclusive lock, so no other process is
writing), checkpoints it so the file holds every commit, copies it byte for byte to a hidden
temporary name in the snapshot's folder, fsyncs the copy and renames it into place. A file copy
holds the live file for a fraction of a second where DuckDB's `COPY FROM DATABASE` takes ~20x
longer (docs/warehouse.md). A kill at any moment leaves the previous snapshot whole; the
temporary file it may leave behind is removed by the next publish.
"""

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl

from warehouse.db import connect, open_warehouse
from warehouse.settings import WarehouseSettings

READ_ONLY = 0o444  # a copy: whoever opens it for writing is told so at once


class SnapshotMissingError(RuntimeError):
    """No snapshot has been published next to this warehouse yet."""


def snapshot_path(db: Path | str, to: Path | None = None) -> Path:
    """Where the snapshot of the warehouse `db` is published: `to` ($SENDOUT_SNAPSHOT, given by
    the caller), else next to it with `.snapshot` before its suffix
    (data/sendout.snapshot.duckdb)."""
    db = Path(db)
    return to or db.with_name(f"{db.stem}.snapshot{db.suffix}")


def publish(con: duckdb.DuckDBPyConnection, to: Path | None = None) -> Path:
    """Publish a snapshot of the warehouse that `con` holds read-write (at `snapshot_path`);
    return its path.

    Call it outside a transaction, on the writer's connection: while it copies, no one else can
    write the file (which is also why any temporary file found here is a dead publisher's)."""
    live = _live_path(con)
    target = snapshot_path(live, to).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(target)
    con.execute("CHECKPOINT")
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(live, temp)
        _fsync(temp)
        os.chmod(temp, READ_ONLY)
        changed = _changed_ns(live)  # marks which state of the live file this is a copy of
        os.utime(temp, ns=(time.time_ns(), changed))
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync(target.parent)  # the rename itself survives a crash
    return target


def is_stale(db: Path | str, to: Path | None = None) -> bool:
    """Whether the live file changed since its snapshot was published, or there is none yet
    (False while there is no warehouse to copy)."""
    db = Path(db)
    if not db.exists():
        return False
    snapshot = snapshot_path(db, to)
    return not snapshot.exists() or snapshot.stat().st_mtime_ns != _changed_ns(db)


class SnapshotSchedule:
    """Publishes when the live file changed, at most once every `every` seconds: the continuous
    ingester refreshes every second or so, and copying the file each time would hold it longer
    than the refresh does. Whoever changed the file (the ingester, a dispatch, a send-out made
    on the dashboard) is in the next publish."""

    def __init__(
        self,
        db: Path,
        every: float,
        to: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.db, self.to = Path(db), to
        self.every = every
        self.clock = clock
        self.last: float | None = None

    def due(self) -> bool:
        """Whether a publish is wanted now."""
        recent = self.last is not None and self.clock() - self.last < self.every
        return not recent and is_stale(self.db, self.to)

    def publish_if_due(self) -> Path | None:
        """Publish if due (on a short connection of its own); the path, or None."""
        if not self.due():
            return None
        self.last = self.clock()  # a failing publish is not retried at every turn either
        with open_warehouse(self.db) as con:
            return publish(con, self.to)


def query(config: WarehouseSettings, sql: str, params: dict | None = None) -> pl.DataFrame:
    """One read-only look at the snapshot of the warehouse `config.db` ($SENDOUT_DB), as a
    polars frame: what notebooks read, so an analyst never holds the live file."""
    path = snapshot_path(config.db, config.snapshot)
    if not path.exists():
        raise SnapshotMissingError(
            f"there is no snapshot at {path} yet: `sendout snapshot` publishes one"
        )
    with connect(path, read_only=True) as con:
        return con.sql(sql, params=params).pl()


def _live_path(con: duckdb.DuckDBPyConnection) -> Path:
    """The file `con` holds, as DuckDB opened it."""
    [(path,)] = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    return Path(path)


def _changed_ns(db: Path) -> int:
    """When the live file or its write-ahead log last changed."""
    wal = db.with_name(db.name + ".wal")
    return max(p.stat().st_mtime_ns for p in (db, wal) if p.exists())


def _fsync(path: Path) -> None:
    """Make a file's bytes, or a folder's entries, durable (warehouse imports nothing from
    flows, whose landing has a helper like it)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_leftovers(target: Path) -> None:
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        leftover.unlink(missing_ok=True)
