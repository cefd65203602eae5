"""Load test of the webhook service on loopback (bounded in count and time): signed SendGrid
batches and Twilio callbacks sent concurrently; afterwards every accepted event must be in the
landing folder exactly once. Prints one JSON line: requests/s, p50/p99 latency, events in and
landed. Usage:
    python bench/webhooks.py [--seconds 60] [--concurrency 32] [--max-requests 200000]
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

TWILIO_TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Load:
    def __init__(self, url: str, key: ec.EllipticCurvePrivateKey):
        self.url, self.key = url, key
        self.latencies: list[float] = []
        self.events_sent: set[str] = set()
        self.errors = 0
        self.n = 0

    def sendgrid(self) -> tuple[str, dict, bytes, list[str]]:
        ids = [f"sg-{self.n}-{i}" for i in range(10)]
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
        signature = base64.b64encode(
            self.key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        ).decode()
        headers = {
            "X-Twilio-Email-Event-Webhook-Signature": signature,
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
            "Content-Type": "application/json",
        }
        return f"{self.url}/webhooks/sendgrid", headers, body, ids

    def twilio(self) -> tuple[str, dict, bytes, list[str]]:
        sid = f"SMbench{self.n}"
        form = {
            "MessageSid": sid,
            "MessageStatus": "delivered",
            "To": "+447911123456",
            "AccountSid": "AC1",
        }
        url = f"{self.url}/webhooks/twilio/status"
        payload = url + "".join(f"{k}{form[k]}" for k in sorted(form))
        signature = base64.b64encode(
            hmac.new(TWILIO_TOKEN.encode(), payload.encode(), hashlib.sha1).digest()
        ).decode()
        body = "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in form.items()).encode()
        headers = {
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return url, headers, body, [sid]

    async def worker(self, client: httpx.AsyncClient, deadline: float, max_requests: int):
        while time.monotonic() < deadline and self.n < max_requests:
            self.n += 1
            url, headers, body, ids = self.sendgrid() if self.n % 2 else self.twilio()
            started = time.perf_counter()
            try:
                response = await client.post(url, content=body, headers=headers)
            except httpx.HTTPError:
                self.errors += 1
                continue
            self.latencies.append(time.perf_counter() - started)
            if response.status_code == 200:
                self.events_sent.update(ids)
            else:
                self.errors += 1


async def run_load(url: str, key, seconds: float, concurrency: int, max_requests: int) -> Load:
    load = Load(url, key)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        deadline = time.monotonic() + seconds
        await asyncio.gather(
            *(load.worker(client, deadline, max_requests) for _ in range(concurrency))
        )
    return load


def landed_ids(folder: Path) -> list[str]:
    ids = []
    for path in folder.rglob("*.ndjson"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            ids.append(record.get("sg_event_id") or record["MessageSid"])
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-requests", type=int, default=200_000)
    args = parser.parse_args()
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    port = free_port()
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
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        started = time.perf_counter()
        load = asyncio.run(run_load(url, key, args.seconds, args.concurrency, args.max_requests))
        elapsed = time.perf_counter() - started
        service.send_signal(signal.SIGTERM)  # it hands its open files to ingest on the way out
        service.wait(timeout=30)
        ids = landed_ids(landing)
    latencies = sorted(load.latencies)
    print(
        json.dumps(
            {
                "benchmark": "webhooks",
                "seconds": round(elapsed, 1),
                "requests": len(latencies),
                "requests_per_s": round(len(latencies) / elapsed),
                "p50_ms": round(statistics.median(latencies) * 1000, 1),
                "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
                "errors": load.errors,
                "events_accepted": len(load.events_sent),
                "events_landed": len(ids),
                "landed_twice": len(ids) - len(set(ids)),
                "accepted_but_missing": len(load.events_sent - set(ids)),
            }
        )
    )


if __name__ == "__main__":
    main()
