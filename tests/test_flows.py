"""The Prefect flows, run for real under Prefect's test harness: dispatch one send-out, dispatch
what is due (and nothing scheduled for later or cancelled), ingest the landing folder and
refresh."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness

from flows import orchestration
from flows.settings import settings
from tests.warehouse_builders import add_people, create_sendout
from warehouse import sendouts
from warehouse.db import connect, open_warehouse


@pytest.fixture(scope="module", autouse=True)
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch) -> Path:
    db = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("SENDOUT_DB", str(db))
    monkeypatch.setenv("SENDOUT_LANDING", str(tmp_path / "landing"))
    settings.cache_clear()
    add_people(db, 40)
    yield db
    settings.cache_clear()


def test_the_dispatch_flow_sends_a_send_out(workspace):
    sendout_id = create_sendout(workspace)

    result = orchestration.dispatch_sendout(sendout_id)

    assert (result["done"], result["planned"]) == (40, 40)


def test_the_due_flow_sends_what_is_due_and_nothing_else(workspace):
    now_one = create_sendout(workspace)
    later = create_sendout(workspace, scheduled_at=datetime.now(UTC) + timedelta(hours=1))
    cancelled = create_sendout(workspace, scheduled_at=datetime.now(UTC) + timedelta(hours=1))
    with open_warehouse(workspace) as con:
        sendouts.cancel(con, cancelled)

    results = orchestration.dispatch_due_sendouts()

    assert [r["sendout_id"] for r in results] == [now_one]
    with open_warehouse(workspace) as con:
        untouched = con.execute(
            "SELECT count(*) FROM messages WHERE sendout_id IN (?, ?) AND outcome IS NOT NULL",
            [later, cancelled],
        ).fetchall()
    assert untouched == [(0,)]


def test_ingest_and_refresh_turn_the_sandbox_files_into_statuses(workspace):
    sendout_id = create_sendout(workspace)
    orchestration.dispatch_sendout(sendout_id)

    result = orchestration.ingest_and_refresh()

    assert result["ingest"]["files_read"] >= 1
    assert result["ingest"]["unmatched"] == 0
    # what analysts read (warehouse/snapshot.py) says the same as the live file
    for path in (workspace, Path(result["refresh"]["snapshot"])):
        with connect(path, read_only=True) as con:
            [(planned, done)] = con.execute(
                "SELECT planned, done FROM sendout_summary WHERE sendout_id = ?", [sendout_id]
            ).fetchall()
        assert (planned, done) == (40, 40)


def test_a_run_left_pending_by_a_stopped_worker_gives_its_deployments_slot_back():
    """A worker stopped while it submits a run leaves it Pending, holding the only slot of a
    deployment limited to one run at a time; `sendout up` ends such runs before its worker
    starts, and the next run of the deployment can then take the slot."""
    from prefect import flow, get_client
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelling, Pending, Running

    from flows.orphaned_runs import end_orphaned_runs

    @flow(name="stuck-flow")
    def stuck_flow() -> None:
        """A flow whose runs are only made, never run."""

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("stuck-flow")
        deployment_id = client.create_deployment(flow_id=flow_id, name="stuck", concurrency_limit=1)
        stuck = client.create_flow_run_from_deployment(deployment_id)
        client.set_flow_run_state(stuck.id, Pending())
        cancelling = client.create_flow_run(flow=stuck_flow)
        client.set_flow_run_state(cancelling.id, Running())
        client.set_flow_run_state(cancelling.id, Cancelling())
        waiting = client.create_flow_run_from_deployment(deployment_id)
        refused = client.set_flow_run_state(waiting.id, Pending())

        ended = end_orphaned_runs()
        taken = client.set_flow_run_state(waiting.id, Pending())

        assert refused.state.type != StateType.PENDING  # the slot was held
        assert ended == 2
        assert client.read_flow_run(stuck.id).state.type == StateType.CRASHED
        assert client.read_flow_run(cancelling.id).state.type == StateType.CANCELLED
        assert taken.state.type == StateType.PENDING  # the slot is its now
