"""Bounce mail through a real relay, end to end: Sendout's SMTP sender hands a send-out to
Debian's Postfix on 127.0.0.1, which relays it to a destination server that takes one
recipient, refuses one (550 5.1.1) and defers one (452 4.2.2). Postfix's own DSNs come back to
each message's VERP address, into a Maildir (or over IMAP from Dovecot); after ingest the
refused address is Bad email and on the Unsubscribes list with its reason, the deferred one is
still Sent, and the one the relay handed on is Delivered: its DSN says so."""

import subprocess
import sys
from pathlib import Path

import pytest

from flows.bounces import BounceMailboxError, fetch
from flows.dispatch import run_dispatch
from flows.settings import Settings
from tests.mail_servers import (
    add_to_maildir,
    destination_smtp,
    dovecot_imap,
    postfix_relay,
    read_maildir,
    wait_for_maildir,
)
from tests.warehouse_builders import create_sendout
from warehouse.db import connect, fetch_dicts, open_warehouse
from warehouse.ingest import ingest_paths
from warehouse.refresh import refresh

PEOPLE = {"Ok": "ok@dest.test", "Unknown": "unknown1@dest.test", "Full": "full1@dest.test"}


@pytest.fixture
def destination():
    with destination_smtp(dsn=False) as server:
        yield server


@pytest.fixture
def relay(workdir, destination):
    with postfix_relay(workdir, destination.port, bounce_domain="bounces.test") as server:
        yield server


def add_people(db: Path) -> None:
    with open_warehouse(db) as con:
        for name, email in PEOPLE.items():
            con.execute("INSERT INTO contacts (first_name, email) VALUES (?, ?)", [name, email])


def send_through(relay, db: Path, tmp_path: Path) -> tuple[str, Settings]:
    config = Settings(
        db=db,
        landing=tmp_path / "landing",
        email_sender="smtp",
        smtp_host=relay.host,
        smtp_port=relay.port,
        smtp_connections=1,
        email_from="News <news@sendout.test>",
        bounce_address="bounces@bounces.test",
    )
    add_people(db)
    sendout_id = create_sendout(db)
    run_dispatch(db, sendout_id, config)
    return sendout_id, config


def statuses(db: Path) -> dict[str, tuple]:
    with connect(db, read_only=True) as con:
        rows = fetch_dicts(
            con.execute("SELECT recipient, status, bounce_reason FROM message_status")
        )
    return {r["recipient"]: (r["status"], r["bounce_reason"]) for r in rows}


def mailbox_settings(imap, landing: Path, password: str) -> Settings:
    """What `sendout bounces fetch` is configured with for the Dovecot of a test."""
    return Settings(
        landing=landing,
        bounce_imap_host=imap.host,
        bounce_imap_port=imap.port,
        bounce_imap_user=imap.user,
        bounce_imap_password=password,
        bounce_imap_ca_file=str(imap.ca_file),
    )


def actions(report) -> str:
    """The action a DSN reports for its one recipient (RFC 3464)."""
    [status] = [p for p in report.walk() if p.get_content_type() == "message/delivery-status"]
    return status.get_payload()[1]["Action"]


def unsubscribes(db: Path) -> list[tuple]:
    with connect(db, read_only=True) as con:
        return con.execute("SELECT address, reason FROM unsubscribes ORDER BY ALL").fetchall()


def ingest_and_refresh(db: Path, folder: Path) -> None:
    ingest_paths(db, [folder])
    with open_warehouse(db) as con:
        refresh(con)


def test_the_relays_own_reports_give_each_recipient_its_status(
    relay, destination, db_path, tmp_path
):
    send_through(relay, db_path, tmp_path)
    # the relay took all three; its reports come later, to each message's own address
    assert set(statuses(db_path).values()) == {("Sent", None)}

    reports = wait_for_maildir(relay.bounce_maildir, 3)
    assert sorted(actions(r) for r in reports) == ["delayed", "failed", "relayed"]
    ingest_and_refresh(db_path, relay.bounce_maildir)

    assert statuses(db_path) == {
        "ok@dest.test": ("Delivered", None),
        "unknown1@dest.test": ("Bad email", "user_unknown"),
        "full1@dest.test": ("Sent", "mailbox_full"),  # deferred: it may still arrive
    }
    assert unsubscribes(db_path) == [("unknown1@dest.test", "bad_email")]
    assert destination.recipients() == ["ok@dest.test"]


