"""Freshness: how long after a provider's event is answered 2xx a dashboard-style reader sees it
in the send-out's figures. Everything runs on 127.0.0.1, each part in its own process: the
webhook service (`sendout webhooks`), the continuous ingester (`sendout ingester`), a reader
polling like the dashboard, and this load generator. Prints one JSON line. Usage:
    python bench/freshness.py [--seconds 30] [--rate 1000] [--recipients 100000]
                              [--connections 32] [--poll 0.25] [--wait 60]
                              [--ingester-log PATH]

The warehouse (built in a process of its own, before the services start) holds one send-out to
`--recipients` people on email and SMS (every third message an SMS), each message with a
`sent` event and a refreshed status. Event k of the run goes to message k, so every message gets
exactly one event, a delivery, and the send-out's `delivered` figure rises by exactly one per
event that becomes visible: SMS messages get a signed Twilio status callback (our message id in
the callback URL's query, as the Twilio sender asks for it), the other email messages alternate
between SES via SNS (an SNS notification signed by a self-made certificate the service is told
to pin) and SendGrid (signed batches of `--sendgrid-batch` events). Events are due at `--rate`
per second, open loop: a request is sent when its last event is due whether or not earlier
answers have come back. A few unclocked events per provider go first, and the clock starts once
the reader has seen them, so the service, the ingester and the reader have all paid their
lazy start.

How an event's freshness is measured: the generator notes the moment each request's 2xx
arrives (all events of a request share it). The reader, in its own process, opens a short
read-only connection every `--poll` seconds, reads `sendout_report` (what the dashboard shows;
this is the timed read: a read that raises or takes over 2 s counts as failed) and, in the same
connection (so the same committed state: no writer can commit while it is open), the messages
of the send-out that became Delivered since its last look (by `message_status.refreshed_at`).
An event is visible at the end of the first read whose figures include it; its freshness is that
moment minus its 2xx. The reader checks that the `delivered` figure always equals the number of
Delivered messages it has been told of (`figure_mismatches`), so what is charged per message is
what the figures show. Both moments are on the machine's monotonic clock, shared by processes.

Where the time goes (`stages`, from what the run leaves behind): 2xx -> the landing file is
handed to ingest (its rename, by the file's ctime) -> the ingester's transaction for the file
starts (`ingested_files.ingested_at`) -> the incremental refresh that took the event in starts
(`message_status.refreshed_at`) -> the ingester reports the batch done (its stdout line) -> the
reader sees it. The ingester's lines are kept in `--ingester-log` when given.

Bounded: at most `--recipients` events in all, and the run waits at most `--wait` seconds after
the last event is offered for stragglers, then reports what never became visible.
"""

import argparse
import asyncio
import base64
import gc
import hashlib
import hmac
import importlib.util
import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

HERE = Path(__file__).resolve().parent


