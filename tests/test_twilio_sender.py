"""The Twilio sender against a local server speaking Twilio's Messages API on 127.0.0.1."""

from urllib.parse import parse_qs, urlparse

import pytest

from flows.senders import SenderUnavailable
from flows.senders.twilio import TwilioSender
from flows.settings import Settings
from tests.twilio_fake import ACCOUNT, TOKEN, start_twilio
from warehouse.dispatch_state import Outgoing


@pytest.fixture
def twilio():
    fake, server = start_twilio()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def sms(n: int, to: str) -> Outgoing:
    return Outgoing(
        message_id=f"msg_{n}",
        sendout_id="so_1",
        channel="sms",
        recipient=to,
        communication_type="marketing",
        sender=None,
        subject=None,
        html_body=None,
        text_body=None,
        sms_text=f"Hello {n}",
        is_possible_duplicate=False,
        is_tracked=False,
    )


def sender(base: str, **settings) -> TwilioSender:
    return TwilioSender(
        Settings(
            twilio_account_sid=ACCOUNT,
            twilio_auth_token=TOKEN,
            twilio_from="+14155550000",
            twilio_api_base=base,
            **settings,
        )
    )


def test_a_message_is_posted_with_a_status_callback_that_carries_our_id(twilio):
    fake, base = twilio
    api = sender(base, twilio_status_callback="https://hooks.example.org/twilio/status")

    [outcome] = api.send([sms(1, "+447911123456")])
    api.close()

    [form] = fake.requests
    assert (form["To"], form["From"], form["Body"]) == ("+447911123456", "+14155550000", "Hello 1")
    callback = urlparse(form["StatusCallback"])
    assert callback.netloc == "hooks.example.org"
    assert parse_qs(callback.query) == {"sendout_message_id": ["msg_1"]}
    assert (outcome.event_type, outcome.provider, outcome.provider_message_id) == (
        "queued",
        "twilio",
        f"SM{1:032d}",
    )


@pytest.mark.parametrize(
    ("to", "event_type", "code"),
    [
        ("+447911000000", "bad_number", "21211"),
        ("+447911001111", "skipped", "21610"),
        ("+447911002222", "failed", "21408"),
    ],
)
def test_synchronous_api_errors_are_outcomes_at_once(twilio, to, event_type, code):
    _, base = twilio
    api = sender(base)

    [outcome] = api.send([sms(1, to)])
    api.close()

    assert (outcome.event_type, outcome.status_code) == (event_type, code)


def test_a_429_is_retried_and_then_succeeds(twilio, monkeypatch):
    fake, base = twilio
    monkeypatch.setattr("flows.senders.twilio.RETRY_PAUSE", 0.01)
    api = sender(base)

    [outcome] = api.send([sms(1, "+447911003333")])
    api.close()

    assert outcome.event_type == "queued"
    assert fake.throttled == {"+447911003333"}


def test_wrong_credentials_stop_dispatch_with_a_clear_error(twilio):
    _, base = twilio
    api = TwilioSender(
        Settings(
            twilio_account_sid=ACCOUNT,
            twilio_auth_token="wrong",
            twilio_from="+14155550000",
            twilio_api_base=base,
        )
    )

    with pytest.raises(SenderUnavailable, match="refused our credentials"):
        api.send([sms(1, "+447911123456")])


def test_missing_configuration_is_named():
    with pytest.raises(SenderUnavailable, match="SENDOUT_TWILIO_ACCOUNT_SID"):
        TwilioSender(Settings())
