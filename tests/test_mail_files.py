"""Reading files of raw email: mbox quoting, and parsing on every core that survives a dead
worker process."""

import os
import signal
from pathlib import Path

import orjson

from tests.conftest import FIXTURES
from warehouse import mail_files
from warehouse.records import RECORD_SCHEMA, read_records

DSN = (FIXTURES / "mail" / "rfc" / "verp_dsn.eml").read_bytes()


def recipients(tables) -> list[str]:
    found = []
    for table in tables:
        for record in table.column("record").to_pylist():
            evidence = orjson.loads(record)["sendout_mail"]
            found += [r["address"] for r in evidence.get("recipients", [])]
    return found


def test_a_dead_parse_worker_costs_no_message():
    many = [(n, DSN) for n in range(mail_files.PARALLEL_FROM)]
    assert len(recipients(mail_files.message_records(many, RECORD_SCHEMA))) == len(many)

    for worker in list(mail_files._workers()._processes.values()):
        os.kill(worker.pid, signal.SIGKILL)  # the OOM killer's way
    again = recipients(mail_files.message_records(many, RECORD_SCHEMA))

    assert [a.lower() for a in again] == ["frank@example.net"] * len(many)


def test_an_mbox_unquotes_from_lines_and_numbers_messages_by_their_separator(tmp_path: Path):
    body = b"Subject: hi\n\n>From here\n>>From there\n"
    mbox = tmp_path / "box.mbox"
    mbox.write_bytes(b"From a@x Thu Dec  3 10:00:00 2026\n" + body + b"\n"
                     b"From b@x Thu Dec  3 10:00:01 2026\n" + body)  # fmt: skip

    [table] = read_records(mbox)

    assert table.column("source_line").to_pylist() == [1, 7]
    raw = orjson.loads(table.column("record").to_pylist()[0])["sendout_mail"]["raw"]
    assert "\nFrom here\n>From there\n" in raw
