"""Unsubscribes: the current list with filters, add and remove by hand, history, CSV export."""

import polars as pl
import streamlit as st

from dashboards import actions, data
from warehouse import unsubscribes as unsubscribe_list
from warehouse.db import connect
from warehouse.settings import settings
from warehouse.vocabulary import Channel, UnsubscribeReason, UnsubscribeScope

st.title("Unsubscribes")
entries = data.unsubscribe_entries()

left, middle, right, since = st.columns(4)
reasons = left.multiselect("Reason", [str(r) for r in UnsubscribeReason])
channels = middle.multiselect("Channel", [str(c) for c in Channel])
sendout = right.text_input("Send-out id", key="sendout-filter")
added_since = since.date_input("Added since", value=None, key="since")
shown = entries
if reasons:
    shown = shown.filter(pl.col("reason").is_in(reasons))
if channels:
    shown = shown.filter(pl.col("channel").is_in(channels))
if sendout.strip():
    shown = shown.filter(pl.col("sendout_id") == sendout.strip())
if added_since:
    shown = shown.filter(pl.col("added_at").dt.date() >= added_since)
st.dataframe(shown, hide_index=True, use_container_width=True, key="entries")
st.caption(f"{shown.height} of {entries.height} entries")
with connect(settings().db, read_only=True) as con:
    csv = unsubscribe_list.export_csv(con)
st.download_button("Export CSV", csv, file_name="unsubscribes.csv", mime="text/csv")

add, remove = st.columns(2)
with add.form("add", clear_on_submit=True):
    st.subheader("Add by hand")
    channel = st.radio("Channel", [str(c) for c in Channel], horizontal=True, key="add-channel")
    address = st.text_input("Email address or phone number", key="add-address")
    scope = st.radio(
        "Scope",
        [str(s) for s in UnsubscribeScope],
        horizontal=True,
        help="all: every send-out skips it; marketing: only marketing ones",
    )
    note = st.text_input("Why", key="add-note")
    if st.form_submit_button("Add", key="add"):
        actions.add_unsubscribe(channel, address, scope, note)
        st.rerun()

with remove.container(border=True):
    st.subheader("Remove")
    if entries.is_empty():
        st.caption("The list is empty.")
    else:
        keys = [f"{c} {a}" for c, a in zip(entries["channel"], entries["address"], strict=True)]
        picked = st.selectbox("Entry", sorted(set(keys)), key="remove-entry")
        why = st.text_input("Why (kept in the history)", key="remove-note")
        confirm = st.checkbox("Yes, messages may go to this address again", key="remove-confirm")
        if st.button("Remove", disabled=not (confirm and why.strip()), key="remove"):
            channel, _, address = picked.partition(" ")
            removed = actions.remove_unsubscribe(channel, address, why)
            st.success(f"Removed {address} ({', '.join(e.reason for e in removed)})")
            st.rerun()
        if picked:
            with st.expander("History of this address"):
                st.table(
                    pl.DataFrame(
                        data.unsubscribe_history(picked.partition(" ")[2]),
                        schema=[
                            "changed_at",
                            "channel",
                            "reason",
                            "action",
                            "scope",
                            "cause",
                            "by",
                            "note",
                        ],
                        orient="row",
                    )
                )

if sendout.strip():
    st.subheader("Bad addresses this send-out found")
    bad = data.bad_addresses(sendout.strip())
    if bad.is_empty():
        st.caption("None.")
    for row in bad.iter_rows(named=True):
        who = " ".join(p for p in (row["first_name"], row["last_name"]) if p) or "a contact"
        with st.form(f"correct-{row['channel']}-{row['address']}"):
            st.write(f"**{row['address']}** ({row['reason']}) of {who}")
            new = st.text_input("Corrected address", key=f"new-{row['address']}")
            if st.form_submit_button("Correct the contact", key=f"fix-{row['address']}"):
                actions.correct_contact(row["contact_id"], row["channel"], new)
