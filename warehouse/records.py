"""Read a provider file into records: one JSON text per event object, numbered by source line.

Files are JSON lines (`.ndjson`, `.jsonl`, or JSON lines under any name), a JSON array of events
(SendGrid), one JSON document (Mailgun's `{"items": [...]}` page, a single object, perhaps
pretty-printed), form-encoded lines (Twilio callbacks, `.txt`), or raw email (bounce mail:
warehouse.mail_files); any of them may be gzipped.
Large files are read in chunks so memory stays flat, and JSON lines are cut without a Python
loop per line. A record that is not valid UTF-8 or not form-encoded is still yielded, with the
reason in `problem`, so that it lands in quarantine instead of being lost.

`source_line` is the line number for line-based files and the element's position (from 1) for
arrays and documents.
"""

import codecs
import functools
import gzip
import hashlib
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.mail_files import (
    file_messages,
    is_mail_file,
    looks_like_mbox,
    mail_records,
    message_records,
)

CHUNK_BYTES = 32 * 1024 * 1024
ARRAY_BATCH_RECORDS = 32_768  # a JSON array's records per batch (about a chunk's worth)
PEEK_BYTES = 64 * 1024
PEEK_LIMIT = 4 * 1024 * 1024  # how far the peek reads on to see a file's first lines whole
RECORD_SCHEMA = pa.schema(
    [("source_line", pa.int64()), ("record", pa.string()), ("problem", pa.string())]
)
READABLE_SUFFIXES = (".json", ".ndjson", ".jsonl", ".txt")
GZIP_MAGIC = b"\x1f\x8b"
DAMAGE_LINE = 0  # the line a damaged compressed file's reason is kept under: the file itself
_NON_SPACE = re.compile(rb"\S")


@dataclass(frozen=True)
class FileFacts:
    """What identifies a file's content: read once by hash, whatever its name."""

    path: Path
    file_hash: str
    size_bytes: int


def is_readable_file(path: Path) -> bool:
    """True for the file names ingest reads when walking a folder (optionally `.gz`)."""
    name = path.name.lower().removesuffix(".gz")
    return name.endswith(READABLE_SUFFIXES) or is_mail_file(path)


def describe(path: Path) -> FileFacts:
    """Hash the file's bytes as stored (gzipped or not)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    return FileFacts(path=path, file_hash=digest.hexdigest(), size_bytes=size)


def _is_gzipped(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def _open(path: Path) -> io.BufferedIOBase:
    return _Damaged(gzip.open(path, "rb")) if _is_gzipped(path) else path.open("rb")  # type: ignore[return-value]


class _Damaged(io.BufferedIOBase):
    """A compressed file read as far as it is sound: where it is cut short or corrupt, reading
    ends (as at the end of the file) and `damage` says what was wrong, so the records before it
    are kept and the rest of the folder goes on."""

    def __init__(self, handle: gzip.GzipFile):
        self.handle = handle
        self.damage: str | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._safely(lambda: self.handle.read(size), b"")

    def readinto(self, buffer) -> int:
        return self._safely(lambda: self.handle.readinto(buffer), 0)

    def _safely(self, read, nothing):
        if self.damage:
            return nothing
        try:
            return read()
        except (EOFError, OSError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
            self.damage = f"the compressed file is damaged or cut short here: {error}"
            return nothing

    def close(self) -> None:
        self.handle.close()
        super().close()


def _batch(lines: list[int], records: list[str | None], problems: list[str | None]) -> pa.Table:
    return pa.table([lines, records, problems], schema=RECORD_SCHEMA)


def _numbered(first: int, records: pa.Array) -> pa.Table:
    numbers = pa.array(np.arange(first, first + len(records), dtype=np.int64))
    return pa.table([numbers, records, pa.nulls(len(records), pa.string())], RECORD_SCHEMA)


def _decode(raw: bytes) -> tuple[str, str | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), "not valid UTF-8 text"


def _form_to_json(line: str) -> tuple[str, str | None]:
    try:
        fields = parse_qsl(line, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return line, "not a form-encoded line (key=value&...)"
    return orjson.dumps(dict(fields)).decode(), None


# --- line-based files -----------------------------------------------------------------------


def _blocks(handle: io.BufferedIOBase, head: bytes, chunk_bytes: int) -> Iterator[bytearray]:
    """Blocks of whole lines, each read straight into a fresh buffer (the last may lack a \\n)."""
    rest = head
    while True:
        block = bytearray(len(rest) + chunk_bytes)
        block[: len(rest)] = rest
        got = handle.readinto(memoryview(block)[len(rest) :]) or 0
        filled = len(rest) + got
        if got == 0:
            if filled:
                del block[filled:]
                yield block
            return
        cut = block.rfind(b"\n", 0, filled) + 1
        rest = bytes(block[cut:filled])
        if cut:  # else one line is longer than a chunk: read on
            del block[cut:]
            yield block


def _json_lines(first_line: int, block: bytearray) -> tuple[pa.Table, int]:
    """The block's non-blank lines, numbered; no copy of the bytes unless a line is not UTF-8."""
    newlines = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == ord("\n"))
    offsets = np.concatenate(([0], newlines + 1)).astype(np.int64)
    if offsets[-1] != len(block):
        offsets = np.append(offsets, len(block))
    lines = pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(block)
    )
    try:
        lines.validate(full=True)  # raises unless every line is UTF-8
    except pa.ArrowInvalid:
        return _careful_lines(first_line, bytes(block), form=False), len(newlines)
    text = pc.utf8_trim_whitespace(lines)
    keep = pc.not_equal(pc.binary_length(text), 0)
    numbers = pc.add(pc.indices_nonzero(keep).cast(pa.int64()), first_line)
    records = text.filter(keep).cast(pa.string())
    problems = pa.nulls(len(records), pa.string())
    return pa.table([numbers, records, problems], RECORD_SCHEMA), len(newlines)


