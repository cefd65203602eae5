"""Prefect flows: thin wiring over the warehouse and the dispatcher (deployments: prefect.yaml).

- `dispatch_sendout(sendout_id, shard, shards)`: send one send-out (the dashboard's "send
  now"), or one slice of it, for several workers to share (docs/dispatch.md).
- `dispatch_due_sendouts()`: every minute, each send-out whose time has come.
- `ingest_provider_events()`: the landing folder into the warehouse.
- `refresh_and_publish()`: statuses, figures and the Unsubscribes list, then the analysts' copy of
  the warehouse (warehouse/snapshot.py).
- `ingest_and_refresh()`: the two above in a row, every five minutes: catch-up and backfills
  behind the continuous ingester (`sendout ingester`, flows/ingester.py), which brings events
  to the screen within seconds.
- `fetch_bounce_mail()`: every two minutes, the bounce mailbox into the landing folder, where
  the ingester reads it (nothing to do when no mailbox is configured).

Runs of these flows are the one writer of the warehouse (DESIGN §9); the warehouse's own lock
retries absorb the occasional overlap with the CLI.
"""

from dataclasses import asdict
from datetime import UTC, datetime

from prefect import flow, get_run_logger, task

from flows import bounces
from flows.dispatch import run_dispatch
from flows.senders.sandbox import release_due
from flows.settings import settings
from warehouse import dispatch_state
from warehouse.db import open_warehouse
from warehouse.ingest import ingest_paths
from warehouse.refresh import refresh
from warehouse.snapshot import publish


@task(retries=2, retry_delay_seconds=10)
def send(sendout_id: str, part: dispatch_state.Slice | None = None) -> dict:
    """Send every message of the send-out that has no outcome yet (with `part`, that slice
    first)."""
    config = settings()
    result = run_dispatch(
        config.db,
        sendout_id,
        config,
        on_batch=lambda p: get_run_logger().info("%s: %d/%d", sendout_id, p.done, p.planned),
        part=part,
    )
    return {
        "sendout_id": sendout_id,
        "sent": result.sent,
        "done": result.progress.done,
        "planned": result.progress.planned,
    }


@task
def due() -> list[str]:
    """The send-outs whose time has come."""
    with open_warehouse(settings().db) as con:
        return dispatch_state.due_sendouts(con, datetime.now(UTC))


@task(retries=2, retry_delay_seconds=10)
def ingest_landing() -> dict:
    """Ingest the provider files in the landing folder (each file once)."""
    config = settings()
    config.landing.mkdir(parents=True, exist_ok=True)
    release_due(config.landing)  # the sandbox's events whose time has come
    return ingest_paths(config.db, [config.landing]).as_dict()


@task(retries=2, retry_delay_seconds=10)
def refresh_tables(full: bool = False) -> dict:
    """Recompute statuses, figures and the Unsubscribes list."""
    with open_warehouse(settings().db) as con:
        return asdict(refresh(con, full=full, config=settings()))


@task(retries=2, retry_delay_seconds=10)
def publish_snapshot() -> str:
    """Publish the analysts' copy of the warehouse; return its path."""
    with open_warehouse(settings().db) as con:
        return str(publish(con, settings().snapshot))


@flow(name="dispatch-sendout", log_prints=True)
def dispatch_sendout(sendout_id: str, shard: int | None = None, shards: int = 1) -> dict:
    """Send one send-out now. With `shard` (from 0) of `shards`, several runs send it together:
    each its own recipient range first, then what a run that died left (docs/dispatch.md).
    Whoever asked for the run recorded it (the dashboard, when its user pressed the button)."""
    part = dispatch_state.Slice(shard, shards) if shard is not None else None
    return send(sendout_id, part)


@flow(name="dispatch-due-sendouts", log_prints=True)
def dispatch_due_sendouts() -> list[dict]:
    """Send every send-out that is due, one after the other."""
    return [send(sendout_id) for sendout_id in due()]


@flow(name="ingest-provider-events", log_prints=True)
def ingest_provider_events() -> dict:
    """Read new provider event files from the landing folder."""
    summary = ingest_landing()
    get_run_logger().info("ingest: %s", summary)
    return summary


@flow(name="refresh", log_prints=True)
def refresh_and_publish(full: bool = False) -> dict:
    """Bring statuses, figures and the Unsubscribes list up to date, and publish them to
    analysts."""
    return {**refresh_tables(full), "snapshot": publish_snapshot()}


@flow(name="ingest-and-refresh", log_prints=True)
def ingest_and_refresh() -> dict:
    """Ingest, then refresh: what the five-minute schedule runs."""
    return {"ingest": ingest_provider_events(), "refresh": refresh_and_publish()}


@flow(name="fetch-bounce-mail", log_prints=True)
def fetch_bounce_mail() -> dict:
    """Land the bounce mailbox's messages for ingest, when a mailbox is configured."""
    config = settings()
    if not config.bounce_imap_host:
        return {"fetched": 0, "configured": False}
    summary = bounces.fetch(config)
    get_run_logger().info("bounce mail: %d fetched, %d new", summary.fetched, summary.landed)
    return {"fetched": summary.fetched, "landed": summary.landed, "configured": True}
