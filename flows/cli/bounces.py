"""`sendout bounces`: bounce mail into the landing folder, for the ingester to read."""

import sys

import click

from flows.cli import cli, echo_json

EX_DATAERR = 65  # sysexits.h: what a mail server's pipe transport understands
EX_TEMPFAIL = 75  # "try again later": the mail server keeps the message and retries


@cli.group()
def bounces() -> None:
    """Bounce mail from your own relay: fetch it over IMAP, or take one message from a pipe."""


@bounces.command()
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def fetch(as_json: bool) -> None:
    """Land every message of the bounce mailbox (SENDOUT_BOUNCE_IMAP_*), then move or delete
    it there; `sendout ingest` or the ingester reads it."""
    from rich.console import Console

    from flows.bounces import BounceMailboxError
    from flows.bounces import fetch as fetch_mailbox
    from flows.settings import settings

    console = Console(stderr=True)
    try:
        with console.status("Fetching bounce mail ...") as status:
            summary = fetch_mailbox(
                settings(), on_message=lambda s: status.update(f"Fetched {s.fetched} ...")
            )
    except BounceMailboxError as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        echo_json({"fetched": summary.fetched, "landed": summary.landed})
    else:
        click.echo(f"fetched {summary.fetched} messages, {summary.landed} new")


@bounces.command()
def receive() -> None:
    """Land one message from standard input (for Postfix's pipe transport or a .forward)."""
    from flows.bounces import land_message
    from flows.settings import settings

    raw = sys.stdin.buffer.read()
    if not raw.strip():
        click.echo("sendout bounces receive: no message on standard input", err=True)
        sys.exit(EX_DATAERR)
    try:
        path, _ = land_message(raw, settings().landing)
    except Exception as error:  # a full disk, a permission, bad settings: the server retries
        click.echo(f"sendout bounces receive: cannot land the message: {error}", err=True)
        sys.exit(EX_TEMPFAIL)
    click.echo(str(path))
