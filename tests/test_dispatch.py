"""Dispatching with the sandbox provider (DESIGN §7-§8): every message gets one outcome, the
Unsubscribes list is checked per message, nothing is sent twice, and the sandbox's provider files
flow through ingest into statuses."""

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.dispatch import batch_size, run_dispatch
from flows.senders.sandbox import release_due
from flows.settings import Settings
from tests.warehouse_builders import add_people, create_sendout, run_refresh
from warehouse import dispatch_state, reports, sendouts, unsubscribes
from warehouse.db import connect, open_warehouse
from warehouse.dispatch_state import DispatchError
from warehouse.ingest import ingest_paths


@pytest.fixture
def config(tmp_path: Path) -> Settings:
    return Settings(landing=tmp_path / "landing", batch_size=7, sandbox_seed=11)


def outcomes(db: Path, sendout_id: str) -> dict[str, str]:
    with open_warehouse(db) as con:
        return dict(
            con.execute(
                "SELECT recipient, outcome FROM messages WHERE sendout_id = ?", [sendout_id]
            ).fetchall()
        )


def test_every_message_gets_one_outcome_and_a_second_run_sends_nothing(db_path, config):
    add_people(db_path, 20)
    sendout_id = create_sendout(db_path, channels=("email", "sms"))

    first = run_dispatch(db_path, sendout_id, config)
    second = run_dispatch(db_path, sendout_id, config)

    assert (first.sent, first.progress.done, first.progress.planned) == (40, 40, 40)
    assert set(outcomes(db_path, sendout_id).values()) == {"sent", "queued"}
    assert second.sent == 0
    with open_warehouse(db_path) as con:
        assert con.sql(
            "SELECT count(*) FROM sendouts WHERE finished_at IS NOT NULL"
        ).fetchall() == [(1,)]


@pytest.mark.parametrize(
    ("scope", "communication_type", "skipped"),
    [
        ("marketing", "marketing", True),
        ("marketing", "non_marketing", False),
        ("all", "non_marketing", True),
    ],
)
def test_an_unsubscribed_recipient_is_skipped_per_scope_and_costs_nothing(
    db_path, config, scope, communication_type, skipped
):
    add_people(db_path, 3)
    with open_warehouse(db_path) as con:
        unsubscribes.add(con, "email", "p1@example.com", scope, "ana", "asked")
    sendout_id = create_sendout(db_path, communication_type=communication_type)

    run_dispatch(db_path, sendout_id, config)
    run_refresh(db_path)

    assert outcomes(db_path, sendout_id)["p1@example.com"] == ("skipped" if skipped else "sent")
    with open_warehouse(db_path) as con:
        [(status, cost)] = con.execute(
            "SELECT status, cost FROM message_status WHERE recipient = 'p1@example.com'"
        ).fetchall()
        entries = con.sql("SELECT count(*) FROM unsubscribes").fetchall()
    assert (status == "Skipped", cost == 0) == (skipped, skipped)
    assert entries == [(1,)]  # dispatch's own skip adds nothing to the list


@pytest.mark.parametrize(
    ("changes", "skipped"),
    [(["add"], True), (["add", "remove"], False), (["add", "remove", "add"], True)],
)
def test_only_the_latest_change_of_an_unsubscribes_entry_counts(db_path, config, changes, skipped):
    add_people(db_path, 3)
    with open_warehouse(db_path) as con:
        for change in changes:
            if change == "add":
                unsubscribes.add(con, "email", "p2@example.com", "all", "ana", "asked")
            else:
                unsubscribes.remove(con, "email", "p2@example.com", "ana", "changed her mind")
        unsubscribes.add(con, "sms", "+447911100001", "all", "ana", "texted STOP")  # P1's mobile
    sendout_id = create_sendout(db_path, communication_type="non_marketing")

    run_dispatch(db_path, sendout_id, config)

    sent = outcomes(db_path, sendout_id)
    assert sent["p2@example.com"] == ("skipped" if skipped else "sent")
    assert set(sent.values()) - {"skipped"} == {"sent"}
    assert list(sent.values()).count("skipped") == skipped  # P1's mobile blocks no email


