"""Every documented provider payload under tests/fixtures/providers maps to the expected events.

expected.json was written from the providers' documentation, independently of the parsers.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from tests.conftest import PROVIDER_FIXTURES
from warehouse.db import arrow_table
from warehouse.ingest import ingest_paths
from warehouse.parsers import detect_provider, load_parser, needs_classifier, parsing_connection
from warehouse.records import array_reader, read_records

EXPECTED = json.loads((PROVIDER_FIXTURES / "expected.json").read_text())
QUARANTINED = EXPECTED.pop("quarantined")
COMPARED = (
    "event_type",
    "recipient",
    "sendout_message_id",
    "provider_message_id",
    "bounce_kind",
    "status_code",
    "is_machine_open",
    "url",
    "occurred_at",
)


def _as_expected(row: dict, receipt_time: datetime) -> dict:
    occurred = row["occurred_at"]
    reason = row["bounce_reason"]
    row = {key: row[key] for key in COMPARED}
    if reason is not None:  # why a delivery failed, where it did (only then expected)
        row["bounce_reason"] = reason
    row["occurred_at"] = (
        None
        if occurred == receipt_time
        else occurred.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )
    return row


def _sorted(events: list[dict]) -> list[dict]:
    return sorted(events, key=lambda e: json.dumps(e, sort_keys=True))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_file_maps_to_the_documented_events(name: str, db_path: Path, query) -> None:
    path = PROVIDER_FIXTURES / name
    summary = ingest_paths(db_path, [path])

    receipt_time = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    events = [_as_expected(row, receipt_time) for row in query("SELECT * FROM events")]
    assert _sorted(events) == _sorted(EXPECTED[name])
    assert summary.quarantined == QUARANTINED.get(name, 0)
    assert summary.events_new == len(EXPECTED[name])


def test_without_the_classifier_a_record_parses_the_same_or_asks_for_it() -> None:
    """Ingest first tries each parser without the failure classifier (Parser.queries); a record
    either parses exactly as with it, or stops that query and is parsed with the classifier."""
    con = parsing_connection()
    asked, same = set(), set()
    for name in sorted(EXPECTED):
        path = PROVIDER_FIXTURES / name
        records = pa.concat_tables(read_records(path, con=array_reader()))
        parser = load_parser(con, detect_provider(records["record"].to_pylist()))
        *cheaper, whole = parser.queries
        for statement in parser.setup:
            con.execute(statement)
        params = {"received_at": datetime.now(UTC)} if parser.needs_receipt_time else {}
        for i in range(records.num_rows):
            con.register("records", records.slice(i, 1))
            expected = arrow_table(con, whole, params)
            for query in cheaper:
                try:
                    parsed = arrow_table(con, query, params)
                except duckdb.Error as error:
                    assert needs_classifier(error), error
                    asked.add(name)
                else:
                    assert parsed.to_pylist() == expected.to_pylist(), (name, i)
                    same.add(name)
            con.unregister("records")

    assert "ses/bounce_failed_and_delayed.json" in asked
    assert "ses/sns_envelope_delivery.json" in same
