"""Messages: every send-out, newest first, with its status and progress."""

from datetime import UTC, datetime, timedelta

import polars as pl
import streamlit as st

from dashboards import actions, auth, data, present
from warehouse.users import Role
from warehouse.vocabulary import SendoutStatus

st.title("Messages")
left, right = st.columns([1, 5])
if left.button("Refresh", icon=":material/refresh:"):
    data.clear()
if auth.may(Role.SENDER):
    right.page_link("views/new_sendout.py", label="New send-out", icon=":material/edit:")

for waiting in data.pending_sns_confirmations().iter_rows(named=True):
    st.warning(
        f"Amazon SNS waits for you to confirm that `{waiting['topic_arn']}` may send SES events "
        f"here: [open the confirmation link]({waiting['subscribe_url']}) once, before "
        f"{waiting['expires_at']:%d %b %Y, %H:%M %Z}.",
        icon=":material/link:",
    )


def open_sendout(sendout_id: str) -> None:
    st.session_state["sendout_id"] = sendout_id


@st.fragment(run_every=timedelta(seconds=3))
def sendout_table() -> None:
    auth.still_here()
    listed = data.sendout_list()
    if listed.is_empty():
        st.info("No send-out yet: compose one on the New send-out page.")
        return
    now, sender = datetime.now(UTC), auth.may(Role.SENDER)
    for row in listed.iter_rows(named=True):  # above the list, where they are seen
        due_at = row["scheduled_at"] or row["created_at"]
        late = present.minutes_overdue(row["status"], due_at, row["done"] or 0, now)
        if late is not None:
            st.warning(
                f"**{present.plain(row['name'])}**: nothing has gone out yet, "
                f"{present.minutes(late)} after it was due. Ask whoever runs Sendout to check "
                "that its scheduler runs" + (", or open it to cancel it." if sender else "."),
                icon=":material/schedule:",
            )
    table = present.readable(
        listed.with_columns(
            progress=(listed["done"] / listed["planned"].clip(lower_bound=1)),
            channels=listed["channels"]
            .list.eval(pl.element().replace_strict(present.WORDS["channel"]))
            .list.join(" + "),
        ).select(
            "name",
            "status",
            "channels",
            "communication_type",
            "created_at",
            "scheduled_at",
            "recipients",
            "progress",
            "sendout_id",
        )
    )
    picked = st.dataframe(
        table,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="sendouts",
        column_config={
            "name": "Send-out",
            "status": "Status",
            "channels": "Channels",
            "communication_type": "Type",
            "created_at": "Created",  # the zone is said under the table: headers stay narrow
            "scheduled_at": "Scheduled",
            "recipients": "Recipients",
            "progress": st.column_config.ProgressColumn("Progress", min_value=0, max_value=1),
        },
        column_order=[c for c in table.columns if c != "sendout_id"],  # the row opens it
    )
    rows = picked.selection.rows if picked else []
    if rows:
        open_sendout(table["sendout_id"][rows[0]])
        st.switch_page("views/sendout.py")
    st.caption(f"Times in {present.time_zone()}; the list refreshes every few seconds.")


sendout_table()

scheduled = (
    data.sendout_list().filter(data.sendout_list()["status"] == str(SendoutStatus.SCHEDULED))
    if not data.sendout_list().is_empty()
    else None
)
actions.show_notice("cancel")  # here, not by its row: a cancelled send-out leaves the list
if scheduled is not None and not scheduled.is_empty():
    st.subheader(f"Scheduled ({present.time_zone()})")
    for row in scheduled.iter_rows(named=True):
        sendout_id = row["sendout_id"]
        when, name, cancel = st.columns([2, 4, 1])
        when.write(present.readable(scheduled.filter(sendout_id=sendout_id))["scheduled_at"][0])
        name.write(row["name"])
        if auth.may(Role.SENDER):
            actions.cancel_button(cancel, sendout_id, row["name"], row["recipients"])