def test_a_cancelled_send_out_never_sends(db_path, config):
    add_people(db_path, 2)
    sendout_id = create_sendout(db_path, scheduled_at=datetime.now(UTC) + timedelta(hours=1))
    with open_warehouse(db_path) as con:
        sendouts.cancel(con, sendout_id)

    with pytest.raises(DispatchError, match="was cancelled"):
        run_dispatch(db_path, sendout_id, config, early=True)
    assert set(outcomes(db_path, sendout_id).values()) == {None}


def test_a_scheduled_send_out_does_not_start_before_its_time(db_path, config):
    add_people(db_path, 2)
    sendout_id = create_sendout(db_path, scheduled_at=datetime.now(UTC) + timedelta(hours=1))

    with pytest.raises(DispatchError, match="is scheduled for"):
        run_dispatch(db_path, sendout_id, config)
    early = run_dispatch(db_path, sendout_id, config, early=True)

    assert early.progress.finished


def test_a_second_run_cannot_take_a_send_out_another_run_holds(db_path, config):
    add_people(db_path, 2)
    sendout_id = create_sendout(db_path)
    with open_warehouse(db_path) as con:
        con.execute("UPDATE sendouts SET dispatch_run = 'other', dispatch_heartbeat_at = now()")

    with pytest.raises(DispatchError, match="being dispatched by run other"):
        run_dispatch(db_path, sendout_id, config)


def hold(db: Path, run_id: str) -> None:
    with open_warehouse(db) as con:
        con.execute("UPDATE sendouts SET dispatch_run = ?, dispatch_heartbeat_at = now()", [run_id])


