"""`refresh` is incremental (only what changed is recomputed) and gives exactly the tables a full
rebuild gives, after any sequence of ingests and new messages."""

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.events import ses, twilio_inbound, twilio_status
from tests.warehouse_builders import add_message, add_sendout, ingest_events, run_refresh
from warehouse.db import connect, open_warehouse

RECIPIENTS = ["ada@example.com", "bob@example.com", "cy@example.com"]
PHONE = "+447911123456"
MARTS = {
    "message_status": "SELECT * EXCLUDE (refreshed_at) FROM message_status ORDER BY ALL",
    "sendout_channel_stats": "SELECT * FROM sendout_channel_stats ORDER BY ALL",
    "inbound_messages": "SELECT * FROM inbound_messages ORDER BY ALL",
    "unsubscribes": "SELECT * EXCLUDE (change_id) FROM unsubscribes ORDER BY ALL",
}


def marts(db: Path) -> dict[str, list[tuple]]:
    with connect(db, read_only=True) as con:
        return {name: con.sql(sql).fetchall() for name, sql in MARTS.items()}


def event_for(kind: str, n: int, minute: int) -> dict:
    at = f"2026-11-02T09:{minute:02d}:00Z"
    recipient = RECIPIENTS[n % len(RECIPIENTS)]
    if kind == "sms-delivered":
        return twilio_status(f"SMout{n}", "delivered", PHONE, sendout_message_id=f"m{n}")
    if kind == "sms-stop":
        return twilio_inbound(f"SMin{n}-{minute}", PHONE, "STOP", at)
    if kind == "soft":
        return ses("Bounce", recipient, f"m{n}", bounce_type="Transient", status="4.4.1", at=at)
    if kind == "hard":
        return ses("Bounce", recipient, f"m{n}", status="5.1.1", at=at)
    return ses(kind, recipient, f"m{n}", at=at)


STEP = st.one_of(
    st.tuples(st.just("message"), st.integers(0, 5)),
    st.tuples(
        st.just("events"),
        st.lists(
            st.tuples(
                st.sampled_from(
                    [
                        "Delivery",
                        "Open",
                        "Click",
                        "Complaint",
                        "soft",
                        "hard",
                        "Subscription",
                        "sms-delivered",
                        "sms-stop",
                    ]
                ),
                st.integers(0, 5),
                st.integers(0, 59),
            ),
            min_size=1,
            max_size=6,
        ),
    ),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=6))
def test_incremental_refresh_equals_a_full_rebuild_after_any_sequence(steps):
    work = Path(tempfile.mkdtemp())
    db = work / "incremental.duckdb"
    add_sendout(db, "s1", ("email", "sms"))
    created = set()
    for step, payload in steps:
        if step == "message" and payload not in created:
            created.add(payload)
            add_message(db, f"m{payload}", "s1", RECIPIENTS[payload % len(RECIPIENTS)])
            add_message(db, f"sms{payload}", "s1", PHONE, "sms", "Hi", f"SMout{payload}")
        elif step == "events":
            ingest_events(db, work / "landing", [event_for(*e) for e in payload])
        run_refresh(db)

    rebuilt = work / "rebuilt.duckdb"
    shutil.copy(db, rebuilt)
    full = run_refresh(rebuilt, full=True)

    assert marts(db) == marts(rebuilt)
    assert full.unsubscribe_changes == 0


def test_an_incremental_refresh_recomputes_only_messages_with_new_events(db_path, tmp_path):
    add_sendout(db_path, "s1")
    for n in range(5):
        add_message(db_path, f"m{n}", "s1", RECIPIENTS[n % 3])
    ingest_events(
        db_path, tmp_path, [ses("Delivery", RECIPIENTS[n % 3], f"m{n}") for n in range(5)]
    )
    first = run_refresh(db_path)

    ingest_events(db_path, tmp_path, [ses("Open", RECIPIENTS[1], "m1")])
    second = run_refresh(db_path)
    nothing_new = run_refresh(db_path)

    assert (first.mode, first.messages) == ("full", 5)
    assert (second.mode, second.messages) == ("incremental", 1)
    assert nothing_new.messages == 0


def test_events_that_arrived_before_their_message_count_once_it_exists(db_path, tmp_path, query):
    add_sendout(db_path, "s1")
    ingest_events(db_path, tmp_path, [ses("Delivery", RECIPIENTS[0], "m1")])
    run_refresh(db_path)

    add_message(db_path, "m1", "s1", RECIPIENTS[0])
    summary = run_refresh(db_path)

    assert summary.messages == 1
    assert query("SELECT message_id, status FROM message_status") == [
        {"message_id": "m1", "status": "Delivered"}
    ]


def test_a_message_known_only_by_the_providers_id_joins_when_that_id_is_recorded(
    db_path, tmp_path, query
):
    add_sendout(db_path, "s1", ("sms",))
    add_message(db_path, "m1", "s1", PHONE, "sms", "Hello")
    ingest_events(db_path, tmp_path, [twilio_status("SM77", "delivered", PHONE)])
    run_refresh(db_path)
    with open_warehouse(db_path) as con:  # what dispatch does once Twilio answers
        con.execute("UPDATE messages SET provider_message_id = 'SM77' WHERE message_id = 'm1'")

    run_refresh(db_path)

    assert query("SELECT status FROM message_status") == [{"status": "Delivered"}]
