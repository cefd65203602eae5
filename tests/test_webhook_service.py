"""The webhook service over real HTTP on 127.0.0.1: authentic requests are landed durably and
answered 2xx, others get 401/403/413 and nothing is written; what lands is ingested like any
provider file and shows in the message's final status."""

import base64
import hashlib
import hmac
import json
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from flows.settings import Settings
from flows.webhooks.app import create_app
from flows.webhooks.server import uvicorn_options
from tests.smtp_sink import free_port
from tests.sns import signed_sns
from tests.warehouse_builders import add_message, add_sendout, run_refresh
from warehouse.db import connect
from warehouse.ingest import ingest_paths

SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


class Service:
    """The real service under uvicorn in a thread, until stop() (which lets it close its files)."""

    def __init__(self, config: Settings):
        self.port = config.webhook_port
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(config), **uvicorn_options(config), log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def service(tmp_path: Path):
    config = Settings(
        landing=tmp_path / "landing",
        webhook_port=free_port(),
        sendgrid_public_key=SENDGRID_PUBLIC,
        mailgun_signing_key="mg-key",
        postmark_user="pm",
        postmark_password="pm-pass",
        twilio_auth_token="tw-token",
        auto_reply_text="Thanks & see you",
        webhook_max_body_bytes=10_000,
    )
    running = Service(config)
    yield running, config
    running.stop()


def landed(config: Settings) -> list[dict | str]:
    lines = []
    for path in sorted((Path(config.landing) / "webhooks").glob("*.ndjson")):
        for line in path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append(line)
    return lines


def sendgrid_post(url: str, events, key=SENDGRID_KEY, tamper: bool = False) -> httpx.Response:
    body = json.dumps(events).encode()
    stamp = str(int(time.time()))
    signature = base64.b64encode(key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256())))
    return httpx.post(
        f"{url}/webhooks/sendgrid",
        content=body + (b" " if tamper else b""),
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": signature.decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        },
    )


def test_signed_sendgrid_events_land_and_tampered_or_foreign_ones_do_not(service):
    running, config = service
    events = [
        {
            "event": "open",
            "email": "ada@example.com",
            "timestamp": 1800000000,
            "sg_event_id": "e1",
            "sendout_message_id": "m1",
        }
    ]

    good = sendgrid_post(running.url, events)
    tampered = sendgrid_post(running.url, events, tamper=True)
    foreign = sendgrid_post(running.url, events, key=ec.generate_private_key(ec.SECP256R1()))
    running.stop()

    assert (good.status_code, tampered.status_code, foreign.status_code) == (200, 403, 403)
    assert landed(config) == events


def test_mailgun_refuses_a_replayed_token_and_postmark_wants_its_credentials(service):
    running, config = service
    stamp, token = str(int(time.time())), "tok-1"
    signature = hmac.new(b"mg-key", f"{stamp}{token}".encode(), hashlib.sha256).hexdigest()
    body = {
        "signature": {"timestamp": stamp, "token": token, "signature": signature},
        "event-data": {"event": "delivered", "recipient": "ada@example.com"},
    }

    first = httpx.post(f"{running.url}/webhooks/mailgun", json=body)
    replayed = httpx.post(f"{running.url}/webhooks/mailgun", json=body)
    anonymous = httpx.post(f"{running.url}/webhooks/postmark", json={"RecordType": "Delivery"})
    postmark = httpx.post(
        f"{running.url}/webhooks/postmark", json={"RecordType": "Delivery"}, auth=("pm", "pm-pass")
    )
    running.stop()

    assert (first.status_code, replayed.status_code) == (200, 403)
    assert (anonymous.status_code, postmark.status_code) == (401, 200)
    landed_kinds = {r.get("RecordType") or r["event-data"]["event"] for r in landed(config)}
    assert landed_kinds == {"Delivery", "delivered"}
    assert len(landed(config)) == 2  # the replayed one did not land


