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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

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


def _line_batch(first_line: int, chunk: bytes, *, form: bool) -> pa.Table:
    lines = pa.array(chunk.split(b"\n"), pa.binary())
    if not form:
        try:
            text = pc.utf8_trim_whitespace(lines.cast(pa.string()))
        except pa.ArrowInvalid:
            pass  # some line is not UTF-8: take the careful path below
        else:
            keep = pc.not_equal(pc.utf8_length(text), 0)
            numbers = pc.add(pc.indices_nonzero(keep).cast(pa.int64()), first_line)
            records = text.filter(keep)
            return pa.table([numbers, records, pa.nulls(len(records), pa.string())], RECORD_SCHEMA)
    numbers, records, problems = [], [], []
    for offset, raw in enumerate(lines.to_pylist()):
        raw = raw.strip()
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


def _is_single_document(head: bytes, complete: bool) -> bool:
    """True when the content is one JSON value (perhaps pretty-printed), not JSON lines."""
    stripped = head.lstrip()
    if stripped[:1] == b"[":
        return True
    if stripped[:1] != b"{":
        return False
    first_line = stripped.split(b"\n", 1)[0]
    try:
        orjson.loads(first_line)
    except orjson.JSONDecodeError:
        return True  # an object spread over several lines
    return complete and not stripped[len(first_line) :].strip()


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
        while pending:
            more = b"" if complete else handle.read(chunk_bytes)
            complete = complete or not more
            pending += more
            cut = len(pending) if complete else pending.rfind(b"\n") + 1
            if cut == 0:  # one line longer than a chunk: keep reading
                continue
            chunk, pending = pending[:cut], pending[cut:]
            yield _line_batch(next_line, chunk, form=form)
            next_line += chunk.count(b"\n")