def _careful_lines(first_line: int, block: bytes, *, form: bool) -> pa.Table:
    """Line by line: for form-encoded files, and for blocks with bytes that are not UTF-8."""
    numbers, records, problems = [], [], []
    for offset, line in enumerate(block.split(b"\n")):
        raw = line.strip()
        if not raw:
            continue
        text, problem = _decode(raw)
        if form and problem is None:
            text, problem = _form_to_json(text)
        numbers.append(first_line + offset)
        records.append(text)
        problems.append(problem)
    return _batch(numbers, records, problems)


def _line_records(
    handle: io.BufferedIOBase, head: bytes, chunk_bytes: int, *, form: bool
) -> Iterator[pa.Table]:
    next_line = 1
    for block in _blocks(handle, head, chunk_bytes):
        if form:
            yield _careful_lines(next_line, bytes(block), form=True)
            next_line += block.count(b"\n")
        else:
            table, newlines = _json_lines(next_line, block)
            yield table
            next_line += newlines


# --- whole documents ------------------------------------------------------------------------


def _document_records(text: str) -> pa.Table:
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        return _batch([1], [text], [f"malformed JSON document: {error}"])
    if isinstance(document, dict) and isinstance(document.get("items"), list):
        items = document["items"]  # Mailgun's Events API page
    elif isinstance(document, list):
        items = document
    else:
        items = [document]
    records = [orjson.dumps(item).decode() for item in items]
    return _batch(list(range(1, len(records) + 1)), records, [None] * len(records))


def _array_records(path: Path, con: duckdb.DuckDBPyConnection) -> Iterator[pa.Table]:
    """A JSON array's elements as DuckDB reads them (raw text, in order, in parallel)."""
    query = (
        "SELECT json::VARCHAR AS record FROM read_json_objects($path, format = 'array',"
        " compression = $compression, maximum_object_size = 1073741824)"
    )
    params = {"path": str(path), "compression": "gzip" if _is_gzipped(path) else "none"}
    # A cursor of its own: the caller's connection is busy staging what we yield, and a
    # malformed array (ordinary bad input, kept whole in quarantine) must not abort the
    # caller's transaction. Checked before anything is yielded.
    cursor = con.cursor()
    try:
        cursor.sql(f"SELECT count(*) FROM ({query})", params=params).fetchall()
    except duckdb.Error:
        cursor.close()
        with _open(path) as handle:
            yield _document_records(_decode(handle.read())[0])
        return
    try:
        first = 1
        # batches of about a chunk's records, so a big array is stored in parts of under a
        # second like a big NDJSON file (DuckDB's own batches hold a million records)
        for batch in cursor.sql(query, params=params).to_arrow_reader(ARRAY_BATCH_RECORDS):
            records = batch.column(0)
            yield _numbered(first, records)
            first += len(records)
    finally:
        cursor.close()


# --- the shape of a file --------------------------------------------------------------------


def _first_value(head: bytes) -> tuple[int, bytes]:
    start = _NON_SPACE.search(head)
    return (-1, b"") if start is None else (start.start(), head[start.start() : start.start() + 1])


