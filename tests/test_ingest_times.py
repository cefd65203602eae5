"""Event times that cannot be true are never stored (issue 16, item 7): a time that is not finite,
before 2000 or more than a day ahead quarantines its record, with the value in the reason (a
bounce mail's Date gives way to the time of receipt instead, flagged); an event dated before its
message was handed to the provider is kept with the time of receipt and flagged. Good events in
the same file are stored."""

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, PROVIDER_FIXTURES
from tests.events import ses, twilio_inbound, write_ndjson
from tests.warehouse_builders import add_message, add_sendout, run_refresh
from warehouse.db import open_warehouse
from warehouse.ingest import ingest_paths

TWO_DAYS_AHEAD = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
IMPOSSIBLE = {
    "Infinity": ("Infinity", "not a finite time"),
    "year 0001": ("0001-01-01T00:00:00Z", "before 2000-01-01"),
    "year 1800": ("1800-06-01T12:00:00Z", "before 2000-01-01"),
    "year 9999": ("9999-12-31T23:59:59Z", "more than a day after its ingest"),
    "year 10000": ("10000-01-01T00:00:00Z", "more than a day after its ingest"),
    "-1 epoch": ("-1", "before 2000-01-01"),
    "two days ahead": (TWO_DAYS_AHEAD, "more than a day after its ingest"),
}


def _fixture(path: str, index: int = 0) -> dict:
    text = (PROVIDER_FIXTURES / path).read_text()
    if path.endswith(".ndjson"):
        return json.loads(text.splitlines()[index])
    document = json.loads(text)
    return document[index] if isinstance(document, list) else document


def ses_record(at: str) -> dict:
    return ses("Open", at=at)


def sns_wrapped(at: str) -> dict:
    return {
        "Type": "Notification",
        "MessageId": f"sns-{at}",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:sendout",
        "Message": json.dumps(ses("Delivery", at=at)),
    }


def sendgrid_record(at: str) -> dict:
    event = _fixture("sendgrid/event_webhook.json")
    return {**event, "timestamp": at, "sg_event_id": f"sg-{at}"}


def mailgun_record(at: str) -> dict:
    body = _fixture("mailgun/webhooks.ndjson", 1)
    body["event-data"] = {**body["event-data"], "timestamp": at, "id": f"mg-{at}"}
    return body


def postmark_record(at: str) -> dict:
    return {**_fixture("postmark/delivery.json"), "DeliveredAt": at}


def twilio_record(at: str) -> dict:
    return twilio_inbound(f"SM{abs(hash(at))}", "+447911123456", "Hello", at)


BUILDERS = {
    "ses": ses_record,
    "ses-in-sns": sns_wrapped,
    "sendgrid": sendgrid_record,
    "mailgun": mailgun_record,
    "postmark": postmark_record,
    "twilio": twilio_record,
}
GOOD_TIME = "2026-11-02T09:00:05Z"


@pytest.mark.parametrize("value", IMPOSSIBLE)
@pytest.mark.parametrize("provider", BUILDERS)
def test_an_impossible_time_is_quarantined_naming_it_and_the_good_events_are_stored(
    provider, value, db_path, tmp_path, query
):
    text, why = IMPOSSIBLE[value]
    build = BUILDERS[provider]
    path = write_ndjson(tmp_path / "events.ndjson", [build(GOOD_TIME), build(text)])

    summary = ingest_paths(db_path, [path])

    assert (summary.events_new, summary.quarantined) == (1, 1)
    [kept] = query("SELECT source_line, reason FROM quarantine")
    assert kept["source_line"] == 2
    assert f"'{text}'" in kept["reason"] and why in kept["reason"]
    [stored] = query("SELECT isfinite(occurred_at) AS finite, occurred_at FROM events")
    assert stored["finite"] and stored["occurred_at"].year == 2026


def test_sendgrids_epoch_numbers_are_judged_like_their_text(db_path, tmp_path, query):
    events = [sendgrid_record(1793610000), sendgrid_record(-1), sendgrid_record(253402300800)]
    (tmp_path / "sg.json").write_text(json.dumps(events))

    summary = ingest_paths(db_path, [tmp_path / "sg.json"])

    assert (summary.events_new, summary.quarantined) == (1, 2)
    early, late = (r["reason"] for r in query("SELECT reason FROM quarantine ORDER BY source_line"))
    assert early == "impossible timestamp '-1': before 2000-01-01"
    assert late.startswith("impossible timestamp '253402300800': more than a day after its ingest")


