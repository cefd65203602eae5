"""Properties of ingest: however events are split into files, repeated and reordered, the stored
events are exactly the distinct events (DESIGN §4: deduplicate on provider and event id); and
whatever bytes a file of any format holds (cut short, spliced with garbage, random, gzipped and
cut), ingest does not crash, loses nothing stored before, and stores or quarantines every record
it reads (DESIGN §11, issue 16)."""

import gzip
import json
import re
import shutil
import tempfile
from datetime import UTC
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES, PROVIDER_FIXTURES
from tests.events import sendgrid, ses, write_ndjson
from warehouse.db import connect
from warehouse.ingest import ingest_paths
from warehouse.records import read_records

SES_POOL = [
    ses(kind, f"p{n}@example.com", f"m{n}") for n in range(3) for kind in ("Delivery", "Open")
]
SENDGRID_POOL = [
    sendgrid(kind, event_id=f"sg-{kind}-{n}") for n in range(3) for kind in ("open", "click")
]


def stored(db: Path) -> set[tuple]:
    with connect(db, read_only=True) as con:
        return set(con.sql("SELECT provider, event_id, event_type FROM events").fetchall())


def ingest_split(picks: list[int], pool: list[dict], cuts: list[int], as_array: bool) -> Path:
    folder = Path(tempfile.mkdtemp())
    events = [pool[i] for i in picks]
    bounds = sorted({0, len(events), *(c % (len(events) + 1) for c in cuts)})
    for n, (start, end) in enumerate(pairwise(bounds)):
        part = events[start:end]
        if as_array:
            (folder / f"{n}.json").write_text(json.dumps(part))
        else:
            write_ndjson(folder / f"{n}.ndjson", part)
    db = folder / "w.duckdb"
    ingest_paths(db, [folder])
    return db


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    picks=st.lists(st.integers(0, len(SES_POOL) - 1), min_size=1, max_size=15),
    cuts=st.lists(st.integers(0, 20), max_size=3),
    provider=st.sampled_from(["ses", "sendgrid"]),
)
def test_any_split_and_repetition_stores_each_distinct_event_once(picks, cuts, provider):
    pool = SES_POOL if provider == "ses" else SENDGRID_POOL
    db = ingest_split(picks, pool, cuts, as_array=provider == "sendgrid")
    reference = ingest_split(sorted(set(picks)), pool, [], as_array=provider == "sendgrid")

    assert stored(db) == stored(reference)
    assert len(stored(db)) == len(set(picks))


# --- random and truncated bytes in every format ingest reads (issue 16) ------------------------

MAIL = FIXTURES / "mail"
SEEDS = {
    "ses.ndjson": (PROVIDER_FIXTURES / "ses" / "firehose_events.ndjson").read_bytes(),
    "ses-sns.json": (PROVIDER_FIXTURES / "ses" / "sns_envelope_delivery.json").read_bytes(),
    "sendgrid.json": (PROVIDER_FIXTURES / "sendgrid" / "event_webhook.json").read_bytes(),
    "mailgun.ndjson": (PROVIDER_FIXTURES / "mailgun" / "webhooks.ndjson").read_bytes(),
    "mailgun-items.json": (PROVIDER_FIXTURES / "mailgun" / "events_api_items.json").read_bytes(),
    "postmark.ndjson": (PROVIDER_FIXTURES / "postmark" / "bounce.ndjson").read_bytes(),
    "twilio.ndjson": (PROVIDER_FIXTURES / "twilio" / "status_callbacks.ndjson").read_bytes(),
    "twilio.txt": (PROVIDER_FIXTURES / "twilio" / "status_callbacks.txt").read_bytes(),
    "bounce.eml": (MAIL / "rfc" / "postfix_5_7_1_blocklist.eml").read_bytes(),
    "bounces.mbox": b"".join(
        b"From MAILER-DAEMON Thu Dec  3 10:00:00 2026\n" + (MAIL / "flufl" / name).read_bytes()
        for name in ("postfix_01.txt", "dsn_01.txt", "qmail_03.txt")
    ),
}


