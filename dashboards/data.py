"""The dashboard's data: short read-only connections through warehouse read queries, cached for
a few seconds (DESIGN §9), and the few writes a person makes, each a short transaction."""

from collections.abc import Iterator
from contextlib import contextmanager

import polars as pl
import streamlit as st

from warehouse import reports
from warehouse import unsubscribes as unsubscribe_list
from warehouse.db import connect, open_warehouse
from warehouse.settings import settings

CACHE_SECONDS = 2  # pages of a moving send-out read again every few seconds


@st.cache_resource
def ensure_warehouse() -> None:
    """Create or upgrade the warehouse once per server, so readers can open it read-only."""
    with open_warehouse(settings().db):
        pass


def warehouse() -> str:
    """The warehouse's path: part of every cache key, so two warehouses never share results."""
    return str(settings().db)


@contextmanager
def reading(db: str | None = None) -> Iterator:
    with connect(db or warehouse(), read_only=True) as con:
        yield con


@contextmanager
def writing() -> Iterator:
    with open_warehouse(settings().db) as con:
        yield con


def clear() -> None:
    """Forget cached reads after a change, so the next render shows it."""
    st.cache_data.clear()


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _sendout_list(db: str) -> pl.DataFrame:
    with reading(db) as con:
        return reports.sendout_list(con)


def sendout_list() -> pl.DataFrame:
    return _sendout_list(warehouse())


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _pending_sns_confirmations(db: str) -> pl.DataFrame:
    with reading(db) as con:
        return reports.pending_sns_confirmations(con)


def pending_sns_confirmations() -> pl.DataFrame:
    return _pending_sns_confirmations(warehouse())


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _sendout_rows(db: str, sendout_id: str) -> list[dict]:
    with reading(db) as con:
        return reports.sendout_report(con, sendout_id)


def sendout_rows(sendout_id: str) -> list[dict]:
    return _sendout_rows(warehouse(), sendout_id)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _recipients(
    db: str,
    sendout_id: str,
    channel: str,
    status: str | None,
    search: str | None,
    limit: int,
    offset: int,
) -> tuple[pl.DataFrame, int]:
    with reading(db) as con:
        return reports.recipients(con, sendout_id, channel, status, search, limit, offset)


def recipients(
    sendout_id: str, channel: str, status: str | None, search: str | None, limit: int, offset: int
) -> tuple[pl.DataFrame, int]:
    return _recipients(warehouse(), sendout_id, channel, status, search, limit, offset)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _replies(db: str, sendout_id: str) -> pl.DataFrame:
    with reading(db) as con:
        return reports.replies(con, sendout_id)


def replies(sendout_id: str) -> pl.DataFrame:
    return _replies(warehouse(), sendout_id)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _bad_addresses(db: str, sendout_id: str) -> pl.DataFrame:
    with reading(db) as con:
        return reports.bad_addresses(con, sendout_id)


def bad_addresses(sendout_id: str) -> pl.DataFrame:
    return _bad_addresses(warehouse(), sendout_id)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _unsubscribe_entries(db: str) -> pl.DataFrame:
    with reading(db) as con:
        rows = [vars(e) for e in unsubscribe_list.entries(con)]
    return (
        pl.DataFrame(rows, schema=list(unsubscribe_list.Entry.__annotations__))
        if rows
        else (
            pl.DataFrame(
                schema={name: pl.String for name in unsubscribe_list.Entry.__annotations__}
            )
        )
    )


def unsubscribe_entries() -> pl.DataFrame:
    return _unsubscribe_entries(warehouse())


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _unsubscribe_history(db: str, address: str) -> list[tuple]:
    with reading(db) as con:
        return unsubscribe_list.history(con, address)


def unsubscribe_history(address: str) -> list[tuple]:
    return _unsubscribe_history(warehouse(), address)


def lookup(address: str) -> reports.Lookup:
    with reading() as con:
        return reports.lookup(con, address)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _search_contacts(db: str, text: str, limit: int) -> pl.DataFrame:
    with reading(db) as con:
        return reports.search_contacts(con, text, limit)


def search_contacts(text: str, limit: int = 100) -> pl.DataFrame:
    return _search_contacts(warehouse(), text, limit)
