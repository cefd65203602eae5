"""Load test of the webhook service on loopback (bounded in count and time): signed SendGrid
batches (10 events each) and Twilio status callbacks, alternately, offered at a fixed rate over
keep-alive connections; afterwards every accepted event must be in the landing folder exactly
once. Prints one JSON line: requests/s, latency (p50, p99, p99.9, max), errors, events accepted
and landed, and the CPU time the service and the load generator spent per request. Usage:
    python bench/webhooks.py [--seconds 60] [--rate 1000] [--connections 64]
                             [--max-requests 200000]

Open loop: request i is due at start + i/rate whether or not earlier answers have come back,
and its latency counts from when it was due, so a stalled service is charged for the requests
waiting behind it (no coordinated omission). `--rate 0` sends as fast as the connections are
answered instead (closed loop), which shows the ceiling. Every request is built and signed
before the clock starts, and each connection sends one request before it (its events are in
the landing check, not in the figures). The client is plain asyncio streams speaking HTTP/1.1
(status line and Content-Length), in this process; the service runs in its own, and the two
share the machine's cores.
"""

import argparse
import asyncio
import base64
import gc
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

TWILIO_TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_post(host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """One HTTP/1.1 keep-alive POST, as bytes on the wire."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def sendgrid_request(host: str, key: ec.EllipticCurvePrivateKey, n: int) -> tuple[bytes, list[str]]:
    """A signed SendGrid batch of 10 delivered events, and their ids."""
    ids = [f"sg-{n}-{i}" for i in range(10)]
    body = json.dumps(
        [
            {
                "event": "delivered",
                "email": f"p{i}@example.com",
                "timestamp": 1800000000,
                "sg_event_id": e,
            }
            for i, e in enumerate(ids)
        ]
    ).encode()
    stamp = str(int(time.time()))
    signature = base64.b64encode(key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256())))
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": signature.decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }
    return http_post(host, "/webhooks/sendgrid", headers, body), ids


def twilio_request(host: str, n: int) -> tuple[bytes, list[str]]:
    """A signed Twilio status callback, and its message id."""
    sid = f"SMbench{n}"
    form = {
        "MessageSid": sid,
        "MessageStatus": "delivered",
        "To": "+447911123456",
        "AccountSid": "AC1",
    }
    path = "/webhooks/twilio/status"
    payload = f"http://{host}{path}" + "".join(f"{k}{form[k]}" for k in sorted(form))
    signature = hmac.new(TWILIO_TOKEN.encode(), payload.encode(), hashlib.sha1).digest()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": base64.b64encode(signature).decode(),
    }
    body = "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in form.items()).encode()
    return http_post(host, path, headers, body), [sid]


def build_requests(
    host: str, key: ec.EllipticCurvePrivateKey, count: int
) -> list[tuple[bytes, list[str]]]:
    """SendGrid and Twilio requests alternately, each with the event ids it carries."""
    return [
        sendgrid_request(host, key, n) if n % 2 else twilio_request(host, n) for n in range(count)
    ]


async def read_status(reader: asyncio.StreamReader) -> int:
    """Read one response (status line, headers, a Content-Length body); return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


@dataclass
class Load:
    """What the service answered: latencies in seconds, accepted event ids, failed requests."""

    latencies: list[float] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    errors: int = 0


async def offer(
    port: int,
    requests: list[tuple[bytes, list[str]]],
    rate: float,
    connections: int,
    seconds: float,
) -> Load:
    """Send the requests over `connections` keep-alive connections, at `rate` per second (open
    loop), or back to back when `rate` is 0, for at most `seconds` (after one unclocked request
    per connection)."""
    load = Load()
    queue: asyncio.Queue = asyncio.Queue()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (item := await queue.get()) is not None:
            due, (request, ids) = item
            if due is None:  # closed loop: timed from the send, stop at the deadline
                due = time.monotonic()
                if due >= deadline:
                    break
            try:
                writer.write(request)
                status = await read_status(reader)
            except (OSError, asyncio.IncompleteReadError):
                load.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            load.latencies.append(time.monotonic() - due)
            if status == 200:
                load.accepted.extend(ids)
            else:
                load.errors += 1
        writer.close()

    opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]
    # one request per connection before the clock: the first ones pay for the service's lazy
    # start (thread pool, landing files), which a service that has been up has paid already
    for (reader, writer), (request, ids) in zip(opened, requests[:connections], strict=True):
        writer.write(request)
        if await read_status(reader) == 200:
            load.accepted.extend(ids)
        else:
            load.errors += 1
    requests = requests[connections:]
    start = time.monotonic()
    deadline = start + seconds
    senders = [asyncio.create_task(connection(*streams)) for streams in opened]
    for i, request in enumerate(requests):
        if rate:
            due = start + i / rate
            if due >= deadline:
                break
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
        queue.put_nowait((due if rate else None, request))
    for _ in senders:
        queue.put_nowait(None)
    await asyncio.gather(*senders)
    return load


