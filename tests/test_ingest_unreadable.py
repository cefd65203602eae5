"""An ingest folder with entries that cannot be read (issue 16, item 8): a named pipe, a file
without read permission, a link to nothing. The real `sendout ingest` must not wait on the pipe,
must name each entry with why in its summary (text and --json), and must read the other files.

Root reads any file whatever its mode, so as root the command runs without the capabilities
that let it (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): the file is then truly unreadable to it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.events import sendgrid, ses, write_ndjson

SENDOUT = Path(sys.executable).parent / "sendout"
TIMEOUT_SECONDS = 90  # a run that waits on the pipe never ends; a good one takes a few seconds


def sendout_ingest(db: Path, *args: str) -> subprocess.CompletedProcess:
    command = [str(SENDOUT), "--db", str(db), "ingest", "--no-refresh", *args]
    if os.geteuid() == 0:
        # as root, only without these capabilities is the locked file unreadable to sendout
        assert shutil.which("setpriv"), "make test-deps installs setpriv (Debian's util-linux)"
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    env = {**os.environ, "SENDOUT_LANDING": str(db.parent / "sandbox-landing")}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, cwd=db.parent, env=env
    )


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    """Good files around a pipe, a locked file and a link to nothing."""
    folder = tmp_path / "landing"
    folder.mkdir()
    write_ndjson(folder / "a-good.ndjson", [ses("Delivery")])
    os.mkfifo(folder / "b-pipe.ndjson")
    locked = write_ndjson(folder / "c-locked.ndjson", [ses("Open")])
    locked.chmod(0)
    (folder / "d-gone.ndjson").symlink_to(folder / "nothing-here.ndjson")
    (folder / "e-good.json").write_text(json.dumps([sendgrid("delivered")]))
    yield folder
    locked.chmod(0o644)


def test_ingest_names_what_it_cannot_read_and_reads_the_rest_as_json(landing, tmp_path):
    shown = sendout_ingest(tmp_path / "w.duckdb", str(landing), "--json")

    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    assert (summary["files_read"], summary["events_new"]) == (2, 2)
    reasons = {Path(u["path"]).name: u["reason"] for u in summary["unreadable"]}
    assert reasons == {
        "b-pipe.ndjson": "a named pipe (FIFO), not a file",
        "c-locked.ndjson": "cannot be read: Permission denied",
        "d-gone.ndjson": "a link to nothing: No such file or directory",
    }


def test_ingest_names_what_it_cannot_read_in_its_text_summary(landing, tmp_path):
    shown = sendout_ingest(tmp_path / "w.duckdb", str(landing))

    assert shown.returncode == 0, shown.stderr
    assert "events new 2," in shown.stdout
    [line] = [line for line in shown.stdout.splitlines() if line.startswith("Could not read: ")]
    assert f"{landing / 'b-pipe.ndjson'} (a named pipe (FIFO), not a file)" in line
    assert "c-locked.ndjson (cannot be read: Permission denied)" in line
    assert f"{landing / 'd-gone.ndjson'} (a link to nothing" in line


def test_a_pipe_named_on_its_own_is_refused_at_once_with_why(tmp_path):
    pipe = tmp_path / "events.ndjson"
    os.mkfifo(pipe)

    shown = sendout_ingest(tmp_path / "w.duckdb", str(pipe))

    assert shown.returncode == 1
    assert f"{pipe} (a named pipe (FIFO), not a file)" in shown.stderr
