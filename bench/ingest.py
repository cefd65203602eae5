"""Benchmark `sendout ingest` against a DuckDB scan of the same files and a pandas peer.

Prints one JSON line. Each contender runs in its own process, timed from outside, with its
peak resident memory read from the kernel (wait4). Usage:
    python bench/ingest.py --events 2000000 [--peer-events 500000] [--seed 7]
The pandas peer is slow: by default it loads at most --peer-events of the same events (the
first files) and its rate is reported for that count.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def measure(command: list[str], **kwargs) -> dict:
    """Run a command; return its wall time, peak RSS and standard output."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, **kwargs)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[:3]} failed with status {status}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": usage.ru_maxrss // 1024, "out": output}


def sendout_command() -> list[str]:
    script = Path(sys.executable).with_name("sendout")
    return [str(script)] if script.exists() else [sys.executable, "-m", "flows.cli"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--peer-events", type=int, default=500_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    folder = OUT / f"events-{args.events}-{args.files}-{args.seed}"
    if not (folder / "done").exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating {args.events:,} events into {folder} ...", file=sys.stderr)
        # in a process of its own, so that its memory is not inherited by the contenders'
        # peak RSS (Linux keeps the high-water mark across fork and exec)
        subprocess.run(
            [
                sys.executable,
                str(HERE / "eventgen.py"),
                str(folder),
                str(args.events),
                str(args.files),
                str(args.seed),
            ],
            check=True,
        )
        (folder / "done").touch()
    files = sorted(str(p) for p in folder.iterdir() if p.suffix in (".json", ".ndjson"))
    size = sum(Path(f).stat().st_size for f in files)

    with tempfile.TemporaryDirectory() as work:
        db = str(Path(work) / "bench.duckdb")
        ingest = measure(
            [*sendout_command(), "--db", db, "ingest", "--json", "--no-refresh", str(folder)]
        )
        summary = json.loads(ingest.pop("out"))
        again = measure(
            [*sendout_command(), "--db", db, "ingest", "--json", "--no-refresh", str(folder)]
        )
        again.pop("out")
        db_mb = Path(db).stat().st_size // 2**20

        baselines = [sys.executable, str(HERE / "duckdb_baselines.py")]
        scan = measure([*baselines, "scan", *files])
        scanned = int(scan.pop("out"))
        fields = measure([*baselines, "fields", *files])
        fields_read = int(fields.pop("out"))
        load = measure([*baselines, "load", str(Path(work) / "load.duckdb"), *files])
        loaded = int(load.pop("out"))

        per_file = args.events / len(files)
        peer_files = files[: max(2, round(args.peer_events / per_file))]
        peer = measure([sys.executable, str(HERE / "pandas_peer.py"), db + ".peer", *peer_files])
        peer_events = sum(1 for _ in peer_files) * per_file
        peer.pop("out")

    rate = lambda events, run: round(events / run["seconds"])  # noqa: E731
    figures = {
        "benchmark": "ingest",
        "events": args.events,
        "files": len(files),
        "input_mb": size // 2**20,
        "sendout_ingest": {
            **ingest,
            "events_per_s": rate(args.events, ingest),
            "events_new": summary["events_new"],
            "events_duplicate": summary["events_duplicate"],
            "warehouse_mb": db_mb,
        },
        "sendout_ingest_again": again,
        "duckdb_scan": {**scan, "events_per_s": rate(scanned, scan), "events": scanned},
        "duckdb_read_fields": {
            **fields,
            "events_per_s": rate(fields_read, fields),
            "events": fields_read,
        },
        "duckdb_load": {**load, "events_per_s": rate(loaded, load), "events": loaded},
        "pandas_peer": {
            **peer,
            "events": int(peer_events),
            "events_per_s": rate(peer_events, peer),
        },
    }
    figures["ingest_vs_scan_time"] = round(
        figures["duckdb_scan"]["events_per_s"] / figures["sendout_ingest"]["events_per_s"], 2
    )
    figures["ingest_vs_read_fields_time"] = round(
        figures["duckdb_read_fields"]["events_per_s"] / figures["sendout_ingest"]["events_per_s"], 2
    )
    figures["ingest_vs_load_time"] = round(
        figures["duckdb_load"]["events_per_s"] / figures["sendout_ingest"]["events_per_s"], 2
    )
    figures["ingest_vs_pandas_speed"] = round(
        figures["sendout_ingest"]["events_per_s"] / figures["pandas_peer"]["events_per_s"], 1
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