def landed_ids(folder: Path) -> list[str]:
    ids = []
    for path in folder.rglob("*.ndjson"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            ids.append(record.get("sg_event_id") or record["MessageSid"])
    return ids


def wait_until_listening(port: int) -> None:
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the service did not listen on port {port}")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, all its threads (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[max(0, int(len(ordered) * fraction) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument(
        "--rate", type=float, default=1000, help="requests/s offered; 0: closed loop"
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--max-requests", type=int, default=200_000)
    args = parser.parse_args()
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    port = free_port()
    count = args.connections + (
        args.max_requests
        if not args.rate
        else min(args.max_requests, int(args.rate * args.seconds))
    )
    requests = build_requests(f"127.0.0.1:{port}", key, count)
    gc.freeze()  # no full collection of the prepared requests stalls the generator mid-run
    with tempfile.TemporaryDirectory() as work:
        landing = Path(work) / "landing"
        env = {
            **os.environ,
            "SENDOUT_LANDING": str(landing),
            "SENDOUT_SENDGRID_PUBLIC_KEY": public,
            "SENDOUT_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "SENDOUT_DB": str(Path(work) / "w.db"),
        }
        sendout = str(Path(sys.executable).with_name("sendout"))
        service = subprocess.Popen(
            [sendout, "webhooks", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_listening(port)
        generator_cpu, service_cpu = cpu_seconds(os.getpid()), cpu_seconds(service.pid)
        started = time.monotonic()
        load = asyncio.run(offer(port, requests, args.rate, args.connections, args.seconds))
        elapsed = time.monotonic() - started
        generator_cpu = cpu_seconds(os.getpid()) - generator_cpu
        service_cpu = cpu_seconds(service.pid) - service_cpu
        service.send_signal(signal.SIGTERM)  # it hands its open files to ingest on the way out
        service.wait(timeout=30)
        ids = landed_ids(landing)
    latencies = sorted(load.latencies)
    answered = len(latencies)
    accepted, landed = set(load.accepted), set(ids)
    print(
        json.dumps(
            {
                "benchmark": "webhooks",
                "offered_per_s": args.rate or "closed loop",
                "connections": args.connections,
                "seconds": round(elapsed, 1),
                "unclocked_requests": args.connections,
                "requests": answered,
                "requests_per_s": round(answered / elapsed),
                "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
                "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
                "p99.9_ms": round(percentile(latencies, 0.999) * 1000, 1),
                "max_ms": round(latencies[-1] * 1000, 1),
                "errors": load.errors,
                "events_accepted": len(load.accepted),
                "events_landed": len(ids),
                "landed_twice": len(ids) - len(landed),
                "accepted_but_missing": len(accepted - landed),
                "landed_but_not_accepted": len(landed - accepted),
                "service_cpu_ms_per_request": round(service_cpu * 1000 / answered, 3),
                "generator_cpu_ms_per_request": round(generator_cpu * 1000 / answered, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
