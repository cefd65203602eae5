"""Send-out figures (DESIGN §5): counts, progress, accepted, rates (null, not zero, when there is
nothing to divide by), cost, and the send-out's own status."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.events import sendgrid, ses
from tests.warehouse_builders import add_message, add_sendout, ingest_events, run_refresh


def summary(query, sendout_id: str = "s1", channel: str = "email") -> dict:
    [row] = query(
        "SELECT * FROM sendout_summary WHERE sendout_id = ? AND channel = ?", [sendout_id, channel]
    )
    return row


def test_counts_accepted_and_rates_of_an_email_send_out(db_path, tmp_path, query):
    add_sendout(db_path, "s1")
    outcomes = {
        "m1": [ses("Delivery", "a@example.com", "m1")],
        "m2": [ses("Delivery", "b@example.com", "m2"), ses("Open", "b@example.com", "m2")],
        "m3": [ses("Delivery", "c@example.com", "m3"), ses("Click", "c@example.com", "m3")],
        "m4": [ses("Bounce", "d@example.com", "m4", bounce_type="Permanent", status="5.7.1")],
        "m5": [ses("Bounce", "e@example.com", "m5", status="5.1.1")],
        "m6": [ses("Bounce", "f@example.com", "m6", subtype="Suppressed")],
        "m7": [],
    }
    for n, (message_id, events) in enumerate(outcomes.items()):
        add_message(db_path, message_id, "s1", f"{'abcdefg'[n]}@example.com")
        if events:
            ingest_events(db_path, tmp_path, events)

    run_refresh(db_path)
    row = summary(query)

    assert (row["planned"], row["done"]) == (7, 6)
    assert (row["delivered"], row["opened"], row["clicked"]) == (1, 1, 1)
    assert (row["bounced"], row["bad_email"], row["skipped"], row["queued"]) == (1, 1, 1, 1)
    assert row["accepted"] == 7 - 1 - 1 - 1 - 1  # attempted (not skipped, not queued) - rejected
    assert row["open_rate"] == pytest.approx(2 / 3)  # the click counts as an open
    assert row["click_rate"] == pytest.approx(1 / 3)
    assert row["click_to_open_rate"] == pytest.approx(1 / 2)
    assert row["cost"] == pytest.approx(5 * 0.0001)  # skipped and queued cost nothing


def test_human_open_rate_leaves_out_messages_opened_only_by_machines(db_path, tmp_path, query):
    add_sendout(db_path, "s1")
    for n in range(2):
        add_message(db_path, f"m{n}", "s1", f"p{n}@example.com")
    ingest_events(
        db_path,
        tmp_path,
        [
            [
                sendgrid("delivered", "p0@example.com", "d0", sendout_message_id="m0"),
                sendgrid(
                    "open", "p0@example.com", "o0", sendout_message_id="m0", sg_machine_open=True
                ),
                sendgrid("delivered", "p1@example.com", "d1", sendout_message_id="m1"),
                sendgrid(
                    "open", "p1@example.com", "o1", sendout_message_id="m1", sg_machine_open=False
                ),
            ]
        ],
        suffix=".json",
    )

    run_refresh(db_path)
    row = summary(query)

    assert (row["open_rate"], row["human_open_rate"]) == (1.0, 0.5)


def test_rates_are_null_not_zero_when_nothing_was_accepted_or_opened(db_path, tmp_path, query):
    add_sendout(db_path, "s1")
    add_message(db_path, "m1", "s1", "a@example.com")
    add_message(db_path, "m2", "s1", "b@example.com")
    ingest_events(db_path, tmp_path, [ses("Bounce", "a@example.com", "m1", subtype="Suppressed")])

    run_refresh(db_path)
    row = summary(query)

    assert row["accepted"] == 0
    assert (row["open_rate"], row["human_open_rate"], row["click_rate"]) == (None, None, None)
    assert row["click_to_open_rate"] is None


def test_click_to_open_is_null_when_accepted_messages_were_not_opened(db_path, tmp_path, query):
    add_sendout(db_path, "s1")
    add_message(db_path, "m1", "s1", "a@example.com")
    ingest_events(db_path, tmp_path, [ses("Delivery", "a@example.com", "m1")])

    run_refresh(db_path)
    row = summary(query)

    assert (row["open_rate"], row["click_rate"], row["click_to_open_rate"]) == (0.0, 0.0, None)


NOW = datetime.now(UTC)


@pytest.mark.parametrize(
    ("columns", "events", "status"),
    [
        ({"scheduled_at": NOW + timedelta(hours=1)}, None, "Scheduled"),
        ({}, [], "Sending..."),
        ({}, [ses("Send", "a@example.com", "m1")], "Sending..."),
        ({}, [ses("Bounce", "a@example.com", "m1", status="5.1.1")], "Sent"),
        ({}, [ses("Delivery", "a@example.com", "m1")], "Delivered"),
        ({"cancelled_at": NOW}, None, "Cancelled"),
    ],
)
def test_the_send_out_status_follows_its_first_message(
    db_path, tmp_path, query, columns, events, status
):
    add_sendout(db_path, "s1", **columns)
    if events is not None:
        add_message(db_path, "m1", "s1", "a@example.com")
        if events:
            ingest_events(db_path, tmp_path, events)

    run_refresh(db_path)

    assert summary(query)["sendout_status"] == status


def test_a_send_out_records_when_it_became_sent_and_delivered(db_path, tmp_path, query):
    add_sendout(db_path, "s1")
    add_message(db_path, "m1", "s1", "a@example.com")
    add_message(db_path, "m2", "s1", "b@example.com")
    ingest_events(
        db_path,
        tmp_path,
        [
            ses("Delivery", "a@example.com", "m1", at="2026-11-02T09:05:00Z"),
            ses("Delivery", "b@example.com", "m2", at="2026-11-02T09:01:00Z"),
        ],
    )

    run_refresh(db_path)
    row = summary(query)

    assert row["sendout_delivered_at"] == datetime(2026, 11, 2, 9, 1, tzinfo=UTC)
    assert row["sendout_sent_at"] == datetime(2026, 11, 2, 9, 1, tzinfo=UTC)


def test_report_json_prints_the_summary_rows(db_path, tmp_path):
    from click.testing import CliRunner

    from flows.cli import cli

    add_sendout(db_path, "s1", ("email", "sms"))
    add_message(db_path, "m1", "s1", "a@example.com")
    ingest_events(db_path, tmp_path, [ses("Delivery", "a@example.com", "m1")])
    runner = CliRunner()
    runner.invoke(cli, ["--db", str(db_path), "refresh"])

    result = runner.invoke(cli, ["--db", str(db_path), "report", "s1", "--json"])
    missing = runner.invoke(cli, ["--db", str(db_path), "report", "nope"])

    rows = json.loads(result.output)
    assert [(r["channel"], r["sendout_status"], r["delivered"]) for r in rows] == [
        ("email", "Delivered", 1),
        ("sms", "Delivered", None),
    ]
    assert (missing.exit_code, missing.output.strip()) == (1, "Error: there is no send-out nope")
