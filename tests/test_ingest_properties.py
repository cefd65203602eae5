"""Property: however events are split into files, repeated and reordered, the stored events are
exactly the distinct events (DESIGN §4: deduplicate on provider and event id)."""

import json
import tempfile
from itertools import pairwise
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.events import sendgrid, ses, write_ndjson
from warehouse.db import connect
from warehouse.ingest import ingest_paths

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
