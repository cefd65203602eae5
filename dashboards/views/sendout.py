"""Send-out details: status, progress, per-channel figures, recipients, replies and actions."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import polars as pl
import streamlit as st

from dashboards import actions, auth, data, present
from dashboards.charts import status_doughnut
from warehouse.contact_rows import typed_entries
from warehouse.sendouts import Created
from warehouse.users import Role
from warehouse.vocabulary import (
    NEVER_ON,
    STATUS_COLUMNS,
    Channel,
    DisplayStatus,
    InboundStatus,
    Keyword,
    SendoutStatus,
    UnsubscribeScope,
)

PAGE_SIZE = 50
REPLIES_PAGE = 20  # replies shown at first, and how many more each "Show more" adds
FOLLOW_BEFORE = timedelta(minutes=10)  # a scheduled send-out is followed once this close
FOLLOW_FOR = timedelta(days=1)  # how long after sending the page keeps itself up to date
FOLLOW_EVERY = timedelta(seconds=3)
NOT_SENT_YET = {str(SendoutStatus.SCHEDULED), str(SendoutStatus.CANCELLED)}  # no Send again


class Resending(NamedTuple):
    """A resend the page asks about before it goes: of which send-out, to the people picked
    and typed (`about` is what was picked and typed; `reach` whom it reaches) or to the
    non-openers (`about`: whether machine-only openers are left out)."""

    sendout_id: str
    to_them: bool
    about: object
    reach: Created | None = None


RECIPIENT_HEADERS = {
    "recipient": "Recipient",
    "name": "Name",
    "status": "Status",
    "why": "Why",  # it failed, bounced, was delayed or skipped
    "first_sent_at": "First sent",
    "delivered_at": "Delivered",
    "first_opened_at": "First opened",
    "open_count": "Opens",
    "click_count": "Clicks",
    "is_machine_open_only": "Machine opens only",
    "cost": "Cost",
    "is_possible_duplicate": "Maybe sent twice",  # a dispatch run died while sending it
}
# an SMS has no opens or clicks, and it does not bounce: it fails; an email costs the same as
# every other (the send-out's cost says it), an SMS by its length
EMAIL_RECIPIENT_HEADERS = {k: v for k, v in RECIPIENT_HEADERS.items() if k != "cost"}
SMS_RECIPIENT_HEADERS = {
    k: v
    for k, v in RECIPIENT_HEADERS.items()
    if k not in ("first_opened_at", "open_count", "click_count", "is_machine_open_only")
}

listed = data.sendout_list()
if listed.is_empty():
    st.info("No send-out yet.")
    st.page_link("views/new_sendout.py", label="Compose one", icon=":material/edit:")
    st.stop()
ids = listed["sendout_id"].to_list()
labels = {
    i: f"{name} · created {present.local(at):%d %b %Y, %H:%M}"
    for i, name, at in zip(ids, listed["name"], listed["created_at"], strict=True)
}
twins = {label for label, count in Counter(labels.values()).items() if count > 1}
labels = {i: f"{label} ({i})" if label in twins else label for i, label in labels.items()}
current = st.session_state.get("sendout_id") or st.query_params.get("id") or ids[0]
sendout_id = st.selectbox(
    "Send-out",
    ids,
    index=ids.index(current) if current in ids else 0,
    format_func=labels.get,  # the id only where two would read the same
)
st.session_state["sendout_id"] = sendout_id


def is_moving(row: dict) -> bool:
    """Due within minutes, sending, or sent within the day (deliveries, opens and replies keep
    coming); not one scheduled for later, cancelled, or done long ago."""
    now = datetime.now(UTC)
    if row["cancelled_at"] is not None:
        return False
    if row["sendout_status"] == str(SendoutStatus.SCHEDULED):
        return row["scheduled_at"] - now < FOLLOW_BEFORE
    if row["sendout_status"] == str(SendoutStatus.SENDING):
        return True
    sent_at = row["sendout_sent_at"]
    return sent_at is not None and now - sent_at < FOLLOW_FOR


def header(rows: list[dict]) -> None:
    first = rows[0]
    st.title(first["name"])
    kind = present.WORDS["communication_type"][first["communication_type"]]
    zone = present.time_zone()
    said = [kind, f"created {present.local(first['created_at']):%d %b %Y, %H:%M} ({zone})"]
    if first["sendout_status"] == SendoutStatus.SCHEDULED:
        said.append(f"goes out {present.local(first['scheduled_at']):%a %d %b %Y at %H:%M}")
    st.caption(" · ".join(said))
    status, progress, cost = st.columns(3)
    status.metric("Status", first["sendout_status"])
    planned = sum(r["planned"] or 0 for r in rows)
    done = sum(r["done"] or 0 for r in rows)
    progress.metric(  # the unit in the label: the value fits a third of the page
        "Messages done",
        f"{done:,} of {planned:,}",
        help="Messages sent or settled; someone reached by email and SMS has one of each.",
    )
    progress.progress(done / planned if planned else 0.0)
    if (late := present.sendout_overdue(rows, datetime.now(UTC))) is not None:
        can_cancel = auth.may(Role.SENDER) and not data.has_started(sendout_id)
        st.warning(present.waiting_words(late, can_cancel))
    cost.metric("Cost", present.money(sum(r["cost"] or 0 for r in rows)))


def percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


def recipient_table(channel: str, sendout_status: str) -> None:
    filters = st.columns([2, 3])

    def first_page() -> None:  # a new filter starts from its first page
        st.session_state[f"page-{channel}"] = 0

    choice = filters[0].selectbox(
        "Status",
        ["All", *[str(s) for s in DisplayStatus if s not in NEVER_ON[Channel(channel)]]],
        key=f"status-{channel}",
        on_change=first_page,
    )
    search = filters[1].text_input(
        "Search name or address", key=f"search-{channel}", on_change=first_page
    )
    page_number = st.session_state.get(f"page-{channel}", 0)
    page, total, twice = data.recipients(
        sendout_id,
        channel,
        None if choice == "All" else choice,
        search.strip() or None,
        PAGE_SIZE,
        page_number * PAGE_SIZE,
    )
    headers = EMAIL_RECIPIENT_HEADERS if channel == str(Channel.EMAIL) else SMS_RECIPIENT_HEADERS
    if not twice:  # a column of empty boxes on every send-out says nothing
        headers = {k: v for k, v in headers.items() if k != "is_possible_duplicate"}
    page = page.with_columns(
        why=present.why_not_delivered(channel, sendout_status),
        name=present.full_name(),
    )
    present.show_table(
        page,
        headers,
        money_in=("cost",),
        wide=("why",),
        narrow=("open_count", "click_count"),
    )
    pages = max(1, -(-total // PAGE_SIZE))
    nav = st.columns([1, 1, 4])
    if nav[0].button("Previous", disabled=page_number == 0, key=f"prev-{channel}"):
        st.session_state[f"page-{channel}"] = page_number - 1
        st.rerun()
    if nav[1].button("Next", disabled=page_number + 1 >= pages, key=f"next-{channel}"):
        st.session_state[f"page-{channel}"] = page_number + 1
        st.rerun()
    counted = f"{total:,} {'recipient' if total == 1 else 'recipients'}"
    zone = present.time_zone()
    nav[2].caption(f"page {page_number + 1} of {pages} · {counted} · times in {zone}")


def channel_tab(row: dict) -> None:
    if row["planned"] is None:
        st.info("No messages yet on this channel.")
        return
    counts = {str(s): row[STATUS_COLUMNS[s]] for s in DisplayStatus if row[STATUS_COLUMNS[s]]}
    st.write(" · ".join(f"**{status}** {count}" for status, count in counts.items()))
    chart, rates = st.columns([3, 2])
    chart.plotly_chart(status_doughnut(row), width="stretch", key=f"doughnut-{row['channel']}")
    if row["channel"] == Channel.EMAIL:
        rates.metric("Open rate", percent(row["open_rate"]))
        rates.metric("Human open rate", percent(row["human_open_rate"]))
        rates.metric("Click rate", percent(row["click_rate"]))
        rates.metric("Click-to-open", percent(row["click_to_open_rate"]))
    else:
        rates.metric("Replies", row["inbound"])
    rates.metric("Cost", present.money(row["cost"]))
    if row["channel"] == str(Channel.SMS) and row["inbound"]:
        inbound = data.replies(sendout_id)["cost"].sum()  # replies, forwards and auto-replies
        rates.caption(
            f"Sent SMS {present.money(row['cost'] - inbound)} · "
            f"replies and what answered them {present.money(inbound)}"
        )
    recipient_table(row["channel"], row["sendout_status"])


def replies_list() -> None:
    """The SMS replies to the send-out: a STOP in orange, any other with an Unsubscribe button."""
    st.subheader("Replies")
    replies = data.replies(sendout_id)
    if replies.is_empty():
        st.caption("No replies yet.")
    shown = st.session_state.get("replies-shown", REPLIES_PAGE)
    for reply in replies.head(shown).iter_rows(named=True):
        unsubscribed = reply["keyword"] == str(Keyword.STOP) or reply["is_unsubscribed"]
        who = " ".join(n for n in (reply["first_name"], reply["last_name"]) if n)
        sender = f"{who} ({reply['from_number']})" if who else reply["from_number"]
        when = f"{present.local(reply['received_at']):%d %b, %H:%M}"
        colour = "orange" if unsubscribed else "green"
        marks = " · ".join(
            m
            for m in (
                reply["status"] if reply["status"] != InboundStatus.RECEIVED else "",
                "on the Unsubscribes list" if unsubscribed else "",
                "asks to get SMS again" if reply["keyword"] == str(Keyword.START) else "",
            )
            if m
        )
        line, add = st.columns([5, 1])
        said = f"**{present.plain(sender)}** · {when}: {present.plain(reply['body'])}"
        line.markdown(f":{colour}[{said}]" + f" — _{marks}_" * bool(marks))
        place = f"unsub-{reply['from_number']}-{reply['event_id']}"
        asked_back = reply["keyword"] == str(Keyword.START)  # a START is no wish to be left
        offered = not (unsubscribed or asked_back) and auth.may(Role.SENDER)
        if offered and add.button("Unsubscribe", key=place):
            actions.add_unsubscribe(
                Channel.SMS,
                reply["from_number"],
                UnsubscribeScope.ALL,
                f"replied {reply['body']!r}",  # to the send-out the entry names
                sendout_id,
                place=place,
            )
            st.rerun()
        actions.show_notice(place)
    older = replies.height - shown
    if older > 0 and st.button(f"Show more ({older} older)", key="replies-more"):
        st.session_state["replies-shown"] = shown + REPLIES_PAGE
        st.rerun()


def left_out() -> None:
    """The people given for the send-out that it could not be sent to, and why."""
    rows = data.left_out(sendout_id)
    if not rows:
        return
    st.warning(present.not_sent(rows), icon=":material/person_off:")
    if len(rows) > present.NOT_SENT_SHOWN:
        with st.expander(f"All {len(rows):,} people it could not be sent to"):
            present.show_table(
                pl.DataFrame(
                    {"where": [r.where for r in rows], "reason": [r.reason for r in rows]}
                ),
                {"where": "Where", "reason": "Why"},
                wide=("reason",),
            )


def details() -> None:
    """Everything that moves while the send-out goes out: read again every few seconds."""
    auth.still_here()
    rows = data.sendout_rows(sendout_id)
    # what the rest of the page depends on (Send again: once sent, to non-openers once an
    # email went out): when it changes, the whole page is drawn again, not this part alone
    emailed = any(r["done"] for r in rows if r["channel"] == Channel.EMAIL)
    stage = (rows[0]["sendout_status"], emailed)
    if st.session_state.setdefault(f"stage-{sendout_id}", stage) != stage:
        st.session_state[f"stage-{sendout_id}"] = stage
        st.rerun()
    header(rows)
    left_out()
    tabs = st.tabs([{Channel.EMAIL: "Emails", Channel.SMS: "SMS"}[r["channel"]] for r in rows])
    for tab, row in zip(tabs, rows, strict=True):
        with tab:
            channel_tab(row)
            if row["channel"] == Channel.SMS:
                replies_list()


if st.button("Refresh", icon=":material/refresh:"):
    data.clear()
    st.rerun()
moving = is_moving(data.sendout_rows(sendout_id)[0])
st.fragment(run_every=FOLLOW_EVERY if moving else None)(details)()

st.subheader("Bad addresses found")
bad = data.bad_addresses(sendout_id)
if bad.is_empty():
    st.caption("None.")
else:
    present.show_table(
        bad,
        {
            "address": "Address",
            "channel": "Channel",
            "reason": "Reason",
            "first_name": "First name",
            "last_name": "Last name",
            "added_at": "Found",
        },
    )

rows = data.sendout_rows(sendout_id)
actions.show_notice("cancel")
# scheduled, or due with nothing gone out: no Send again; Cancel until a message is claimed
stuck = present.sendout_overdue(rows, datetime.now(UTC))
unsent = rows[0]["sendout_status"] == SendoutStatus.SCHEDULED or stuck is not None
if auth.may(Role.SENDER) and unsent and not data.has_started(sendout_id):
    people = listed.filter(sendout_id=sendout_id)["recipients"][0]
    actions.cancel_button(st, sendout_id, rows[0]["name"], people)
if not auth.may(Role.SENDER) or unsent or rows[0]["sendout_status"] in NOT_SENT_YET:
    st.stop()  # what follows sends again what went
st.subheader("Send again")
email = next((r for r in rows if r["channel"] == str(Channel.EMAIL)), None)
asking = st.session_state.get("resend-asking")
if asking and asking.sendout_id != sendout_id:  # asked about another send-out: not this one's
    asking = st.session_state["resend-asking"] = None
exclude = False
again_to, again_non = st.columns(2)
with again_to.container(border=True):
    picked = actions.pick_contacts(f"resend-to-{sendout_id}")  # each send-out its own
    typed = st.text_area(
        "Or type email addresses or phone numbers (one per line)",
        key=f"resend-typed-{sendout_id}",
        help="They are sent to without becoming contacts.",
        height=80,
    )
    typed_count = len(typed_entries(typed))
    if asking and asking.to_them and asking.about != (picked, typed):
        asking = st.session_state["resend-asking"] = None  # changed since it was asked
    if st.button("Resend to them", disabled=not (picked or typed_count), key="resend-to-button"):
        try:
            reach = actions.preview_resend_to(sendout_id, picked, typed)
        except actions.PREVIEW_ERRORS as error:
            st.error(actions.sentence(error), icon=":material/error:")
        else:
            asking = Resending(sendout_id, True, (picked, typed), reach)
            st.session_state["resend-asking"] = asking
with again_non.container(border=True):
    if email is None:
        st.caption("Resending to those who did not open it is for emails; this sent none.")
        non_openers = 0
    elif not email["done"]:
        st.caption("Resending to those who did not open it is possible once the email went out.")
        non_openers = 0
    else:
        exclude = st.checkbox("Leave out people opened only by machines (Apple Mail etc.)")
        non_openers = data.non_openers_count(sendout_id, exclude)
        if asking and not asking.to_them and asking.about != exclude:
            asking = st.session_state["resend-asking"] = None  # changed since it was asked
        if st.button(
            f"Resend to non-openers ({non_openers})",
            key="resend-non-openers",
            disabled=not non_openers,
        ):
            asking = Resending(sendout_id, False, exclude)
            st.session_state["resend-asking"] = asking
if asking:
    reach = asking.reach.people if asking.to_them else non_openers
    notes = present.reach_words(asking.reach) if asking.to_them else []
    with st.container(border=True):
        st.warning(
            "\n\n".join(
                [
                    f"Send **{rows[0]['name']}** again to {present.people(reach)}? "
                    "It goes out at once.",
                    *notes,
                ]
            ),
            icon=":material/send:",
        )
        yes, no = st.columns(2)
        if yes.button("Yes, send it", key="resend-yes", type="primary"):
            del st.session_state["resend-asking"]
            if asking.to_them:
                if actions.resend_to(sendout_id, picked, typed):
                    for key in ("resend-to", "resend-typed"):  # not there to be sent again
                        st.session_state.pop(f"{key}-{sendout_id}", None)
            else:
                actions.resend_to_non_openers(sendout_id, asking.about)
            st.rerun()
        if no.button("No", key="resend-no"):
            del st.session_state["resend-asking"]
            st.rerun()
actions.show_notice(f"resend-{sendout_id}")
