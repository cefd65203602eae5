"""The Unsubscribes list follows DESIGN §6: each cause with its reason and scope, START after
STOP, soft-bounce streaks, manual changes with who and why, append-only history."""

from pathlib import Path

import pytest

from tests.events import ses, soon, twilio_inbound, twilio_status
from tests.warehouse_builders import add_message, add_sendout, ingest_events, run_refresh
from warehouse import unsubscribes
from warehouse.db import open_warehouse

ADA = "ada@example.com"
BOB = "bob@example.com"
PHONE = "+447911123456"


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing"


def listed(query) -> list[tuple]:
    return [
        (r["channel"], r["address"], r["reason"], r["scope"])
        for r in query("SELECT * FROM unsubscribes ORDER BY channel, address, reason")
    ]


@pytest.mark.parametrize(
    ("event", "reason", "scope"),
    [
        (ses("Bounce", ADA, bounce_type="Permanent", status="5.0.0"), "bounced", "all"),
        (ses("Bounce", ADA, status="5.1.1"), "bad_email", "all"),
        (ses("Complaint", ADA), "complaint", "all"),
        (ses("Subscription", ADA), "unsubscribed", "marketing"),
        (ses("Bounce", ADA, subtype="OnAccountSuppressionList"), "provider_suppressed", "all"),
    ],
)
def test_each_email_cause_adds_its_reason_and_scope(db_path, landing, query, event, reason, scope):
    ingest_events(db_path, landing, [event])

    run_refresh(db_path)

    assert listed(query) == [("email", ADA, reason, scope)]


@pytest.mark.parametrize("status", ["5.7.1", "5.7.26", "5.2.2", "5.3.4"])
def test_a_refusal_of_the_message_not_the_address_lists_nobody(db_path, landing, query, status):
    """Blocked as spam, failed authentication, a full mailbox, a message too big: the address
    is good, and a good address on the list is the worst error (DESIGN §4)."""
    ingest_events(db_path, landing, [ses("Bounce", ADA, bounce_type="Permanent", status=status)])

    run_refresh(db_path)

    assert listed(query) == []


def test_a_soft_bounce_alone_adds_nothing(db_path, landing, query):
    ingest_events(db_path, landing, [ses("Bounce", ADA, bounce_type="Transient", status="4.2.2")])

    run_refresh(db_path)

    assert listed(query) == []


def test_a_bad_number_adds_it_for_sms_only(db_path, landing, query):
    ingest_events(db_path, landing, [twilio_status("SM1", "undelivered", PHONE, "30005")])

    run_refresh(db_path)

    assert listed(query) == [("sms", PHONE, "bad_number", "all")]


def test_events_for_unknown_messages_still_feed_the_list(db_path, landing, query):
    ingest_events(db_path, landing, [ses("Complaint", ADA, message_id="never-sent-by-us")])

    run_refresh(db_path)

    assert query("SELECT message_id FROM events") == [{"message_id": None}]
    assert listed(query) == [("email", ADA, "complaint", "all")]


def test_a_stop_reply_adds_and_start_lifts_it_and_stop_again_adds_it(db_path, landing, query):
    ingest_events(
        db_path, landing, [twilio_inbound("SM1", PHONE, " stop ", "2026-11-02T10:00:00Z")]
    )
    run_refresh(db_path)
    after_stop = listed(query)

    ingest_events(db_path, landing, [twilio_inbound("SM2", PHONE, "Start", "2026-11-02T11:00:00Z")])
    run_refresh(db_path)
    after_start = listed(query)

    ingest_events(db_path, landing, [twilio_inbound("SM3", PHONE, "QUIT", "2026-11-02T12:00:00Z")])
    run_refresh(db_path)

    assert after_stop == [("sms", PHONE, "stop_reply", "all")]
    assert after_start == []
    assert listed(query) == [("sms", PHONE, "stop_reply", "all")]
    assert [r["action"] for r in query("SELECT action FROM unsubscribe_changes ORDER BY 1")] == [
        "add",
        "add",
        "remove",
    ]


def test_start_lifts_only_a_stop_not_a_bad_number(db_path, landing, query):
    ingest_events(db_path, landing, [twilio_status("SM0", "failed", PHONE, "21614")])
    ingest_events(db_path, landing, [twilio_inbound("SM1", PHONE, "START", "2026-11-02T11:00:00Z")])

    run_refresh(db_path)

    assert listed(query) == [("sms", PHONE, "bad_number", "all")]


