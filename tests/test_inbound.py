"""Inbound SMS: linked to the send-out it answers, classified, and billed (DESIGN §5-§6)."""

from tests.events import twilio_inbound, twilio_status
from tests.warehouse_builders import add_message, add_sendout, ingest_events, run_refresh

PHONE = "+447911123456"


def sent_sms(db, tmp_path, sendout_id: str, message_id: str, at: str) -> None:
    add_sendout(db, sendout_id, ("sms",), forward_to="+447700000001")
    add_message(db, message_id, sendout_id, PHONE, "sms", "Your appointment is tomorrow")
    ingest_events(
        db,
        tmp_path,
        [
            twilio_status(
                f"SM{message_id}",
                "sent",
                PHONE,
                sendout_message_id=message_id,
                sendout_received_at=at,
            )
        ],
    )


def test_a_reply_answers_the_latest_sms_sent_to_that_number_before_it(db_path, tmp_path, query):
    sent_sms(db_path, tmp_path, "s1", "m1", "2026-11-01T09:00:00Z")
    sent_sms(db_path, tmp_path, "s2", "m2", "2026-11-03T09:00:00Z")
    ingest_events(
        db_path,
        tmp_path,
        [
            twilio_inbound("SMa", PHONE, "Thanks!", "2026-11-02T10:00:00Z"),
            twilio_inbound("SMb", PHONE, "See you", "2026-11-04T10:00:00Z"),
            twilio_inbound("SMc", "+447911000111", "Who is this?", "2026-11-04T10:00:00Z"),
        ],
    )

    run_refresh(db_path)

    rows = query("SELECT from_number, body, sendout_id, keyword FROM inbound_messages ORDER BY 2")
    assert rows == [
        {"from_number": PHONE, "body": "See you", "sendout_id": "s2", "keyword": "other"},
        {"from_number": PHONE, "body": "Thanks!", "sendout_id": "s1", "keyword": "other"},
        {
            "from_number": "+447911000111",
            "body": "Who is this?",
            "sendout_id": None,
            "keyword": "other",
        },
    ]


def test_inbound_forwarded_and_replied_sms_are_billed_per_segment(db_path, tmp_path, query):
    sent_sms(db_path, tmp_path, "s1", "m1", "2026-11-01T09:00:00Z")
    ingest_events(
        db_path, tmp_path, [twilio_inbound("SMa", PHONE, "x" * 161, "2026-11-02T10:00:00Z")]
    )
    at = "2026-11-02T10:00:01Z"
    # what the webhook service lands once it has forwarded and answered (the reply twice)
    handled = [
        {
            "MessageSid": "SMa",
            "MessageStatus": "forwarded",
            "To": PHONE,
            "Body": "From +447911123456: " + "x" * 161,
            "sendout_received_at": at,
        },
        {
            "MessageSid": "SMa",
            "MessageStatus": "replied",
            "To": PHONE,
            "Body": "Thanks, we got it",
            "sendout_received_at": at,
        },
    ]
    ingest_events(db_path, tmp_path, [*handled, handled[1]])

    run_refresh(db_path)

    [row] = query("SELECT status, forward_to, billable_units, cost FROM inbound_messages")
    assert row["status"] == "Replied"
    assert row["forward_to"] == "+447700000001"
    assert row["billable_units"] == 2 + 2 + 1  # received, forwarded (same text), the reply
    assert row["cost"] == 5 * 0.04
    [stats] = query("SELECT inbound, cost FROM sendout_channel_stats WHERE channel = 'sms'")
    assert stats == {"inbound": 1, "cost": (1 + 5) * 0.04}


def test_a_stop_reply_is_classified_and_shows_on_its_send_out(db_path, tmp_path, query):
    sent_sms(db_path, tmp_path, "s1", "m1", "2026-11-01T09:00:00Z")
    ingest_events(db_path, tmp_path, [twilio_inbound("SMa", PHONE, "Stop", "2026-11-02T10:00:00Z")])

    run_refresh(db_path)

    assert query("SELECT keyword, status, sendout_id FROM inbound_messages") == [
        {"keyword": "stop", "status": "Received", "sendout_id": "s1"}
    ]
    assert query("SELECT reason, sendout_id FROM unsubscribes") == [
        {"reason": "stop_reply", "sendout_id": "s1"}
    ]
