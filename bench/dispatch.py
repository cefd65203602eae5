"""Benchmark dispatch: an email send-out of N recipients through `sendout dispatch` (SMTP sender)
into a local SMTP sink, against a plain smtplib loop over one connection (the naive peer) and
Postfix's `smtp-source` with the same number of connections (the practical limit).

The sink is Postfix's `smtp-sink` when Debian's postfix package is installed (it is much faster
than aiosmtpd, which would be the bottleneck), else aiosmtpd. Then two figures of runs of their
own: the peak RSS of a send-out to --memory-recipients people (200,000) against one to a tenth
of them, and a crash: a
dispatch of --crash-recipients (3,000) into a counting aiosmtpd sink killed with SIGKILL half-way
and run again at once (who was missed, who got it twice); and the Twilio sender against a local
server speaking Twilio's API, one request at a time and --connections at once. Prints one JSON
line. Usage:
    python bench/dispatch.py [--recipients 20000] [--connections 4] [--batch 5000]
"""

import argparse
import collections
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

NAIVE = """
import smtplib, sys, time
from email.message import EmailMessage
port, count = int(sys.argv[1]), int(sys.argv[2])
started = time.perf_counter()
connection = smtplib.SMTP("127.0.0.1", port)
for n in range(count):
    message = EmailMessage()
    message["From"] = "News <news@example.org>"
    message["To"] = f"p{n}@example.com"
    message["Subject"] = f"Hello P{n}"
    message.set_content("Hello, here is the news.")
    connection.send_message(message)
connection.quit()
print(time.perf_counter() - started)
"""


OUR_ID = re.compile(rb"X-Sendout-Message-Id: (\S+)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sink(port: int) -> tuple[subprocess.Popen, str]:
    if shutil.which("smtp-sink"):
        command = ["smtp-sink", "-u", "nobody", f"127.0.0.1:{port}", "1000"]
        name = "postfix smtp-sink"
    else:
        command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}"]
        name = "aiosmtpd"
    sink = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return sink, name
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the SMTP sink did not start on port {port}")


def measure(command: list[str], env: dict | None = None) -> dict:
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[:4]} failed")
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": usage.ru_maxrss // 1024,
        "out": output,
    }


def prepare(db: Path, recipients: int) -> str:
    """A warehouse with `recipients` contacts and one email send-out to all of them."""
    # imported here: the parent process stays small, its memory would count for its children
    from warehouse import sendouts
    from warehouse.db import open_warehouse
    from warehouse.sendouts import Draft, Recipients

    with open_warehouse(db) as con:
        con.execute(
            "INSERT INTO contacts (first_name, email) "
            "SELECT 'P' || i, 'p' || i || '@example.com' FROM range(?) t(i)",
            [recipients],
        )
        draft = Draft(
            name="Bench",
            channels=["email"],
            communication_type="marketing",
            recipients=Recipients(all_contacts=True),
            subject="Hello {first_name}",
            text_body="Hello, here is the news.",
            sender="News <news@example.org>",
        )
        return sendouts.create(con, draft).sendout_id


def dispatch_env(port: int, connections: int, batch: int, work: Path) -> dict:
    """The environment of a `sendout dispatch` through the SMTP sender into the sink."""
    return {
        **os.environ,
        "SENDOUT_EMAIL_SENDER": "smtp",
        "SENDOUT_SMTP_HOST": "127.0.0.1",
        "SENDOUT_SMTP_PORT": str(port),
        "SENDOUT_SMTP_CONNECTIONS": str(connections),
        "SENDOUT_BATCH_SIZE": str(batch),
        "SENDOUT_LANDING": str(work / "l"),
        "SENDOUT_DISPATCH_LEASE_SECONDS": "600",  # a dead run here is taken over at once
    }


