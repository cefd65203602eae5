"""`sendout up`: everything on this machine, on 127.0.0.1 — a Prefect server (its SQLite database
under data/prefect), Sendout's deployments from prefect.yaml, one process worker, the continuous
ingester (`sendout ingester`), the webhook service and the dashboard. Ctrl-C or SIGTERM stops every
process it started.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from flows.settings import dotenv_here

PROJECT = Path(__file__).resolve().parents[1]  # where prefect.yaml is
STARTUP_SECONDS = 120
STOP_SECONDS = 15


class UpError(RuntimeError):
    """A part of the local stack did not start."""


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _reset_signals() -> None:
    # a child must not inherit an ignored SIGINT: Prefect's worker turns SIGTERM into SIGINT
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Stack:
    """The processes `sendout up` started, each in its own process group."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env = env
        self.logs = logs
        self.processes: list[subprocess.Popen] = []

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command,
            env=self.env,
            cwd=PROJECT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_reset_signals,
        )
        self.processes.append(process)
        return process

    def run(self, command: list[str]) -> None:
        """A set-up step that must succeed."""
        done = subprocess.run(command, env=self.env, cwd=PROJECT, capture_output=True, text=True)
        if done.returncode != 0:
            raise UpError(
                f"{' '.join(command[1:3])} failed: {done.stdout[-500:]}{done.stderr[-500:]}"
            )

    def stop(self) -> None:
        """SIGTERM to every process group, then SIGKILL to what is left after a while."""
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for process in reversed(self.processes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # what the group left behind, too


def dashboard_command(port: int, address: str = "127.0.0.1") -> list[str]:
    """`streamlit run` for the dashboard, on 127.0.0.1 unless told otherwise, without usage
    statistics (nothing leaves the machine)."""
    return [
        _bin("streamlit"),
        "run",
        str(PROJECT / "dashboards" / "app.py"),
        "--server.headless",
        "true",
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",  # no "Deploy" button: this is a product, not a notebook
    ]


def check_port_free(port: int, option: str) -> None:
    """UpError at once when another program (another `sendout up`?) listens on a port the stack
    needs, not a vague failure of one part 14 s later."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise UpError(
                f"port {port} of 127.0.0.1 is in use (is Sendout already running?): stop what "
                f"uses it, or choose another with {option}"
            ) from None


def wait_healthy(url: str, server: subprocess.Popen, seconds: float = STARTUP_SECONDS) -> None:
    """Return once `url` answers 200; UpError if the server stops or `seconds` pass first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise UpError(f"{server.args[1]} stopped while starting (see data/logs)")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise UpError(f"nothing answered at {url} within {seconds:.0f} s")


def up(
    db: Path,
    landing: Path,
    port: int = 4200,
    dashboard_port: int = 8501,
    webhook_port: int = 8088,
    say: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> None:
    """Start the stack, say where to look, and keep it running until `stop` (or a signal)."""
    for option, number in (
        ("--port", port),
        ("--dashboard-port", dashboard_port),
        ("--webhook-port", webhook_port),
    ):
        check_port_free(number, option)
    stop = stop or threading.Event()
    data = db.resolve().parent
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **dotenv_here(),  # the children run in the checkout: they would read its .env instead
        **os.environ,
        "PREFECT_HOME": str(data / "prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "SENDOUT_DB": str(db.resolve()),
        "SENDOUT_LANDING": str(landing.resolve()),
        "SENDOUT_HOME": str(PROJECT),
    }
    stack = Stack(env, logs)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        say(f"Starting the Prefect server on 127.0.0.1:{port} ...")
        server = stack.start(
            "prefect-server",
            [_bin("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        )
        wait_healthy(f"{api}/health", server)
        stack.run(
            [_bin("prefect"), "work-pool", "create", "sendout", "--type", "process", "--overwrite"]
        )
        stack.run([_bin("prefect"), "deploy", "--all", "--no-prompt"])
        # no worker of this server is alive yet: a run one left half-submitted is ended, or it
        # would hold its deployment's only slot for good (flows/orphaned_runs.py)
        stack.run([sys.executable, "-m", "flows.orphaned_runs"])
        stack.start(
            "prefect-worker",
            [_bin("prefect"), "worker", "start", "--pool", "sendout", "--limit", "1"],
        )
        stack.start("ingester", [_bin("sendout"), "ingester"])
        hooks = stack.start("webhooks", [_bin("sendout"), "webhooks", "--port", str(webhook_port)])
        wait_healthy(f"http://127.0.0.1:{webhook_port}/health", hooks)
        dashboard = stack.start("dashboard", dashboard_command(dashboard_port))
        wait_healthy(f"http://127.0.0.1:{dashboard_port}/_stcore/health", dashboard)
        say(
            f"Sendout is up. Dashboard: http://127.0.0.1:{dashboard_port}  "
            f"Prefect UI: http://127.0.0.1:{port}  "
            f"Webhooks: http://127.0.0.1:{webhook_port}/webhooks/  (logs in {logs})"
        )
        say(
            "Due send-outs are dispatched every minute; provider events reach the dashboard "
            "within seconds (the continuous ingester). Ctrl-C stops everything."
        )
        while not stop.wait(1):
            for process in stack.processes:
                if process.poll() is not None:
                    raise UpError(f"{process.args[1]} {process.args[2]} stopped (see {logs})")
    finally:
        say("Stopping ...")
        stack.stop()