def twilio_signature(token: str, url: str, form: dict) -> str:
    payload = url + "".join(f"{k}{form[k]}" for k in sorted(form))
    return base64.b64encode(
        hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    ).decode()


def test_twilio_callbacks_land_with_our_id_and_an_inbound_sms_gets_the_auto_reply(service):
    running, config = service
    status = {
        "MessageSid": "SM1",
        "MessageStatus": "delivered",
        "To": "+447911123456",
        "AccountSid": "AC1",
    }
    status_url = f"{running.url}/webhooks/twilio/status?sendout_message_id=m9"
    inbound = {
        "MessageSid": "SM2",
        "SmsStatus": "received",
        "From": "+447911123456",
        "Body": "Hello",
        "AccountSid": "AC1",
    }
    inbound_url = f"{running.url}/webhooks/twilio/inbound"

    delivered = httpx.post(
        status_url,
        data=status,
        headers={"X-Twilio-Signature": twilio_signature("tw-token", status_url, status)},
    )
    reply = httpx.post(
        inbound_url,
        data=inbound,
        headers={"X-Twilio-Signature": twilio_signature("tw-token", inbound_url, inbound)},
    )
    forged = httpx.post(inbound_url, data=inbound, headers={"X-Twilio-Signature": "bad"})
    running.stop()

    assert (delivered.status_code, reply.status_code, forged.status_code) == (200, 200, 403)
    assert "<Message>Thanks &amp; see you</Message>" in reply.text
    records = landed(config)
    assert [
        (r["MessageSid"], r.get("MessageStatus") or r.get("SmsStatus"), r.get("sendout_message_id"))
        for r in records
    ] == [("SM1", "delivered", "m9"), ("SM2", "received", None), ("SM2", "replied", None)]
    assert all("sendout_received_at" in r for r in records)


def test_landing_files_go_to_ingest_by_size_and_by_age_even_when_nothing_more_comes(tmp_path):
    config = Settings(
        landing=tmp_path / "landing",
        webhook_port=free_port(),
        postmark_user="pm",
        postmark_password="pm-pass",
        landing_file_max_bytes=50,
        landing_file_max_seconds=1.0,
    )
    folder = Path(config.landing) / "webhooks"
    running = Service(config)
    try:
        for n in range(3):  # each record fills a file: the next write starts a new one
            record = {"RecordType": "Delivery", "MessageID": f"pm-{n}", "padding": "x" * 50}
            httpx.post(f"{running.url}/webhooks/postmark", json=record, auth=("pm", "pm-pass"))
        handed_over_by_size = len(list(folder.glob("*.ndjson")))
        deadline = time.monotonic() + 10
        while list(folder.glob("*.open")) and time.monotonic() < deadline:
            time.sleep(0.1)  # nothing more arrives; the last file is handed over by age
        left_open = list(folder.glob("*.open"))
    finally:
        running.stop()

    assert handed_over_by_size >= 2  # (the last may go by age already on a slow machine)
    assert left_open == []
    assert sorted(r["MessageID"] for r in landed(config)) == ["pm-0", "pm-1", "pm-2"]


def test_a_landing_file_goes_to_ingest_after_a_second_of_quiet_long_before_its_age(tmp_path):
    config = Settings(
        landing=tmp_path / "landing",
        webhook_port=free_port(),
        postmark_user="pm",
        postmark_password="pm-pass",
        landing_file_max_seconds=600,
        landing_file_quiet_seconds=1.0,
    )
    folder = Path(config.landing) / "webhooks"
    running = Service(config)
    try:
        record = {"RecordType": "Delivery", "MessageID": "pm-quiet"}
        httpx.post(f"{running.url}/webhooks/postmark", json=record, auth=("pm", "pm-pass"))
        answered = time.monotonic()
        while not list(folder.glob("*.ndjson")) and time.monotonic() - answered < 10:
            time.sleep(0.05)
        waited = time.monotonic() - answered
        still_open = list(folder.glob("*.open"))
    finally:
        running.stop()

    assert still_open == []
    assert waited < 5  # a second of quiet, checked four times a second; not 600 s of age
    assert [r["MessageID"] for r in landed(config)] == ["pm-quiet"]


