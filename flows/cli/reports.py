"""`sendout refresh`, `report` and `lookup`: what happened to send-outs and to one address."""

from dataclasses import asdict
from pathlib import Path

import click

from flows.cli import cli, echo_json
from flows.settings import settings
from warehouse import refresh as refreshing
from warehouse.db import open_warehouse
from warehouse.reports import lookup as lookup_address
from warehouse.reports import pending_sns_confirmations, sendout_report
from warehouse.snapshot import publish
from warehouse.vocabulary import STATUS_COLUMNS, Channel


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


@cli.command()
@click.option("--full", is_flag=True, help="Rebuild every row instead of only what is new.")
@click.option("--json", "as_json", is_flag=True, help="Print what it did as one JSON object.")
@click.pass_obj
def refresh(db: Path, full: bool, as_json: bool) -> None:
    """Recompute final statuses, send-out figures and the Unsubscribes list, then publish the
    analysts' copy of the warehouse (`sendout snapshot`)."""
    with open_warehouse(db) as con:
        summary = refreshing.refresh(con, full=full, config=settings())
        publish(con, settings().snapshot)
    if as_json:
        echo_json(asdict(summary))
        return
    click.echo(
        f"{summary.mode} refresh in {summary.seconds:.2f} s: {summary.messages} messages, "
        f"{summary.sendouts} send-outs, {summary.inbound} inbound SMS, "
        f"{summary.unsubscribe_changes} Unsubscribes changes"
    )


@cli.command()
@click.argument("sendout_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.pass_obj
def report(db: Path, sendout_id: str | None, as_json: bool) -> None:
    """Each send-out's status, counts, rates and cost, per channel."""
    with open_warehouse(db, create=False) as con:
        rows = sendout_report(con, sendout_id)
    if sendout_id and not rows:
        raise click.ClickException(f"there is no send-out {sendout_id}")
    if as_json:
        echo_json(rows)
        return
    currency = settings().currency
    for row in rows:
        click.echo(
            f"{row['sendout_id']}  {row['name']}  [{row['channel']}, "
            f"{row['communication_type']}]  send-out: {row['sendout_status']}"
        )
        if row["planned"] is None:
            click.echo("  no messages yet")
            continue
        counts = ", ".join(f"{name} {row[name]}" for name in STATUS_COLUMNS.values() if row[name])
        click.echo(f"  {row['done']}/{row['planned']} done: {counts or 'nothing yet'}")
        if row["channel"] == Channel.EMAIL:
            click.echo(
                f"  accepted {row['accepted']}, open rate {_percent(row['open_rate'])} "
                f"(human {_percent(row['human_open_rate'])}), click rate "
                f"{_percent(row['click_rate'])}, "
                f"click-to-open {_percent(row['click_to_open_rate'])}"
            )
        else:
            click.echo(f"  replies {row['inbound']}")
        click.echo(f"  cost {row['cost']:.4f} {currency}")


@cli.command()
@click.argument("address", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@click.pass_obj
def lookup(db: Path, address: tuple[str, ...], as_json: bool) -> None:
    """Why didn't they receive it? Everything about one email address or phone number (a
    number may be written with spaces: +44 7911 123456)."""
    with open_warehouse(db, create=False) as con:
        found = lookup_address(con, " ".join(address), region=settings().default_region)
    if as_json:
        echo_json(asdict(found))
        return
    listed = "on the Unsubscribes list" if found.entries else "not on the Unsubscribes list"
    click.echo(f"{found.address} ({found.channel}) is {listed}.")
    for message in found.messages:
        when = message.first_sent_at or message.delivered_at
        click.echo(
            f"  {message.sendout_name} ({message.communication_type}): {message.status}"
            + (f", sent {when:%Y-%m-%d %H:%M}" if when else "")
        )
    for line in found.advice:
        click.echo(f"- {line}")


@cli.command("sns-confirmations")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON.")
@click.pass_obj
def sns_confirmations(db: Path, as_json: bool) -> None:
    """Amazon SNS subscriptions to confirm: open each link once (as of the last ingest)."""
    with open_warehouse(db, create=False) as con:
        pending = pending_sns_confirmations(con).to_dicts()
    if as_json:
        echo_json(pending)
        return
    if not pending:
        click.echo("No SNS subscription is waiting to be confirmed.")
        return
    for row in pending:
        click.echo(
            f"{row['topic_arn']} (link valid until {row['expires_at']:%Y-%m-%d %H:%M %Z}):\n"
            f"  {row['subscribe_url']}"
        )
