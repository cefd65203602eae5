"""Every documented provider payload under tests/fixtures/providers maps to the expected events.

expected.json was written from the providers' documentation, independently of the parsers.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import PROVIDER_FIXTURES
from warehouse.ingest import ingest_paths

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