def test_a_start_that_arrives_before_its_earlier_stop_still_wins(db_path, landing, query):
    ingest_events(db_path, landing, [twilio_inbound("SM2", PHONE, "START", "2026-11-02T11:00:00Z")])
    run_refresh(db_path)
    ingest_events(db_path, landing, [twilio_inbound("SM1", PHONE, "STOP", "2026-11-02T10:00:00Z")])
    run_refresh(db_path)

    assert listed(query) == []


def soft_bounce(message_id: str, at: str) -> dict:
    return ses("Bounce", ADA, message_id, bounce_type="Transient", status="4.2.2", at=at)


def test_three_soft_bounces_in_a_row_across_send_outs_add_the_address(db_path, landing, query):
    ingest_events(
        db_path,
        landing,
        [soft_bounce("m1", "2026-11-01T09:00:00Z"), soft_bounce("m2", "2026-11-02T09:00:00Z")],
    )
    run_refresh(db_path)
    after_two = listed(query)
    ingest_events(db_path, landing, [soft_bounce("m3", "2026-11-03T09:00:00Z")])

    run_refresh(db_path)

    assert after_two == []
    assert listed(query) == [("email", ADA, "repeated_soft_bounce", "all")]


def test_a_delivery_between_soft_bounces_breaks_the_streak(db_path, landing, query):
    ingest_events(
        db_path,
        landing,
        [
            soft_bounce("m1", "2026-11-01T09:00:00Z"),
            soft_bounce("m2", "2026-11-02T09:00:00Z"),
            ses("Delivery", ADA, "m3", at="2026-11-03T09:00:00Z"),
            soft_bounce("m4", "2026-11-04T09:00:00Z"),
        ],
    )

    run_refresh(db_path)

    assert listed(query) == []


def test_two_soft_bounces_of_one_message_count_once(db_path, landing, query):
    ingest_events(
        db_path,
        landing,
        [
            soft_bounce("m1", "2026-11-01T09:00:00Z"),
            soft_bounce("m1", "2026-11-01T10:00:00Z"),
            soft_bounce("m2", "2026-11-02T09:00:00Z"),
        ],
    )

    run_refresh(db_path)

    assert listed(query) == []


def test_deriving_twice_adds_nothing(db_path, landing, query):
    ingest_events(db_path, landing, [ses("Complaint", ADA)])
    run_refresh(db_path)

    again = run_refresh(db_path, full=True)

    assert again.unsubscribe_changes == 0
    assert query("SELECT count(*) AS n FROM unsubscribe_changes") == [{"n": 1}]


def test_a_manual_removal_is_recorded_and_stands_until_something_newer(db_path, landing, query):
    ingest_events(db_path, landing, [ses("Complaint", ADA, at="2026-11-02T09:00:00Z")])
    run_refresh(db_path)
    with open_warehouse(db_path) as con:
        removed = unsubscribes.remove(
            con, "email", "ADA@example.com", "ana", "complained by mistake"
        )
    run_refresh(db_path, full=True)
    after_refresh = listed(query)
    ingest_events(db_path, landing, [ses("Complaint", ADA, "m2", at=soon())])
    run_refresh(db_path)

    assert [e.reason for e in removed] == ["complaint"]
    assert after_refresh == []
    assert listed(query) == [("email", ADA, "complaint", "all")]
    history = query("SELECT action, changed_by, note FROM unsubscribe_changes ORDER BY change_id")
    assert history == [
        {"action": "add", "changed_by": "sendout", "note": None},
        {"action": "remove", "changed_by": "ana", "note": "complained by mistake"},
        {"action": "add", "changed_by": "sendout", "note": None},
    ]


def test_removing_an_address_that_is_not_listed_is_a_clear_error(db_path):
    with (
        open_warehouse(db_path) as con,
        pytest.raises(unsubscribes.UnsubscribeError, match="not on"),
    ):
        unsubscribes.remove(con, "email", ADA, "ana", "why not")


def test_a_manual_change_needs_a_reason(db_path):
    with open_warehouse(db_path) as con, pytest.raises(unsubscribes.UnsubscribeError, match="why"):
        unsubscribes.add(con, "email", ADA, "all", "ana", "   ")