def _module(name: str, path: Path) -> ModuleType:
    """Import a file that is not in a package (bench/ is not one, and tests/ is not installed)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


webhook_load = _module("bench_webhooks", HERE / "webhooks.py")  # HTTP client, ports, CPU time
sns = _module("tests_sns", HERE.parent / "tests" / "sns.py")  # the SNS signer the tests trust

SENDOUT_ID = "freshness"
WARMUP_PER_PROVIDER = 3
PROVIDERS = ("twilio", "ses", "sendgrid")  # by message index % 3; index % 3 == 0 is an SMS
FAILED_READ_SECONDS = 2.0
SNS_CERTIFICATE_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-bench.pem"
BATCH_LINE = re.compile(r"(\d+) files, (\d+) new events, (\d+) statuses refreshed in ([\d.]+) s")


def provider_of(index: int) -> str:
    """Who reports on message `index` (its channel follows: Twilio's are the SMS)."""
    return PROVIDERS[index % 3]


def email_of(index: int) -> str:
    """The email address of message `index` (as built)."""
    return f"person{index}@example.org"


def mobile_of(index: int) -> str:
    """The mobile number of message `index` (as built)."""
    return f"+4479{index:08d}"


# --- the warehouse ------------------------------------------------------------------------------


def build(db: Path, recipients: int) -> None:
    """One send-out to `recipients` people, each message sent (one event) and refreshed."""
    from warehouse.db import open_warehouse  # here: the parent process stays small
    from warehouse.refresh import refresh

    with open_warehouse(db) as con:
        con.execute(
            """
            INSERT INTO sendouts (sendout_id, name, channels, communication_type, subject,
                text_body, sms_text, created_at)
            VALUES ($id, 'Freshness', ['email', 'sms'], 'marketing', 'News', 'Hello',
                'Your appointment is tomorrow at 10:00', now() - INTERVAL 1 HOUR)
            """,
            {"id": SENDOUT_ID},
        )
        con.execute(
            """
            INSERT INTO messages (message_id, sendout_id, contact_id, channel, recipient,
                provider, sms_text, created_at)
            SELECT 'm' || i, $id, i,
                   CASE WHEN i % 3 = 0 THEN 'sms' ELSE 'email' END,
                   CASE WHEN i % 3 = 0 THEN '+4479' || lpad(i::VARCHAR, 8, '0')
                        ELSE 'person' || i || '@example.org' END,
                   CASE i % 3 WHEN 0 THEN 'twilio' WHEN 1 THEN 'ses' ELSE 'sendgrid' END,
                   CASE WHEN i % 3 = 0 THEN 'Your appointment is tomorrow at 10:00' END,
                   now() - INTERVAL 1 HOUR
            FROM range($n) t(i)
            """,
            {"id": SENDOUT_ID, "n": recipients},
        )
        con.execute(
            """
            INSERT INTO events (event_id, provider, channel, event_type, message_id,
                sendout_message_id, recipient, occurred_at, payload, event_hash, source_file,
                source_line, ingested_at)
            SELECT 'sent-' || message_id, provider, channel, 'sent', message_id, message_id,
                   recipient, now() - INTERVAL 50 MINUTE, '{}',
                   md5_number_lower('sent-' || message_id), 'bench-history', contact_id,
                   now() - INTERVAL 50 MINUTE
            FROM messages
            """
        )
        refresh(con, full=True)


# --- the reader ---------------------------------------------------------------------------------


def read_loop(db: Path, out: Path, poll: float) -> None:
    """Poll like the dashboard until SIGTERM; one JSON line per read into `out`."""
    from warehouse.db import connect
    from warehouse.reports import sendout_report

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    known: set[str] = set()
    since = 0  # epoch µs of the newest refreshed_at seen: only later rows are fetched
    next_at = time.monotonic()
    with out.open("a") as sink:
        while not stopping.is_set():
            started = time.monotonic()
            line: dict = {"error": None, "delivered": None, "new": []}
            try:
                with connect(db, read_only=True) as con:
                    rows = sendout_report(con, SENDOUT_ID)
                    line["at"] = time.monotonic()
                    found = con.execute(
                        """
                        SELECT message_id, epoch_us(refreshed_at) FROM message_status
                        WHERE sendout_id = ? AND status = 'Delivered'
                          AND epoch_us(refreshed_at) >= ?
                        """,
                        [SENDOUT_ID, since],
                    ).fetchall()
                line["delivered"] = sum(row["delivered"] or 0 for row in rows)
                new = [m for m, _ in found if m not in known]
                known.update(new)
                since = max([since, *(at for _, at in found)])
                line["new"] = [int(m[1:]) for m in new]
                line["mismatch"] = line["delivered"] != len(known)
            except Exception as error:  # a failed read is a result, not the end of the bench
                line["at"] = time.monotonic()
                line["error"] = f"{type(error).__name__}: {error}"[:200]
            line["read"] = line["at"] - started
            sink.write(json.dumps(line) + "\n")
            sink.flush()
            next_at += poll
            now = time.monotonic()
            if next_at < now:  # a slow read: the next one starts now, not in a burst
                next_at = now
            stopping.wait(next_at - now)


@dataclass
class Reads:
    """What the reader reported so far: when each message index was first seen, and its reads."""

    path: Path
    seen: dict[int, float] = field(default_factory=dict)
    reads: list[dict] = field(default_factory=list)
    offset: int = 0

    def update(self) -> None:
        """Take in the complete lines the reader has written since the last call."""
        if not self.path.exists():
            return
        with self.path.open("rb") as source:
            source.seek(self.offset)
            data = source.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        for raw in complete.splitlines():
            line = json.loads(raw)
            self.reads.append(line)
            for index in line["new"]:
                self.seen.setdefault(index, line["at"])

    def wait_for(self, indices: list[int], deadline: float) -> bool:
        """Wait until every index has been seen, or the deadline; say whether all were."""
        while True:
            self.update()
            if all(i in self.seen for i in indices):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


# --- the requests -------------------------------------------------------------------------------


@dataclass
class Request:
    """One prepared HTTP request and the message indices of the events it carries."""

    due: float  # seconds after the start of the clocked run
    data: bytes
    events: list[int]  # message indices


@dataclass
class Signers:
    """The service's port (Twilio signs the URL) and each provider's signing secret."""

    port: int
    sendgrid: ec.EllipticCurvePrivateKey
    sns: rsa.RSAPrivateKey
    twilio_token: str

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


def twilio_request(signers: Signers, index: int) -> bytes:
    """A signed status callback saying message `index` was delivered."""
    form = {
        "MessageSid": f"SMfresh{index}",
        "MessageStatus": "delivered",
        "To": mobile_of(index),
        "From": "+447700900000",
        "AccountSid": "ACbench",
    }
    path = f"/webhooks/twilio/status?sendout_message_id=m{index}"
    # Twilio signs the URL it was given (SENDOUT_PUBLIC_BASE_URL + path + query) and the form
    payload = f"http://{signers.host}{path}" + "".join(f"{k}{form[k]}" for k in sorted(form))
    signature = hmac.new(signers.twilio_token.encode(), payload.encode(), hashlib.sha1).digest()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": base64.b64encode(signature).decode(),
    }
    return webhook_load.http_post(signers.host, path, headers, urlencode(form).encode())


