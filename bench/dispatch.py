"""Benchmark dispatch: an email send-out of N recipients through `sendout dispatch` (SMTP sender)
into a local SMTP sink, against a plain smtplib loop over one connection (the naive peer) and
Postfix's `smtp-source` with the same number of connections (the practical limit).

The sink is Postfix's `smtp-sink` when Debian's postfix package is installed (it is much faster
than aiosmtpd, which would be the bottleneck), else aiosmtpd. Prints one JSON line. Usage:
    python bench/dispatch.py [--recipients 20000] [--connections 4]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    n = args.recipients
    if args.prepare:  # in a child process, so its memory is not inherited by the contenders
        print(prepare(args.prepare, n))
        return
    port = free_port()
    sink, sink_name = start_sink(port)
    try:
        with tempfile.TemporaryDirectory() as work:
            db = Path(work) / "dispatch.duckdb"
            sendout_id = subprocess.run(
                [sys.executable, __file__, "--prepare", str(db), "--recipients", str(n)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            env = {
                **os.environ,
                "SENDOUT_EMAIL_SENDER": "smtp",
                "SENDOUT_SMTP_HOST": "127.0.0.1",
                "SENDOUT_SMTP_PORT": str(port),
                "SENDOUT_SMTP_CONNECTIONS": str(args.connections),
                "SENDOUT_BATCH_SIZE": str(args.batch),
                "SENDOUT_LANDING": str(Path(work) / "l"),
            }
            sendout = str(Path(sys.executable).with_name("sendout"))
            ours = measure([sendout, "--db", str(db), "dispatch", sendout_id], env)
            ours.pop("out")
        naive = measure([sys.executable, "-c", NAIVE, str(port), str(n)])
        naive_seconds = float(naive.pop("out"))
        limit = None
        if shutil.which("smtp-source"):
            limit = measure(
                [
                    "smtp-source",
                    "-s",
                    str(args.connections),
                    "-m",
                    str(n),
                    "-f",
                    "news@example.org",
                    "-t",
                    "p@example.com",
                    f"127.0.0.1:{port}",
                ]
            )
            limit.pop("out")
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait()

    rate = lambda seconds: round(n / seconds)  # noqa: E731
    figures = {
        "benchmark": "dispatch",
        "recipients": n,
        "connections": args.connections,
        "sink": sink_name,
        "sendout_dispatch": {**ours, "messages_per_s": rate(ours["seconds"])},
        "naive_smtplib_loop": {
            **naive,
            "seconds": round(naive_seconds, 2),
            "messages_per_s": rate(naive_seconds),
        },
    }
    if limit:
        figures["smtp_source"] = {**limit, "messages_per_s": rate(limit["seconds"])}
        figures["dispatch_vs_smtp_source_time"] = round(ours["seconds"] / limit["seconds"], 2)
    figures["dispatch_vs_naive_speed"] = round(naive_seconds / ours["seconds"], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
