"""A message's final status is its highest-ranked event, never the last to arrive (DESIGN §4)."""

from datetime import UTC, datetime, timedelta
from itertools import combinations, pairwise

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from warehouse.status import (
    Prices,
    merge_outcomes,
    message_facts,
    message_outcomes,
    message_status,
)
from warehouse.vocabulary import DISPLAY_STATUS, STATUS_RANK, EventType

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PRICES = Prices(email=0.001, sms_segment=0.04)
EVENT_SCHEMA = {
    "message_id": pl.String,
    "event_type": pl.String,
    "occurred_at": pl.Datetime("us", "UTC"),
    "is_machine_open": pl.Boolean,
    "bounce_kind": pl.String,
    "bounce_reason": pl.String,
}
# the ranking written out as DESIGN §4 states it, highest first (bad_email = bad_number)
DESIGN_ORDER = [
    ["complaint"],
    ["clicked"],
    ["opened"],
    ["bad_email", "bad_number"],
    ["bounced"],
    ["failed"],
    ["delivered"],
    ["deferred"],
    ["sent"],
    ["queued"],
]


def status_of(events: list[tuple], channel: str = "email", sms_text: str | None = None) -> dict:
    """The message_status row of message m1 given (event_type, minutes, extra...) tuples."""
    rows = [
        {
            "message_id": "m1",
            "event_type": event_type,
            "occurred_at": T0 + timedelta(minutes=minutes),
            "is_machine_open": extra.get("machine", False),
            "bounce_kind": extra.get("kind"),
            "bounce_reason": extra.get("reason"),
        }
        for event_type, minutes, *rest in events
        for extra in [rest[0] if rest else {}]
    ]
    messages = pl.LazyFrame(
        {
            "message_id": ["m1"],
            "sendout_id": ["s1"],
            "channel": [channel],
            "recipient": ["ada@example.com"],
            "sms_text": [sms_text],
        },
        schema_overrides={"sms_text": pl.String},
    )
    outcomes = message_outcomes(pl.LazyFrame(rows, schema=EVENT_SCHEMA))
    status = message_status(message_facts(messages), outcomes, PRICES, T0)
    return status.collect().row(0, named=True)


def rank_in_design(event_type: str) -> int:
    return next(i for i, group in enumerate(DESIGN_ORDER) if event_type in group)


RANKED = [e for group in DESIGN_ORDER for e in group]
# one message is email or SMS, so bad_email and bad_number never meet
PAIRS = [pair for pair in combinations(RANKED, 2) if set(pair) != {"bad_email", "bad_number"}]


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_of_any_two_events_the_higher_ranked_wins_in_either_order(a: str, b: str) -> None:
    winner = a if rank_in_design(a) < rank_in_design(b) else b
    expected = str(DISPLAY_STATUS[EventType(winner)])

    assert status_of([(a, 0), (b, 5)])["status"] == expected
    assert status_of([(b, 0), (a, 5)])["status"] == expected


def test_the_vocabulary_ranks_follow_the_design_order() -> None:
    ranks = [{STATUS_RANK[EventType(e)] for e in group} for group in DESIGN_ORDER]
    assert all(len(group) == 1 for group in ranks)  # bad_email = bad_number
    assert all(min(higher) > max(lower) for higher, lower in pairwise(ranks))


def test_a_late_bounce_after_delivery_wins() -> None:
    row = status_of([("delivered", 0), ("bounced", 60, {"kind": "hard"})])
    assert (row["status"], row["bounce_kind"]) == ("Bounced", "hard")


def test_deferred_then_delivered_is_delivered_whatever_arrives_first() -> None:
    assert status_of([("deferred", 0), ("delivered", 30)])["status"] == "Delivered"
    assert status_of([("delivered", 30), ("deferred", 0)])["status"] == "Delivered"


def test_a_message_keeps_the_reason_of_the_event_that_set_its_status() -> None:
    deferred = ("deferred", 0, {"reason": "mailbox_full"})
    bounced = ("bounced", 60, {"kind": "hard", "reason": "user_unknown"})

    assert status_of([deferred, ("delivered", 30)])["bounce_reason"] is None
    assert status_of([deferred])["bounce_reason"] == "mailbox_full"
    assert status_of([bounced, deferred, ("delivered", 30)])["bounce_reason"] == "user_unknown"
    # two equal bounces: the more precise reason, whatever the order
    vague = ("bounced", 1, {"kind": "hard", "reason": "other"})
    precise = ("bounced", 2, {"kind": "hard", "reason": "mailbox_disabled"})
    assert status_of([vague, precise])["bounce_reason"] == "mailbox_disabled"
    assert status_of([precise, vague])["bounce_reason"] == "mailbox_disabled"


def test_a_final_soft_bounce_shows_as_bounced_with_kind_soft() -> None:
    row = status_of([("sent", 0), ("deferred", 5), ("bounced", 600, {"kind": "soft"})])
    assert (row["status"], row["bounce_kind"]) == ("Bounced", "soft")


def test_a_deferred_message_shows_as_sent() -> None:
    assert status_of([("sent", 0), ("deferred", 5)])["status"] == "Sent"


def test_a_click_counts_as_an_open_and_sets_first_times() -> None:
    row = status_of([("delivered", 0), ("clicked", 10), ("opened", 20), ("clicked", 30)])

    assert row["status"] == "Clicked"
    assert (row["is_opened"], row["is_clicked"]) == (True, True)
    assert (row["open_count"], row["click_count"]) == (1, 2)
    assert row["first_opened_at"] == T0 + timedelta(minutes=10)
    assert row["first_clicked_at"] == T0 + timedelta(minutes=10)


