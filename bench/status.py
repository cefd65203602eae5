"""Benchmark final statuses and summaries: `sendout refresh` against one hand-written DuckDB
query (the limit to match) and a pandas peer.

Builds a warehouse with N events over M messages (directly in SQL, so it takes seconds), then
times, each in its own process: `sendout refresh --full`; the DuckDB query computing the same
final statuses; pandas doing the same; an incremental `sendout refresh` after `--new-events`
new events (a process of its own, start-up included); and the continuous ingester's micro-batch
(`--micro-batches` rounds in one warm process, as `sendout ingester` runs them): on one
connection, ingesting a file of `--new-events` SES events, then the incremental refresh, each
timed, and the whole micro-batch with the opening and closing of the connection. Prints one
JSON line. Usage:
    python bench/status.py [--events 5000000] [--messages 1000000] [--new-events 10000]
                           [--micro-batches 5]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# event types and how often each appears (per 100 events)
MIX = [
    ("queued", 12),
    ("sent", 18),
    ("delivered", 24),
    ("deferred", 3),
    ("opened", 22),
    ("clicked", 9),
    ("bounced", 4),
    ("bad_email", 2),
    ("failed", 1),
    ("complaint", 1),
    ("skipped", 2),
    ("unsubscribed", 2),
]


def build(db: Path, events: int, messages: int) -> None:
    """A warehouse with `messages` messages in send-outs of 10,000 and `events` events."""
    from warehouse.db import open_warehouse  # here: the parent process stays small

    cumulative, total = [], 0
    for event_type, weight in MIX:
        total += weight
        cumulative.append((event_type, total))
    pick = " ".join(f"WHEN h < {t} THEN '{e}'" for e, t in cumulative)
    with open_warehouse(db) as con:
        con.execute(
            """
            INSERT INTO sendouts (sendout_id, name, channels, communication_type)
            SELECT 's' || i, 'Send-out ' || i, ['email', 'sms'], 'marketing'
            FROM range(($messages + 9999) // 10000) t(i)
            """,
            {"messages": messages},
        )
        con.execute(
            """
            INSERT INTO messages (message_id, sendout_id, contact_id, channel, recipient, sms_text,
                created_at)
            SELECT 'm' || i, 's' || (i // 10000), i,
                   CASE WHEN i % 10 = 0 THEN 'sms' ELSE 'email' END,
                   CASE WHEN i % 10 = 0 THEN '+4479' || lpad((i % 100000000)::VARCHAR, 8, '0')
                        ELSE 'person' || i || '@example.org' END,
                   CASE WHEN i % 10 = 0 THEN 'Your appointment is tomorrow at 10:00' END,
                   TIMESTAMPTZ '2026-11-01 09:00:00+00'
            FROM range($messages) t(i)
            """,
            {"messages": messages},
        )
        con.execute(
            f"""
            INSERT INTO events (event_id, provider, channel, event_type, message_id,
                sendout_message_id, recipient, occurred_at, is_machine_open, bounce_kind,
                payload, event_hash, source_file, source_line, ingested_at)
            SELECT 'e' || i, 'ses', 'email', event_type, 'm' || m, 'm' || m,
                   'person' || m || '@example.org',
                   TIMESTAMPTZ '2026-11-01 09:00:00+00' + to_seconds(hash(i, 'at') % 86400),
                   event_type = 'opened' AND hash(i, 'bot') % 4 = 0,
                   CASE WHEN event_type = 'bounced' THEN
                       CASE WHEN hash(i, 'kind') % 3 = 0 THEN 'soft' ELSE 'hard' END END,
                   '{{}}', md5_number_lower('e' || i), 'bench', i,
                   TIMESTAMPTZ '2026-11-01 12:00:00+00'
            FROM (
                SELECT i, hash(i, 'message') % $messages AS m,
                       CASE {pick} END AS event_type
                FROM (SELECT i, hash(i, 'type') % {total} AS h FROM range($events) t(i))
            )
            """,
            {"events": events, "messages": messages},
        )


def add_new_events(db: Path, count: int, messages: int) -> None:
    from warehouse.db import open_warehouse  # here: the parent process stays small

    with open_warehouse(db) as con:
        con.execute(
            """
            INSERT INTO events (event_id, provider, channel, event_type, message_id,
                sendout_message_id, recipient, occurred_at, payload, event_hash, source_file,
                source_line, ingested_at)
            SELECT 'new' || i, 'ses', 'email', CASE WHEN i % 2 = 0 THEN 'opened' ELSE 'clicked' END,
                   'm' || m, 'm' || m, 'person' || m || '@example.org',
                   TIMESTAMPTZ '2026-11-02 09:00:00+00', '{}', md5_number_lower('new' || i),
                   'bench-new', i, current_timestamp
            -- opens and clicks are email events: messages 10, 20, 30... are SMS
            FROM (SELECT i, (hash(i, 'new') % ($messages // 10)) * 10 + 1 + i % 9 AS m
                  FROM range($count) t(i))
            """,
            {"count": count, "messages": messages},
        )


def micro_batches(db: Path, rounds: int, count: int, messages: int) -> dict:
    """What the continuous ingester does with each new file, timed inside one warm process."""
    from statistics import median

    from warehouse.db import WriterHold, open_warehouse  # here: the parent process stays small
    from warehouse.ingest import ingest_files
    from warehouse.ingest_results import IngestSummary
    from warehouse.parsers import install_macros
    from warehouse.refresh import refresh

    with open_warehouse(db) as con:
        refresh(con)  # warm: what a running ingester has done before
    landing = db.parent / "micro-batches"
    landing.mkdir()
    ingest_seconds, refresh_seconds, batch_seconds = [], [], []
    for round_ in range(rounds):
        path = landing / f"ses-{round_}.ndjson"
        with path.open("w") as handle:
            for i in range(count):
                # email messages only (every tenth is SMS), none twice in a file
                m = (hash((round_, i)) % (messages // 10)) * 10 + 1 + i % 9
                kind, key = ("Open", "open") if i % 2 else ("Delivery", "delivery")
                record = {
                    "eventType": kind,
                    "mail": {
                        "timestamp": "2026-11-02T09:00:00.000Z",
                        "messageId": f"ses-m{m}",
                        "destination": [f"person{m}@example.org"],
                        "tags": {"sendout_message_id": [f"m{m}"]},
                    },
                    # a time of its own: no two records of a file are the same event
                    key: {
                        "timestamp": f"2026-11-{3 + round_:02d}T{i // 3600 % 24:02d}:"
                        f"{i // 60 % 60:02d}:{i % 60:02d}.000Z",
                        "recipients": [f"person{m}@example.org"],
                    },
                }
                handle.write(json.dumps(record) + "\n")
        # as flows.ingester does it: one connection, the file, then the refresh
        opened = time.perf_counter()
        with open_warehouse(db) as con:
            started = time.perf_counter()
            ingested = IngestSummary()
            # the macros, were they needed, are installed on the connection: timed with the file
            ingest_files(WriterHold.keeping(con, install_macros), [path], ingested)
            ingest_seconds.append(time.perf_counter() - started)
            assert ingested.events_new == count, ingested
            started = time.perf_counter()
            refresh(con)
            refresh_seconds.append(time.perf_counter() - started)
        batch_seconds.append(time.perf_counter() - opened)
    return {
        "rounds": rounds,
        "events_per_batch": count,
        "ingest_file_seconds": round(median(ingest_seconds), 3),
        "refresh_seconds": round(median(refresh_seconds), 3),
        "micro_batch_seconds": round(median(batch_seconds), 3),
        "ingest_file_seconds_max": round(max(ingest_seconds), 3),
        "refresh_seconds_max": round(max(refresh_seconds), 3),
    }


def measure(command: list[str]) -> dict:
    """Run a command; return wall seconds, peak RSS and its standard output."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[:4]} failed")
    wall = round(time.perf_counter() - started, 2)
    return {"wall_seconds": wall, "peak_rss_mb": usage.ru_maxrss // 1024, "out": output}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--new-events", type=int, default=10_000)
    parser.add_argument("--micro-batches", type=int, default=5)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--add-new-events", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        return build(args.db, args.events, args.messages)
    if args.add_new_events:
        return add_new_events(args.db, args.add_new_events, args.messages)
    if args.in_process:
        figures = micro_batches(args.db, args.micro_batches, args.new_events, args.messages)
        return print(json.dumps(figures))
    sendout = [str(Path(sys.executable).with_name("sendout"))]

    with tempfile.TemporaryDirectory() as work:
        db = Path(work) / "status.duckdb"
        # built in a process of its own, so that its memory is not inherited by the contenders'
        # peak RSS (Linux keeps the high-water mark across fork and exec)
        started = time.perf_counter()
        helper = [
            sys.executable,
            __file__,
            "--db",
            str(db),
            "--events",
            str(args.events),
            "--messages",
            str(args.messages),
        ]
        subprocess.run([*helper, "--build"], check=True)
        built = round(time.perf_counter() - started, 1)

        full = measure([*sendout, "--db", str(db), "refresh", "--full", "--json"])
        full_inside = json.loads(full.pop("out"))["seconds"]
        peers = [sys.executable, str(HERE / "status_peers.py")]
        limit = measure([*peers, "sql", str(db)])
        limit_inside = float(limit.pop("out"))
        peer = measure([*peers, "pandas", str(db)])
        peer_inside = float(peer.pop("out"))

        subprocess.run([*helper, "--add-new-events", str(args.new_events)], check=True)
        incremental = measure([*sendout, "--db", str(db), "refresh", "--json"])
        incremental_summary = json.loads(incremental.pop("out"))
        in_ingester = measure(
            [
                *helper,
                "--in-process",
                "--new-events",
                str(args.new_events),
                "--micro-batches",
                str(args.micro_batches),
            ]
        )
        micro = json.loads(in_ingester.pop("out"))

    print(
        json.dumps(
            {
                "benchmark": "status",
                "events": args.events,
                "messages": args.messages,
                "build_seconds": built,
                "refresh_full": {**full, "seconds": full_inside},
                "duckdb_sql_final_status": {**limit, "seconds": limit_inside},
                "pandas_peer": {**peer, "seconds": peer_inside},
                "refresh_incremental": {
                    **incremental,
                    "seconds": incremental_summary["seconds"],
                    "new_events": args.new_events,
                    "messages_recomputed": incremental_summary["messages"],
                },
                "micro_batch_in_ingester": {**micro, "peak_rss_mb": in_ingester["peak_rss_mb"]},
                "full_vs_sql": round(full_inside / limit_inside, 2),
                "full_vs_pandas_speed": round(peer_inside / full_inside, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
