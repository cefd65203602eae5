"""Read a provider file into records: one JSON text per event object, numbered by source line.

Files are NDJSON (`.ndjson`, `.jsonl`, or JSON lines under any name), one JSON document (an
array of events, Mailgun's `{"items": [...]}`, or a single object), or form-encoded lines
(Twilio callbacks, `.txt`), any of them optionally gzipped. Large NDJSON files are read in chunks
so memory stays flat. A record that is not valid UTF-8 or not JSON is still yielded, with the
reason in `problem`, so that it lands in quarantine instead of being lost.
"""

import gzip
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

CHUNK_BYTES = 32 * 1024 * 1024
RECORD_SCHEMA = pa.schema(
    [("source_line", pa.int64()), ("record", pa.string()), ("problem", pa.string())]
)
READABLE_SUFFIXES = (".json", ".ndjson", ".jsonl", ".txt")


@dataclass(frozen=True)
class FileFacts:
    """What identifies a file's content: read once by hash, whatever its name."""

    path: Path
    file_hash: str
    size_bytes: int


def is_readable_file(path: Path) -> bool:
    """True for the file names ingest reads when walking a folder (optionally `.gz`)."""
    name = path.name.lower().removesuffix(".gz")
    return name.endswith(READABLE_SUFFIXES)


def describe(path: Path) -> FileFacts:
    """Hash the file's bytes as stored (gzipped or not)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    return FileFacts(path=path, file_hash=digest.hexdigest(), size_bytes=size)


def _open(path: Path) -> io.BufferedIOBase:
    handle = path.open("rb")
    if handle.read(2) == b"\x1f\x8b":
        handle.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]
    handle.seek(0)
    return handle


def _batch(lines: list[int], records: list[str | None], problems: list[str | None]) -> pa.Table:
    return pa.table([lines, records, problems], schema=RECORD_SCHEMA)


def _decode(raw: bytes) -> tuple[str, str | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), "not valid UTF-8 text"


def _split_lines(chunk: bytes) -> pa.LargeStringArray:
    """The chunk's lines as one Arrow array over the same bytes (no copy, newline kept)."""
    newlines = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == ord("\n"))
    offsets = np.concatenate(([0], newlines + 1)).astype(np.int64)
    if offsets[-1] != len(chunk):
        offsets = np.append(offsets, len(chunk))
    return pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(chunk)
    )


def _line_batch(first_line: int, chunk: bytes, *, form: bool) -> pa.Table:
    lines = _split_lines(chunk)
    if not form:
        try:
            lines.validate(full=True)  # raises unless every line is UTF-8
        except pa.ArrowInvalid:
            pass  # take the careful path below, line by line
        else:
            text = pc.utf8_trim_whitespace(lines)
            keep = pc.not_equal(pc.binary_length(text), 0)
            numbers = pc.add(pc.indices_nonzero(keep).cast(pa.int64()), first_line)
            records = text.filter(keep).cast(pa.string())
            problems = pa.nulls(len(records), pa.string())
            return pa.table([numbers, records, problems], RECORD_SCHEMA)
    numbers, records, problems = [], [], []
    for offset, line in enumerate(chunk.split(b"\n")):
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


def _form_to_json(line: str) -> tuple[str, str | None]:
    try:
        fields = parse_qsl(line, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return line, "not a form-encoded line (key=value&...)"
    return orjson.dumps(dict(fields)).decode(), None


def _document_batch(text: str) -> pa.Table:
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


def _looks_like_form(path: Path, head: bytes) -> bool:
    if path.name.lower().removesuffix(".gz").endswith(".txt"):
        return True
    first = head.lstrip()[:1]
    return bool(first) and first not in b"[{" and b"=" in head.split(b"\n", 1)[0]


_NON_SPACE = re.compile(rb"\S")


def _is_single_document(head: bytes, complete: bool) -> bool:
    """True when the content is one JSON value (perhaps pretty-printed), not JSON lines."""
    start = _NON_SPACE.search(head)
    if start is None or head[start.start()] not in b"[{":
        return False
    if head[start.start()] == ord("["):
        return True
    end = head.find(b"\n", start.start())
    end = len(head) if end == -1 else end
    try:
        orjson.loads(head[start.start() : end])
    except orjson.JSONDecodeError:
        return True  # an object spread over several lines
    return complete and _NON_SPACE.search(head, end) is None


def read_records(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[pa.Table]:
    """Yield the file's records as Arrow tables of (source_line, record, problem)."""
    with _open(path) as handle:
        head = handle.read(chunk_bytes)
        complete = len(head) < chunk_bytes
        if _is_single_document(head, complete):
            rest = handle.read()
            text, problem = _decode(head + rest)
            if problem:
                yield _batch([1], [text], [problem])
            else:
                yield _document_batch(text)
            return
        form = _looks_like_form(path, head)
        next_line, pending = 1, head
        while pending or not complete:
            if not complete:
                more = handle.read(chunk_bytes)
                complete = not more
                pending += more
            cut = len(pending) if complete else pending.rfind(b"\n") + 1
            if cut == 0:  # no line ends in what we have: read more
                continue
            chunk, pending = pending[:cut], pending[cut:]
            yield _line_batch(next_line, chunk, form=form)
            next_line += chunk.count(b"\n")
