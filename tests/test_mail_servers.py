"""The real mail servers of tests/mail_servers.py at work: Postfix relays to a destination that
refuses or defers some recipients and writes the DSNs a VERP sender gets back; Dovecot serves a
Maildir over IMAPS."""

import imaplib
import shutil
import smtplib
import socket
import ssl
from email import message_from_bytes, policy
from email.message import EmailMessage, Message

import pytest

from tests.mail_servers import (
    add_to_maildir,
    destination_smtp,
    dovecot_imap,
    is_running,
    postfix_relay,
    read_maildir,
    wait_for_maildir,
    wait_until,
)

SENDER = "bounces+msg_1@bounces.test"


@pytest.fixture
def destination():
    with destination_smtp() as server:
        yield server


@pytest.fixture
def relay(workdir, destination):
    with postfix_relay(workdir, destination.port) as server:
        yield server


def send(relay, recipients: list[str], sender: str = SENDER) -> None:
    message = EmailMessage()
    message["From"] = "News <news@sendout.test>"
    message["To"] = ", ".join(recipients)
    message["Subject"] = "Hello"
    message["X-Sendout-Message-Id"] = "msg_1"
    message.set_content("Hi")
    with smtplib.SMTP(relay.host, relay.port) as smtp:
        smtp.send_message(message, from_addr=sender, to_addrs=recipients)


def recipient_reports(dsn: Message) -> list[Message]:
    """The per-recipient fields of a DSN's message/delivery-status part (RFC 3464)."""
    [status] = [p for p in dsn.walk() if p.get_content_type() == "message/delivery-status"]
    return status.get_payload()[1:]  # the first block is about the message


def test_a_refused_recipient_comes_back_as_a_dsn_to_the_verp_sender(relay, destination):
    send(relay, ["unknown1@dest.test", "ok@dest.test"])

    [delivery] = destination.wait_for_deliveries(1)
    assert delivery.mail_from == SENDER
    assert delivery.rcpt_tos == ["ok@dest.test"]
    assert delivery.message["X-Sendout-Message-Id"] == "msg_1"
    # the destination advertises DSN, so Postfix passes the DSN parameters on
    assert delivery.rcpt_options["ok@dest.test"] == ["ORCPT=RFC822;OK@DEST.TEST"]

    [dsn] = relay.wait_for_bounces(1)
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    assert dsn["To"] == SENDER
    assert dsn["Delivered-To"] == SENDER
    [report] = recipient_reports(dsn)
    assert report["Final-Recipient"] == "rfc822; unknown1@dest.test"
    assert report["Action"] == "failed"
    assert report["Status"] == "5.1.1"
    diagnostic = " ".join(report["Diagnostic-Code"].split())  # folded in the DSN
    assert diagnostic == (
        "smtp; 550 5.1.1 <unknown1@dest.test>: Recipient address rejected: User unknown"
    )


def test_a_full_mailbox_is_retried_and_the_sender_warned_of_the_delay(relay, destination):
    send(relay, ["full1@dest.test"])

    [dsn] = relay.wait_for_bounces(1)
    assert dsn["Subject"] == "Delayed Mail (still being retried)"
    assert dsn["To"] == SENDER
    [report] = recipient_reports(dsn)
    assert report["Final-Recipient"] == "rfc822; full1@dest.test"
    assert report["Action"] == "delayed"
    assert report["Status"] == "4.2.2"

    # between retries it waits in the deferred queue with the reason
    [queued] = wait_until(lambda: deferred(relay), 10, "deferred message")
    assert queued["sender"] == SENDER
    [recipient] = queued["recipients"]
    assert recipient["address"] == "full1@dest.test"
    assert "452 4.2.2 Mailbox full" in recipient["delay_reason"]
    relay.wait_for_log(r"to=<full1@dest\.test>.*dsn=4\.2\.2, status=deferred")
    assert destination.deliveries == []
    assert destination.refusals[0] == ("full1@dest.test", "452 4.2.2 Mailbox full")

    # once the mailbox has room, a flush of the queue delivers it
    del destination.replies["full"]
    relay.flush()
    [delivery] = destination.wait_for_deliveries(1, timeout=10)
    assert delivery.rcpt_tos == ["full1@dest.test"]


