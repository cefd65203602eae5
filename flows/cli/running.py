"""`sendout dispatch` and `sendout up`: sending in the foreground, and the whole stack locally."""

import logging
import os
import signal
import threading
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from flows.cli import cli
from flows.demo import build_demo
from flows.dispatch import run_dispatch
from flows.ingester import POLL_SECONDS, Batch, run_ingester
from flows.senders import SenderUnavailable
from flows.settings import settings
from flows.up import UpError, dashboard_command
from flows.up import up as run_stack
from warehouse import audit
from warehouse.db import open_warehouse
from warehouse.dispatch_state import DispatchError
from warehouse.dispatch_state import Progress as DispatchProgress


@cli.command()
@click.argument("sendout_id")
@click.option("--now", "early", is_flag=True, help="Send a scheduled send-out now.")
@click.pass_obj
def dispatch(db: Path, sendout_id: str, early: bool) -> None:
    """Send a send-out's messages in the foreground; exits 0 when every one has an outcome.

    Ctrl-C or SIGTERM finishes the batch in flight and stops; run it again to resume. The
    audit record names $SENDOUT_USER (the dashboard's user when the dashboard started it).
    """
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with Progress(
        TextColumn("Sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("dispatch", total=None)

        def show(progress: DispatchProgress) -> None:
            bar.update(task, completed=progress.done, total=progress.planned)

        try:
            result = run_dispatch(
                db, sendout_id, stop=stop, on_batch=show, early=early, by=audit.operator()
            )
        except (DispatchError, SenderUnavailable) as error:
            raise click.ClickException(str(error)) from error
    left = result.progress.planned - result.progress.done
    click.echo(
        f"{sendout_id}: {result.progress.done}/{result.progress.planned} messages have an "
        f"outcome ({result.sent} sent or tried in this run)"
    )
    if result.possibly_twice:
        click.echo(
            f"{result.possibly_twice} of them may have reached their recipient twice: a run "
            "before this one died while sending them (they are marked on the details page)."
        )
    if left:
        raise click.ClickException(f"stopped with {left} messages to go; run it again to resume")


@cli.command()
@click.option("--port", default=4200, show_default=True, help="Port of the Prefect server.")
@click.option("--dashboard-port", default=8501, show_default=True, help="Port of the dashboard.")
@click.option(
    "--webhook-port",
    default=None,
    type=int,
    help="Port of the webhook service [default: $SENDOUT_WEBHOOK_PORT or 8088].",
)
@click.pass_obj
def up(db: Path, port: int, dashboard_port: int, webhook_port: int | None) -> None:
    """Run Sendout on this machine: Prefect server, deployments, a worker, the dashboard and the
    webhook service."""
    try:
        run_stack(
            db,
            settings().landing,
            port,
            dashboard_port,
            webhook_port or settings().webhook_port,
            say=click.echo,
        )
    except UpError as error:
        raise click.ClickException(str(error)) from error


@cli.command()
@click.option(
    "--poll",
    default=POLL_SECONDS,
    show_default=True,
    help="Seconds between looks at the landing folder.",
)
@click.pass_obj
def ingester(db: Path, poll: float) -> None:
    """Ingest provider files as they land and keep statuses and figures up to date, until
    Ctrl-C (the continuous ingester that `sendout up` runs)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    landing = settings().landing
    click.echo(f"Ingesting what lands in {landing} into {db} (Ctrl-C stops)")

    def say(batch: Batch) -> None:
        if not batch.files:  # every file it looked at had been read before
            return
        click.echo(
            f"{batch.files} files, {batch.events_new} new events, "
            f"{batch.refreshed_messages} statuses refreshed in {batch.seconds:.2f} s"
        )

    run_ingester(db, landing, stop, poll, on_batch=say)


@cli.command()
@click.option("--port", default=8501, show_default=True, help="Port to serve on.")
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    help="Address to serve on (127.0.0.1: this machine only).",
)
@click.pass_obj
def dashboard(db: Path, port: int, address: str) -> None:
    """Serve the dashboard (Streamlit) until Ctrl-C. With no users it serves this machine only,
    without a login; `sendout users add` makes it ask for one."""
    from warehouse import users

    with open_warehouse(db) as con:
        has_users = users.count(con) > 0
    if not has_users and not users.is_loopback(address):
        raise click.ClickException(users.NO_USERS_ELSEWHERE)
    if not has_users:
        click.echo(
            "No users: anyone on this machine can use the dashboard without a login "
            f"(`{users.FIRST_USER}` adds one).",
            err=True,
        )
    os.environ["SENDOUT_DB"] = str(db.resolve())
    os.execv(dashboard_command(port, address)[0], dashboard_command(port, address))


@cli.command()
@click.option("--contacts", default=2000, show_default=True, help="How many demo contacts.")
@click.option("--seed", default=7, show_default=True, help="The same seed, the same demo.")
@click.pass_obj
def demo(db: Path, contacts: int, seed: int) -> None:
    """Build a demo workspace (sandbox send-outs with a realistic history), without servers."""
    if db.exists():
        raise click.ClickException(f"{db} exists already; the demo builds a new workspace")
    built = build_demo(db, settings().landing, contacts, seed)
    click.echo(
        f"Demo workspace in {db}: {built.contacts} contacts ({built.rejected_rows} rows "
        f"rejected at import, as a real import would), send-outs:"
    )
    for what, sendout_id in built.sendouts.items():
        click.echo(f"  {sendout_id}  {what}")
    click.echo(
        f"Log in to the dashboard as {built.admin_name} with the password {built.admin_password} "
        "(shown this once; `sendout users set-password` changes it)."
    )


@cli.command()
@click.option("--host", default=None, help="Address [default: $SENDOUT_WEBHOOK_HOST or 127.0.0.1].")
@click.option(
    "--port", default=None, type=int, help="Port [default: $SENDOUT_WEBHOOK_PORT or 8088]."
)
@click.option(
    "--access-log", is_flag=True, help="Log every request (off: it costs CPU under load)."
)
def webhooks(host: str | None, port: int | None, access_log: bool) -> None:
    """Receive the providers' webhooks and land them for ingest (until Ctrl-C)."""
    from flows.webhooks.app import create_app
    from flows.webhooks.server import serve
    from flows.webhooks.state import LandingOwned

    config = settings()
    address = {
        "webhook_host": host or config.webhook_host,
        "webhook_port": port or config.webhook_port,
    }
    config = config.model_copy(update=address)
    try:
        app = create_app(config)
    except LandingOwned as error:
        raise click.ClickException(str(error)) from None
    serve(app, config, access_log)
