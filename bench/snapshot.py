"""How long publishing the analysts' snapshot (warehouse/snapshot.py) holds the live warehouse,
against DuckDB's own `COPY FROM DATABASE`. Prints one JSON line. Usage:
    python bench/snapshot.py [--events 5000000] [--messages 1000000] [--rounds 5]

Builds a warehouse as bench/status.py does (N events over M messages, refreshed in full), then,
`--rounds` times in one process as the ingester runs it: stores 10,000 new events, refreshes,
and publishes on the same connection. The checkpoint that publishing starts with is timed on its
own (closing the connection would pay it anyway); `hold_seconds` is the rest (copy, fsync,
rename): what publishing adds to the time the writer holds the file. A writer in another process
waits at most that long. `sendout snapshot` is also timed end to end, start-up included.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from status import add_new_events, build  # bench/status.py, next to this file

MB = 2**20


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def publish_rounds(db: Path, rounds: int, messages: int) -> dict:
    from warehouse.db import open_warehouse
    from warehouse.refresh import refresh
    from warehouse.snapshot import publish

    checkpoints, holds = [], []
    for _ in range(rounds):
        add_new_events(db, 10_000, messages)
        with open_warehouse(db) as con:
            refresh(con)
            checkpoints.append(timed(lambda: con.execute("CHECKPOINT")))
            holds.append(timed(lambda: publish(con)))
    return {
        "checkpoint_seconds": round(median(checkpoints), 3),
        "hold_seconds": round(median(holds), 3),
        "hold_seconds_max": round(max(holds), 3),
    }


def copy_database_seconds(db: Path) -> float:
    """The alternative: DuckDB writes a new database from the tables, row by row."""
    from warehouse.db import open_warehouse

    target = db.with_name("copy-database.duckdb")
    with open_warehouse(db) as con:
        con.execute("ATTACH ? AS copy", [str(target)])
        seconds = timed(lambda: con.execute(f"COPY FROM DATABASE {db.stem} TO copy"))
        con.execute("DETACH copy")
    return round(seconds, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from warehouse.db import open_warehouse
    from warehouse.refresh import refresh
    from warehouse.snapshot import snapshot_path

    with tempfile.TemporaryDirectory() as work:
        db = Path(work) / "warehouse.duckdb"
        build(db, args.events, args.messages)
        with open_warehouse(db) as con:
            refresh(con, full=True)
        figures = publish_rounds(db, args.rounds, args.messages)
        sendout = str(Path(sys.executable).with_name("sendout"))
        command = timed(
            lambda: subprocess.run(
                [sendout, "--db", str(db), "snapshot"], check=True, capture_output=True
            )
        )
        print(
            json.dumps(
                {
                    "events": args.events,
                    "messages": args.messages,
                    "warehouse_mb": round(db.stat().st_size / MB),
                    "snapshot_mb": round(snapshot_path(db).stat().st_size / MB),
                    **figures,
                    "sendout_snapshot_seconds": round(command, 2),
                    "copy_from_database_seconds": copy_database_seconds(db),
                }
            )
        )


if __name__ == "__main__":
    main()
