"""What an ingest run did: each file's result and the totals (`sendout ingest`'s summary)."""

from dataclasses import asdict, dataclass, field

from warehouse.folders import Unreadable


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
