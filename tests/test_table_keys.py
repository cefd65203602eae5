"""Every table's key holds after real work: ingest twice, refresh incrementally and fully."""

from tests.events import sendgrid, ses, twilio_inbound, twilio_status
from tests.warehouse_builders import add_message, add_sendout, ingest_events, run_refresh

KEYS = {
    "events": "provider, event_id",
    "ingested_files": "file_hash",
    "quarantine": "quarantine_id",
    "contacts": "contact_id",
    "messages": "message_id",
    "message_status": "message_id",
    "sendout_channel_stats": "sendout_id, channel",
    "sendout_status_groups": "sendout_id, channel, status, has_outcome, is_opened, is_clicked, "
    "is_machine_open_only",
    "sendout_summary": "sendout_id, channel",
    "inbound_messages": "event_id",
    "unsubscribe_changes": "change_id",
    "unsubscribes": "channel, address, reason",
}


def test_no_key_is_ever_duplicated(db_path, tmp_path, query):
    add_sendout(db_path, "s1", ("email", "sms"))
    add_message(db_path, "m1", "s1", "ada@example.com")
    add_message(db_path, "m2", "s1", "+447911123456", "sms", "Hi", "SM1")
    batch = [ses("Delivery", "ada@example.com", "m1"), ses("Complaint", "ada@example.com", "m1")]
    for _ in range(2):
        ingest_events(db_path, tmp_path, batch)
        ingest_events(
            db_path,
            tmp_path,
            [
                twilio_status("SM1", "delivered", "+447911123456"),
                twilio_inbound("SM9", "+447911123456", "STOP", "2026-11-02T10:00:00Z"),
            ],
        )
        ingest_events(db_path, tmp_path, [[sendgrid("open", "bob@example.com")]], suffix=".json")
        ingest_events(db_path, tmp_path, [ses("Open", "ada@example.com", "m1")])
        run_refresh(db_path)
    run_refresh(db_path, full=True)

    for table, key in KEYS.items():
        [row] = query(f"SELECT count(*) AS rows, count(DISTINCT ({key})) AS keys FROM {table}")
        assert row["rows"] == row["keys"], table
        assert row["rows"] > 0 or table in ("quarantine", "contacts", "ingested_files"), table


def test_a_provider_skip_outranks_what_only_says_the_message_left_us():
    from tests.test_final_status import status_of

    assert status_of([("queued", 0), ("sent", 1), ("skipped", 2)])["status"] == "Skipped"
    assert status_of([("skipped", 0), ("deferred", 1)])["status"] == "Sent"
    assert status_of([("skipped", 0), ("delivered", 1)])["status"] == "Delivered"
