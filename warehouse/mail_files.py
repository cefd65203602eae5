"""Files of raw email: single messages (`.eml`), Maildir folders and mbox files (DESIGN §7).

A Maildir message is a file under a folder's `new/` or `cur/` (whatever its name); an mbox
file (`.mbox`, or any file starting with a "From " line) holds many messages, each numbered by
the line its "From " separator is on. Each message becomes one record of evidence
(warehouse.bounce_mail), in batches, so a large mbox is read with flat memory.
"""

import io
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import pyarrow as pa

from warehouse.bounce_mail import read_message

MAIL_SUFFIXES = (".eml", ".mbox", ".msg")
BATCH = 1000  # messages per record batch


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
    batch: tuple[list, list, list] = ([], [], [])
    for line, raw in _messages(handle, head):
        record, problem = read_message(raw)
        for column, value in zip(batch, (line, record, problem), strict=True):
            column.append(value)
        if len(batch[0]) >= BATCH:
            yield pa.table(list(batch), schema=schema)
            batch = ([], [], [])
    if batch[0]:
        yield pa.table(list(batch), schema=schema)


def _messages(handle: io.BufferedIOBase, head: bytes) -> Iterator[tuple[int, bytes]]:
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
            # mboxrd quoting: ">From " in a body was "From "
            lines.append(line[1:] if line.startswith(b">From ") else line)
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