def ses_request(signers: Signers, index: int) -> bytes:
    """An SNS notification carrying an SES Delivery record for message `index`."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    record = {
        "eventType": "Delivery",
        "mail": {
            "timestamp": stamp,
            "messageId": f"ses-{index}",
            "destination": [email_of(index)],
            "tags": {"sendout_message_id": [f"m{index}"]},
        },
        "delivery": {
            "timestamp": stamp,
            "recipients": [email_of(index)],
            "smtpResponse": "250 2.0.0 OK",
        },
    }
    message = sns.signed_sns(
        signers.sns,
        "2",
        MessageId=f"sns-{index}",
        Message=json.dumps(record),
        SigningCertURL=SNS_CERTIFICATE_URL,
    )
    headers = {
        "Content-Type": "text/plain; charset=UTF-8",
        "x-amz-sns-message-type": "Notification",
    }
    return webhook_load.http_post(
        signers.host, "/webhooks/ses", headers, json.dumps(message).encode()
    )


def sendgrid_request(signers: Signers, indices: list[int]) -> bytes:
    """A signed SendGrid batch: message `i` delivered for each i (our id as a custom arg)."""
    body = json.dumps(
        [
            {
                "event": "delivered",
                "email": email_of(i),
                "timestamp": int(time.time()),
                "sg_event_id": f"sg-{i}",
                "sg_message_id": f"sgm{i}.filter0001",
                "sendout_message_id": f"m{i}",
            }
            for i in indices
        ]
    ).encode()
    stamp = str(int(time.time()))
    signature = signers.sendgrid.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }
    return webhook_load.http_post(signers.host, "/webhooks/sendgrid", headers, body)


def build_requests(
    signers: Signers, indices: list[int], rate: float, sendgrid_batch: int
) -> list[Request]:
    """The i-th index is due at i/rate; SendGrid's go out in batches when the last is due."""
    requests, batch, due = [], [], 0.0
    for k, index in enumerate(indices):
        due = k / rate if rate else 0.0
        provider = provider_of(index)
        if provider == "twilio":
            requests.append(Request(due, twilio_request(signers, index), [index]))
        elif provider == "ses":
            requests.append(Request(due, ses_request(signers, index), [index]))
        else:
            batch.append(index)
            if len(batch) == sendgrid_batch:
                requests.append(Request(due, sendgrid_request(signers, batch), batch))
                batch = []
    if batch:
        requests.append(Request(due, sendgrid_request(signers, batch), batch))
    return sorted(requests, key=lambda r: r.due)


# --- the load -----------------------------------------------------------------------------------


