"""The webhook service as `sendout webhooks` processes on 127.0.0.1 over real landing folders:
one service per folder, replays that do not act twice (across a kill -9), and connections
that must send their request in time."""

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
from pathlib import Path

import httpx
import pytest

from flows.settings import Settings
from tests.smtp_sink import free_port
from tests.twilio_fake import ACCOUNT, TOKEN, start_twilio

SENDOUT = Path(sys.executable).parent / "sendout"
PUBLIC_URL = "https://hooks.example.org"  # what Twilio signs: the same before and after a restart


class Webhooks:
    """`sendout webhooks` on a free port, landing into `tmp_path/landing`, until stopped."""

    def __init__(self, tmp_path: Path, **settings):
        self.landing = tmp_path / "landing"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [SENDOUT, "webhooks", "--port", str(self.port)],
            env=service_env(tmp_path, **settings),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"webhooks-{self.port}.log").open("wb"),
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not self._healthy():
            assert self.process.poll() is None, "the service stopped while starting"
            assert time.monotonic() < deadline, "the service did not start within 60 s"
            time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        """As Ctrl-C does: the service hands its open files over and lets go of the folder."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=20)

    def kill(self) -> None:
        """kill -9: no shutdown at all."""
        self.process.kill()
        self.process.wait(timeout=20)


def service_env(tmp_path: Path, **settings) -> dict[str, str]:
    """The environment of a service under `tmp_path`, with `settings` as SENDOUT_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDOUT_")}
    env["SENDOUT_LANDING"] = str(tmp_path / "landing")
    env["SENDOUT_DB"] = str(tmp_path / "data" / "sendout.duckdb")
    env.update({f"SENDOUT_{name.upper()}": str(value) for name, value in settings.items()})
    return env


@pytest.fixture
def services():
    """Services started by a test are killed at its end, whatever happened."""
    started: list[Webhooks] = []
    yield started
    for service in started:
        if service.process.poll() is None:
            service.kill()


def landed(landing: Path) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted((landing / "webhooks").glob("*.ndjson"))
        for line in path.read_text().splitlines()
    ]


