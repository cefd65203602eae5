"""Who did what: the audit record of every change made in the dashboard or the CLI, newest
first (admins only)."""

import polars as pl
import streamlit as st

from dashboards import data, present
from warehouse.audit import WORDS

SHOWN = 1000
VIA = {"dashboard": "Dashboard", "cli": "Command line"}

st.title("Who did what")
st.caption(
    "Every send-out created, sent, scheduled, cancelled or resent, every change to the "
    "Unsubscribes list, every corrected address, every change to the users and every login."
)
everyone = data.audit_entries(None, SHOWN)
names = sorted(everyone["done_by"].unique().to_list())
person = st.selectbox(
    "Person", ["", *names], key="audit-person", format_func=lambda n: n or "Everyone"
)
entries = data.audit_entries(person or None, SHOWN)
listed = data.sendout_list()
sendouts = dict(zip(listed["sendout_id"].to_list(), listed["name"].to_list(), strict=True))
present.show_table(
    entries.with_columns(
        pl.col("subject").replace_strict(sendouts, default=pl.col("subject")),
        pl.col("action").replace_strict({str(k): v for k, v in WORDS.items()}, default=None),
        pl.col("via").replace_strict(VIA, default=pl.col("via")),
    ),
    {
        "done_at": f"When ({present.time_zone()})",
        "done_by": "Who",
        "action": "What",
        "subject": "On",
        "detail": "What changed",
        "via": "Through",
    },
    wide=("detail",),
)
st.caption(
    f"The latest {entries.height:,} entries"
    if entries.height == SHOWN
    else f"{entries.height:,} entries"
)