def test_opens_only_by_machines_are_flagged() -> None:
    machine = status_of([("opened", 1, {"machine": True}), ("opened", 2, {"machine": True})])
    mixed = status_of([("opened", 1, {"machine": True}), ("opened", 2)])
    clicked = status_of([("opened", 1, {"machine": True}), ("clicked", 2)])

    assert machine["is_machine_open_only"] is True
    assert mixed["is_machine_open_only"] is False
    assert clicked["is_machine_open_only"] is False


def test_a_link_scanners_click_counts_as_a_machine_open_not_a_click() -> None:
    scanned = status_of([("delivered", 0), ("clicked", 0, {"machine": True})])
    then_read = status_of(
        [("delivered", 0), ("clicked", 0, {"machine": True}), ("clicked", 90), ("opened", 95)]
    )

    assert (scanned["status"], scanned["is_clicked"], scanned["click_count"]) == (
        "Opened",
        False,
        0,
    )
    assert (scanned["open_count"], scanned["is_machine_open_only"]) == (1, True)
    assert scanned["first_clicked_at"] is None
    assert (then_read["status"], then_read["click_count"]) == ("Clicked", 1)
    assert then_read["first_clicked_at"] == T0 + timedelta(minutes=90)
    assert then_read["is_machine_open_only"] is False


def test_an_unsubscribe_is_a_flag_not_a_status() -> None:
    row = status_of([("delivered", 0), ("unsubscribed", 5)])
    assert (row["status"], row["has_unsubscribed"]) == ("Delivered", True)


def test_a_complaint_sets_its_flag_and_status() -> None:
    row = status_of([("opened", 0), ("complaint", 5)])
    assert (row["status"], row["has_complained"]) == ("Complaint", True)


def test_a_message_without_events_is_queued_and_costs_nothing_yet() -> None:
    row = status_of([])
    assert (row["status"], row["billable_units"], row["cost"]) == ("Queued", 0, 0.0)


def test_a_skipped_message_costs_nothing() -> None:
    row = status_of([("skipped", 0)])
    assert (row["status"], row["billable_units"], row["cost"]) == ("Skipped", 0, 0.0)


def test_a_bounced_email_is_billed() -> None:
    row = status_of([("sent", 0), ("bounced", 1, {"kind": "hard"})])
    assert (row["billable_units"], row["cost"]) == (1, 0.001)


def test_an_sms_is_billed_per_segment_of_its_text() -> None:
    row = status_of([("sent", 0), ("delivered", 1)], channel="sms", sms_text="x" * 161)
    assert (row["billable_units"], row["cost"]) == (2, 0.08)


def test_first_sent_and_delivered_times_are_the_earliest_evidence() -> None:
    row = status_of([("queued", 0), ("delivered", 9), ("sent", 3), ("delivered", 7)])
    assert row["first_sent_at"] == T0 + timedelta(minutes=3)
    assert row["delivered_at"] == T0 + timedelta(minutes=7)


EVENTS = st.lists(
    st.tuples(
        st.sampled_from([*RANKED, "unsubscribed"]),
        st.integers(0, 10_000),
        st.fixed_dictionaries(
            {
                "machine": st.booleans(),
                "kind": st.sampled_from([None, "hard", "soft"]),
                "reason": st.sampled_from([None, "user_unknown", "policy"]),
            }
        ),
    ),
    min_size=1,
    max_size=12,
)
EVENTS_DEFAULT = {"machine": False, "kind": None, "reason": None}


@given(events=EVENTS, data=st.data())
def test_any_permutation_or_duplication_gives_the_same_row(events, data) -> None:
    # bad_email and bad_number never meet on one message
    events = [e for e in events if e[0] != "bad_number"] or [("sent", 0, {})]
    shuffled = data.draw(st.permutations(events))
    duplicated = shuffled + data.draw(st.lists(st.sampled_from(events), max_size=5))

    assert status_of(shuffled) == status_of(events)
    # a repeated open or click adds to the counts; nothing else may change
    assert _without_counts(status_of(duplicated)) == _without_counts(status_of(events))


def _without_counts(row: dict) -> dict:
    return {
        k: v for k, v in row.items() if k not in ("open_count", "click_count", "machine_open_count")
    }


def _outcomes(events: list[tuple]) -> pl.LazyFrame:
    rows = [
        {
            "message_id": "m1",
            "event_type": kind,
            "occurred_at": T0 + timedelta(minutes=minutes),
            "is_machine_open": extra["machine"],
            "bounce_kind": extra["kind"],
            "bounce_reason": extra.get("reason"),
        }
        for kind, minutes, extra in events
    ]
    return message_outcomes(pl.LazyFrame(rows, schema=EVENT_SCHEMA))


@given(events=EVENTS, data=st.data())
def test_a_status_taking_in_new_events_equals_one_computed_from_all_of_them(events, data) -> None:
    events = [e for e in events if e[0] != "bad_number"] or [("sent", 0, EVENTS_DEFAULT)]
    split = data.draw(st.integers(0, len(events)))
    earlier, later = events[:split], events[split:]

    merged = merge_outcomes(_outcomes(earlier), _outcomes(later)).collect()
    at_once = _outcomes(events).collect()

    assert merged.to_dicts() == at_once.select(merged.columns).to_dicts()
