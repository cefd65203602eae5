"""Sendout's own records round-trip: what the webhook service and the sandbox write
(warehouse/own_records.py) is what ingest reads back, field for field."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.warehouse_builders import add_message, add_sendout
from warehouse.ingest import ingest_paths
from warehouse.own_records import (
    handled_sms,
    received_callback,
    tracking_event,
    write_landing_file,
)
from warehouse.vocabulary import EventType

AT = datetime.now(UTC).replace(microsecond=123_000) - timedelta(minutes=5)


def test_tracking_events_come_back_as_events_of_their_message(db_path: Path, tmp_path, query):
    add_sendout(db_path, "so1")
    add_message(db_path, "m1", "so1", "ada@example.com")
    records = [
        tracking_event(EventType.OPENED, "m1", None, "Mozilla/5.0", False, AT),
        tracking_event(EventType.CLICKED, "m1", "https://example.org/a", "Scanner", True, AT),
        tracking_event(EventType.UNSUBSCRIBED, "m1", None, "Mozilla/5.0", False, AT),
    ]
    write_landing_file(tmp_path / "landing", "tracking", records)

    summary = ingest_paths(db_path, [tmp_path / "landing"])

    assert (summary.events_new, summary.quarantined) == (3, 0)
    assert query(
        "SELECT event_type, message_id, occurred_at, is_machine_open FROM events ORDER BY seq"
    ) == [
        {"event_type": "opened", "message_id": "m1", "occurred_at": AT, "is_machine_open": False},
        {"event_type": "clicked", "message_id": "m1", "occurred_at": AT, "is_machine_open": True},
        {
            "event_type": "unsubscribed",
            "message_id": "m1",
            "occurred_at": AT,
            "is_machine_open": False,
        },
    ]


def test_a_forwarded_and_answered_sms_comes_back_with_its_inbound_message(
    db_path: Path, tmp_path, query
):
    inbound = {
        "MessageSid": "SMin1",
        "SmsSid": "SMin1",
        "AccountSid": "AC1",
        "SmsStatus": "received",
        "From": "+447911123456",
        "To": "+14155550000",
        "Body": "Thanks!",
    }
    records = [
        received_callback(inbound, AT),
        handled_sms("SMin1", EventType.FORWARDED, "+447911654321", "From +44...: Thanks!", AT),
        handled_sms("SMin1", EventType.REPLIED, "+447911123456", "We got it", AT),
    ]
    write_landing_file(tmp_path / "landing", "twilio", records)

    summary = ingest_paths(db_path, [tmp_path / "landing"])

    assert (summary.events_new, summary.quarantined) == (3, 0)
    assert query(
        "SELECT event_type, provider_message_id, occurred_at FROM events ORDER BY event_type"
    ) == [
        {"event_type": str(t), "provider_message_id": "SMin1", "occurred_at": AT}
        for t in sorted([EventType.FORWARDED, EventType.RECEIVED, EventType.REPLIED])
    ]


def test_a_landing_file_is_whole_or_absent(tmp_path: Path) -> None:
    folder = tmp_path / "landing"

    assert write_landing_file(folder, "tracking", []) is None
    path = write_landing_file(folder, "tracking", [{"a": 1}, {"b": 2}])

    assert [p.name for p in folder.iterdir()] == [path.name]
    assert path.read_bytes() == b'{"a":1}\n{"b":2}\n'
