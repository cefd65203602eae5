"""`sendout sendouts`: compose, list, cancel and resend send-outs."""

from datetime import datetime
from pathlib import Path

import click

from flows.cli import cli, echo_json
from flows.settings import settings
from warehouse import resends
from warehouse import sendouts as sendout_store
from warehouse.db import open_warehouse
from warehouse.refresh import refresh
from warehouse.reports import sendout_list
from warehouse.sendouts import Created, Draft, Recipients, SendoutError
from warehouse.vocabulary import Channel, CommunicationType


class LocalTime(click.ParamType):
    """An ISO date and time; without a UTC offset it is the machine's local time."""

    name = "datetime"

    def convert(self, value, param, ctx) -> datetime:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date and time like 2026-12-01T09:30", param, ctx)
        return moment if moment.tzinfo else moment.astimezone()


def _html(path: Path) -> str:
    """The email's HTML body from its file, or a one-sentence error."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise click.BadParameter(
            f"{path} is not UTF-8 text (byte {error.start}); save it as UTF-8",
            param_hint="--html",
        ) from error
    except OSError as error:
        raise click.BadParameter(
            f"{path} cannot be read: {error.strerror}", param_hint="--html"
        ) from error


def _report(created: Created, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "sendout_id": created.sendout_id,
                "messages": created.messages,
                "without_address": created.without_address,
                "rejected": [
                    {"row": r.row, "typed": r.typed, "reason": r.reason} for r in created.rejected
                ],
                "kept_with_one_address": [
                    {"row": r.row, "reason": r.reason} for r in created.partly
                ],
            }
        )
        return
    click.echo(created.sendout_id)
    note = f", {created.without_address} left out (no address)" if created.without_address else ""
    noun = "message" if created.messages == 1 else "messages"
    click.echo(f"{created.messages} {noun}{note}", err=True)
    for rejected in created.rejected:
        click.echo(f"  not sent: {rejected.where}: {rejected.reason}", err=True)
    for partly in created.partly:
        click.echo(f"  sent to one address: {partly.where}: {partly.reason}", err=True)


def _fail(error: SendoutError):
    raise click.ClickException("\n".join(f"{e.field}: {e.message}" for e in error.errors))


@cli.group()
def sendouts() -> None:
    """Send-outs: one piece of content to a set of recipients by email, SMS or both."""


@sendouts.command()
@click.option("--name", required=True, help="What the send-out is called in lists.")
@click.option(
    "--channel",
    "channels",
    multiple=True,
    required=True,
    type=click.Choice([str(c) for c in Channel]),
    help="email and/or sms (repeat for both).",
)
@click.option(
    "--type",
    "communication_type",
    type=click.Choice([str(t) for t in CommunicationType]),
    default=str(CommunicationType.MARKETING),
    show_default=True,
    help="marketing skips every unsubscribed address; non_marketing only those off everything.",
)
@click.option("--subject", help="Email subject; {first_name} and friends are filled in.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File with the email's HTML body.",
)
@click.option("--text", "text_body", help="The email's plain-text body.")
@click.option("--sms-text", help="The SMS text.")
@click.option("--sender", help="Sender identity (From address or SMS sender).")
@click.option("--all", "all_contacts", is_flag=True, help="Send to every contact.")
@click.option("--contact", "contact_ids", multiple=True, type=int, help="A contact id (repeat).")
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A CSV of recipients (first_name,last_name,email,mobile).",
)
@click.option("--at", "scheduled_at", type=LocalTime(), help="Send later, at this time.")
@click.option("--forward-to", help="Forward SMS replies to this number.")
@click.option("--auto-reply", "auto_reply_text", help="Answer SMS replies with this text.")
@click.option(
    "--tracking/--no-tracking",
    default=None,
    help="Track email opens and clicks (SMTP sender) [default: for marketing only].",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object with sendout_id.")
@click.pass_obj
def create(
    db: Path,
    html_file: Path | None,
    all_contacts: bool,
    contact_ids: tuple[int, ...],
    csv_file: Path | None,
    as_json: bool,
    **fields,
) -> None:
    """Create a send-out (sent when dispatched, or at --at); prints its id."""
    recipients = Recipients(
        all_contacts, list(contact_ids), csv_file, region=settings().default_region
    )
    recipients.read_csv()  # before the warehouse is opened: a big file holds no one up
    draft = Draft(
        **{**fields, "channels": list(fields["channels"])},
        html_body=_html(html_file) if html_file else None,
        recipients=recipients,
    )
    with open_warehouse(db) as con:
        try:
            created = sendout_store.create(con, draft, config=settings())
        except SendoutError as error:
            _fail(error)
    _report(created, as_json)


@sendouts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the send-outs as JSON.")
@click.pass_obj
def list_(db: Path, as_json: bool) -> None:
    """Every send-out, newest first, with its status and progress."""
    with open_warehouse(db, create=False) as con:
        rows = sendout_list(con).to_dicts()
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        when = row["scheduled_at"] or row["created_at"]
        progress = f"{row['done']}/{row['planned']}"
        click.echo(
            f"{row['sendout_id']}  {when:%Y-%m-%d %H:%M}  {row['status']:<11} {progress:>9}"
            f"  {'+'.join(row['channels'])}  {row['name']}"
        )


@sendouts.command()
@click.argument("sendout_id")
@click.pass_obj
def cancel(db: Path, sendout_id: str) -> None:
    """Cancel a send-out before its first message goes (scheduled, or due but not started)."""
    with open_warehouse(db) as con:
        try:
            sendout_store.cancel(con, sendout_id)
        except SendoutError as error:
            _fail(error)
    click.echo(f"cancelled {sendout_id}")


@sendouts.command()
@click.argument("sendout_id")
@click.option("--to", "contact_ids", multiple=True, type=int, help="A contact id (repeat).")
@click.option(
    "--to-csv",
    "csv_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A CSV of other recipients.",
)
@click.option("--non-openers", is_flag=True, help="Everyone who has not opened the email.")
@click.option(
    "--exclude-machine-openers",
    is_flag=True,
    help="With --non-openers: leave out those opened only by machines.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object with sendout_id.")
@click.pass_obj
def resend(
    db: Path,
    sendout_id: str,
    contact_ids: tuple[int, ...],
    csv_file: Path | None,
    non_openers: bool,
    exclude_machine_openers: bool,
    as_json: bool,
) -> None:
    """Send a send-out's content again, to others or to its non-openers; prints the new id."""
    if non_openers == bool(contact_ids or csv_file):
        raise click.UsageError("give either --to/--to-csv or --non-openers")
    recipients = Recipients(
        contact_ids=list(contact_ids), csv=csv_file, region=settings().default_region
    )
    recipients.read_csv()  # before the warehouse is opened: a big file holds no one up
    with open_warehouse(db) as con:
        try:
            if non_openers:
                refresh(con, config=settings())  # who opened is known as of the latest events
                created = resends.resend_to_non_openers(
                    con, sendout_id, exclude_machine_openers, config=settings()
                )
            else:
                created = resends.resend_to(con, sendout_id, recipients, config=settings())
        except SendoutError as error:
            _fail(error)
    _report(created, as_json)
