"""The analysts' notebooks run top to bottom on a demo workspace (marimo notebooks run as
scripts and exit non-zero when a cell fails), reading its snapshot while a writer holds the
live file (DESIGN §9)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.demo import build_demo
from warehouse.db import open_warehouse
from warehouse.snapshot import publish

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.py"))
HOLD = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('holding', flush=True); input()"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    db = folder / "sendout.duckdb"
    build_demo(db, folder / "landing", contacts=300, seed=5)
    with open_warehouse(db) as con:
        publish(con)
    return db


@pytest.fixture(scope="module")
def writer_holding(demo: Path):
    """A process with the live file open read-write, as the ingester has it at times: any
    other process that opens the live file fails while it is held."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(demo)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert holder.stdout.readline() == b"holding\n"
    yield
    holder.kill()
    holder.wait()


def test_there_are_notebooks_for_every_analysis_the_docs_promise():
    assert [n.stem for n in NOTEBOOKS] == [
        "deliverability",
        "engagement",
        "sms_replies",
        "unsubscribe_causes",
    ]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_runs_top_to_bottom(notebook: Path, demo: Path, writer_holding):
    done = subprocess.run(
        [sys.executable, str(notebook)],
        env={**os.environ, "SENDOUT_DB": str(demo)},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr[-2000:]
