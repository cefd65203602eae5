"""What an ingest run did: each file's result and the totals (`sendout ingest`'s summary), and
the record of the files read (`ingested_files`)."""

from dataclasses import asdict, dataclass, field
from datetime import datetime

import duckdb
import pyarrow as pa

from warehouse.db import registered
from warehouse.folders import Unreadable
from warehouse.records import FileFacts


@dataclass
class FileResult:
    """What ingesting one file did."""

    path: str
    provider: str | None = None
    skipped: bool = False
    records: int = 0
    events_new: int = 0
    events_duplicate: int = 0
    quarantined: int = 0
    unmatched: int = 0
    retimed: int = 0  # events stored with the time of receipt: their own was not believable
    damage: str | None = None  # a compressed file cut short or corrupt: read up to there
    unreadable: str | None = None  # why the file could not be read (nothing of it is stored)


@dataclass
class IngestSummary:
    """Totals over a run of `ingest_paths`; `files` keeps each file's own result."""

    files_read: int = 0
    files_skipped: int = 0
    records: int = 0
    events_new: int = 0
    events_duplicate: int = 0
    quarantined: int = 0
    unmatched: int = 0
    retimed: int = 0
    files: list[FileResult] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)

    def add(self, result: FileResult) -> None:
        self.files.append(result)
        if result.unreadable:
            self.unreadable.append(Unreadable(result.path, result.unreadable))
            return
        if result.skipped:
            self.files_skipped += 1
            return
        self.files_read += 1
        self.records += result.records
        self.events_new += result.events_new
        self.events_duplicate += result.events_duplicate
        self.quarantined += result.quarantined
        self.unmatched += result.unmatched
        self.retimed += result.retimed

    def as_dict(self, with_files: bool = False) -> dict:
        """The summary as plain data (for --json)."""
        data = asdict(self)
        if not with_files:
            data.pop("files")
        damaged = [{"path": f.path, "damage": f.damage} for f in self.files if f.damage]
        if damaged:
            data["damaged"] = damaged
        if not self.unreadable:
            data.pop("unreadable")
        return data


def record_files(
    con: duckdb.DuckDBPyConnection,
    fresh: list[FileFacts],
    results: dict[str, FileResult],
    ingested_at: datetime,
) -> None:
    """Record the files as read, with what each held, so that the same bytes are skipped."""
    done = [results[str(f.path)] for f in fresh]
    files = pa.table(
        {
            "file_hash": [f.file_hash for f in fresh],
            "path": [str(f.path) for f in fresh],
            "provider": [r.provider for r in done],
            "size_bytes": pa.array([f.size_bytes for f in fresh], pa.int64()),
            "records": pa.array([r.records for r in done], pa.int64()),
            "events_new": pa.array([r.events_new for r in done], pa.int64()),
            "events_duplicate": pa.array([r.events_duplicate for r in done], pa.int64()),
            "quarantined": pa.array([r.quarantined for r in done], pa.int64()),
        }
    )
    with registered(con, "read_files", files):
        con.execute(
            "INSERT INTO ingested_files BY NAME SELECT *, $at AS ingested_at FROM read_files",
            {"at": ingested_at},
        )
