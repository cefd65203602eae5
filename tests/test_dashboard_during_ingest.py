"""DESIGN §9: a dashboard read during a running ingest never fails (it waits its turn)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from flows.settings import settings
from tests.events import ses
from tests.warehouse_builders import add_people, create_sendout, run_refresh

FILES, EVENTS_PER_FILE = 6, 30_000


def test_the_messages_page_renders_throughout_a_long_ingest(tmp_path: Path, monkeypatch):
    db = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("SENDOUT_DB", str(db))
    settings.cache_clear()
    add_people(db, 10)
    create_sendout(db)
    run_refresh(db)
    landing = tmp_path / "landing"
    landing.mkdir()
    for f in range(FILES):
        lines = (
            json.dumps(ses("Open", f"p{n}@example.com", f"m{f}-{n}"))
            for n in range(EVENTS_PER_FILE)
        )
        (landing / f"ses-{f}.ndjson").write_text("\n".join(lines) + "\n")

    ingest = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "--db", str(db), "ingest", str(landing)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    renders, failures = 0, []
    while ingest.poll() is None:
        st.cache_data.clear()  # a real read each time, not the cache
        at = AppTest.from_file("../dashboards/app.py", default_timeout=60).run()
        if at.exception:
            failures.append(at.exception[0].message)
        renders += 1
        time.sleep(0.05)

    assert ingest.returncode == 0, ingest.stderr.read().decode()
    assert renders >= 3  # the ingest ran long enough to be read during
    assert failures == []
    settings.cache_clear()
