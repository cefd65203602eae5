"""Reading provider files into numbered records, whatever their shape, size or damage."""

import gzip
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from warehouse.records import read_records


def records_of(path: Path, **kwargs) -> list[tuple[int, str, str | None]]:
    table = pa.concat_tables(list(read_records(path, **kwargs)) or [_empty()])
    return [(r["source_line"], r["record"], r["problem"]) for r in table.to_pylist()]


def _empty() -> pa.Table:
    from warehouse.records import RECORD_SCHEMA

    return RECORD_SCHEMA.empty_table()


def test_json_lines_keep_their_line_numbers_across_blank_lines_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(b'{"a":1}\r\n\n   \n{"b":2}\r\n{"c":3}')

    assert records_of(path) == [(1, '{"a":1}', None), (4, '{"b":2}', None), (5, '{"c":3}', None)]


def test_small_chunks_read_the_same_records_as_one_big_read(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(f'{{"n":{n},"pad":"{"x" * (n % 37)}"}}\n' for n in range(500)))

    assert records_of(path, chunk_bytes=64) == records_of(path)
    assert len(records_of(path, chunk_bytes=64)) == 500


def test_a_line_longer_than_a_chunk_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.ndjson"
    huge = '{"big":"' + "y" * 5000 + '"}'
    path.write_text(f'{{"a":1}}\n{huge}\n{{"b":2}}\n')

    assert [r[:2] for r in records_of(path, chunk_bytes=100)] == [
        (1, '{"a":1}'),
        (2, huge),
        (3, '{"b":2}'),
    ]


def test_a_json_array_becomes_one_record_per_element(tmp_path: Path) -> None:
    path = tmp_path / "sendgrid.json"
    path.write_text('[\n  {"event": "open"},\n  {"event": "click"}\n]\n')

    assert records_of(path) == [(1, '{"event":"open"}', None), (2, '{"event":"click"}', None)]


@pytest.mark.parametrize("gzipped", [False, True])
def test_duckdb_splits_a_json_array_into_the_elements_raw_text(tmp_path: Path, gzipped) -> None:
    path = tmp_path / "sendgrid.json"
    content = b'[{"event": "open"},\n {"event":"click"}, 5]'
    path.write_bytes(gzip.compress(content) if gzipped else content)

    with duckdb.connect() as con:
        assert records_of(path, con=con) == [
            (1, '{"event": "open"}', None),
            (2, '{"event":"click"}', None),
            (3, "5", None),
        ]