def files_under(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder`, with its size and modification time: what a service touched."""
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file()
    }


POSTMARK = {"postmark_user": "pm", "postmark_password": "pm-pass"}
KEEP_FILES_OPEN = {"landing_file_quiet_seconds": 600, "landing_file_max_seconds": 600}


def push(service: Webhooks, n: int) -> int:
    record = {"RecordType": "Delivery", "MessageID": f"pm-{n}"}
    return httpx.post(
        f"{service.url}/webhooks/postmark", json=record, auth=("pm", "pm-pass")
    ).status_code


def test_a_second_service_on_the_same_landing_folder_refuses_and_touches_nothing(
    tmp_path, services
):
    first = Webhooks(tmp_path, **POSTMARK, **KEEP_FILES_OPEN)
    services.append(first)
    answers = [push(first, n) for n in range(3)]
    before = files_under(first.landing)

    refusals = [
        subprocess.run(
            [SENDOUT, "webhooks", "--port", str(port)],
            env=service_env(tmp_path, **POSTMARK),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
        for port in (free_port(), first.port)  # another port, and the one the first holds
    ]
    after = files_under(first.landing)
    answers += [push(first, n) for n in range(3, 16)]
    first.stop()

    assert [r.returncode for r in refusals] == [1, 1]
    for refusal in refusals:
        [sentence] = refusal.stderr.strip().splitlines()
        assert f"pid {first.process.pid} " in sentence
        assert f"127.0.0.1:{first.port}" in sentence
    assert any(name.endswith(".ndjson.open") for name in before)  # the first's file was open
    assert after == before
    assert answers == [200] * 16
    assert sorted(int(r["MessageID"][3:]) for r in landed(first.landing)) == list(range(16))


def test_after_a_kill_9_the_next_service_takes_the_folder_and_hands_on_what_was_answered(
    tmp_path, services
):
    crashed = Webhooks(tmp_path, **POSTMARK, **KEEP_FILES_OPEN)
    services.append(crashed)
    answers = [push(crashed, n) for n in range(5)]
    crashed.kill()
    left_open = list((crashed.landing / "webhooks").glob("*.open"))

    successor = Webhooks(tmp_path, **POSTMARK)
    services.append(successor)
    answers.append(push(successor, 5))
    successor.stop()

    assert answers == [200] * 6
    assert len(left_open) == 1
    assert sorted(r["MessageID"] for r in landed(crashed.landing)) == [f"pm-{n}" for n in range(6)]


def twilio_signature(url: str, form: dict) -> str:
    payload = url + "".join(f"{k}{form[k]}" for k in sorted(form))
    return base64.b64encode(
        hmac.new(TOKEN.encode(), payload.encode(), hashlib.sha1).digest()
    ).decode()


def test_a_replayed_inbound_sms_is_forwarded_and_answered_once_even_across_a_kill_9(
    tmp_path, services
):
    fake, twilio_server = start_twilio()
    settings = {
        "twilio_auth_token": TOKEN,
        "twilio_account_sid": ACCOUNT,
        "twilio_from": "+14155550000",
        "twilio_api_base": f"http://127.0.0.1:{twilio_server.server_address[1]}",
        "forward_to": "+447911000999",
        "auto_reply_text": "Thanks, we will call you",
        "public_base_url": PUBLIC_URL,
    }
    inbound = {
        "MessageSid": "SM7",
        "SmsStatus": "received",
        "From": "+447911123456",
        "Body": "Can I move my visit?",
        "AccountSid": ACCOUNT,
    }
    headers = {
        "X-Twilio-Signature": twilio_signature(f"{PUBLIC_URL}/webhooks/twilio/inbound", inbound)
    }

    def post(service: Webhooks) -> httpx.Response:
        return httpx.post(f"{service.url}/webhooks/twilio/inbound", data=inbound, headers=headers)

    try:
        first = Webhooks(tmp_path, **settings)
        services.append(first)
        answers = [post(first) for _ in range(3)]
        first.kill()
        restarted = Webhooks(tmp_path, **settings)
        services.append(restarted)
        answers += [post(restarted) for _ in range(3)]
        restarted.stop()
    finally:
        twilio_server.shutdown()

    assert [a.status_code for a in answers] == [200] * 6
    assert ["<Message>" in a.text for a in answers] == [True] + [False] * 5  # one auto-reply
    assert [(r["To"], r["Body"]) for r in fake.requests] == [
        ("+447911000999", "From +447911123456: Can I move my visit?")
    ]
    statuses = [r.get("MessageStatus") or r.get("SmsStatus") for r in landed(first.landing)]
    assert sorted(statuses) == ["forwarded"] + ["received"] * 6 + ["replied"]


def mailgun_body(token: str) -> dict:
    stamp = str(int(time.time()))
    signature = hmac.new(b"mg-key", f"{stamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": stamp, "token": token, "signature": signature},
        "event-data": {"event": "delivered", "id": token},
    }


def test_a_mailgun_token_is_still_refused_as_a_replay_after_a_kill_9(tmp_path, services):
    delivered = mailgun_body("tok-1")

    first = Webhooks(tmp_path, mailgun_signing_key="mg-key")
    services.append(first)
    answers = [httpx.post(f"{first.url}/webhooks/mailgun", json=delivered).status_code]
    first.kill()
    restarted = Webhooks(tmp_path, mailgun_signing_key="mg-key")
    services.append(restarted)
    answers.append(httpx.post(f"{restarted.url}/webhooks/mailgun", json=delivered).status_code)
    fresh = mailgun_body("tok-2")  # Mailgun's retry of a delivery comes with a new token
    answers.append(httpx.post(f"{restarted.url}/webhooks/mailgun", json=fresh).status_code)
    restarted.stop()

    assert answers == [200, 403, 200]
    assert sorted(r["event-data"]["id"] for r in landed(first.landing)) == ["tok-1", "tok-2"]


def closed_by_server(connections: list[socket.socket], deadline: float) -> list[bool]:
    """For each connection, whether the server closed it before `deadline`."""
    closed = []
    for connection in connections:
        connection.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            closed.append(connection.recv(1024) == b"")
        except ConnectionResetError:
            closed.append(True)
        except TimeoutError:
            closed.append(False)
    return closed


def test_connections_that_send_no_complete_request_in_time_are_closed(tmp_path, services):
    service = Webhooks(tmp_path, webhook_request_timeout_seconds=1, **POSTMARK)
    services.append(service)
    starts = [
        b"POST /webhooks/postmark HTT",  # a request line cut short
        b"POST /webhooks/postmark HTTP/1.1\r\nHost: x\r\nX-Slow: ",  # headers never finished
        b"POST /webhooks/sendgrid HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",  # body
        b"",  # nothing at all
    ]
    held = []
    for n in range(200):
        connection = socket.create_connection(("127.0.0.1", service.port))
        connection.sendall(starts[n % len(starts)])
        held.append(connection)
    trickled = []  # a byte every 0.2 s: uvicorn's keep-alive timer alone restarts at each one

    def trickle() -> None:
        with socket.create_connection(("127.0.0.1", service.port)) as connection:
            try:
                for byte in b"GET /health HTTP/1.1\r\n" + b"X-Slow: " + b"a" * 20:
                    connection.sendall(bytes([byte]))
                    time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                trickled.append("closed")

    trickler = threading.Thread(target=trickle)
    trickler.start()
    meanwhile = [push(service, 1), httpx.get(f"{service.url}/health").status_code]

    closed = closed_by_server(held, time.monotonic() + 10)  # well past the 1 s limit
    for connection in held:
        connection.close()
    trickler.join()
    afterwards = push(service, 2)
    service.stop()

    assert meanwhile == [200, 200]
    assert closed == [True] * len(held)
    assert trickled == ["closed"]
    assert afterwards == 200
    assert [r["MessageID"] for r in landed(service.landing)] == ["pm-1", "pm-2"]
    assert Settings.model_fields["webhook_request_timeout_seconds"].default == 10
