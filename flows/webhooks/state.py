"""What the webhook service keeps for itself under its landing folder, durable across restarts
and kill -9: who owns the folder, and what it has already acted on.

The service never writes to the warehouse (ingest is its one writer), so its own state lives
next to the files it lands, in `webhooks/.state/`, where ingest reads nothing (it reads only
event and mail files).
"""

import fcntl
import json
import os
import socket
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

STATE_FOLDER = ".state"
OWNER_FILE = "owner.lock"
SEEN_FILE = "seen.sqlite3"
# one row per key the service has acted on, by kind; `at` is when it was signed or handled
CREATE_SEEN = """
CREATE TABLE IF NOT EXISTS seen (kind TEXT, key TEXT, at REAL, PRIMARY KEY (kind, key));
CREATE INDEX IF NOT EXISTS seen_by_age ON seen (kind, at);
"""
FORGET_SEEN = "DELETE FROM seen WHERE kind = ? AND at < ?"
REMEMBER_SEEN = "INSERT OR IGNORE INTO seen (kind, key, at) VALUES (?, ?, ?)"
COUNT_SEEN = "SELECT count(*) FROM seen WHERE kind = ?"


class LandingOwned(Exception):
    """Another webhook service holds this landing folder; the message names it."""


@dataclass
class Ownership:
    """This process's hold on a landing folder: an exclusive `flock` on the owner file, which the
    kernel releases when the process ends however it ends (kill -9 too), so a crashed owner
    never locks its successor out."""

    descriptor: int

    def release(self) -> None:
        """Let another service take the folder (after this one has handed its files over)."""
        if self.descriptor >= 0:
            os.close(self.descriptor)  # closing the descriptor drops the lock
            self.descriptor = -1


def claim_landing(folder: Path, address: str) -> Ownership:
    """Own `folder` for the life of this process, or raise LandingOwned before changing any
    file: a second service would otherwise rename the open files of the first."""
    state = folder / STATE_FOLDER
    state.mkdir(parents=True, exist_ok=True)
    path = state / OWNER_FILE
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # no truncation before the lock
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = _owner_of(descriptor)
        os.close(descriptor)
        raise LandingOwned(
            f"{folder} belongs to another webhook service ({owner}); stop it, or give this one "
            "another landing folder (SENDOUT_LANDING)"
        ) from None
    _write_owner(descriptor, address)
    return Ownership(descriptor)


def _write_owner(descriptor: int, address: str) -> None:
    """Say who holds the lock, for the sentence a refused service prints."""
    owner = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "address": address,
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, json.dumps(owner).encode() + b"\n", 0)
    os.fsync(descriptor)


def _owner_of(descriptor: int) -> str:
    try:
        owner = json.loads(os.pread(descriptor, 4096, 0))
        return (
            f"pid {owner['pid']} on {owner['host']}, serving {owner['address']} "
            f"since {owner['since']}"
        )
    except (ValueError, KeyError, TypeError):  # the owner is between its lock and its write
        return "a process that is starting"


class SeenStore:
    """Keys the service has acted on (Mailgun tokens, inbound MessageSids), by kind, in SQLite.

    Each first sighting is committed (WAL, synchronous=FULL: one fsync, ~0.2 ms here) before
    the request is answered, so a replay after a restart or a kill -9 is still known. Keys are
    forgotten by age in the same commit, which keeps the file as small as the age windows.
    """

    def __init__(self, path: Path | str = ":memory:"):
        self.lock = threading.Lock()  # one connection, used from the service's worker threads
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=FULL")
        self.connection.executescript(CREATE_SEEN)

    def first_sighting(self, kind: str, key: str, at: float, forget_before: float) -> bool:
        """True the first time `key` of `kind` is seen, and remember it at `at`; keys of that
        kind from before `forget_before` are forgotten."""
        with self.lock:
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                self.connection.execute(FORGET_SEEN, (kind, forget_before))
                added = self.connection.execute(REMEMBER_SEEN, (kind, key, at)).rowcount
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")
        return added == 1

    def count(self, kind: str) -> int:
        with self.lock:
            return self.connection.execute(COUNT_SEEN, (kind,)).fetchone()[0]

    def close(self) -> None:
        with self.lock:
            self.connection.close()


def seen_store(folder: Path) -> SeenStore:
    """The service's seen-sets for the landing folder `folder` (claimed first)."""
    return SeenStore(folder / STATE_FOLDER / SEEN_FILE)
