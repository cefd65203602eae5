"""Durable appends to the landing folder, in files that ingest reads once they are complete.

A record is written and fsynced before the request that brought it is answered, so an accepted
event survives a crash. Requests arriving together share one write and one fsync (group commit)
in a worker thread, so the event loop keeps serving while the disk works. The file being written
ends in `.open` (ingest does not read it); it is renamed to `.ndjson` when it reaches `max_bytes`
or `max_seconds`, or after `quiet_seconds` without a write (checked at each write, and four
times a second by the service), or when the service stops, so the continuous ingester sees an
event within about a second of quiet and never more than `max_seconds` after it landed; files a
crash left open are handed over when it starts again.
"""

import asyncio
import os
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

from warehouse.own_records import sync_folder


class LandingWriter:
    """Appends records (one per line) for one source, rotating by size and age."""

    def __init__(
        self,
        folder: Path,
        prefix: str,
        max_bytes: int,
        max_seconds: float,
        quiet_seconds: float | None = None,
    ):
        self.folder = folder
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.quiet_seconds = max_seconds if quiet_seconds is None else quiet_seconds
        self.lock = threading.Lock()
        self.handle = None
        self.path: Path | None = None
        self.opened = 0.0
        self.last_write = 0.0
        self.written = 0
        self.pending: list[tuple[bytes, asyncio.Future]] = []
        self.flushing = False

    async def land(self, lines: list[bytes]) -> None:
        """Return once the lines are on disk; concurrent callers share the write and fsync."""
        done = asyncio.get_running_loop().create_future()
        self.pending.append((self._encode(lines), done))
        if not self.flushing:
            self.flushing = True
            asyncio.get_running_loop().create_task(self._flush_pending())
        await done

    async def _flush_pending(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                try:
                    await asyncio.to_thread(self._write, b"".join(data for data, _ in batch))
                except OSError as error:
                    for _, done in batch:
                        done.set_exception(error)
                else:
                    for _, done in batch:
                        done.set_result(None)
        finally:
            self.flushing = False

    @staticmethod
    def _encode(lines: list[bytes]) -> bytes:
        return b"".join(line.replace(b"\n", b" ") + b"\n" for line in lines)

    def _write(self, data: bytes) -> None:
        """Write and fsync; rotate first when the current file is full or old."""
        with self.lock:
            if self.handle and (
                self.written >= self.max_bytes or time.monotonic() - self.opened >= self.max_seconds
            ):
                self._close()
            if self.handle is None:
                self._open()
            self.handle.write(data)
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.written += len(data)
            self.last_write = time.monotonic()

    def hand_over_leftovers(self) -> None:
        """Hand ingest the files a crashed run left open. Only the folder's owner may call it
        (flows/webhooks/state.py): another live service's open files look the same. What they
        hold was fsynced before it was answered; a torn last line, never answered, goes to
        quarantine."""
        for path in self.folder.glob(f"{self.prefix}-*.ndjson.open"):
            os.replace(path, path.with_suffix(""))

    def hand_over_if_due(self) -> None:
        """Hand the current file to ingest once it is `max_seconds` old, or has had no write for
        `quiet_seconds`."""
        with self.lock:
            now = time.monotonic()
            if self.handle and (
                now - self.opened >= self.max_seconds or now - self.last_write >= self.quiet_seconds
            ):
                self._close()

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = f"{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        self.path = self.folder / f"{self.prefix}-{stamp}.ndjson.open"
        self.handle = self.path.open("ab")
        self.opened, self.written = time.monotonic(), 0

    def _close(self) -> None:
        self.handle.close()
        os.replace(self.path, self.path.with_suffix(""))  # drop ".open": ready for ingest
        sync_folder(self.folder)
        self.handle = self.path = None

    def close(self) -> None:
        """Hand the current file to ingest."""
        with self.lock:
            if self.handle:
                self._close()
