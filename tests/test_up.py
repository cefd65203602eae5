"""`sendout up` brings up a Prefect server with Sendout's deployments, a worker and the dashboard
on 127.0.0.1, and SIGTERM stops every process it started."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.smtp_sink import free_port


def processes_of(workspace: Path) -> list[int]:
    """Processes whose environment points at this workspace's Prefect home."""
    marker = f"PREFECT_HOME={workspace / 'data' / 'prefect'}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_up_serves_the_deployments_and_stops_everything_on_sigterm(tmp_path: Path):
    port, dashboard_port, webhook_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"DO_NOT_TRACK": "1", "SENDOUT_DB": str(tmp_path / "data" / "sendout.duckdb")}
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "up",
            "--port",
            str(port),
            "--dashboard-port",
            str(dashboard_port),
            "--webhook-port",
            str(webhook_port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not any("Sendout is up" in line for line in lines):
        lines.append(up.stdout.readline())
        assert up.poll() is None, "".join(lines)

    answer = httpx.post(f"http://127.0.0.1:{port}/api/deployments/filter", json={}, timeout=10)
    dashboard = httpx.get(f"http://127.0.0.1:{dashboard_port}/_stcore/health", timeout=10)
    hooks = httpx.get(f"http://127.0.0.1:{webhook_port}/health", timeout=10)
    running = processes_of(tmp_path)
    up.send_signal(signal.SIGTERM)
    code = up.wait(timeout=60)

    assert sorted(d["name"] for d in answer.json()) == [
        "dispatch-due-sendouts",
        "dispatch-sendout",
        "fetch-bounce-mail",
        "ingest-and-refresh",
        "refresh",
    ]
    assert dashboard.text == hooks.text == "ok"
    assert len(running) >= 3  # the server, the worker and the dashboard at least
    assert code == 0
    time.sleep(1)
    assert processes_of(tmp_path) == []
    assert (tmp_path / "data" / "prefect").is_dir()  # the server's database lives under data/


def test_up_names_a_port_that_is_taken_at_once(tmp_path: Path):
    """Another program (or a second `sendout up`) on the dashboard's port is named before
    anything starts."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env |= {"SENDOUT_DB": str(tmp_path / "data" / "sendout.duckdb")}
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "flows.cli",
                "up",
                "--port",
                str(free_port()),
                "--dashboard-port",
                str(port),
                "--webhook-port",
                str(free_port()),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert f"port {port} of 127.0.0.1 is in use" in done.stderr
    assert "--dashboard-port" in done.stderr
    assert time.monotonic() - started < 20  # said at once, nothing started
    assert not (tmp_path / "data" / "prefect").exists()


def test_up_hands_the_settings_of_its_folders_env_to_everything_it_starts(tmp_path, monkeypatch):
    """The services and the worker's flow runs start in the checkout; the `.env` an operator
    wrote where they ran `sendout up` is what they must use (an SMTP relay, not the sandbox)."""
    from flows.settings import dotenv_here

    (tmp_path / ".env").write_text("SENDOUT_EMAIL_SENDER=smtp\nSENDOUT_SMTP_PORT=2525\n")
    monkeypatch.chdir(tmp_path)

    assert dotenv_here() == {"SENDOUT_EMAIL_SENDER": "smtp", "SENDOUT_SMTP_PORT": "2525"}