@dataclass
class Offered:
    """What the service answered: each accepted event's 2xx moment, request latencies."""

    accepted_at: dict[int, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: int = 0
    broken: int = 0  # requests whose connection failed
    unanswered: int = 0


async def offer(
    port: int, requests: list[Request], connections: int, start: float, drain_seconds: float
) -> Offered:
    """Send each request when due (start + due), over keep-alive connections, open loop; wait at
    most `drain_seconds` after the last is due for the answers."""
    offered = Offered()
    queue: asyncio.Queue = asyncio.Queue()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await queue.get()) is not None:
            try:
                writer.write(request.data)
                status = await webhook_load.read_status(reader)
            except (OSError, asyncio.IncompleteReadError):
                offered.errors += 1
                offered.broken += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            answered = time.monotonic()
            offered.latencies.append(answered - (start + request.due))
            offered.statuses[status] += 1
            if 200 <= status < 300:
                for index in request.events:
                    offered.accepted_at[index] = answered
            else:
                offered.errors += 1
        writer.close()

    opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]
    senders = [asyncio.create_task(connection(*streams)) for streams in opened]
    for request in requests:
        if (wait := start + request.due - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        queue.put_nowait(request)
    for _ in senders:
        queue.put_nowait(None)
    _, pending = await asyncio.wait(senders, timeout=drain_seconds)
    for task in pending:
        task.cancel()
    offered.unanswered = len(requests) - len(offered.latencies) - offered.broken
    return offered


# --- the services -------------------------------------------------------------------------------


@dataclass
class Stamped:
    """A child's output lines, each with the monotonic moment this process read it."""

    lines: list[tuple[float, str]] = field(default_factory=list)

    def follow(self, stream: IO[str], copy: IO[str] | None) -> threading.Thread:
        def run() -> None:
            for line in stream:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                if copy:
                    copy.write(line)
                    copy.flush()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM (each child hands over or finishes its work on it), then SIGKILL if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the figures --------------------------------------------------------------------------------


def quantiles(values: list[float]) -> dict[str, float | None]:
    """p50, p95, p99 and max of seconds, rounded; None when there are none."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)
    return {
        "p50": round(webhook_load.percentile(ordered, 0.50), 3),
        "p95": round(webhook_load.percentile(ordered, 0.95), 3),
        "p99": round(webhook_load.percentile(ordered, 0.99), 3),
        "max": round(ordered[-1], 3),
    }


def landing_handovers(landing: Path) -> dict[int, tuple[str, float]]:
    """For each message index in a handed-over landing file: the file and when it was renamed
    into place (ctime, wall clock)."""
    found = {}
    for path in (landing / "webhooks").glob("*.ndjson"):
        handed = path.stat().st_ctime_ns / 1e9
        for line in path.read_text().splitlines():
            record = json.loads(line)
            key = record.get("sendout_message_id") or record.get("MessageId", "")
            digits = key.rpartition("-")[2] if key.startswith("sns-") else key[1:]
            if digits.isdigit():
                found[int(digits)] = (str(path.resolve()), handed)
    return found


def stages(
    db: Path,
    landing: Path,
    accepted_at: dict[int, float],
    seen: dict[int, float],
    batch_ends: list[float],
    wall: float,
) -> dict:
    """Median and p95 of each step between an event's 2xx and its being seen (module docstring);
    monotonic moments are turned into wall-clock ones by adding `wall`."""
    from warehouse.db import connect

    with connect(db, read_only=True) as con:
        ingested = dict(
            con.execute("SELECT path, epoch_us(ingested_at) / 1e6 FROM ingested_files").fetchall()
        )
        refreshed = {
            int(m[1:]): at
            for m, at in con.execute(
                """
                SELECT message_id, epoch_us(refreshed_at) / 1e6 FROM message_status
                WHERE sendout_id = ? AND status = 'Delivered'
                """,
                [SENDOUT_ID],
            ).fetchall()
        }
    handed = landing_handovers(landing)
    ends = sorted(t + wall for t in batch_ends)
    steps: dict[str, list[float]] = {
        "2xx_to_handover": [],
        "handover_to_ingest": [],
        "ingest_to_refresh": [],
        "refresh_to_commit": [],
        "commit_to_seen": [],
    }
    for index, visible in seen.items():
        if index not in accepted_at or index not in handed or index not in refreshed:
            continue
        path, handover = handed[index]
        if path not in ingested:
            continue
        refresh_at = refreshed[index]
        # the batch whose refresh took the event in ends at the first report after it started
        commit = next((t for t in ends if t >= refresh_at), None)
        if commit is None:
            continue
        steps["2xx_to_handover"].append(handover - (accepted_at[index] + wall))
        steps["handover_to_ingest"].append(ingested[path] - handover)
        steps["ingest_to_refresh"].append(refresh_at - ingested[path])
        steps["refresh_to_commit"].append(commit - refresh_at)
        steps["commit_to_seen"].append(visible + wall - commit)
    return {
        name: {
            "p50": round(statistics.median(values), 3) if values else None,
            "p95": quantiles(values)["p95"],
        }
        for name, values in steps.items()
    } | {"events": len(steps["commit_to_seen"])}


def ingester_summary(lines: list[tuple[float, str]], start: float, end: float) -> dict:
    """The ingester's batches during the clocked run and the stragglers' wait."""
    batches = []
    for at, line in lines:
        if start <= at <= end and (match := BATCH_LINE.search(line)):
            batches.append((at, *map(float, match.groups())))
    seconds = [b[4] for b in batches]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(batches)]
    return {
        "batches": len(batches),
        "files": int(sum(b[1] for b in batches)),
        "events_new": int(sum(b[2] for b in batches)),
        "statuses_refreshed": int(sum(b[3] for b in batches)),
        "batch_seconds": quantiles(seconds),
        "seconds_between_batches": quantiles(gaps),
        "lock_waits_logged": sum("locked" in line for _, line in lines),
        "errors_logged": sum(" ERROR " in line for _, line in lines),
    }


# --- the run ------------------------------------------------------------------------------------


def main() -> None:
    """The benchmark, or one of its helper processes (the warehouse builder, the reader)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=1000, help="events/s offered")
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sendgrid-batch", type=int, default=10)
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between reads")
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait for stragglers")
    parser.add_argument("--ingester-log", type=Path, help="keep the ingester's output here")
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--read", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        return build(args.build, args.recipients)
    if args.read:
        return read_loop(args.read[0], args.read[1], args.poll)
    if args.rate <= 0:
        raise SystemExit("--rate must be above 0")
    run(args)


