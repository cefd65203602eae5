"""Shared fixtures: a fresh warehouse file per test, and the provider sample files."""

import os
import tempfile
from pathlib import Path

import pytest

# Prefect: its own home for the tests, no telemetry, and time to start its temporary server
# on a busy machine (../shared/ENVIRONMENT.md). Set before anything imports prefect.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="sendout-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

from warehouse.db import connect, fetch_dicts, open_warehouse

FIXTURES = Path(__file__).parent / "fixtures"
PROVIDER_FIXTURES = FIXTURES / "providers"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A migrated, empty warehouse file."""
    path = tmp_path / "warehouse.duckdb"
    with open_warehouse(path):
        pass
    return path


@pytest.fixture
def query(db_path: Path):
    """Run a read query against the test warehouse and return rows as dicts."""

    def run(sql: str, params: list | None = None) -> list[dict]:
        with connect(db_path, read_only=True) as con:
            return fetch_dicts(con.execute(sql, params or []))

    return run


@pytest.fixture(scope="session")
def sns_signer():
    """A key and certificate standing in for Amazon SNS's (see tests/sns.py)."""
    from tests.sns import make_sns_signer

    return make_sns_signer()


@pytest.fixture
def workdir():
    """A folder the mail servers of tests/mail_servers.py can reach (not under pytest's
    tmp_path, which their unprivileged users cannot enter), removed afterwards."""
    from tests.mail_servers import mail_workdir

    with mail_workdir() as folder:
        yield folder