def test_a_run_that_died_on_this_host_is_taken_over_at_once(db_path, config):
    add_people(db_path, 2)
    sendout_id = create_sendout(db_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    hold(db_path, f"{socket.gethostname()}:{dead.stdout.strip()}:a1b2c3d4")

    result = run_dispatch(db_path, sendout_id, config)  # the lease is 30 s: no waiting

    assert result.progress.finished


def test_a_live_run_here_or_a_run_on_another_host_keeps_its_lease(db_path, config):
    add_people(db_path, 2)
    sendout_id = create_sendout(db_path)
    for holder in (f"{socket.gethostname()}:{os.getpid()}:a1b2c3d4", "elsewhere:1:a1b2c3d4"):
        hold(db_path, holder)
        with pytest.raises(DispatchError, match="being dispatched by run"):
            run_dispatch(db_path, sendout_id, config)


def test_sandbox_files_go_through_ingest_into_realistic_statuses(db_path, config):
    add_people(db_path, 300)
    sendout_id = create_sendout(db_path, channels=("email", "sms"))
    config = config.model_copy(update={"batch_size": 150})  # the story, not the batching
    run_dispatch(db_path, sendout_id, config)

    release_due(config.landing, now=datetime.now(UTC) + timedelta(days=2))  # two days later
    summary = ingest_paths(db_path, [config.landing])
    run_refresh(db_path)

    with open_warehouse(db_path) as con:
        statuses = dict(
            con.execute("SELECT status, count(*) FROM message_status GROUP BY ALL").fetchall()
        )
        inbound = con.sql("SELECT count(*) FROM inbound_messages").fetchall()[0][0]
    assert (summary.quarantined, summary.unmatched) == (0, 0)
    assert sum(statuses.values()) == 600
    assert {"Delivered", "Opened", "Clicked", "Bounced", "Bad email", "Bad number"} <= set(statuses)
    assert statuses["Delivered"] + statuses.get("Opened", 0) > 300
    assert inbound > 0


def story(folder: Path) -> list[tuple[str, str]]:
    """(our message id, SES event type) of every email event the sandbox wrote."""
    events = [json.loads(line) for p in folder.rglob("ses-*.ndjson") for line in p.open()]
    return sorted((e["mail"]["tags"]["sendout_message_id"][0], e["eventType"]) for e in events)


def test_the_sandbox_tells_the_same_story_for_the_same_seed(db_path, tmp_path):
    add_people(db_path, 50)
    stories = []
    for run, seed in (("a", 3), ("b", 3), ("c", 4)):
        sendout_id = create_sendout(db_path)
        with open_warehouse(db_path) as con:  # the same message ids each time
            con.execute("DELETE FROM messages WHERE sendout_id <> ?", [sendout_id])
            con.execute("UPDATE messages SET message_id = 'm' || contact_id")
        run_dispatch(db_path, sendout_id, Settings(landing=tmp_path / run, sandbox_seed=seed))
        release_due(tmp_path / run, now=datetime.now(UTC) + timedelta(days=2))
        stories.append(story(tmp_path / run))

    assert stories[0] == stories[1]
    assert stories[0] != stories[2]


def test_a_send_out_cancelled_as_its_dispatch_starts_ends_that_dispatch_sending_nothing(
    db_path, config, monkeypatch
):
    add_people(db_path, 5)
    sendout_id = create_sendout(db_path)
    started = dispatch_state.start

    def start_then_cancel(con, *args, **kwargs):  # the cancel lands before the first claim
        bounds = started(con, *args, **kwargs)
        sendouts.cancel(con, sendout_id)
        return bounds

    monkeypatch.setattr(dispatch_state, "start", start_then_cancel)
    with pytest.raises(DispatchError, match="was cancelled"):
        run_dispatch(db_path, sendout_id, config)

    with connect(db_path, read_only=True) as con:
        assert con.execute(
            "SELECT count(*) FILTER (outcome IS NOT NULL OR claimed_by IS NOT NULL) FROM messages"
        ).fetchall() == [(0,)]
        assert con.execute(
            "SELECT dispatch_run FROM sendouts WHERE sendout_id = ?", [sendout_id]
        ).fetchall() == [(None,)]  # its lease given back


def test_a_rate_limited_batch_holds_a_few_seconds_of_sending_so_the_figures_move() -> None:
    assert batch_size(Settings(batch_size=2000)) == 2000
    assert batch_size(Settings(batch_size=2000, email_rate=14)) == 70  # SES's usual 14/s
    assert batch_size(Settings(batch_size=2000, email_rate=14, sms_rate=1)) == 5
    assert batch_size(Settings(batch_size=2000, sms_rate=0.1)) == 1


@pytest.mark.parametrize("limit", ["lots", "64", "-1MB", "64MB; DROP TABLE messages"])
def test_a_memory_limit_that_is_not_an_amount_of_memory_is_refused(limit):
    with pytest.raises(ValueError, match="is not an amount of memory"):
        Settings(dispatch_memory_limit=limit)


@pytest.mark.parametrize("limit", ["64MB", "1MB"])
def test_a_dispatch_whose_duckdb_memory_is_capped_still_sends_everyone(
    db_path, config, limit, caplog
):
    """Within the cap DuckDB lets go of what it read and reads it again when needed; a step or
    checkpoint it cannot do within it (1 MB is less than any takes) is done without it, once."""
    add_people(db_path, 300)
    sendout_id = create_sendout(db_path, channels=("email", "sms"))
    capped = Settings(
        landing=config.landing, batch_size=100, sandbox_seed=11, dispatch_memory_limit=limit
    )

    result = run_dispatch(db_path, sendout_id, capped)

    assert (result.sent, result.progress.done, result.progress.planned) == (600, 600, 600)
    with open_warehouse(db_path) as con:  # the figures count them all, each outcome once
        assert sum(row["done"] for row in reports.sendout_report(con, sendout_id)) == 600
        assert con.sql("SELECT count(*), count(DISTINCT message_id) FROM events").fetchall() == [
            (600, 600)
        ]
    lifted = "more memory than" in caplog.text
    assert lifted == (limit == "1MB")


def test_a_relay_that_refused_the_connection_leaves_nothing_flagged_for_the_next_run(
    db_path, config
):
    """Nothing went out when the relay could not be reached: running again sends everyone,
    and no one is said to have maybe got it twice."""
    from flows.senders import SenderUnavailable
    from tests.smtp_sink import start_sink

    add_people(db_path, 5)
    sendout_id = create_sendout(db_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # no one listens there once the probe is closed
    refused = config.model_copy(update={"email_sender": "smtp", "smtp_port": closed})
    with pytest.raises(SenderUnavailable):
        run_dispatch(db_path, sendout_id, refused)
    _, controller = start_sink()
    try:
        working = refused.model_copy(update={"smtp_port": controller.port})
        result = run_dispatch(db_path, sendout_id, working)
    finally:
        controller.stop()

    assert result.progress.finished and result.possibly_twice == 0
    with open_warehouse(db_path) as con:
        assert con.sql("SELECT count(*) FROM messages WHERE is_possible_duplicate").fetchall() == [
            (0,)
        ]
