"""Files of raw email: single messages (`.eml`), Maildir folders and mbox files (DESIGN §7).

A Maildir message is a file under a folder's `new/` or `cur/` (whatever its name); an mbox
file (`.mbox`, or any file starting with a "From " line) holds many messages, each numbered by
the line its "From " separator is on. Each message becomes one record of evidence
(warehouse.bounce_mail), in batches, so a large mbox is read with flat memory.
"""

import atexit
import io
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from pathlib import Path

import pyarrow as pa

from warehouse.bounce_mail import read_message

MAIL_SUFFIXES = (".eml", ".mbox")
BATCH = 2000  # messages per record batch, at most
BATCH_BYTES = 64 * 1024 * 1024  # and at most this much mail in it
PARALLEL_FROM = 200  # messages in a batch worth parsing on every core
_pool: ProcessPoolExecutor | None = None

BUNDLE_FILES = 2000  # small mail files ingested together
BUNDLE_FILE_BYTES = 256 * 1024  # a mail file larger than this is ingested on its own


@lru_cache(maxsize=1024)
def _is_maildir(folder: Path) -> bool:
    return folder.name in ("new", "cur") and (folder.parent / "tmp").is_dir()


def is_mail_file(path: Path) -> bool:
    """True for `.eml`/`.mbox` files (optionally `.gz`) and messages inside a Maildir."""
    name = path.name.lower().removesuffix(".gz")
    return name.endswith(MAIL_SUFFIXES) or _is_maildir(path.parent)


def looks_like_mbox(head: bytes) -> bool:
    return head.startswith(b"From ")


def mail_records(handle: io.BufferedIOBase, head: bytes, schema: pa.Schema) -> Iterator[pa.Table]:
    """The records of a mail file whose first bytes are `head`: one per message."""
    yield from message_records(file_messages(handle, head), schema)


def message_records(messages: Iterable[tuple[int, bytes]], schema: pa.Schema) -> Iterator[pa.Table]:
    """(source_line, raw message) pairs as record batches, parsed on every core when many."""
    batch: list[tuple[int, bytes]] = []
    size = 0
    for message in messages:
        batch.append(message)
        size += len(message[1])
        if len(batch) >= BATCH or size >= BATCH_BYTES:
            yield _parsed(batch, schema)
            batch, size = [], 0
    if batch:
        yield _parsed(batch, schema)


def _parsed(batch: list[tuple[int, bytes]], schema: pa.Schema) -> pa.Table:
    raws = [raw for _, raw in batch]
    parsed = None
    if len(raws) >= PARALLEL_FROM and (os.cpu_count() or 1) > 1:
        parsed = _in_workers(raws)
    if parsed is None:
        parsed = [read_message(raw) for raw in raws]
    lines = [line for line, _ in batch]
    records = [record for record, _ in parsed]
    problems = [problem for _, problem in parsed]
    return pa.table([lines, records, problems], schema=schema)


def _in_workers(raws: list[bytes]) -> list[tuple[str, str | None]] | None:
    """The messages parsed by the worker processes; None when they cannot (a worker died, or
    the calling script cannot be re-imported by a spawned process): then the caller parses."""
    global _pool
    try:
        return list(_workers().map(read_message, raws, chunksize=64))
    except (BrokenProcessPool, RuntimeError, OSError):
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None  # a fresh pool next time
        return None


def _workers() -> ProcessPoolExecutor:
    """Processes that parse mail (the email package is pure Python: one core each), started
    once per process and fresh (spawned: they share nothing with the warehouse's threads)."""
    global _pool
    if _pool is None:
        context = multiprocessing.get_context("spawn")
        _pool = ProcessPoolExecutor(max_workers=os.cpu_count(), mp_context=context)
        atexit.register(_pool.shutdown, cancel_futures=True)
    return _pool


def file_messages(handle: io.BufferedIOBase, head: bytes) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each message: the whole file, or each of an mbox's messages."""
    if not looks_like_mbox(head):
        yield 1, head + handle.read()
        return
    stream = io.BufferedReader(_Prefixed(head, handle))  # type: ignore[arg-type]
    start, lines, previous_blank = 1, [], True
    for number, line in enumerate(stream, start=1):
        if line.startswith(b"From ") and previous_blank and number > 1:
            yield start, b"".join(lines)
            start, lines = number, []
        elif number > 1 or not line.startswith(b"From "):
            # mboxrd quoting: ">From " in a body was "From ", ">>From " was ">From "
            lines.append(
                line[1:] if line.lstrip(b">").startswith(b"From ") and line[:1] == b">" else line
            )
        previous_blank = not line.strip()
    if lines:
        yield start, b"".join(lines)


class _Prefixed(io.RawIOBase):
    """A stream of `head` followed by the rest of `handle`."""

    def __init__(self, head: bytes, handle: io.BufferedIOBase):
        self.head, self.handle = head, handle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.head:
            size = min(len(buffer), len(self.head))
            buffer[:size] = self.head[:size]
            self.head = self.head[size:]
            return size
        data = self.handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def bundles(files: list[Path]) -> Iterator[list[Path]]:
    """The files in order, consecutive small mail files together (up to BUNDLE_FILES): planning
    a parse costs more than parsing one message, so file by file a Maildir would crawl."""
    group: list[Path] = []
    for path in files:
        if is_mail_file(path) and _size(path) <= BUNDLE_FILE_BYTES:
            group.append(path)
            if len(group) >= BUNDLE_FILES:
                yield group
                group = []
            continue
        if group:
            yield group
            group = []
        yield [path]
    if group:
        yield group


def _size(path: Path) -> int:
    """The file's size; a file gone since it was found counts as large: read on its own, its
    result then says it is gone."""
    try:
        return path.stat().st_size
    except OSError:
        return BUNDLE_FILE_BYTES + 1
