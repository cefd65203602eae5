"""The SMTP sender against a real SMTP server on 127.0.0.1: headers that join provider events
back, reused connections, and the relay's answers turned into outcomes."""

import json
import ssl
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from aiosmtpd.smtp import AuthResult

from flows.senders import SenderUnavailable
from flows.senders.smtp import SmtpSender, xtext
from flows.settings import Settings
from tests.mail_servers import make_certificate
from tests.smtp_sink import free_port, start_sink
from warehouse.dispatch_state import Outgoing


@pytest.fixture(params=[False, True], ids=["one-by-one", "pipelining"])
def sink(request):
    """A relay that takes commands one by one, and one that offers PIPELINING (RFC 2920)."""
    sink, controller = start_sink(pipelining=request.param)
    yield sink, controller.port
    controller.stop()


def outgoing(n: int, recipient: str | None = None) -> Outgoing:
    return Outgoing(
        message_id=f"msg_{n:04d}",
        sendout_id="so_1",
        channel="email",
        recipient=recipient or f"p{n}@example.com",
        communication_type="marketing",
        sender="News <news@example.org>",
        subject=f"Hello {n}",
        html_body="<p>Hi</p>",
        text_body="Hi",
        sms_text=None,
        is_possible_duplicate=False,
        is_tracked=False,
    )


def sender(port: int, **settings) -> SmtpSender:
    return SmtpSender(Settings(smtp_host="127.0.0.1", smtp_port=port, **settings))


def test_each_message_carries_our_id_in_every_providers_tag_header(sink):
    received, port = sink
    smtp = sender(port, smtp_connections=1, ses_configuration_set="sendout")

    [outcome] = smtp.send([outgoing(7)])
    smtp.close()

    [email] = received.messages
    assert email["Message-ID"] == "<msg_0007@example.org>"
    assert email["X-SES-MESSAGE-TAGS"] == "sendout_message_id=msg_0007"
    assert email["X-SES-CONFIGURATION-SET"] == "sendout"
    assert json.loads(email["X-SMTPAPI"]) == {"unique_args": {"sendout_message_id": "msg_0007"}}
    assert json.loads(email["X-Mailgun-Variables"]) == {"sendout_message_id": "msg_0007"}
    assert email["X-PM-Metadata-sendout_message_id"] == "msg_0007"
    assert (outcome.event_type, outcome.provider, outcome.provider_message_id) == (
        "sent",
        "smtp",
        "Q1",
    )


def test_bounces_come_back_to_an_address_that_names_the_message(sink):
    received, port = sink
    smtp = sender(port, smtp_connections=1, email_from="News <news@example.org>")

    smtp.send([outgoing(1), outgoing(2)])
    smtp.close()

    assert received.envelope_senders == [
        "bounces+msg_0001@example.org",
        "bounces+msg_0002@example.org",
    ]
    assert [m["X-Sendout-Message-Id"] for m in received.messages] == ["msg_0001", "msg_0002"]


def test_the_return_path_is_in_the_domain_of_the_messages_own_sender(sink):
    """So that it aligns with the From address for SPF and DMARC."""
    received, port = sink
    smtp = sender(port, smtp_connections=1, email_from="News <news@example.org>")

    smtp.send([replace(outgoing(4), sender="Club <club@other.example>")])
    smtp.close()

    assert received.envelope_senders == ["bounces+msg_0004@other.example"]


@pytest.mark.parametrize("address", ["bounces", "bounces@localhost", "x" * 40 + "@example.org"])
def test_a_bounce_address_that_cannot_carry_our_id_is_refused(address):
    with pytest.raises(ValueError, match="bounce_address"):
        Settings(bounce_address=address)


def test_the_original_recipient_goes_to_a_dsn_relay_as_xtext():
    assert xtext("anna+news=1@example.org") == "anna+2Bnews+3D1@example.org"
    assert xtext("zoë@example.org") == "zo+C3+AB@example.org"


def test_the_bounce_address_can_be_set(sink):
    received, port = sink
    smtp = sender(port, smtp_connections=1, bounce_address="returns@bounces.example.net")

    smtp.send([outgoing(3)])
    smtp.close()

    assert received.envelope_senders == ["returns+msg_0003@bounces.example.net"]


def test_connections_are_opened_once_and_reused_across_batches(sink):
    received, port = sink
    smtp = sender(port, smtp_connections=3)

    for batch in range(4):
        smtp.send([outgoing(batch * 10 + n) for n in range(9)])
    smtp.close()

    assert len(received.messages) == 36
    assert received.connections == 3


@pytest.mark.parametrize(
    ("recipient", "event_type", "status_code"),
    [
        # whether a refusal proves a bad address is the classifier's to say, when it is stored
        ("unknown@example.com", "bounced", "5.1.1"),
        ("policy@example.com", "bounced", "5.7.1"),
        ("busy@example.com", "deferred", "4.2.0"),
    ],
)
def test_the_relays_refusals_become_outcomes(sink, monkeypatch, recipient, event_type, status_code):
    received, port = sink
    monkeypatch.setattr("flows.senders.smtp.RETRY_PAUSE", 0.01)
    smtp = sender(port, smtp_connections=1)

    [refused, fine] = smtp.send([outgoing(1, recipient), outgoing(2)])
    smtp.close()

    assert (refused.event_type, refused.status_code) == (event_type, status_code)
    assert fine.event_type == "sent"
    assert received.message_ids() == ["msg_0002"]


def test_a_temporary_refusal_is_tried_again_before_it_is_deferred(sink, monkeypatch):
    received, port = sink
    monkeypatch.setattr("flows.senders.smtp.RETRY_PAUSE", 0.01)
    smtp = sender(port, smtp_connections=1)

    smtp.send([outgoing(1, "busy@example.com")])
    smtp.close()

    assert received.rcpt_refusals == 3


def test_a_rate_limit_spreads_the_messages_over_time(sink):
    _, port = sink
    smtp = sender(port, smtp_connections=2, email_rate=50)

    started = datetime.now(UTC)
    smtp.send([outgoing(n) for n in range(20)])
    smtp.close()

    assert (datetime.now(UTC) - started).total_seconds() >= 19 / 50


def test_a_relay_that_cannot_be_reached_is_one_clear_error():
    smtp = sender(free_port(), smtp_connections=1)

    with pytest.raises(SenderUnavailable, match="cannot be used"):
        smtp.send([outgoing(1)])


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1, made with openssl for this test."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    make_certificate(cert, key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert


def test_starttls_and_login_are_used_when_configured(certificate):
    context, cert = certificate
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password, session.ssl is not None))
        return AuthResult(success=auth_data.password == b"s3cret")

    received, controller = start_sink(
        tls_context=context, require_starttls=True, authenticator=authenticator, auth_required=True
    )
    try:
        smtp = sender(
            controller.port,
            smtp_starttls=True,
            smtp_ca_file=str(cert),
            smtp_user="news",
            smtp_password="s3cret",
            smtp_connections=1,
        )
        [outcome] = smtp.send([outgoing(1)])
        smtp.close()
    finally:
        controller.stop()

    assert outcome.event_type == "sent"
    assert logins == [(b"news", b"s3cret", True)]
    assert received.message_ids() == ["msg_0001"]


def test_a_relay_whose_certificate_is_not_trusted_is_refused(certificate):
    context, _ = certificate
    _, controller = start_sink(tls_context=context, require_starttls=True)
    try:
        smtp = sender(controller.port, smtp_starttls=True, smtp_connections=1)
        with pytest.raises(SenderUnavailable, match="certificate verify failed"):
            smtp.send([outgoing(1)])
    finally:
        controller.stop()
