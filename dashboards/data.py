"""The dashboard's data: short read-only connections through warehouse read queries, cached for a
few seconds (DESIGN §9). Every read goes through `cached`; every frame has its types stated, by
DuckDB or by a schema here, never guessed from its first rows. What a person changes goes
through `dashboards/actions.py`."""

import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

import duckdb
import polars as pl
import streamlit as st

from flows.settings import settings
from warehouse import audit, reports, resends, sendouts
from warehouse import unsubscribes as unsubscribe_list
from warehouse import users as user_store
from warehouse.contact_rows import RowNote
from warehouse.db import connect, open_warehouse

CACHE_SECONDS = 2  # pages of a moving send-out read again every few seconds

P = ParamSpec("P")
T = TypeVar("T")

# frames built from Python rows: their columns' types, stated
ENTRY_SCHEMA = {
    "channel": pl.String,
    "address": pl.String,
    "reason": pl.String,
    "scope": pl.String,
    "sendout_id": pl.String,
    "cause": pl.String,
    "added_by": pl.String,
    "added_at": pl.Datetime("us", "UTC"),
    "note": pl.String,
    "why": pl.String,
}
LOOKUP_MESSAGE_SCHEMA = {
    "sendout_id": pl.String,
    "sendout_name": pl.String,
    "communication_type": pl.String,
    "channel": pl.String,
    "status": pl.String,
    "first_sent_at": pl.Datetime("us", "UTC"),
    "delivered_at": pl.Datetime("us", "UTC"),
    "first_opened_at": pl.Datetime("us", "UTC"),
    "status_code": pl.String,
    "bounce_reason": pl.String,
    "why": pl.String,
}
AUDIT_SCHEMA = {
    "done_at": pl.Datetime("us", "UTC"),
    "done_by": pl.String,
    "via": pl.String,
    "action": pl.String,
    "subject": pl.String,
    "detail": pl.String,
}
USER_SCHEMA = {
    "user_name": pl.String,
    "role": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "password_changed_at": pl.Datetime("us", "UTC"),
    "has_password": pl.Boolean,
}
HISTORY_SCHEMA = {
    "changed_at": pl.Datetime("us", "UTC"),
    "channel": pl.String,
    "reason": pl.String,
    "action": pl.String,
    "scope": pl.String,
    "cause": pl.String,
    "by": pl.String,
    "note": pl.String,
}


@st.cache_resource
def ensure_warehouse() -> None:
    """Create or upgrade the warehouse once per server, so readers can open it read-only."""
    with _turns.write(), open_warehouse(settings().db):
        pass


def warehouse() -> str:
    """The warehouse's path: part of every cache key, so two warehouses never share results."""
    return str(settings().db)


class _Turns:
    """Within this server process, reads together or one write alone: DuckDB refuses a
    read-write connection to a file while a read-only one is open in the same process (two
    people's sessions are two threads of one process)."""

    def __init__(self) -> None:
        self._free = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._free:
            self._free.wait_for(lambda: not self._writing)
            self._readers += 1
        try:
            yield
        finally:
            with self._free:
                self._readers -= 1
                self._free.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._free:
            self._free.wait_for(lambda: not self._writing and not self._readers)
            self._writing = True
        try:
            yield
        finally:
            with self._free:
                self._writing = False
                self._free.notify_all()


_turns = _Turns()


@contextmanager
def writing() -> Iterator[duckdb.DuckDBPyConnection]:
    """A short read-write connection, for dashboards/actions.py, once no read of this process
    has the warehouse open."""
    with _turns.write(), open_warehouse(settings().db) as con:
        yield con


def clear() -> None:
    """Forget cached reads after a change, so the next render shows it."""
    st.cache_data.clear()


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _read(name: str, db: str, *args: object) -> object:
    with _turns.read(), connect(db, read_only=True) as con:
        return READS[name](con, *args)


READS: dict[str, Callable] = {}


def cached(read: Callable[P, T]) -> Callable[P, T]:
    """A read of the warehouse (a function of a connection and its arguments) on a short
    read-only connection, cached for a few seconds by warehouse, read and arguments."""
    READS[read.__name__] = read
    signature = inspect.signature(read)

    @wraps(read)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        bound = signature.bind(None, *args, **kwargs)  # None: where the connection goes
        bound.apply_defaults()
        return _read(read.__name__, warehouse(), *bound.args[1:])

    return run


@cached
def sendout_list(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return reports.sendout_list(con)


@cached
def pending_sns_confirmations(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return reports.pending_sns_confirmations(con)


@cached
def sendout_rows(con: duckdb.DuckDBPyConnection, sendout_id: str) -> list[dict]:
    return reports.sendout_report(con, sendout_id)


@cached
def has_started(con: duckdb.DuckDBPyConnection, sendout_id: str) -> bool:
    return reports.has_started(con, sendout_id)


@cached
def recipients(
    con: duckdb.DuckDBPyConnection,
    sendout_id: str,
    channel: str,
    status: str | None,
    search: str | None,
    limit: int,
    offset: int,
) -> reports.RecipientPage:
    return reports.recipients(con, sendout_id, channel, status, search, limit, offset)


@cached
def left_out(con: duckdb.DuckDBPyConnection, sendout_id: str) -> list[RowNote]:
    return sendouts.left_out(con, sendout_id)


@cached
def replies(con: duckdb.DuckDBPyConnection, sendout_id: str) -> pl.DataFrame:
    return reports.replies(con, sendout_id)


@cached
def bad_addresses(con: duckdb.DuckDBPyConnection, sendout_id: str) -> pl.DataFrame:
    return reports.bad_addresses(con, sendout_id)


@cached
def non_openers_count(con: duckdb.DuckDBPyConnection, sendout_id: str, exclude: bool) -> int:
    return len(resends.non_openers(con, sendout_id, exclude))


@cached
def unsubscribe_entries(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    rows = [vars(entry) for entry in unsubscribe_list.entries(con)]
    return pl.DataFrame(rows, schema=ENTRY_SCHEMA)


@cached
def unsubscribe_history(con: duckdb.DuckDBPyConnection, address: str) -> pl.DataFrame:
    rows = unsubscribe_list.history(con, address)
    return pl.DataFrame(rows, schema=HISTORY_SCHEMA, orient="row")


@cached
def unsubscribes_csv(con: duckdb.DuckDBPyConnection, only: list[tuple[str, str, str]]) -> str:
    return unsubscribe_list.export_csv(con, only)


@cached
def lookup(con: duckdb.DuckDBPyConnection, address: str) -> reports.Lookup:
    return reports.lookup(
        con, address, "on the Unsubscribes page", region=settings().default_region
    )


@cached
def search_contacts(con: duckdb.DuckDBPyConnection, text: str, limit: int = 100) -> pl.DataFrame:
    return reports.search_contacts(con, text, limit)


@cached
def user_count(con: duckdb.DuckDBPyConnection) -> int:
    return user_store.count(con)


@cached
def user_role(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    found = user_store.find(con, name)
    return None if found is None else str(found.role)


@cached
def user_list(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    rows = [vars(user) | {"role": str(user.role)} for user in user_store.users(con)]
    return pl.DataFrame(rows, schema=USER_SCHEMA)


@cached
def audit_entries(con: duckdb.DuckDBPyConnection, done_by: str | None, limit: int) -> pl.DataFrame:
    return pl.DataFrame(audit.entries(con, limit, done_by), schema=AUDIT_SCHEMA)
