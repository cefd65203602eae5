"""The webhook service (`sendout webhooks` on 127.0.0.1) under the input the internet sends:
garbage, truncated and oversized bodies, wrong credentials and signatures, replays with a changed
body, stale and future timestamps, SNS messages of other types, unknown paths and methods,
floods, half-sent requests and duplicate deliveries. What a user depends on (docs/webhooks.md,
DESIGN §11): bad input gets a clear 4xx and lands nothing; good input sent alongside is answered
2xx and lost nowhere; the service keeps serving; a delivery landed twice is stored once."""

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from tests.events import sendgrid, ses
from tests.smtp_sink import free_port
from warehouse.ingest import ingest_paths

SENDOUT = Path(sys.executable).parent / "sendout"
PUBLIC_URL = "https://hooks.example.org"  # what Twilio signs (SENDOUT_PUBLIC_BASE_URL)
AMAZON_CERT = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:sendout-ses-events"
MIB = 1024 * 1024

SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
MAILGUN_KEY = "mg-key"
TWILIO_TOKEN = "tw-token"
POSTMARK_AUTH = ("pm", "pm-pass")


# --- the service -------------------------------------------------------------------------------


class Webhooks:
    """`sendout webhooks` on a free port with every provider configured, until stopped."""

    def __init__(self, tmp_path: Path, certificate: bytes, **settings):
        self.landing = tmp_path / "landing"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        pinned = tmp_path / "sns.pem"
        pinned.write_bytes(certificate)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENDOUT_")}
        configured = {
            "landing": tmp_path / "landing",
            "db": tmp_path / "data" / "sendout.duckdb",
            "sendgrid_public_key": SENDGRID_PUBLIC,
            "mailgun_signing_key": MAILGUN_KEY,
            "postmark_user": POSTMARK_AUTH[0],
            "postmark_password": POSTMARK_AUTH[1],
            "twilio_auth_token": TWILIO_TOKEN,
            "public_base_url": PUBLIC_URL,
            "sns_certificate_file": pinned,
            **settings,
        }
        env.update({f"SENDOUT_{k.upper()}": str(v) for k, v in configured.items() if k != "env"})
        env.update(settings.get("env", {}))
        with (tmp_path / f"webhooks-{self.port}.log").open("wb") as log:
            self.process = subprocess.Popen(
                [SENDOUT, "webhooks", "--port", str(self.port)],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while not self.healthy():
            assert self.process.poll() is None, "the service stopped while starting"
            assert time.monotonic() < deadline, "the service did not start within 60 s"
            time.sleep(0.1)

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        """SIGTERM: the service hands its open landing files over to ingest."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=20)


@pytest.fixture
def start(tmp_path, sns_signer):
    started: list[Webhooks] = []

    def run(**settings) -> Webhooks:
        service = Webhooks(tmp_path, sns_signer[1], **settings)
        started.append(service)
        return service

    yield run
    for service in started:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait(timeout=20)


def landed_lines(landing: Path) -> list[bytes]:
    """Every line written to the landing folder (handed over or still open), as bytes."""
    folder = landing / "webhooks"
    if not folder.exists():
        return []
    return [
        line
        for path in sorted(folder.glob("*.ndjson*"))
        for line in path.read_bytes().splitlines()
        if line.strip()
    ]


def landed(landing: Path) -> list:
    records = []
    for line in landed_lines(landing):
        try:
            records.append(json.loads(line))
        except ValueError:
            records.append(line)
    return records


def quarantined_raw(query) -> str:
    return "\n".join(row["raw"] or "" for row in query("SELECT raw FROM quarantine"))


def is_4xx(code) -> bool:
    return isinstance(code, int) and 400 <= code < 500


# --- signing, as each provider does -----------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sns_string_to_sign(message: dict) -> bytes:
    """Amazon's documented canonical string: Name\\nValue\\n for the type's fields, in order."""
    if message.get("Type") in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    return "".join(f"{n}\n{message[n]}\n" for n in names if n in message).encode()


def sns(key, message_id: str = "sns-1", at: datetime | None = None, **fields) -> dict:
    """An SNS message signed with SignatureVersion 2, carrying an SES Delivery by default."""
    message = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": TOPIC,
        "Message": json.dumps(ses("Delivery", message_id=f"m-{message_id}")),
        "Timestamp": iso(at or datetime.now(UTC)),
        "SignatureVersion": "2",
        "SigningCertURL": AMAZON_CERT,
        **fields,
    }
    return sign_sns(key, message)


def sign_sns(key, message: dict) -> dict:
    algorithm = hashes.SHA1() if message["SignatureVersion"] == "1" else hashes.SHA256()
    signature = key.sign(sns_string_to_sign(message), padding.PKCS1v15(), algorithm)
    return {**message, "Signature": base64.b64encode(signature).decode()}


def sendgrid_headers(body: bytes, stamp: int | None = None) -> dict:
    stamp_text = str(int(time.time()) if stamp is None else stamp)
    signature = SENDGRID_KEY.sign(stamp_text.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp_text,
    }


def mailgun(event_id: str, token: str | None = None, stamp: int | None = None, **data) -> dict:
    stamp_text = str(int(time.time()) if stamp is None else stamp)
    token = token or f"token-{event_id}-{time.monotonic_ns()}"
    signature = hmac.new(
        MAILGUN_KEY.encode(), f"{stamp_text}{token}".encode(), hashlib.sha256
    ).hexdigest()
    event = {
        "id": event_id,
        "timestamp": time.time() - 60,
        "event": "delivered",
        "recipient": "ada@example.com",
        "message": {"headers": {"message-id": f"{event_id}@mg.example.com"}},
        **data,
    }
    return {
        "signature": {"timestamp": stamp_text, "token": token, "signature": signature},
        "event-data": event,
    }


def twilio_signature(url: str, form: dict) -> str:
    payload = url + "".join(f"{k}{form[k]}" for k in sorted(form))
    return base64.b64encode(
        hmac.new(TWILIO_TOKEN.encode(), payload.encode(), hashlib.sha1).digest()
    ).decode()


def twilio_post(service: Webhooks, path: str, form: dict, signed_form: dict | None = None):
    """Post `form` to `path` (with its query) signed over `signed_form` (default: `form`)."""
    signature = twilio_signature(PUBLIC_URL + path, form if signed_form is None else signed_form)
    return httpx.post(
        service.url + path, data=form, headers={"X-Twilio-Signature": signature}, timeout=10
    )


def postmark_delivery(message_id: str) -> dict:
    return {
        "RecordType": "Delivery",
        "MessageID": message_id,
        "Recipient": "ada@example.com",
        "DeliveredAt": "2026-11-30T10:00:00Z",
        "Details": "smtp;250 2.0.0 OK",
    }


def twilio_delivered(sid: str) -> dict:
    return {
        "MessageSid": sid,
        "MessageStatus": "delivered",
        "To": "+14155552671",
        "AccountSid": "AC1",
    }


def post(service: Webhooks, path: str, **kwargs) -> int:
    return httpx.post(service.url + path, timeout=10, **kwargs).status_code


def send_and_read(port: int, head: bytes, body: list[bytes], wait: float = 8) -> int | str:
    """Send `head` and then `body` (in a thread, stopping if the server closes), reading the
    answer meanwhile: a server may answer 413 before it has read the whole body."""
    connection = socket.create_connection(("127.0.0.1", port))
    connection.settimeout(wait)

    def feed() -> None:
        try:
            connection.sendall(head)
            for part in body:
                connection.sendall(part)
        except OSError:
            pass

    threading.Thread(target=feed, daemon=True).start()
    answer = b""
    try:
        while b"\r\n" not in answer:
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
    except TimeoutError:
        return "no answer"
    except ConnectionResetError:
        pass
    finally:
        connection.close()
    if not answer.startswith(b"HTTP/1.") or b"\r\n" not in answer:
        return f"closed without an answer ({answer[:20]!r})"
    return int(answer.split(b" ", 2)[1])


def raw_request(port: int, data: bytes, timeout: float = 10) -> int | str:
    """Send raw bytes as one request and return the answer's status code (or what happened)."""
    return send_and_read(port, data, [], wait=timeout)


DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 60_000 + b"1" + b"}" * 60_000
HUGE_INTEGER = b'{"Type": ' + b"9" * 5000 + b"}"


# --- bad bodies where the body itself carries the authentication --------------------------------


def test_bodies_that_are_not_a_signed_message_get_4xx_and_nothing_lands(start, sns_signer):
    """SNS and Mailgun sign fields inside the JSON body: a body that is not JSON, is cut short,
    is an array, a scalar, absurdly nested, not UTF-8, or has the fields of the wrong shape
    cannot be authenticated. Each must get a clear 4xx (never a 5xx: Python's json module
    raises RecursionError on deep nesting and ValueError past 4300 digits), and land nothing."""
    key, _ = sns_signer
    service = start()
    good_sns = json.dumps(sns(key)).encode()
    good_mailgun = json.dumps(mailgun("mg-ok")).encode()
    garbage = {
        "not json": b"hello, world",
        "empty": b"",
        "whitespace": b"   \r\n",
        "truncated": None,  # filled per endpoint from a good body
        "array of the message": None,
        "a string": b'"Notification"',
        "null": b"null",
        "a number": b"42",
        "deep array": DEEP_ARRAY,
        "deep object": DEEP_OBJECT,
        "a 5000-digit number": HUGE_INTEGER,
        "not utf-8": b'{"Type": "Notification", "Message": "\xff\xfe\x80"}',
        "utf-16": '{"Type": "Notification"}'.encode("utf-16"),
        "nul bytes": b"\x00" * 64,
    }
    answers = {}
    for path, good in (("/webhooks/ses", good_sns), ("/webhooks/mailgun", good_mailgun)):
        for name, body in garbage.items():
            if name == "truncated":
                body = good[: len(good) // 2]
            elif name == "array of the message":
                body = b"[" + good + b"]"
            answers[f"{path} {name}"] = post(
                service, path, content=body, headers={"Content-Type": "application/json"}
            )
    mailgun_shapes = {
        "no signature": {"event-data": {"event": "delivered"}},
        "signature a string": {"signature": "abc", "event-data": {}},
        "signature a list": {"signature": ["1", "2", "3"], "event-data": {}},
        "signature fields null": {
            "signature": {"timestamp": None, "token": None, "signature": None},
            "event-data": {},
        },
        "signature fields numbers": {
            "signature": {"timestamp": 1, "token": 2, "signature": 3},
            "event-data": {},
        },
        "timestamp not a number": {
            "signature": {"timestamp": "yesterday", "token": "t", "signature": "0" * 64},
            "event-data": {},
        },
        "timestamp nan": {
            "signature": {"timestamp": "nan", "token": "t", "signature": "0" * 64},
            "event-data": {},
        },
        "timestamp huge": {
            "signature": {"timestamp": "9" * 400, "token": "t", "signature": "0" * 64},
            "event-data": {},
        },
        "signature not hex": {
            "signature": {"timestamp": str(int(time.time())), "token": "t", "signature": "zz"},
            "event-data": {},
        },
    }
    for name, body in mailgun_shapes.items():
        answers[f"/webhooks/mailgun {name}"] = post(service, "/webhooks/mailgun", json=body)
    sns_shapes = {
        "unsigned": {k: v for k, v in sns(key).items() if k != "Signature"},
        "signature not base64": {**sns(key), "Signature": "!!! not base64 !!!"},
        "signature version 3": {**sns(key), "SignatureVersion": "3"},
        "no signature version": {k: v for k, v in sns(key).items() if k != "SignatureVersion"},
        "fields of the wrong type": {**sns(key), "Timestamp": 12, "MessageId": ["x"]},
        "message an object": {**sns(key), "Message": {"eventType": "Delivery"}},
        "no type": {k: v for k, v in sns(key).items() if k != "Type"},
    }
    for name, body in sns_shapes.items():
        answers[f"/webhooks/ses {name}"] = post(service, "/webhooks/ses", json=body)

    still_serving = [service.healthy(), post(service, "/webhooks/ses", json=sns(key, "sns-after"))]
    service.stop()

    assert still_serving == [True, 200]
    assert [r["MessageId"] for r in landed(service.landing)] == ["sns-after"]
    assert {name: code for name, code in answers.items() if not is_4xx(code)} == {}


# --- wrong credentials ------------------------------------------------------------------------


def test_missing_or_wrong_credentials_get_401_or_403_and_nothing_lands(start, sns_signer):
    service = start()
    pm = json.dumps(postmark_delivery("pm-forged")).encode()
    sg = json.dumps([sendgrid("delivered", event_id="sg-forged")]).encode()
    good_sg_headers = sendgrid_headers(sg)
    status = twilio_delivered("SMforged")
    other_key = ec.generate_private_key(ec.SECP256R1())
    stamp = str(int(time.time()))
    other_signature = base64.b64encode(
        other_key.sign(stamp.encode() + sg, ec.ECDSA(hashes.SHA256()))
    )
    requests = {
        "postmark no auth": ("/webhooks/postmark", {}),
        "postmark wrong password": ("/webhooks/postmark", {"auth": ("pm", "nope")}),
        "postmark wrong user": ("/webhooks/postmark", {"auth": ("root", "pm-pass")}),
        "postmark empty": ("/webhooks/postmark", {"auth": ("", "")}),
        "postmark bearer": ("/webhooks/postmark", {"headers": {"Authorization": "Bearer pm"}}),
        "postmark basic not base64": (
            "/webhooks/postmark",
            {"headers": {"Authorization": "Basic %%%%"}},
        ),
        "postmark basic no colon": (
            "/webhooks/postmark",
            {"headers": {"Authorization": "Basic " + base64.b64encode(b"pmpm-pass").decode()}},
        ),
        "postmark basic not utf-8": (
            "/webhooks/postmark",
            {"headers": {"Authorization": "Basic " + base64.b64encode(b"\xff:\xfe").decode()}},
        ),
        "postmark password prefix": ("/webhooks/postmark", {"auth": ("pm", "pm-pas")}),
        "postmark huge header": (
            "/webhooks/postmark",
            {"headers": {"Authorization": "Basic " + "A" * 60_000}},
        ),
        "sendgrid no headers": ("/webhooks/sendgrid", {}),
        "sendgrid no timestamp": (
            "/webhooks/sendgrid",
            {"headers": {k: v for k, v in good_sg_headers.items() if "Timestamp" not in k}},
        ),
        "sendgrid no signature": (
            "/webhooks/sendgrid",
            {"headers": {k: v for k, v in good_sg_headers.items() if "Signature" not in k}},
        ),
        "sendgrid garbage signature": (
            "/webhooks/sendgrid",
            {
                "headers": {
                    **good_sg_headers,
                    "X-Twilio-Email-Event-Webhook-Signature": "not base64 at all!",
                }
            },
        ),
        "sendgrid signature of nothing": (
            "/webhooks/sendgrid",
            {"headers": {**good_sg_headers, "X-Twilio-Email-Event-Webhook-Signature": ""}},
        ),
        "sendgrid timestamp not a number": (
            "/webhooks/sendgrid",
            {"headers": {**good_sg_headers, "X-Twilio-Email-Event-Webhook-Timestamp": "soon"}},
        ),
        "sendgrid another key": (
            "/webhooks/sendgrid",
            {
                "headers": {
                    "X-Twilio-Email-Event-Webhook-Signature": other_signature.decode(),
                    "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
                }
            },
        ),
    }
    answers = {}
    for name, (path, kwargs) in requests.items():
        body = pm if "postmark" in name else sg
        answers[name] = post(service, path, content=body, **kwargs)
    for path in ("/webhooks/twilio/status", "/webhooks/twilio/inbound"):
        answers[f"{path} no signature"] = post(service, path, data=status)
        answers[f"{path} wrong signature"] = post(
            service, path, data=status, headers={"X-Twilio-Signature": "AAAA"}
        )
        answers[f"{path} signed with another token"] = post(
            service,
            path,
            data=status,
            headers={
                "X-Twilio-Signature": base64.b64encode(
                    hmac.new(b"other", (PUBLIC_URL + path).encode(), hashlib.sha1).digest()
                ).decode()
            },
        )
        answers[f"{path} not utf-8, unsigned"] = post(
            service,
            path,
            content=b"MessageSid=SM\xff\xfe&Body=%FF%FE%80",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": "AAAA",
            },
        )
        answers[f"{path} json, unsigned"] = post(service, path, json=status)
    answers["ses signed with another key"] = post(
        service,
        "/webhooks/ses",
        json=sns(another_rsa_key(), "sns-foreign"),
    )

    still_serving = [
        service.healthy(),
        post(service, "/webhooks/postmark", json=postmark_delivery("pm-ok"), auth=POSTMARK_AUTH),
    ]
    service.stop()

    huge_header = answers.pop("postmark huge header")
    assert {name: code for name, code in answers.items() if code not in (401, 403)} == {}
    assert is_4xx(huge_header)  # 401, or 431 for a header too large
    assert still_serving == [True, 200]
    assert [r["MessageID"] for r in landed(service.landing)] == ["pm-ok"]


def another_rsa_key() -> rsa.RSAPrivateKey:
    """A key of the right kind (RSA) that is not the one the pinned certificate holds."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# --- a genuine signature over something else ------------------------------------------------


def test_a_genuine_signature_replayed_with_a_changed_body_is_refused(start, sns_signer):
    """Someone who saw one genuine request re-sends its signature with another body, URL or
    fields: only the genuine requests land."""
    key, _ = sns_signer
    service = start()
    answers = {}

    events = [sendgrid("delivered", event_id="sg-genuine")]
    body = json.dumps(events).encode()
    headers = sendgrid_headers(body)
    answers["sendgrid genuine"] = post(service, "/webhooks/sendgrid", content=body, headers=headers)
    changed = body.replace(b"delivered", b"bounce")
    answers["sendgrid changed body"] = post(
        service, "/webhooks/sendgrid", content=changed, headers=headers
    )
    answers["sendgrid extra byte"] = post(
        service, "/webhooks/sendgrid", content=body + b"\n", headers=headers
    )
    answers["sendgrid second array appended"] = post(
        service, "/webhooks/sendgrid", content=body + b"\n" + changed, headers=headers
    )

    genuine = mailgun("mg-genuine", token="tok-genuine")
    answers["mailgun genuine"] = post(service, "/webhooks/mailgun", json=genuine)
    answers["mailgun same signature, other event"] = post(
        service,
        "/webhooks/mailgun",
        json={**genuine, "event-data": {**genuine["event-data"], "event": "failed"}},
    )

    notification = sns(key, "sns-genuine")
    answers["sns genuine"] = post(service, "/webhooks/ses", json=notification)
    for field, value in {
        "Message": json.dumps(ses("Bounce", message_id="m-sns-genuine")),
        "MessageId": "sns-other",
        "TopicArn": "arn:aws:sns:eu-west-1:999999999999:theirs",
        "Timestamp": iso(datetime.now(UTC) - timedelta(minutes=1)),
        "Type": "SubscriptionConfirmation",
    }.items():
        answers[f"sns changed {field}"] = post(
            service, "/webhooks/ses", json={**notification, field: value}
        )

    status_path = "/webhooks/twilio/status?sendout_message_id=m-1"
    form = twilio_delivered("SMgenuine")
    answers["twilio genuine"] = twilio_post(service, status_path, form).status_code
    forged = {"MessageStatus": "undelivered", "ErrorCode": "30006"}
    answers["twilio changed field"] = twilio_post(
        service, status_path, {**form, **forged}, signed_form=form
    ).status_code
    answers["twilio extra field"] = twilio_post(
        service, status_path, {**form, "ErrorCode": "30006"}, signed_form=form
    ).status_code
    signature = twilio_signature(PUBLIC_URL + status_path, form)
    repeated = urlencode(form) + "&MessageStatus=undelivered&ErrorCode=30006"
    repeated_field = httpx.post(  # a signed form with fields repeated after it
        service.url + status_path,
        content=repeated.encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    ).status_code
    for name, path in {
        "twilio other query": "/webhooks/twilio/status?sendout_message_id=m-2",
        "twilio no query": "/webhooks/twilio/status",
        "twilio other endpoint": "/webhooks/twilio/inbound?sendout_message_id=m-1",
    }.items():
        answers[name] = post(service, path, data=form, headers={"X-Twilio-Signature": signature})
    service.stop()

    genuine_ones = {"sendgrid genuine", "mailgun genuine", "sns genuine", "twilio genuine"}
    assert {name: answers[name] for name in genuine_ones} == dict.fromkeys(genuine_ones, 200)
    refused = {name: code for name, code in answers.items() if name not in genuine_ones}
    assert {name: code for name, code in refused.items() if code not in (401, 403)} == {}
    records = landed(service.landing)
    assert len(records) == (5 if repeated_field == 200 else 4)
    assert events[0] in records  # (a SendGrid array lands one event a line)
    assert genuine in records
    assert [r["MessageId"] for r in records if isinstance(r, dict) and "MessageId" in r] == [
        "sns-genuine"
    ]
    # the repeated fields are refused, or ignored: never landed as what Twilio signed
    assert repeated_field in (200, 401, 403)
    twilio = [
        (r["MessageStatus"], r.get("ErrorCode"), r.get("sendout_message_id"))
        for r in records
        if isinstance(r, dict) and "MessageSid" in r
    ]
    assert set(twilio) == {("delivered", None, "m-1")}


# --- time -------------------------------------------------------------------------------------


def test_stale_and_future_timestamps_are_refused_and_retries_within_the_limits_are_not(
    start, sns_signer
):
    """SendGrid 25 hours, Mailgun 5 minutes, SNS 65 minutes; a minute ahead at most."""
    key, _ = sns_signer
    service = start()
    now = int(time.time())

    def sendgrid_at(event_id: str, stamp: int) -> int:
        body = json.dumps([sendgrid("delivered", event_id=event_id)]).encode()
        return post(
            service, "/webhooks/sendgrid", content=body, headers=sendgrid_headers(body, stamp)
        )

    answers = {
        "sendgrid 24 h old": sendgrid_at("sg-24h", now - 24 * 3600),
        "sendgrid 26 h old": sendgrid_at("sg-26h", now - 26 * 3600),
        "sendgrid 10 min ahead": sendgrid_at("sg-ahead", now + 600),
        "sendgrid year 1970": sendgrid_at("sg-1970", 0),
        "sendgrid negative": sendgrid_at("sg-negative", -1),
        "mailgun 3 min old": post(
            service, "/webhooks/mailgun", json=mailgun("mg-3min", stamp=now - 180)
        ),
        "mailgun 10 min old": post(
            service, "/webhooks/mailgun", json=mailgun("mg-10min", stamp=now - 600)
        ),
        "mailgun 10 min ahead": post(
            service, "/webhooks/mailgun", json=mailgun("mg-ahead", stamp=now + 600)
        ),
        "mailgun a year ahead": post(
            service, "/webhooks/mailgun", json=mailgun("mg-year", stamp=now + 366 * 86400)
        ),
    }
    utc_now = datetime.now(UTC)
    for name, at in {
        "sns 55 min old": utc_now - timedelta(minutes=55),
        "sns 75 min old": utc_now - timedelta(minutes=75),
        "sns 10 min ahead": utc_now + timedelta(minutes=10),
        "sns a day old": utc_now - timedelta(days=1),
    }.items():
        message_id = "sns-" + name.replace(" ", "-")
        answers[name] = post(service, "/webhooks/ses", json=sns(key, message_id, at=at))
    service.stop()

    assert answers == {
        name: 200 if name in ("sendgrid 24 h old", "mailgun 3 min old", "sns 55 min old") else 403
        for name in answers
    }
    records = landed(service.landing)
    assert len(records) == 3
    assert records_ids(records) == {"sg-24h", "mg-3min", "sns-sns-55-min-old"}


def records_ids(records: list) -> set[str]:
    ids = set()
    for record in records:
        if "sg_event_id" in record:
            ids.add(record["sg_event_id"])
        elif "event-data" in record:
            ids.add(record["event-data"]["id"])
        elif "MessageId" in record:
            ids.add(record["MessageId"])
        elif "MessageID" in record:
            ids.add(record["MessageID"])
        elif "MessageSid" in record:
            ids.add(record["MessageSid"])
    return ids


# --- SNS messages that are no notification ----------------------------------------------------


class Recorder(threading.Thread):
    """A TCP listener standing in for any outbound connection (set as the service's proxy):
    it records what arrives, so a visit to a SubscribeURL would show."""

    def __init__(self):
        super().__init__(daemon=True)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.seen: list[bytes] = []

    def run(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                try:
                    self.seen.append(connection.recv(4096))
                except OSError:
                    self.seen.append(b"")


def test_sns_confirmations_and_other_types_for_any_topic_are_landed_never_visited(
    start, sns_signer, db_path, query
):
    """The service does not visit a SubscribeURL (an operator confirms), whatever topic it is
    for; a forged confirmation is refused; other SNS types are landed only if signed, and
    none of them becomes an event."""
    key, _ = sns_signer
    recorder = Recorder()
    recorder.start()
    proxy = f"http://127.0.0.1:{recorder.port}"
    service = start(
        env={"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "ALL_PROXY": proxy, "NO_PROXY": ""}
    )
    theirs = "arn:aws:sns:us-east-1:999999999999:not-ours"
    subscribe = (
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
        f"&TopicArn={theirs}&Token=2336412f37"
    )
    confirmation = sign_sns(
        key,
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": "sns-confirm",
            "Token": "2336412f37",
            "TopicArn": theirs,
            "Message": f"You have chosen to subscribe to the topic {theirs}.",
            "SubscribeURL": subscribe,
            "Timestamp": iso(datetime.now(UTC)),
            "SignatureVersion": "1",
            "SigningCertURL": AMAZON_CERT,
        },
    )
    unsubscribed = sign_sns(
        key, {**confirmation, "Type": "UnsubscribeConfirmation", "MessageId": "sns-unsub"}
    )
    answers = {
        "confirmation": post(service, "/webhooks/ses", json=confirmation),
        "confirmation again": post(service, "/webhooks/ses", json=confirmation),
        "unsubscribe confirmation": post(service, "/webhooks/ses", json=unsubscribed),
        "forged confirmation": post(
            service,
            "/webhooks/ses",
            json={**confirmation, "SubscribeURL": "https://evil.example/confirm"},
            # (the signature is the genuine one's: only the link was changed)
        ),
        "notification whose Message is not json": post(
            service, "/webhooks/ses", json=sns(key, "sns-not-json", Message="<xml>no</xml>")
        ),
    }
    unknown_type = post(service, "/webhooks/ses", json=sns(key, "sns-bogus", Type="Bogus"))
    time.sleep(1.5)  # time enough for a visit the service should not make
    service.stop()
    recorder.server.close()

    assert answers == {
        "confirmation": 200,
        "confirmation again": 200,
        "unsubscribe confirmation": 200,
        "forged confirmation": 403,
        "notification whose Message is not json": 200,
    }
    assert recorder.seen == []  # every outbound connection goes through the recorder
    ids = [r["MessageId"] for r in landed(service.landing)]
    # an SNS type the service does not know: refused, or landed as it is, never a 5xx
    assert unknown_type in (200, 400, 401, 403)
    expected = ["sns-confirm", "sns-confirm", "sns-unsub", "sns-not-json"]
    assert sorted(ids) == sorted(expected + (["sns-bogus"] if unknown_type == 200 else []))

    summary = ingest_paths(db_path, [service.landing])

    assert summary.events_new == 0
    assert query("SELECT count(*) AS n FROM events") == [{"n": 0}]
    assert query("SELECT topic_arn, subscribe_url FROM pending_sns_confirmations") == [
        {"topic_arn": theirs, "subscribe_url": subscribe}
    ]


# --- unknown paths and methods ----------------------------------------------------------------


def test_unknown_paths_and_methods_get_4xx_and_nothing_lands(start):
    service = start()
    pm = json.dumps(postmark_delivery("pm-misrouted")).encode()
    answers = {}
    for method, path in [
        ("GET", "/webhooks/ses"),
        ("GET", "/webhooks/postmark"),
        ("PUT", "/webhooks/postmark"),
        ("DELETE", "/webhooks/postmark"),
        ("PATCH", "/webhooks/postmark"),
        ("OPTIONS", "/webhooks/postmark"),
        ("HEAD", "/webhooks/mailgun"),
        ("POST", "/webhooks/unknown"),
        ("POST", "/webhooks"),
        ("POST", "/webhooks/twilio"),
        ("POST", "/webhooks/POSTMARK"),
        ("POST", "/webhooks/postmarkx"),
        ("POST", "/webhooks/twilio/status/extra"),
        ("POST", "/"),
        ("POST", "/health"),
        ("GET", "/t/c/not-a-token"),
        ("GET", "/t/c/" + "A" * 5000),
        ("GET", "/t/c/%FF%FE%00"),
        ("POST", "/t/u/not-a-token"),
    ]:
        answers[f"{method} {path[:40]}"] = httpx.request(
            method, service.url + path, content=pm, auth=POSTMARK_AUTH, timeout=10
        ).status_code
    authorization = b"Basic " + base64.b64encode(b"pm:pm-pass")
    for name, request_line in {
        "unknown method": b"BREW /webhooks/postmark HTTP/1.1",
        "dot segments": b"POST /webhooks/../webhooks/nothing HTTP/1.1",
        "encoded dot segments": b"POST /webhooks/%2e%2e/%2e%2e/etc/passwd HTTP/1.1",
        "non-utf-8 path": b"POST /webhooks/\xff\xfe HTTP/1.1",
        "absolute form elsewhere": b"POST http://evil.example/webhooks/nothing HTTP/1.1",
        "http/2 preface": b"PRI * HTTP/2.0",
    }.items():
        answers[name] = raw_request(
            service.port,
            request_line
            + b"\r\nHost: x\r\nAuthorization: "
            + authorization
            + b"\r\nContent-Length: "
            + str(len(pm)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + pm,
        )
    answers["garbage instead of http"] = raw_request(service.port, b"\x16\x03\x01\x02\x00" * 40)

    still_serving = [
        service.healthy(),
        post(service, "/webhooks/postmark", content=pm, auth=POSTMARK_AUTH),
    ]
    service.stop()

    assert {name: code for name, code in answers.items() if not is_4xx(code)} == {}
    assert answers["GET /t/c/not-a-token"] == 404  # documented: no redirect
    assert still_serving == [True, 200]
    assert [r["MessageID"] for r in landed(service.landing)] == ["pm-misrouted"]


# --- size -------------------------------------------------------------------------------------


def postmark_body_of(size: int, message_id: str) -> bytes:
    record = {**postmark_delivery(message_id), "padding": ""}
    base = len(json.dumps(record, separators=(",", ":")).encode())
    record["padding"] = "x" * (size - base)
    body = json.dumps(record, separators=(",", ":")).encode()
    assert len(body) == size
    return body


def head(path: str, length: int | None, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def in_chunks(data: bytes, size: int = 65536) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def chunked(data: bytes) -> list[bytes]:
    """The chunked transfer coding of `data`, with its last chunk."""
    parts = [b"%x\r\n%s\r\n" % (len(part), part) for part in in_chunks(data)]
    return [*parts, b"0\r\n\r\n"]


def test_bodies_over_one_mib_get_413_however_they_are_sent_and_one_mib_is_accepted(start):
    service = start()  # the documented default limit, 1 MiB
    basic = "Basic " + base64.b64encode(b"pm:pm-pass").decode()
    json_type = "application/json"
    over = postmark_body_of(MIB + 1, "pm-over")
    big = json.dumps([sendgrid("delivered", event_id="sg-big", padding="y" * 2 * MIB)]).encode()
    big_headers = {k.replace("-", "_"): v for k, v in sendgrid_headers(big).items()}

    answers = {
        "exactly 1 MiB": post(
            service,
            "/webhooks/postmark",
            content=postmark_body_of(MIB, "pm-1mib"),
            auth=POSTMARK_AUTH,
        ),
        "1 MiB and a byte": send_and_read(
            service.port,
            head("/webhooks/postmark", len(over), Authorization=basic, Content_Type=json_type),
            in_chunks(over),
        ),
        "3 MiB chunked": send_and_read(
            service.port,
            head("/webhooks/postmark", None, Authorization=basic, Content_Type=json_type),
            chunked(postmark_body_of(3 * MIB, "pm-chunked")),
        ),
        "2 MiB signed sendgrid": send_and_read(
            service.port,
            head("/webhooks/sendgrid", len(big), Content_Type=json_type, **big_headers),
            in_chunks(big),
        ),
        "declares 1 GiB, sends 2 MiB, waits": send_and_read(
            service.port,
            head("/webhooks/postmark", 1024 * MIB, Authorization=basic, Content_Type=json_type),
            in_chunks(b"x" * 2 * MIB),
        ),
    }
    unauthenticated = {
        path: send_and_read(service.port, head(path, 4 * MIB), in_chunks(b"z" * 4 * MIB))
        for path in ("/webhooks/ses", "/webhooks/mailgun", "/webhooks/twilio/inbound")
    }

    still_serving = [
        service.healthy(),
        post(service, "/webhooks/postmark", json=postmark_delivery("pm-small"), auth=POSTMARK_AUTH),
    ]
    service.stop()

    assert answers == {
        "exactly 1 MiB": 200,
        "1 MiB and a byte": 413,
        "3 MiB chunked": 413,
        "2 MiB signed sendgrid": 413,
        "declares 1 GiB, sends 2 MiB, waits": 413,
    }
    assert {p: code for p, code in unauthenticated.items() if not is_4xx(code)} == {}
    assert still_serving == [True, 200]
    assert [r["MessageID"] for r in landed(service.landing)] == ["pm-1mib", "pm-small"]


# --- authenticated, but not what is expected --------------------------------------------------


def test_authenticated_junk_is_landed_for_quarantine_and_good_events_beside_it_are_stored(
    start, db_path, query
):
    """docs/webhooks.md: an authenticated body that is not what we expect is landed as it is,
    so ingest keeps it in quarantine; DESIGN §11: nothing else is lost."""
    service = start()
    auth = POSTMARK_AUTH
    postmark_junk = {
        "not json": b"marker-not-json, just words",
        "not utf-8": b'{"RecordType": "Delivery", "MessageID": "marker-latin1-\xe9\xff\xfe"}',
        "truncated": b'{"RecordType": "Delivery", "MessageID": "marker-truncated',
        "an array": b'[1, 2, "marker-array"]',
        "a string": b'"marker-string"',
        "deep": b"[" * 50_000 + b'"marker-deep"' + b"]" * 50_000,
        "a 5000-digit number": b'{"marker-bigint": ' + b"9" * 5000 + b"}",
        "nul bytes": b'{"RecordType": "Delivery", "MessageID": "marker-nul\x00\x00"}',
    }
    answers = {
        "postmark good first": post(
            service, "/webhooks/postmark", json=postmark_delivery("pm-first"), auth=auth
        )
    }
    for name, body in postmark_junk.items():
        answers[f"postmark {name}"] = post(service, "/webhooks/postmark", content=body, auth=auth)
    answers["postmark good last"] = post(
        service, "/webhooks/postmark", json=postmark_delivery("pm-last"), auth=auth
    )
    sendgrid_bodies = {
        "sendgrid good first": json.dumps([sendgrid("delivered", event_id="sg-first")]).encode(),
        "sendgrid an object": b'{"marker-sg-object": true}',
        "sendgrid not json": b"marker-sg-not-json",
        "sendgrid good last": json.dumps([sendgrid("delivered", event_id="sg-last")]).encode(),
    }
    for name, body in sendgrid_bodies.items():
        answers[name] = post(
            service, "/webhooks/sendgrid", content=body, headers=sendgrid_headers(body)
        )
    answers["mailgun good"] = post(service, "/webhooks/mailgun", json=mailgun("mg-good"))
    odd = mailgun("mg-odd")
    answers["mailgun event-data a list"] = post(
        service, "/webhooks/mailgun", json={**odd, "event-data": ["marker-mg-list"]}
    )
    service.stop()

    assert {name: code for name, code in answers.items() if code != 200} == {}
    summary = ingest_paths(db_path, [service.landing])

    stored = {row["event_id"].split(":")[0] for row in query("SELECT event_id FROM events")}
    assert summary.events_new == 5
    assert {"sg-first", "sg-last", "mg-good"} <= stored
    postmark_ids = query(
        "SELECT provider_message_id FROM events WHERE provider = 'postmark' ORDER BY 1"
    )
    assert postmark_ids == [{"provider_message_id": "pm-first"}, {"provider_message_id": "pm-last"}]
    raw = quarantined_raw(query)
    markers = [
        "marker-not-json",
        "marker-latin1-",
        "marker-truncated",
        "marker-array",
        "marker-string",
        "marker-deep",
        "marker-bigint",
        "marker-nul",
        "marker-sg-object",
        "marker-sg-not-json",
        "marker-mg-list",
    ]
    assert [marker for marker in markers if marker not in raw] == []


# --- valid events in surprising framing -------------------------------------------------------


def test_valid_events_with_odd_content_types_or_pretty_printing_are_accepted_and_stored(
    start, sns_signer, db_path, query
):
    """Real SNS posts pretty-printed JSON as text/plain; other senders omit the Content-Type or
    add a charset; SMS text is not ASCII. Each is a good event and must be stored, not
    quarantined."""
    key, _ = sns_signer
    service = start()
    auth = POSTMARK_AUTH
    answers = {}
    for name, content_type in {
        "postmark text/plain": "text/plain",
        "postmark no content type": None,
        "postmark form content type": "application/x-www-form-urlencoded",
        "postmark json charset": "application/json; charset=utf-8",
    }.items():
        headers = {"Content-Type": content_type} if content_type else {}
        body = json.dumps(postmark_delivery(name.replace(" ", "-"))).encode()
        answers[name] = post(
            service, "/webhooks/postmark", content=body, headers=headers, auth=auth
        )
    pretty = json.dumps(postmark_delivery("postmark-pretty"), indent=2).replace("\n", "\r\n")
    answers["postmark pretty-printed, CRLF"] = post(
        service, "/webhooks/postmark", content=pretty.encode() + b"\r\n", auth=auth
    )
    sns_pretty = json.dumps(sns(key, "sns-pretty"), indent=2).encode()  # as SNS sends it
    answers["sns pretty-printed text/plain"] = post(
        service,
        "/webhooks/ses",
        content=sns_pretty,
        headers={"Content-Type": "text/plain; charset=UTF-8"},
    )
    answers["sns signature version 1"] = post(
        service,
        "/webhooks/ses",
        content=json.dumps(sns(key, "sns-v1", SignatureVersion="1")).encode(),
        headers={"Content-Type": "text/plain; charset=UTF-8"},
    )
    sg_pretty = json.dumps([sendgrid("delivered", event_id="sg-pretty")], indent=4).encode()
    answers["sendgrid pretty, no content type"] = post(
        service, "/webhooks/sendgrid", content=sg_pretty, headers=sendgrid_headers(sg_pretty)
    )
    answers["mailgun text/plain"] = post(
        service,
        "/webhooks/mailgun",
        content=json.dumps(mailgun("mg-plain")).encode(),
        headers={"Content-Type": "text/plain"},
    )
    path = "/webhooks/twilio/inbound"
    inbound = {
        "MessageSid": "SMunicode",
        "SmsStatus": "received",
        "From": "+14155552671",
        "To": "+14155550100",
        "Body": "Grüße 👋 & a=b+c\nline two",
        "AccountSid": "AC1",
    }
    answers["twilio inbound, non-ascii"] = twilio_post(service, path, inbound).status_code
    status_path = "/webhooks/twilio/status?sendout_message_id=m-7"
    status = twilio_delivered("SMcharset")
    answers["twilio form with charset"] = httpx.post(
        service.url + status_path,
        content=urlencode(status).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "X-Twilio-Signature": twilio_signature(PUBLIC_URL + status_path, status),
        },
    ).status_code
    service.stop()

    assert {name: code for name, code in answers.items() if code != 200} == {}
    summary = ingest_paths(db_path, [service.landing])

    assert quarantined_raw(query) == ""
    per_provider = query("SELECT provider, count(*) AS n FROM events GROUP BY 1 ORDER BY 1")
    assert per_provider == [
        {"provider": "mailgun", "n": 1},
        {"provider": "postmark", "n": 5},
        {"provider": "sendgrid", "n": 1},
        {"provider": "ses", "n": 2},
        {"provider": "twilio", "n": 2},
    ]
    assert summary.events_new == 11
    [received] = query("SELECT body FROM events WHERE event_type = 'received'")
    assert received["body"] == inbound["Body"]


# --- floods -----------------------------------------------------------------------------------


def test_a_flood_of_good_and_bad_requests_loses_no_good_one(start, sns_signer, db_path, query):
    key, _ = sns_signer
    service = start()
    client = httpx.Client(base_url=service.url, timeout=30)

    def one(n: int) -> tuple[str, int | str]:
        kind = ("good", "unauthenticated", "garbage sns", "unknown path", "forged mailgun")[n % 5]
        try:
            if kind == "good":
                record = postmark_delivery(f"pm-flood-{n}")
                code = client.post("/webhooks/postmark", json=record, auth=POSTMARK_AUTH)
            elif kind == "unauthenticated":
                code = client.post("/webhooks/postmark", json=postmark_delivery(f"pm-bad-{n}"))
            elif kind == "garbage sns":
                code = client.post("/webhooks/ses", content=b'{"Type": "Noti' + b"\xff" * n)
            elif kind == "unknown path":
                code = client.post(f"/webhooks/x{n}", content=b"{}")
            else:
                code = client.post(
                    "/webhooks/mailgun", json={**mailgun(f"mg-{n}"), "signature": {"token": n}}
                )
            return kind, code.status_code
        except httpx.HTTPError as error:
            return kind, type(error).__name__

    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(one, range(1000)))
    client.close()
    still_serving = [service.healthy(), post(service, "/webhooks/ses", json=sns(key, "sns-x"))]
    service.stop()

    assert [(k, c) for k, c in results if k == "good" and c != 200] == []
    assert [(k, c) for k, c in results if k != "good" and not is_4xx(c)] == []
    assert still_serving == [True, 200]
    ids = [r.get("MessageID") or r.get("MessageId") for r in landed(service.landing)]
    assert sorted(ids) == sorted([f"pm-flood-{n}" for n in range(0, 1000, 5)] + ["sns-x"])
    summary = ingest_paths(db_path, [service.landing])
    assert (summary.events_new, summary.events_duplicate) == (201, 0)
    assert quarantined_raw(query) == ""


# --- half requests ----------------------------------------------------------------------------


def test_half_sent_requests_hang_nothing_land_nothing_and_are_closed(start):
    service = start(webhook_request_timeout_seconds=2)
    authorization = b"Basic " + base64.b64encode(b"pm:pm-pass")
    half_body = b'{"RecordType": "Delivery", "MessageID": "pm-half-'
    starts = [
        b"POST /webhooks/postmark HTTP/1.1\r\nHost: x\r\nAuthorization: "
        + authorization
        + b"\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
        + half_body,  # authenticated, half its body
        b"POST /webhooks/postmark HTTP/1.1\r\nHost: x\r\nAuthorization: "
        + authorization
        + b"\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n"
        + half_body,  # a chunk cut short, no last chunk
        b"POST /webhooks/ses HTTP/1.1\r\nHost: x\r\nContent-Le",  # headers cut short
        b"POS",
    ]
    held = []
    for n in range(60):
        connection = socket.create_connection(("127.0.0.1", service.port))
        connection.sendall(starts[n % len(starts)])
        held.append(connection)
    for n in range(20):  # half a request, then the client goes away
        with socket.create_connection(("127.0.0.1", service.port)) as gone:
            gone.sendall(starts[n % 2])
    meanwhile = [
        post(
            service, "/webhooks/postmark", json=postmark_delivery(f"pm-ok-{n}"), auth=POSTMARK_AUTH
        )
        for n in range(10)
    ]
    healthy_meanwhile = service.healthy()

    deadline = time.monotonic() + 15  # far beyond the 2 s allowed
    closed = []
    for connection in held:
        connection.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            closed.append(connection.recv(4096) == b"")  # closed without an answer
        except ConnectionResetError:
            closed.append(True)
        except TimeoutError:
            closed.append("still open")
        connection.close()
    afterwards = [
        service.healthy(),
        post(service, "/webhooks/postmark", json=postmark_delivery("pm-after"), auth=POSTMARK_AUTH),
    ]
    service.stop()

    assert meanwhile == [200] * 10
    assert healthy_meanwhile
    assert closed == [True] * len(held)
    assert afterwards == [True, 200]
    ids = [r["MessageID"] for r in landed(service.landing)]
    assert sorted(ids) == sorted([f"pm-ok-{n}" for n in range(10)] + ["pm-after"])
    assert not any(b"pm-half" in line for line in landed_lines(service.landing))


# --- duplicates -------------------------------------------------------------------------------


def test_every_provider_delivering_the_same_event_twice_is_stored_once(
    start, sns_signer, db_path, query
):
    """A provider's retry (SNS, SendGrid, Postmark, Twilio: the same request; Mailgun: the same
    event with a new token) is answered 2xx and landed again, next to a new event (so its file
    is not byte for byte the first one's); ingest stores each event once, and ingesting again
    stores nothing."""
    key, _ = sns_signer
    service = start()
    status_path = "/webhooks/twilio/status?sendout_message_id=m-dup"

    def deliver(suffix: str, token: str) -> list[int]:
        sg = json.dumps([sendgrid("delivered", event_id=f"sg-{suffix}")]).encode()
        return [
            post(service, "/webhooks/ses", json=notifications[suffix]),
            post(service, "/webhooks/sendgrid", content=sg, headers=sendgrid_headers(sg)),
            post(
                service,
                "/webhooks/postmark",
                json=postmark_delivery(f"pm-{suffix}"),
                auth=POSTMARK_AUTH,
            ),
            twilio_post(service, status_path, twilio_delivered(f"SM{suffix}")).status_code,
            post(service, "/webhooks/mailgun", json=mailgun(f"mg-{suffix}", token=token)),
        ]

    notifications = {suffix: sns(key, f"sns-{suffix}") for suffix in ("dup", "new")}
    answers = deliver("dup", "tok-1")
    time.sleep(2)  # the retries land in files of their own (after a second of quiet)
    answers += deliver("dup", "tok-2") + deliver("new", "tok-3")
    service.stop()

    assert answers == [200] * 15
    assert len(landed(service.landing)) == 15
    first = ingest_paths(db_path, [service.landing])
    again = ingest_paths(db_path, [service.landing])

    assert (first.events_new, first.events_duplicate) == (10, 5)
    assert again.events_new == 0
    per_provider = query("SELECT provider, count(*) AS n FROM events GROUP BY 1 ORDER BY 1")
    assert per_provider == [
        {"provider": p, "n": 2} for p in ("mailgun", "postmark", "sendgrid", "ses", "twilio")
    ]
    assert quarantined_raw(query) == ""


# --- one signed body, two readings ------------------------------------------------------------


def test_an_sns_body_with_a_repeated_field_cannot_smuggle_in_an_unsigned_event(
    start, sns_signer, db_path, query
):
    """JSON with a key twice is read differently by different parsers (first or last wins).
    The signed notification carries a Delivery; a copy of "Message" holding a Complaint is put
    before it. Whatever the service does (refuse it, or land it), no complaint may be stored:
    a complaint puts the address on the Unsubscribes list for good."""
    key, _ = sns_signer
    service = start()
    signed = sns(key, "sns-smuggle")
    complaint = json.dumps(ses("Complaint", message_id="m-sns-smuggle"))
    fields = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in signed.items()]
    smuggled = "{" + f'"Message": {json.dumps(complaint)}, ' + ", ".join(fields) + "}"
    smuggled_last = "{" + ", ".join(fields) + f', "Message": {json.dumps(complaint)}' + "}"

    first = post(service, "/webhooks/ses", content=smuggled.encode())
    last = post(service, "/webhooks/ses", content=smuggled_last.encode())
    service.stop()
    ingest_paths(db_path, [service.landing])

    assert (first, last) == (401, 401)  # a key twice: refused, whichever copy is signed
    stored = query("SELECT event_type FROM events")
    assert [row["event_type"] for row in stored if row["event_type"] == "complaint"] == []