def test_each_message_went_out_with_its_own_return_path_and_a_dsn_request(
    relay, destination, db_path, tmp_path
):
    send_through(relay, db_path, tmp_path)
    [delivery] = destination.wait_for_deliveries(1)
    message_id = delivery.message["X-Sendout-Message-Id"]
    assert delivery.mail_from == f"bounces+{message_id}@bounces.test"

    # Postfix offered DSN, so the sender asked for reports with the message's id as ENVID
    reports = wait_for_maildir(relay.bounce_maildir, 3)
    with connect(db_path, read_only=True) as con:
        sent = dict(con.execute("SELECT message_id, recipient FROM messages").fetchall())
    assert {envelope_id(r): r["To"] for r in reports} == {
        m: f"bounces+{m}@bounces.test" for m in sent
    }


def envelope_id(report) -> str:
    [status] = [p for p in report.walk() if p.get_content_type() == "message/delivery-status"]
    return status.get_payload()[0]["Original-Envelope-Id"]


def test_postfix_can_pipe_its_reports_to_sendout_bounces_receive(db_path, tmp_path):
    """What Postfix's pipe transport does: one message on standard input, landed for ingest."""
    dsn = (Path(__file__).parent / "fixtures" / "mail" / "rfc" / "verp_dsn.eml").read_bytes()
    landing = tmp_path / "landing"
    env = {"SENDOUT_LANDING": str(landing), "SENDOUT_DB": str(db_path), "PATH": "/usr/bin"}

    for _ in range(2):  # delivered twice (Postfix retried): landed once
        done = subprocess.run(
            [sys.executable, "-m", "flows.cli", "bounces", "receive"],
            input=dsn,
            capture_output=True,
            env=env,
        )
        assert done.returncode == 0, done.stderr
    [landed] = (landing / "bounces" / "new").iterdir()
    assert landed.read_bytes() == dsn

    empty = subprocess.run(
        [sys.executable, "-m", "flows.cli", "bounces", "receive"], input=b"", env=env
    )
    assert empty.returncode == 65  # EX_DATAERR: the mail server returns it, never retries


def test_bounces_are_fetched_over_imap_and_leave_the_mailbox_only_once_landed(
    relay, workdir, db_path, tmp_path
):
    send_through(relay, db_path, tmp_path)
    wait_for_maildir(relay.bounce_maildir, 3)
    mailbox = workdir / "mailbox"
    for report in read_maildir(relay.bounce_maildir):
        add_to_maildir(mailbox, report.as_bytes())

    with dovecot_imap(workdir, "bounces", "s3cret", mailbox) as imap:
        config = mailbox_settings(imap, tmp_path / "landing", imap.password)
        summary = fetch(config)
        again = fetch(config)

    assert (summary.fetched, summary.landed) == (3, 3)
    assert again.fetched == 0
    assert read_maildir(mailbox) == []  # taken out of the mailbox once landed
    ingest_and_refresh(db_path, config.landing)
    assert statuses(db_path)["unknown1@dest.test"] == ("Bad email", "user_unknown")


def test_a_wrong_password_is_one_clear_error_and_takes_nothing(workdir, tmp_path):
    mailbox = workdir / "mailbox"
    add_to_maildir(mailbox, b"From: a@dest.test\r\nSubject: One\r\n\r\nBody\r\n")
    with dovecot_imap(workdir, "bounces", "s3cret", mailbox) as imap:
        config = mailbox_settings(imap, tmp_path / "landing", "wrong")
        with pytest.raises(BounceMailboxError, match="refused the login of bounces"):
            fetch(config)

    assert len(read_maildir(mailbox)) == 1