def test_adding_never_narrows_an_entry_but_may_widen_one(db_path):
    """Kept from all messages, an address is not put back within reach of reminders by adding
    it for marketing only: that takes a removal (admins, with a reason)."""
    with open_warehouse(db_path) as con:
        unsubscribes.add(con, "email", ADA, "all", "ana", "asked at the desk")
        with pytest.raises(unsubscribes.UnsubscribeError, match="already kept from all"):
            unsubscribes.add(con, "email", ADA, "marketing", "sam", "newsletter only")
        unsubscribes.add(con, "email", BOB, "marketing", "ana", "newsletter only")
        widened = unsubscribes.add(con, "email", BOB, "all", "ana", "nothing at all now")
        still = unsubscribes.skip_reason(con, "email", ADA, "non_marketing")

    assert still is not None and still.scope == "all"
    assert widened.scope == "all"


@pytest.mark.parametrize(
    ("scope", "communication_type", "skipped"),
    [
        ("all", "marketing", True),
        ("all", "non_marketing", True),
        ("marketing", "marketing", True),
        ("marketing", "non_marketing", False),
    ],
)
def test_scope_decides_which_send_outs_skip_an_address(db_path, scope, communication_type, skipped):
    with open_warehouse(db_path) as con:
        unsubscribes.add(con, "email", ADA, scope, "ana", "asked by phone")
        reason = unsubscribes.skip_reason(con, "email", ADA, communication_type)
        batch = unsubscribes.skip_reasons(con, [ADA, "someone@example.org"], communication_type)

    assert (reason is not None) == skipped
    if skipped:
        assert (reason.reason, reason.scope, reason.added_by) == ("manual", scope, "ana")
        assert batch == {("email", ADA): "manual"}  # as dispatch asks, for a batch at once
    else:
        assert batch == {}


def test_of_two_entries_skip_reason_names_the_one_dispatch_records(db_path, landing):
    add_sendout(db_path, "s1")
    add_message(db_path, "m1", "s1", ADA)
    ingest_events(db_path, landing, [ses("Bounce", ADA, "m1", status="5.1.1")])
    run_refresh(db_path)
    with open_warehouse(db_path) as con:
        unsubscribes.add(con, "email", ADA, "all", "ana", "asked by phone")  # newer: manual
        entry = unsubscribes.skip_reason(con, "email", ADA, "non_marketing")
        recorded = unsubscribes.skip_reasons(con, [ADA], "non_marketing")

    assert recorded == {("email", ADA): "bad_email"}
    assert (entry.reason, entry.scope) == ("bad_email", "all")


def test_an_email_entry_never_blocks_sms(db_path):
    with open_warehouse(db_path) as con:
        unsubscribes.add(con, "email", ADA, "all", "ana", "asked")
        assert unsubscribes.skip_reason(con, "sms", ADA, "marketing") is None


def test_an_entry_remembers_the_send_out_it_came_from(db_path, landing, query):
    add_sendout(db_path, "s1")
    add_message(db_path, "m1", "s1", ADA)
    ingest_events(db_path, landing, [ses("Bounce", ADA, "m1", status="5.1.1")])

    run_refresh(db_path)

    assert query("SELECT sendout_id, cause FROM unsubscribes") == [
        {"sendout_id": "s1", "cause": "bad_email"}
    ]


def test_a_bounce_entry_says_why_the_mail_bounced(db_path, landing, query):
    ingest_events(db_path, landing, [ses("Bounce", ADA, status="5.1.1")])
    run_refresh(db_path)

    with open_warehouse(db_path) as con:
        [entry] = unsubscribes.entries(con)

    assert (entry.reason, entry.why) == ("bad_email", "Mailbox does not exist (5.1.1)")


def test_a_bad_number_entry_says_why_in_a_numbers_words(db_path, landing, query):
    event = twilio_status(
        "SM1", "undelivered", "+447911123456", "30005", sendout_received_at=soon()
    )
    ingest_events(db_path, landing, [event])
    run_refresh(db_path)

    with open_warehouse(db_path) as con:
        [entry] = unsubscribes.entries(con)

    assert (entry.reason, entry.why) == (
        "bad_number",
        "Number does not exist or cannot receive SMS (30005)",
    )