def test_bounce_mail_dated_1800_is_kept_with_the_time_of_receipt_and_flagged(
    db_path, tmp_path, query
):
    """A bounce's Date is a far MTA's clock, or an old message fed again: the bounce still
    happened, and it came when the file did."""
    raw = (FIXTURES / "mail" / "rfc" / "postfix_5_7_1_blocklist.eml").read_text()
    dated = re.sub(r"(?m)^Date: .*$", "Date: Sun, 01 Jun 1800 12:00:00 +0000", raw, count=1)
    path = tmp_path / "old.eml"
    path.write_text(dated)
    received = datetime.fromtimestamp(path.stat().st_mtime, UTC)

    summary = ingest_paths(db_path, [path])

    assert (summary.events_new, summary.quarantined, summary.retimed) == (1, 0, 1)
    [event] = query("SELECT event_type, occurred_at, time_problem FROM events")
    assert (event["event_type"], event["occurred_at"]) == ("bounced", received)
    assert event["time_problem"] == (
        "impossible timestamp '1800-06-01T12:00:00+00:00': before 2000-01-01;"
        " stored with the time of receipt"
    )


def dispatched(db: Path, message_id: str, sent_at: datetime) -> None:
    """A message our dispatcher handed to the provider at `sent_at`."""
    add_message(db, message_id, "so-1", "ada@example.com")
    with open_warehouse(db) as con:
        con.execute(
            "UPDATE messages SET outcome = 'sent', outcome_at = ? WHERE message_id = ?",
            [sent_at, message_id],
        )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_an_event_dated_an_hour_before_its_send_is_kept_with_the_time_of_receipt_and_flagged(
    db_path, tmp_path, query
):
    sent = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    add_sendout(db_path, "so-1")
    dispatched(db_path, "msg-1", sent)
    path = write_ndjson(
        tmp_path / "events.ndjson",
        [
            ses("Delivery", at=_iso(sent - timedelta(hours=1))),  # a clock an hour behind
            ses("Open", at=_iso(sent - timedelta(minutes=2))),  # within the allowance
        ],
    )

    summary = ingest_paths(db_path, [path])

    assert (summary.events_new, summary.quarantined, summary.retimed) == (2, 0, 1)
    rows = query("SELECT event_type, occurred_at, time_problem FROM events ORDER BY event_type")
    delivered, opened = rows
    assert delivered["occurred_at"] >= sent  # the time of receipt, never before the send
    assert delivered["time_problem"].startswith("the provider's time 2026-11-02 08:00:00 UTC")
    assert "handed to the provider at 2026-11-02 09:00:00 UTC" in delivered["time_problem"]
    assert (opened["occurred_at"], opened["time_problem"]) == (sent - timedelta(minutes=2), None)
    assert summary.as_dict()["retimed"] == 1


def test_an_early_event_of_a_message_we_did_not_dispatch_keeps_its_own_time(
    db_path, tmp_path, query
):
    at = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    path = write_ndjson(tmp_path / "events.ndjson", [ses("Delivery", at=_iso(at))])

    summary = ingest_paths(db_path, [path])

    assert (summary.events_new, summary.retimed) == (1, 0)
    assert query("SELECT occurred_at, time_problem FROM events") == [
        {"occurred_at": at, "time_problem": None}
    ]


def test_first_opened_at_is_never_infinity(db_path, tmp_path, query):
    sent = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    add_sendout(db_path, "so-1")
    dispatched(db_path, "msg-1", sent)
    opens = [ses("Delivery", at="2026-11-02T09:00:05Z"), ses("Open", at="Infinity")]
    path = write_ndjson(tmp_path / "events.ndjson", opens)

    ingest_paths(db_path, [path])
    run_refresh(db_path)

    [status] = query("SELECT status, first_opened_at FROM message_status")
    assert (status["status"], status["first_opened_at"]) == ("Delivered", None)