def test_what_a_crashed_service_left_open_is_handed_to_ingest_when_it_starts_again(tmp_path):
    config = Settings(landing=tmp_path / "landing", webhook_port=free_port())
    folder = Path(config.landing) / "webhooks"
    folder.mkdir(parents=True)
    left_open = folder / "twilio-20261127T093000-1a2b3c4d.ndjson.open"
    left_open.write_text('{"MessageSid": "SM1", "MessageStatus": "delivered"}\n{"MessageSi')

    Service(config).stop()

    assert not left_open.exists()
    assert landed(config) == [{"MessageSid": "SM1", "MessageStatus": "delivered"}, '{"MessageSi']


def test_a_body_over_the_limit_gets_413_and_nothing_lands(service):
    running, config = service

    response = httpx.post(
        f"{running.url}/webhooks/postmark", content=b"x" * 20_000, auth=("pm", "pm-pass")
    )
    running.stop()

    assert response.status_code == 413
    assert landed(config) == []


def test_a_malformed_but_authenticated_body_is_kept_for_quarantine(service):
    running, config = service

    response = httpx.post(
        f"{running.url}/webhooks/postmark", content=b'{"RecordType": "Deli', auth=("pm", "pm-pass")
    )
    running.stop()

    assert response.status_code == 200
    assert landed(config) == ['{"RecordType": "Deli']


def test_a_pushed_event_is_ingested_and_shows_in_the_final_status(service, db_path):
    running, config = service
    add_sendout(db_path, "s1")
    add_message(db_path, "m1", "s1", "ada@example.com")
    events = [
        {
            "event": "delivered",
            "email": "ada@example.com",
            "timestamp": 1790000000,
            "sg_event_id": "d1",
            "sendout_message_id": "m1",
        }
    ]

    assert sendgrid_post(running.url, events).status_code == 200
    running.stop()
    summary = ingest_paths(db_path, [Path(config.landing)])
    run_refresh(db_path)

    assert (summary.events_new, summary.unmatched) == (1, 0)
    with connect(db_path, read_only=True) as con:
        assert con.sql("SELECT status FROM message_status").fetchall() == [("Delivered",)]


def test_a_replayed_sendgrid_request_is_stored_once_and_a_stale_one_refused(service, db_path):
    running, config = service
    delivered = {"event": "delivered", "email": "ada@example.com", "sg_event_id": "r1"}
    body = json.dumps([{**delivered, "timestamp": 1790000000}]).encode()

    def send(stamp: int) -> httpx.Response:
        signature = SENDGRID_KEY.sign(str(stamp).encode() + body, ec.ECDSA(hashes.SHA256()))
        headers = {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": str(stamp),
        }
        return httpx.post(f"{running.url}/webhooks/sendgrid", content=body, headers=headers)

    now = int(time.time())
    answers = [send(now).status_code, send(now).status_code, send(now - 2 * 86400).status_code]
    running.stop()
    summary = ingest_paths(db_path, [Path(config.landing)])

    assert answers == [200, 200, 403]
    assert len(landed(config)) == 2  # the replay lands again ...
    assert (summary.events_new, summary.events_duplicate) == (1, 1)  # ... and is stored once


def test_ses_through_sns_verifies_with_a_pinned_certificate(tmp_path, sns_signer):
    key, certificate = sns_signer
    pinned = tmp_path / "sns.pem"
    pinned.write_bytes(certificate)
    config = Settings(
        landing=tmp_path / "landing", webhook_port=free_port(), sns_certificate_file=str(pinned)
    )
    running = Service(config)
    amazon = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem"
    message = signed_sns(key, "2", SigningCertURL=amazon)

    good = httpx.post(f"{running.url}/webhooks/ses", json=message)
    forged = httpx.post(f"{running.url}/webhooks/ses", json={**message, "Message": "{}"})
    running.stop()

    assert (good.status_code, forged.status_code) == (200, 403)
    assert [r["MessageId"] for r in landed(config)] == ["sns-1"]