def run(args: argparse.Namespace) -> None:
    """Build, start the services and the reader, offer the events, wait, report."""
    warmup = list(range(args.recipients - 3 * WARMUP_PER_PROVIDER, args.recipients))
    count = max(0, min(int(args.rate * args.seconds), args.recipients - len(warmup)))
    port = webhook_load.free_port()
    sns_key, certificate = sns.make_sns_signer()
    signers = Signers(
        port=port,
        sendgrid=ec.generate_private_key(ec.SECP256R1()),
        sns=sns_key,
        twilio_token=webhook_load.TWILIO_TOKEN,
    )
    public = base64.b64encode(
        signers.sendgrid.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    me = [sys.executable, str(Path(__file__).resolve())]
    sendout = str(Path(sys.executable).with_name("sendout"))
    children: list[subprocess.Popen] = []
    log_copy = args.ingester_log.open("w") if args.ingester_log else None
    with tempfile.TemporaryDirectory() as work_name:
        work = Path(work_name)
        db, landing, reads_path = work / "w.duckdb", work / "landing", work / "reads.ndjson"
        (work / "sns.pem").write_bytes(certificate)
        env = {
            **os.environ,
            "SENDOUT_DB": str(db),
            "SENDOUT_LANDING": str(landing),
            "SENDOUT_SENDGRID_PUBLIC_KEY": public,
            "SENDOUT_TWILIO_AUTH_TOKEN": signers.twilio_token,
            "SENDOUT_PUBLIC_BASE_URL": f"http://{signers.host}",
            "SENDOUT_SNS_CERTIFICATE_FILE": str(work / "sns.pem"),
        }
        try:
            # the warehouse builds in its own process while this one signs the requests
            started = time.monotonic()
            builder = subprocess.Popen(
                [*me, "--build", str(db), "--recipients", str(args.recipients)], cwd=work
            )
            children.append(builder)
            warm = build_requests(signers, warmup, 0, WARMUP_PER_PROVIDER)
            requests = build_requests(signers, list(range(count)), args.rate, args.sendgrid_batch)
            gc.freeze()  # no full collection of the prepared requests stalls the generator
            if builder.wait() != 0:
                raise SystemExit("building the warehouse failed")
            built = time.monotonic() - started

            # cwd=work: no .env of the repository leaks into the children's settings
            service = subprocess.Popen(
                [sendout, "webhooks", "--port", str(port)],
                env=env,
                cwd=work,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            children.append(service)
            ingester = subprocess.Popen(
                [sendout, "--db", str(db), "ingester"],
                env=env,
                cwd=work,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            children.append(ingester)
            ingester_lines = Stamped()
            ingester_lines.follow(ingester.stdout, log_copy)
            reader = subprocess.Popen(
                [*me, "--read", str(db), str(reads_path), "--poll", str(args.poll)],
                env=env,
                cwd=work,
            )
            children.append(reader)
            reads = Reads(reads_path)
            webhook_load.wait_until_listening(port)

            # unclocked: every part pays its lazy start before the clock
            asyncio.run(offer(port, warm, 3, time.monotonic(), 30))
            if not reads.wait_for(warmup, time.monotonic() + 120):
                raise SystemExit("the warm-up events never became visible")
            reads_before = len(reads.reads)
            pids = {
                "generator": os.getpid(),
                "service": service.pid,
                "ingester": ingester.pid,
                "reader": reader.pid,
            }
            cpu_before = {name: webhook_load.cpu_seconds(pid) for name, pid in pids.items()}

            start = time.monotonic() + 0.2  # the connections open before the first event is due
            offered = asyncio.run(offer(port, requests, args.connections, start, args.wait))
            offered_end = time.monotonic()
            accepted = sorted(offered.accepted_at)
            reads.wait_for(accepted, max(offered_end, start + args.seconds) + args.wait)
            end = time.monotonic()
            cpu = {
                name: round(webhook_load.cpu_seconds(pid) - cpu_before[name], 1)
                for name, pid in pids.items()
            }
            for child in (reader, service, ingester):
                stop(child)
            reads.update()
            wall = time.time() - time.monotonic()
            where = stages(
                db,
                landing,
                offered.accepted_at,
                reads.seen,
                [at for at, line in ingester_lines.lines if BATCH_LINE.search(line)],
                wall,
            )
        finally:
            for child in reversed(children):
                stop(child, timeout=10)
            if log_copy:
                log_copy.close()

    freshness = {i: reads.seen[i] - offered.accepted_at[i] for i in accepted if i in reads.seen}
    overall = quantiles(list(freshness.values()))
    clocked_reads = [r for r in reads.reads[reads_before:] if r["at"] <= end]
    read_seconds = [r["read"] for r in clocked_reads]
    failed = [r for r in clocked_reads if r["error"] or r["read"] > FAILED_READ_SECONDS]
    per_provider = {}
    for name in PROVIDERS:
        mine = [i for i in range(count) if provider_of(i) == name]
        values = [freshness[i] for i in mine if i in freshness]
        per_provider[name] = {
            "offered": len(mine),
            "accepted": sum(i in offered.accepted_at for i in mine),
            "visible": len(values),
            **{f"{k}_seconds": v for k, v in quantiles(values).items()},
        }
    latencies = quantiles(offered.latencies)
    print(
        json.dumps(
            {
                "benchmark": "freshness",
                "seconds": args.seconds,
                "offered_per_s": args.rate,
                "recipients": args.recipients,
                "events_offered": count,
                "events_accepted": len(accepted),
                "events_visible": len(freshness),
                "events_not_visible": len(accepted) - len(freshness),
                "p50_seconds": overall["p50"],
                "p95_seconds": overall["p95"],
                "p99_seconds": overall["p99"],
                "max_seconds": overall["max"],
                "min_seconds": round(min(freshness.values()), 3) if freshness else None,
                "failed_reads": len(failed),
                "read_errors": sum(bool(r["error"]) for r in clocked_reads),
                "reads": len(clocked_reads),
                "read_ms": {
                    k: round(v * 1000, 1) if v is not None else None
                    for k, v in quantiles(read_seconds).items()
                },
                "figure_mismatches": sum(bool(r.get("mismatch")) for r in clocked_reads),
                "first_failed_read": (
                    (failed[0]["error"] or f"took {failed[0]['read']:.2f} s") if failed else None
                ),
                "per_provider": per_provider,
                "requests": len(offered.latencies),
                "request_errors": offered.errors,
                "requests_unanswered": offered.unanswered,
                "statuses": {str(k): v for k, v in sorted(offered.statuses.items())},
                "request_ms": {
                    k: round(v * 1000, 1) if v is not None else None for k, v in latencies.items()
                },
                "offering_seconds": round(offered_end - start, 1),
                "waited_for_stragglers_seconds": round(end - offered_end, 1),
                "stages_seconds": where,
                "ingester": ingester_summary(ingester_lines.lines, start, end),
                "cpu_seconds": cpu,
                "run_seconds": round(end - start, 1),
                "build_seconds": round(built, 1),
                "poll_seconds": args.poll,
                "connections": args.connections,
                "sendgrid_batch": args.sendgrid_batch,
            }
        )
    )


if __name__ == "__main__":
    main()
