"""Unsubscribes: the current list with filters, add and remove by hand, history, CSV export."""

import polars as pl
import streamlit as st

from dashboards import actions, auth, data, present
from warehouse.users import Role
from warehouse.vocabulary import Channel, UnsubscribeReason, UnsubscribeScope

st.title("Unsubscribes")
entries = data.unsubscribe_entries()

left, middle, right, since = st.columns(4)
reasons = left.multiselect(
    "Reason", [str(r) for r in UnsubscribeReason], format_func=present.WORDS["reason"].get
)
channels = middle.multiselect(
    "Channel", [str(c) for c in Channel], format_func=present.WORDS["channel"].get
)
listed = data.sendout_list()
names = dict(zip(listed["sendout_id"].to_list(), listed["name"].to_list(), strict=True))
sendout = right.selectbox(
    "Send-out",
    ["", *names],
    key="sendout-filter",
    format_func=lambda i: names.get(i, "Any send-out"),
)
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
present.show_table(
    shown.with_columns(
        sendout=pl.col("sendout_id").replace_strict(names, default=pl.col("sendout_id")),
        added_by=present.by_whom("added_by"),
        why=pl.coalesce("why", "note"),  # a bounce's reason, or what the person wrote
    ),
    {
        "channel": "Channel",
        "address": "Address",
        "reason": "Reason",
        "why": "Why",
        "scope": "Applies to",
        "added_at": f"Added ({present.time_zone()})",
        "added_by": "Added by",
        "sendout": "From send-out",
    },
    wide=("why",),
)
if entries.is_empty():
    st.caption("The list is empty: no address is kept from messages.")
elif shown.is_empty():
    st.caption(f"No entry matches these filters (of {entries.height:,}).")
else:
    st.caption(f"{shown.height:,} of {entries.height:,} entries")
st.download_button(
    "Export CSV (what is shown)",
    data.unsubscribes_csv(shown.select("channel", "address", "reason").rows()),
    file_name="unsubscribes.csv",
    mime="text/csv",
)


def add_by_hand() -> None:
    """The form's fields are cleared only when the address is on the list."""
    form = st.session_state
    if actions.add_unsubscribe(
        form["add-channel"], form["add-address"], form["add-scope"], form["add-note"]
    ):
        form["add-address"] = form["add-note"] = ""


def remove_entry() -> None:
    channel, _, address = st.session_state["remove-entry"].partition(" ")
    if actions.remove_unsubscribe(channel, address, st.session_state["remove-note"]):
        st.session_state["remove-note"] = ""
        st.session_state["remove-confirm"] = False


def add_form() -> None:
    """Senders and admins put an address on the list by hand."""
    st.subheader("Add by hand")
    st.radio(
        "Channel",
        [str(c) for c in Channel],
        horizontal=True,
        key="add-channel",
        format_func=present.WORDS["channel"].get,
    )
    st.text_input("Email address or phone number", key="add-address")
    st.radio(
        "Applies to",
        [str(s) for s in UnsubscribeScope],
        horizontal=True,
        key="add-scope",
        format_func=present.WORDS["scope"].get,
        help="All messages: every send-out skips it; marketing only: marketing send-outs do",
    )
    st.text_input("Why", key="add-note")
    st.form_submit_button("Add", key="add", on_click=add_by_hand)
    actions.show_notice("add-unsubscribe")


def remove_form() -> None:
    """Admins take an address off the list, with why and a confirmation."""
    st.subheader("Remove")
    actions.show_notice("remove-unsubscribe")
    if entries.is_empty():
        st.caption("The list is empty.")
    else:
        keys = [f"{c} {a}" for c, a in zip(entries["channel"], entries["address"], strict=True)]
        picked = st.selectbox(
            "Entry", sorted(set(keys)), key="remove-entry", format_func=present.entry_key
        )
        why = st.text_input("Why (kept in the history)", key="remove-note")
        confirm = st.checkbox("Yes, messages may go to this address again", key="remove-confirm")
        st.button(
            "Remove",
            disabled=not (confirm and why.strip()),
            key="remove",
            on_click=remove_entry,
            help="Say why and tick the box first.",
        )
        if picked:
            with st.expander("History of this address"):
                history = data.unsubscribe_history(picked.partition(" ")[2])
                present.show_table(
                    history.with_columns(
                        action=pl.col("action").replace_strict(
                            {"add": "Added", "remove": "Removed"}, default=pl.col("action")
                        ),
                        by=present.by_whom("by"),
                    ),
                    {
                        "changed_at": f"When ({present.time_zone()})",
                        "channel": "Channel",
                        "action": "Change",
                        "reason": "Reason",
                        "scope": "Applies to",
                        "cause": "Cause",
                        "by": "By",
                        "note": "Note",
                    },
                )


if not auth.may(Role.ADMIN):
    st.caption("A sender adds to the list by hand and an admin removes from it.")
add, remove = st.columns(2)
if auth.may(Role.SENDER):
    with add.form("add"):
        add_form()
if auth.may(Role.ADMIN):
    with remove.container(border=True):
        remove_form()

if sendout.strip():
    st.subheader("Bad addresses this send-out found")
    bad = data.bad_addresses(sendout.strip())
    if bad.is_empty():
        st.caption("None.")
    for row in bad.iter_rows(named=True):
        who = " ".join(p for p in (row["first_name"], row["last_name"]) if p) or "a contact"
        if not auth.may(Role.ADMIN):
            st.write(f"**{row['address']}** ({present.reason_name(row['reason'])}) of {who}")
            continue
        with st.form(f"correct-{row['channel']}-{row['address']}"):
            st.write(f"**{row['address']}** ({present.reason_name(row['reason'])}) of {who}")
            new = st.text_input("Corrected address", key=f"new-{row['address']}")
            if st.form_submit_button("Correct the contact", key=f"fix-{row['address']}"):
                actions.correct_contact(row["contact_id"], row["channel"], new)
            actions.show_notice(f"correct-{row['contact_id']}-{row['channel']}")