def test_amazons_certificate_is_fetched_once_and_a_failed_fetch_asks_sns_to_retry(
    tmp_path, sns_signer, monkeypatch
):
    key, certificate = sns_signer
    fetched = []
    reachable = {"eu-west-1"}

    async def amazon(client, url, **kwargs):  # stands in for sns.<region>.amazonaws.com
        fetched.append(url)
        if url.split(".")[1] not in reachable:
            raise httpx.ConnectError("no route to host")
        return httpx.Response(200, content=certificate, request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx.AsyncClient, "get", amazon)
    config = Settings(landing=tmp_path / "landing", webhook_port=free_port())
    running = Service(config)
    good = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem"
    down = "https://sns.eu-west-2.amazonaws.com/SimpleNotificationService-y.pem"

    def post(certificate_url: str, message_id: str) -> int:
        message = signed_sns(key, "2", SigningCertURL=certificate_url, MessageId=message_id)
        return httpx.post(f"{running.url}/webhooks/ses", json=message).status_code

    answers = [post(good, "sns-1"), post(good, "sns-2"), post(down, "sns-3")]
    reachable.add("eu-west-2")
    answers.append(post(down, "sns-3"))  # SNS's retry, once Amazon answers again
    running.stop()

    assert answers == [200, 200, 503, 200]
    assert fetched == [good, down, down]  # a failed fetch is not remembered
    assert [r["MessageId"] for r in landed(config)] == ["sns-1", "sns-2", "sns-3"]


def test_without_a_pinned_certificate_only_amazons_hosts_are_trusted(tmp_path, sns_signer):
    key, _ = sns_signer
    config = Settings(landing=tmp_path / "landing", webhook_port=free_port())
    running = Service(config)
    message = signed_sns(key, "2", SigningCertURL="https://evil.example/cert.pem")

    response = httpx.post(f"{running.url}/webhooks/ses", json=message)
    running.stop()

    assert response.status_code == 403
    assert landed(config) == []


def test_an_inbound_sms_is_forwarded_and_answered_and_shows_as_replied(tmp_path, db_path):
    from tests.twilio_fake import ACCOUNT, TOKEN, start_twilio

    fake, twilio_server = start_twilio()
    config = Settings(
        db=db_path,
        landing=tmp_path / "landing",
        webhook_port=free_port(),
        twilio_auth_token=TOKEN,
        twilio_account_sid=ACCOUNT,
        twilio_from="+14155550000",
        forward_to="+447911000999",
        twilio_api_base=f"http://127.0.0.1:{twilio_server.server_address[1]}",
        auto_reply_text="Thanks, we will call you",
    )
    running = Service(config)
    inbound = {
        "MessageSid": "SM7",
        "SmsStatus": "received",
        "From": "+447911123456",
        "Body": "Can I move my visit?",
        "AccountSid": "AC1",
    }
    url = f"{running.url}/webhooks/twilio/inbound"
    try:
        answer = httpx.post(
            url, data=inbound, headers={"X-Twilio-Signature": twilio_signature(TOKEN, url, inbound)}
        )
    finally:
        running.stop()
        twilio_server.shutdown()
    ingest_paths(db_path, [Path(config.landing)])
    run_refresh(db_path)

    assert "Thanks, we will call you" in answer.text
    assert [(r["To"], r["Body"]) for r in fake.requests] == [
        ("+447911000999", "From +447911123456: Can I move my visit?")
    ]
    with connect(db_path, read_only=True) as con:
        [(status, forwarded, units)] = con.sql(
            "SELECT status, forwarded_at IS NOT NULL, billable_units FROM inbound_messages"
        ).fetchall()
    assert (status, forwarded) == ("Replied", True)
    assert units == 3  # the reply, its forward, and the auto-reply: a segment each