def deferred(relay) -> list[dict]:
    return [m for m in relay.queue() if m["queue_name"] == "deferred" and m["sender"] == SENDER]


def test_bounces_can_be_piped_to_a_command_instead(workdir, destination):
    received = workdir / "received"
    received.mkdir()
    shutil.chown(received, "nobody", "nogroup")  # the command runs as nobody
    # pipe(8) expands ${recipient}; $$ is a literal $ for the shell
    command = ["/bin/sh", "-c", 'cat > "$$0/$$1.eml"', str(received), "${recipient}"]

    with postfix_relay(workdir, destination.port, bounce_pipe=command) as relay:
        send(relay, ["unknown1@dest.test"])
        relay.wait_for_log(r"to=<bounces\+msg_1@bounces\.test>, relay=bouncepipe.*status=sent")

    [piped] = received.iterdir()
    assert piped.name == f"{SENDER}.eml"
    dsn = message_from_bytes(piped.read_bytes(), policy=policy.default)
    assert dsn["To"] == SENDER
    assert dsn["Delivered-To"] == SENDER
    assert recipient_reports(dsn)[0]["Status"] == "5.1.1"


def test_a_maildir_is_read_and_tidied_over_imaps(workdir):
    maildir = workdir / "Maildir"
    add_to_maildir(maildir, b"From: a@dest.test\r\nSubject: One\r\n\r\nBody\r\n")

    with dovecot_imap(workdir, "bounces", "s3cret", maildir) as server:
        # imaplib checks no certificate unless given a context that does
        with pytest.raises(ssl.SSLCertVerificationError):
            imaplib.IMAP4_SSL(server.host, server.port, ssl_context=ssl.create_default_context())

        with imaplib.IMAP4_SSL(server.host, server.port, ssl_context=server.ssl_context()) as imap:
            imap.login(server.user, server.password)
            imap.select("INBOX")
            _, [uids] = imap.uid("SEARCH", None, "ALL")
            [uid] = uids.split()
            _, [(_, raw), _] = imap.uid("FETCH", uid, "(RFC822)")
            assert b"Subject: One" in raw

            imap.create("Processed")
            imap.uid("MOVE", uid, "Processed")
            assert read_maildir(maildir) == []
            assert len(read_maildir(maildir / ".Processed")) == 1

            imap.select("Processed")
            imap.uid("STORE", uid, "+FLAGS", r"(\Deleted)")
            imap.expunge()
            assert read_maildir(maildir / ".Processed") == []


def test_a_dsn_postfix_kept_is_fetched_over_imaps(workdir, relay):
    send(relay, ["unknown1@dest.test"])
    wait_for_maildir(relay.bounce_maildir, 1)

    with (
        dovecot_imap(workdir, "bounces", "s3cret", relay.bounce_maildir) as server,
        imaplib.IMAP4_SSL(server.host, server.port, ssl_context=server.ssl_context()) as imap,
    ):
        imap.login(server.user, server.password)
        imap.select("INBOX", readonly=True)
        _, [(_, raw), _] = imap.fetch("1", "(RFC822)")

    assert b"report-type=delivery-status" in raw
    assert b"Status: 5.1.1" in raw


def test_leaving_the_block_stops_every_server_even_after_a_failure(workdir):
    with (
        pytest.raises(RuntimeError, match="the test failed"),
        destination_smtp() as destination,
        postfix_relay(workdir, destination.port) as relay,
        dovecot_imap(workdir, "u", "p", workdir / "Maildir") as imap,
    ):
        masters = [relay.master_pid, imap.master_pid]
        ports = [destination.port, relay.port, imap.port]
        raise RuntimeError("the test failed")

    assert not any(is_running(pid) for pid in masters)
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