def test_a_truncated_array_read_by_duckdb_is_kept_whole_with_its_problem(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text('[{"event": "open"}, {"event": "cli')

    with duckdb.connect() as con:
        [(line, record, problem)] = records_of(path, con=con)
    assert (line, record) == (1, '[{"event": "open"}, {"event": "cli')
    assert problem.startswith("malformed JSON document")


def test_a_mailgun_events_page_yields_its_items(tmp_path: Path) -> None:
    path = tmp_path / "mailgun.json"
    path.write_text('{"items": [{"event": "delivered"}], "paging": {"next": "x"}}')

    assert records_of(path) == [(1, '{"event":"delivered"}', None)]


def test_a_pretty_printed_single_object_is_one_record(tmp_path: Path) -> None:
    path = tmp_path / "postmark.json"
    path.write_text('{\n  "RecordType": "Delivery",\n  "Recipient": "a@example.com"\n}\n')

    assert records_of(path) == [(1, '{"RecordType":"Delivery","Recipient":"a@example.com"}', None)]


@pytest.mark.parametrize(
    "first_line",
    [b'{"eventType": "Open", "mail": {', b'{"a":\xff\xfe}', b"[1, 2]"],
    ids=["cut-short", "not-utf8", "an-array"],
)
def test_json_lines_whose_first_line_is_bad_are_still_json_lines(
    tmp_path: Path, first_line: bytes
) -> None:
    """One bad first line is one bad record, not the whole file as one broken document."""
    path = tmp_path / "firehose.ndjson"
    path.write_bytes(first_line + b'\n{"b":2}\n{"c":3}\n')

    lines = records_of(path, con=duckdb.connect())

    assert [line for line, _, _ in lines] == [1, 2, 3]
    assert lines[1:] == [(2, '{"b":2}', None), (3, '{"c":3}', None)]


@pytest.mark.parametrize("end", ["\n", ""], ids=["final-newline", "no-final-newline"])
@pytest.mark.parametrize("broken", [False, True], ids=["whole", "cut-short"])
def test_json_lines_whose_first_line_is_longer_than_the_peek_are_json_lines(
    tmp_path: Path, broken: bool, end: str
) -> None:
    """A first record of 200 KB (a bounce quoting a whole message) is one record, not the
    start of one document that swallows every line after it."""
    big = '{"event": "bounce", "reason": "' + "x" * 200_000 + ('"' if broken else '"}')
    path = tmp_path / "events.ndjson"
    path.write_text(big + '\n{"b":2}' + end)

    lines = records_of(path, con=duckdb.connect())

    assert [line for line, _, _ in lines] == [1, 2]
    assert lines[0][1] == big  # whole, to be parsed (or quarantined) as a record of its own
    assert lines[1:] == [(2, '{"b":2}', None)]


@pytest.mark.parametrize(
    "content",
    [
        '{"items": [\n{"event": "delivered"},\n{"event": "opened"}\n]}\n',
        '[\n{"event": "delivered"},\n{"event": "opened"}\n]\n',
        '{\n  "bounce": {\n    "bouncedRecipients": [\n      {"emailAddress": "a@x.org"}\n'
        "    ]\n  }\n}\n",
    ],
    ids=["items-page-one-a-line", "array-one-a-line", "pretty-with-a-nested-object"],
)
def test_a_document_written_over_lines_stays_one_document(tmp_path: Path, content: str) -> None:
    """Lines of a document that happen to be objects (its last element, a nested object) do
    not make it JSON lines."""
    path = tmp_path / "page.json"
    path.write_text(content)

    problems = [problem for _, _, problem in records_of(path, con=duckdb.connect())]

    assert problems and not any(problems)  # read whole, as the document it is


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("events.ndjson", '{"a":1}\n{"b":2}\n', [(1, '{"a":1}', None), (2, '{"b":2}', None)]),
        ("page.json", '{\n  "a": 1\n}\n', [(1, '{"a":1}', None)]),
    ],
    ids=["json-lines", "pretty-document"],
)
def test_a_byte_order_mark_is_not_part_of_the_first_record(
    tmp_path: Path, name: str, content: str, expected: list
) -> None:
    """Files saved by Windows tools start with a byte-order mark; it is no text of theirs."""
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + content.encode())

    assert records_of(path, con=duckdb.connect()) == expected


def test_gzipped_files_are_read_like_plain_ones(tmp_path: Path) -> None:
    path = tmp_path / "firehose.ndjson.gz"
    path.write_bytes(gzip.compress(b'{"a":1}\n{"a":2}\n'))

    assert records_of(path) == [(1, '{"a":1}', None), (2, '{"a":2}', None)]


def test_form_encoded_lines_become_json_objects_of_strings(tmp_path: Path) -> None:
    path = tmp_path / "twilio.txt"
    path.write_text("MessageSid=SM1&MessageStatus=delivered&To=%2B14155552671\nBody=Stop+it%21\n")

    assert records_of(path) == [
        (1, '{"MessageSid":"SM1","MessageStatus":"delivered","To":"+14155552671"}', None),
        (2, '{"Body":"Stop it!"}', None),
    ]


def test_a_line_that_is_not_form_encoded_is_kept_with_its_problem(tmp_path: Path) -> None:
    path = tmp_path / "twilio.txt"
    path.write_text("MessageSid=SM1&MessageStatus=sent\njust some words\n")

    assert records_of(path)[1] == (
        2,
        "just some words",
        "not a form-encoded line (key=value&...)",
    )


def test_bytes_that_are_not_utf8_are_kept_escaped_with_their_problem(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(b'{"a":1}\n\xff\xfe\x00garbage\n{"b":2}\n')

    assert records_of(path) == [
        (1, '{"a":1}', None),
        (2, "\\xff\\xfe\x00garbage", "not valid UTF-8 text"),
        (3, '{"b":2}', None),
    ]


def test_a_truncated_json_document_is_kept_whole_with_its_problem(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text('[{"event": "open"}, {"event": "cli')

    [(line, record, problem)] = records_of(path)
    assert (line, record) == (1, '[{"event": "open"}, {"event": "cli')
    assert problem.startswith("malformed JSON document")


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_an_empty_file_has_no_records(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.ndjson"
    path.write_bytes(content)

    assert records_of(path) == []
