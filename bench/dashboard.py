"""Benchmark the dashboard's server-side render time with Streamlit's AppTest: the Messages page
with 5,000 send-outs, and the details page of a send-out with 100,000 recipients. Median of
several runs, with the read cache cleared before each (cold) and kept (warm). One JSON line.
    python bench/dashboard.py [--sendouts 5000] [--recipients 100000] [--runs 5]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build(db: Path, sendouts: int, recipients: int) -> str:
    """Many small send-outs and one big one, with events, refreshed; returns the big one's id."""
    from warehouse.db import open_warehouse
    from warehouse.refresh import refresh

    with open_warehouse(db) as con:
        con.execute(
            """
            INSERT INTO sendouts (sendout_id, name, channels, communication_type, created_at)
            SELECT 'so_' || i, 'Send-out ' || i, ['email'], 'marketing',
                   TIMESTAMPTZ '2026-01-01 09:00+00' + to_hours(i)
            FROM range($n) t(i)
            """,
            {"n": sendouts},
        )
        con.execute(
            """
            INSERT INTO contacts (contact_id, first_name, email)
            SELECT i, 'P' || i, 'p' || i || '@example.org' FROM range($n) t(i)
            """,
            {"n": recipients},
        )
        con.execute(
            """
            INSERT INTO messages (message_id, sendout_id, contact_id, channel, recipient)
            SELECT 'm' || i,
                   CASE WHEN i < $big THEN 'so_0' ELSE 'so_' || (1 + (i - $big) % ($s - 1)) END,
                   CASE WHEN i < $big THEN i ELSE i - $big END, 'email',
                   'p' || CASE WHEN i < $big THEN i ELSE i - $big END || '@example.org'
            FROM range($big + 2 * $s) t(i)
            """,
            {"big": recipients, "s": sendouts},
        )
        con.execute(
            """
            INSERT INTO events (event_id, provider, channel, event_type, message_id,
                sendout_message_id, recipient, occurred_at, payload, event_hash, source_file,
                source_line, ingested_at)
            SELECT 'e' || i || '-' || t, 'ses', 'email', t, 'm' || i, 'm' || i,
                   'p' || i || '@example.org', TIMESTAMPTZ '2026-01-01 10:00+00', '{}',
                   md5_number_lower('e' || i || '-' || t), 'bench', i, now()
            FROM range($n) r(i), (VALUES ('delivered'), ('opened')) v(t)
            WHERE t = 'delivered' OR hash(i) % 3 = 0
            """,
            {"n": recipients + 2 * sendouts},
        )
        refresh(con, full=True)
    return "so_0"


def timed(runs: int, render, cold: bool) -> float:
    import streamlit as st

    times = []
    for _ in range(runs):
        if cold:
            st.cache_data.clear()
        started = time.perf_counter()
        render()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


def measure(db: Path, big: str, runs: int) -> dict:
    from streamlit.testing.v1 import AppTest

    os.environ["SENDOUT_DB"] = str(db)
    app = str(HERE.parent / "dashboards" / "app.py")

    def messages() -> None:
        at = AppTest.from_file(app, default_timeout=120).run()
        assert not at.exception, at.exception

    def details() -> None:
        at = AppTest.from_file(app, default_timeout=120)
        at.session_state["sendout_id"] = big
        at.run()
        at.switch_page("views/sendout.py").run()
        assert not at.exception, at.exception

    return {
        "messages_page": {
            "cold_s": timed(runs, messages, True),
            "warm_s": timed(runs, messages, False),
        },
        "details_page": {
            "cold_s": timed(runs, details, True),
            "warm_s": timed(runs, details, False),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sendouts", type=int, default=5_000)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        print(build(args.build, args.sendouts, args.recipients))
        return
    with tempfile.TemporaryDirectory() as work:
        db = Path(work) / "dashboard.duckdb"
        big = subprocess.run(
            [
                sys.executable,
                __file__,
                "--build",
                str(db),
                "--sendouts",
                str(args.sendouts),
                "--recipients",
                str(args.recipients),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        figures = measure(db, big, args.runs)
    print(
        json.dumps(
            {
                "benchmark": "dashboard",
                "sendouts": args.sendouts,
                "recipients_of_one": args.recipients,
                "runs": args.runs,
                **figures,
            }
        )
    )


if __name__ == "__main__":
    main()