# an ISO-8601 time or an epoch of 2024 as the seeds write them
TIMES = re.compile(rb"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)?|\b1715\d{6}(\.\d+)?\b")
ODD_TIMES = st.one_of(
    st.sampled_from(["Infinity", "-infinity", "0001-01-01T00:00:00Z", "10000-01-01T00:00:00Z"]),
    st.integers(-(2**40), 2**40).map(str),
    st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat()),
)


@st.composite
def damaged_files(draw) -> tuple[str, bytes]:
    """A seed file of some format, cut short, with random bytes put in, random through and
    through, or with odd times; perhaps gzipped, and perhaps then cut short again."""
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = SEEDS[name]
    how = draw(st.sampled_from(["cut", "spliced", "random", "retimed", "whole"]))
    if how == "retimed":
        data = TIMES.sub(draw(ODD_TIMES).encode(), data, count=draw(st.integers(1, 3)))
    elif how == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif how == "spliced":
        start = draw(st.integers(0, len(data)))
        end = draw(st.integers(start, min(len(data), start + 200)))
        data = data[:start] + draw(st.binary(max_size=64)) + data[end:]
    elif how == "random":
        data = draw(st.binary(max_size=512))
    if draw(st.booleans()):
        name += ".gz"
        data = gzip.compress(data)
        data = data[: draw(st.integers(2, len(data)))]  # gzip's magic kept: read as gzip
    return name, data


@pytest.fixture(scope="module")
def stored_before(tmp_path_factory) -> Path:
    """A warehouse that already holds events and a quarantined record (the template)."""
    folder = tmp_path_factory.mktemp("before")
    events = [ses("Delivery", f"kept{n}@example.org", f"kept-{n}") for n in range(3)]
    write_ndjson(folder / "kept.ndjson", [*events, {"eventType": "Teleported"}])
    db = folder / "template.duckdb"
    ingest_paths(db, [folder / "kept.ndjson"])
    return db


def _rows(db: Path, sql: str, params: list | None = None) -> set[tuple]:
    with connect(db, read_only=True) as con:
        return set(con.execute(sql, params or []).fetchall())


@settings(
    max_examples=24,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(damaged=damaged_files())
def test_damaged_bytes_in_any_format_never_crash_lose_or_drop_a_record(
    damaged, stored_before, tmp_path
):
    name, data = damaged
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    db = folder / "w.duckdb"
    shutil.copy(stored_before, db)
    path = folder / "landing" / name
    path.parent.mkdir()
    path.write_bytes(data)
    before = _rows(stored_before, "SELECT * EXCLUDE (ingested_at) FROM events")
    kept_before = _rows(stored_before, "SELECT * FROM quarantine")

    [result] = ingest_paths(db, [path.parent]).files  # must not raise

    assert before <= _rows(db, "SELECT * EXCLUDE (ingested_at) FROM events")
    assert kept_before <= _rows(db, "SELECT * FROM quarantine")
    source = [str(path.resolve())]
    read = {
        line for batch in read_records(path) for line in batch.column("source_line").to_pylist()
    }
    stored = _rows(db, "SELECT source_line FROM events WHERE source_file = ?", source)
    quarantined = _rows(db, "SELECT source_line FROM quarantine WHERE source_file = ?", source)
    unaccounted = read - {line for (line,) in stored | quarantined}
    # a record is stored, quarantined, or (the same event twice in the file) a duplicate
    assert len(unaccounted) <= result.events_duplicate, (name, sorted(unaccounted)[:5])
    assert result.records == len(read) and result.unreadable is None
    impossible = """
        SELECT count(*) FROM events WHERE NOT isfinite(occurred_at)
            OR occurred_at NOT BETWEEN '2000-01-01' AND now() + INTERVAL 1 DAY
    """
    assert _rows(db, impossible) == {(0,)}