def _is_form(path: Path, head: bytes, first: bytes) -> bool:
    if path.name.lower().removesuffix(".gz").endswith(".txt"):
        return True
    return bool(first) and first not in b"[{" and b"=" in head.split(b"\n", 1)[0]


_BROKEN = object()  # a line that is no JSON value of its own
SHAPE_SAMPLE_LINES = 8  # lines after a broken first one looked at to tell the file's shape


def _json_value(line: bytes) -> object:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return _BROKEN


def _peek(handle: io.BufferedIOBase) -> tuple[bytes, bool]:
    """The file's first PEEK_BYTES, read on until its first lines are whole (a record of a
    JSON-lines file can be longer than the peek: a bounce quoting a whole message), or up to
    PEEK_LIMIT (a document on one line); and whether that is the whole file."""
    head = handle.read(PEEK_BYTES)
    while head.count(b"\n") <= SHAPE_SAMPLE_LINES and len(head) < PEEK_LIMIT:
        more = handle.read(PEEK_BYTES)
        if not more:
            return head, True
        head += more
    return head, len(head) < PEEK_BYTES


def _is_json_lines(head: bytes, start: int, whole: bool) -> bool:
    """Whether a file that starts like JSON (`{` or `[`) holds one value a line, rather than
    one document (an array, a pretty-printed object, a Mailgun items page).

    Its first line tells, when it is a value of its own: an object that is no items page, or
    an array with more lines after it. When the first line is broken (cut short, not UTF-8, a
    typo), one bad line must not make the whole file one broken document: the file is JSON
    lines if most of the lines after it are objects of their own, starting the line, where a
    document's lines are fragments (an element of an array written one a line still ends with
    its comma) and its nested objects indented. A file that starts with `[` and a broken line
    is an array."""
    lines = [line for line in head[start:].split(b"\n") if line.strip()]
    if len(lines) > 1 and not whole and not head.endswith(b"\n"):
        lines.pop()  # the peek cut the last line short
    first, rest = _json_value(lines[0]), lines[1 : 1 + SHAPE_SAMPLE_LINES]
    if isinstance(first, dict):
        return not isinstance(first.get("items"), list)
    if first is not _BROKEN:
        return bool(rest)
    if head[start : start + 1] == b"[":
        return False
    objects = sum(line[:1] == b"{" and isinstance(_json_value(line), dict) for line in rest)
    return objects * 2 > len(rest)


@functools.cache
def array_reader() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB of this process's own for splitting JSON arrays: not the warehouse's
    connection, which a long ingest closes and opens again between two parts of a file."""
    return duckdb.connect()


def read_records(
    path: Path, chunk_bytes: int = CHUNK_BYTES, con: duckdb.DuckDBPyConnection | None = None
) -> Iterator[pa.Table]:
    """Yield the file's records as Arrow tables of (source_line, record, problem).

    With a DuckDB connection, JSON arrays are split by DuckDB (much faster than in Python).
    """
    with _open(path) as handle:
        head, whole = _peek(handle)
        if head.startswith(codecs.BOM_UTF8) and not is_mail_file(path):
            head = head[len(codecs.BOM_UTF8) :]  # a byte-order mark (Windows tools) is no text
        start, first = _first_value(head)
        if is_mail_file(path) or looks_like_mbox(head):
            yield from mail_records(handle, head, RECORD_SCHEMA)
        elif first in (b"[", b"{") and not _is_json_lines(head, start, whole):
            if first == b"[" and con is not None:
                yield from _array_records(path, con)
            else:
                text, problem = _decode(head + handle.read())
                yield _batch([1], [text], [problem]) if problem else _document_records(text)
        else:
            if not isinstance(handle, _Damaged):  # a block need not outgrow the file
                chunk_bytes = max(1, min(chunk_bytes, path.stat().st_size))
            yield from _line_records(handle, head, chunk_bytes, form=_is_form(path, head, first))
        if isinstance(handle, _Damaged) and handle.damage:
            yield _batch([DAMAGE_LINE], [None], [handle.damage])


def read_mail_bundle(paths: list[Path], span: int) -> Iterator[pa.Table]:
    """The records of many small mail files together, the i-th file's lines numbered from
    i * span: one batch for all (parsed on every core), where file by file each would be its own."""

    def messages() -> Iterator[tuple[int, bytes]]:
        for index, path in enumerate(paths):
            with _open(path) as handle:
                head = handle.read(PEEK_BYTES)
                for line, raw in file_messages(handle, head):
                    yield index * span + line, raw

    yield from message_records(messages(), RECORD_SCHEMA)