def prepared(work: Path, recipients: int) -> tuple[Path, str]:
    """A warehouse in `work` with a send-out to `recipients` people, made in a child process."""
    db = work / "dispatch.duckdb"
    sendout_id = subprocess.run(
        [sys.executable, __file__, "--prepare", str(db), "--recipients", str(recipients)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return db, sendout_id


def dispatch_command(db: Path, sendout_id: str) -> list[str]:
    return [str(Path(sys.executable).with_name("sendout")), "--db", str(db), "dispatch", sendout_id]


def measure_dispatch(args, port: int, recipients: int) -> dict:
    """`sendout dispatch` of a fresh send-out to `recipients` people: seconds and peak RSS."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        db, sendout_id = prepared(work, recipients)
        env = dispatch_env(port, args.connections, args.batch, work)
        figures = measure(dispatch_command(db, sendout_id), env)
    figures.pop("out")
    return figures


def measure_smtp_source(port: int, n: int, connections: int) -> dict | None:
    if not shutil.which("smtp-source"):
        return None
    command = ["smtp-source", "-s", str(connections), "-m", str(n), "-f", "news@example.org",
               "-t", "p@example.com", f"127.0.0.1:{port}"]  # fmt: skip
    figures = measure(command)
    figures.pop("out")
    return figures


def compare(args) -> dict:
    """Dispatch, the naive loop and smtp-source, one after the other into the same sink."""
    n = args.recipients
    port = free_port()
    sink, sink_name = start_sink(port)
    try:
        ours = measure_dispatch(args, port, n)
        naive = measure([sys.executable, "-c", NAIVE, str(port), str(n)])
        naive["seconds"] = round(float(naive.pop("out")), 2)
        limit = measure_smtp_source(port, n, args.connections)
        memory = baseline = None
        if args.memory_recipients:  # peak RSS should not grow with the number of recipients
            memory = measure_dispatch(args, port, args.memory_recipients)
            baseline = measure_dispatch(args, port, args.memory_recipients // 10)
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait()
    rate = lambda seconds: round(n / seconds)  # noqa: E731
    figures = {
        "benchmark": "dispatch",
        "recipients": n,
        "connections": args.connections,
        "batch": args.batch,
        "sink": sink_name,
        "sendout_dispatch": {**ours, "messages_per_s": rate(ours["seconds"])},
        "naive_smtplib_loop": {**naive, "messages_per_s": rate(naive["seconds"])},
    }
    if limit:
        figures["smtp_source"] = {**limit, "messages_per_s": rate(limit["seconds"])}
        figures["dispatch_vs_smtp_source_time"] = round(ours["seconds"] / limit["seconds"], 2)
    figures["dispatch_vs_naive_speed"] = round(naive["seconds"] / ours["seconds"], 2)
    if memory:
        figures["memory"] = {
            "recipients": args.memory_recipients,
            "peak_rss_mb": memory["peak_rss_mb"],
            "messages_per_s": round(args.memory_recipients / memory["seconds"]),
            "tenth_recipients": args.memory_recipients // 10,
            "tenth_peak_rss_mb": baseline["peak_rss_mb"],
            "vs_tenth_rss": round(memory["peak_rss_mb"] / baseline["peak_rss_mb"], 2),
        }
    return figures


class CountingSink:
    """An SMTP sink (aiosmtpd, in a thread) that counts each message by our id, to tell who got
    it twice."""

    def __init__(self):
        self.counts: collections.Counter = collections.Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        found = OUR_ID.search(envelope.content)
        with self.lock:
            self.counts[found.group(1).decode() if found else None] += 1
        return "250 Ok"

    def received(self) -> int:
        with self.lock:
            return sum(self.counts.values())


def crash_figure(args) -> dict:
    """kill -9 of a dispatch half-way through, then `sendout dispatch` again at once: who was
    missed, who got it twice, how many were flagged, and how long the second run took."""
    from aiosmtpd.controller import Controller

    n, counter, port = args.crash_recipients, CountingSink(), free_port()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            db, sendout_id = prepared(work, n)
            env = dispatch_env(port, args.connections, args.batch, work)
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
            first = subprocess.Popen(dispatch_command(db, sendout_id), **quiet)
            while counter.received() < n // 2 and first.poll() is None:
                time.sleep(0.002)
            first.kill()
            first.wait()
            killed_after = counter.received()
            started = time.perf_counter()
            again = subprocess.run(dispatch_command(db, sendout_id), **quiet)
            seconds = time.perf_counter() - started
            planned, flagged = read_messages(db)
    finally:
        controller.stop()
    return {
        "recipients": n,
        "killed_after": killed_after,
        "restart_exit_code": again.returncode,
        "restart_seconds": round(seconds, 2),
        "missed": len(planned - set(counter.counts)),
        "sent_twice": sum(1 for times in counter.counts.values() if times > 1),
        "flagged_maybe_twice": flagged,
    }


def read_messages(db: Path) -> tuple[set[str], int]:
    """The send-out's message ids, and how many are flagged as possibly sent twice."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.sql("SELECT message_id, is_possible_duplicate FROM messages").fetchall()
    return {row[0] for row in rows}, sum(row[1] for row in rows)


def twilio_figure(args) -> dict:
    """The Twilio sender against a local server speaking Twilio's Messages API that answers
    each request after `--sms-latency-ms`: one request at a time, then --connections at once."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from flows.senders.twilio import TwilioSender
    from flows.settings import Settings
    from warehouse.dispatch_state import Outgoing

    class Twilio(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as api.twilio.com
        disable_nagle_algorithm = True  # or each answer waits out a delayed ACK (40 ms)

        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(args.sms_latency_ms / 1000)
            body = b'{"sid": "SM0", "status": "queued"}'
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Twilio)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    n = args.sms_messages
    batch = [Outgoing(f"m{i}", "so_b", "sms", f"+4479110{i:05d}", "marketing", None, None, None,
                      None, "Hello", False, False) for i in range(n)]  # fmt: skip
    rates = {}
    for connections in (1, args.connections):
        base = f"http://127.0.0.1:{server.server_port}"
        sender = TwilioSender(
            Settings(twilio_account_sid="ACbench", twilio_auth_token="t", twilio_from="+1415555",
                     twilio_api_base=base, sms_connections=connections)
        )  # fmt: skip
        started = time.perf_counter()
        sender.send(batch)
        rates[connections] = round(n / (time.perf_counter() - started))
        sender.close()
    server.shutdown()
    return {
        "messages": n,
        "latency_ms": args.sms_latency_ms,
        "one_at_a_time_per_s": rates[1],
        f"{args.connections}_at_once_per_s": rates[args.connections],
        "speedup": round(rates[args.connections] / rates[1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--memory-recipients", type=int, default=200_000, help="0: skip")
    parser.add_argument("--crash-recipients", type=int, default=3_000, help="0: skip")
    parser.add_argument("--sms-messages", type=int, default=1_000, help="0: skip")
    parser.add_argument("--sms-latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    if args.prepare:  # in a child process, so its memory is not inherited by the contenders
        print(prepare(args.prepare, args.recipients))
        return
    figures = compare(args)
    if args.crash_recipients:
        figures["crash"] = crash_figure(args)
    if args.sms_messages:
        figures["twilio"] = twilio_figure(args)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
