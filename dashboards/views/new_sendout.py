"""New send-out: compose email and/or SMS, choose recipients and when, then send."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import streamlit as st

from dashboards import actions, present
from flows.settings import settings
from warehouse.contact_rows import ReadContacts
from warehouse.sendouts import Draft, Recipients, SendoutError
from warehouse.sms import is_gsm7, sms_segments
from warehouse.templates import render, template_problem
from warehouse.vocabulary import Channel, CommunicationType

SAMPLE = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"}

st.title("New send-out")
errors: dict[str, str] = st.session_state.get("compose_errors", {})

# Streamlit forgets a widget's value once its page is left: the draft's fields are kept here
# and given back when the person returns (to look something up while composing, say)
KEPT = "compose-kept"
KEPT_FIELDS = (
    "name", "channels", "type", "subject", "html", "text", "tracking", "sms", "forward-to",
    "auto-reply", "recipients-how", "csv-to-contacts", "later", "day", "time",
)  # fmt: skip
DEFAULTS = {  # set here, not as the widgets' defaults, which a kept value would contradict
    "channels": [str(Channel.EMAIL)],
    "csv-to-contacts": True,
    "day": date.today() + timedelta(days=1),
    "time": time(9, 0),
}
for field in KEPT_FIELDS:
    if field not in st.session_state and field in st.session_state.get(KEPT, {}):
        st.session_state[field] = st.session_state[KEPT][field]
for field, value in DEFAULTS.items():
    st.session_state.setdefault(field, value)


def fixed(field: str):
    """A widget's on_change: the person changed the field, so its old problem goes."""
    return lambda: st.session_state.get("compose_errors", {}).pop(field, None)


def problem(field: str) -> None:
    if field in errors:
        st.error(actions.capitalised(errors[field]), icon=":material/error:")


def file_summary(read: ReadContacts) -> None:
    """What the chosen file holds, before anything is sent: the people, and each row that
    cannot be used with its line and reason."""
    people = len(read.people)
    st.caption(f"{people:,} {'person' if people == 1 else 'people'} in the file")
    unusable = read.rejected
    if unusable:
        with st.expander(f"{len(unusable):,} rows cannot be used and are left out", expanded=True):
            st.markdown("\n".join(f"- {r.where}: {r.reason}" for r in unusable[:200]))
            if len(unusable) > 200:
                st.caption(f"... and {len(unusable) - 200:,} more")
    if read.partly:
        partly = len(read.partly)
        with st.expander(f"{present.people(partly)} kept with one address: the other is not valid"):
            st.markdown("\n".join(f"- {r.where}: {r.reason}" for r in read.partly[:200]))
            if partly > 200:
                st.caption(f"... and {partly - 200:,} more")
    if read.no_sms:
        landlines = len(read.no_sms)
        st.caption(
            f"{landlines:,} of them {'has' if landlines == 1 else 'have'} a landline, "
            "which gets no SMS."
        )


def type_changed() -> None:
    """Tracking follows the type (on for marketing) until the person chooses it."""
    if not st.session_state.get("tracking-chosen"):
        st.session_state["tracking"] = st.session_state["type"] == CommunicationType.MARKETING


name = st.text_input("Name", key="name", on_change=fixed("name"))
problem("name")
channels = st.multiselect(
    "Channels",
    [str(c) for c in Channel],
    key="channels",
    on_change=fixed("channels"),
    format_func=present.WORDS["channel"].get,
)
problem("channels")
kind = st.radio(
    "Communication type",
    [str(t) for t in CommunicationType],
    horizontal=True,
    key="type",
    format_func=present.WORDS["communication_type"].get,
    on_change=type_changed,
    captions=[
        "News and offers: skipped for anyone who unsubscribed from marketing.",
        "Reminders and notices: reach everyone who is not off all messages.",
    ],
)

subject = html = text = sms = tracking = forward_to = auto_reply = None
if Channel.EMAIL in channels:
    st.subheader("Email")
    subject = st.text_input(
        "Subject ({first_name} and friends are filled in)",
        key="subject",
        help="Filled in for each person: {first_name}, {last_name}, {email} and {mobile}, in the "
        "subject and both bodies.",
        on_change=fixed("subject"),
    )
    problem("subject")
    html = st.text_area("HTML body", key="html", height=160, on_change=fixed("html_body"))
    problem("html_body")
    text = st.text_area("Text body", key="text", height=100, on_change=fixed("text_body"))
    problem("text_body")
    problem("body")
    st.session_state.setdefault("tracking", kind == CommunicationType.MARKETING)
    tracking = st.checkbox(
        "Track opens and clicks",
        key="tracking",
        on_change=lambda: st.session_state.update({"tracking-chosen": True}),
        help="Links and a 1x1 image go through the webhook service when Sendout's SMTP sender "
        "sends; a provider tracks in its own way.",
    )
    if html:
        with st.expander("Preview"):
            unfilled = template_problem(html)
            if unfilled:
                st.caption(f"Shown as typed: the HTML body has {unfilled}.")
            st.html(html if unfilled else render(html, SAMPLE))
if Channel.SMS in channels:
    st.subheader("SMS")
    sms = st.text_area("SMS text", key="sms", height=100, on_change=fixed("sms_text"))
    problem("sms_text")
    segments = sms_segments(sms or "")
    alphabet = "GSM-7" if is_gsm7(sms or "") else "UCS-2 (special characters)"
    st.caption(
        f"{len(sms or '')} characters · {alphabet} · {segments} "
        f"{'segment' if segments == 1 else 'segments'} · about "
        f"{segments * settings().sms_segment_cost:.2f} {settings().currency} per recipient"
    )
    forward_to = st.text_input(
        "Forward replies to (a mobile number; empty: not forwarded)",
        key="forward-to",
        on_change=fixed("forward_to"),
    )
    problem("forward_to")
    auto_reply = st.text_input(
        "Answer every reply with (empty: no automatic answer)", key="auto-reply"
    )

st.subheader("Recipients")
how = st.radio(
    "Send to",
    ["All contacts", "Pick contacts", "Upload a CSV"],
    horizontal=True,
    key="recipients-how",
    on_change=fixed("recipients"),
)
recipients = Recipients(all_contacts=how == "All contacts", region=settings().default_region)
if how == "Pick contacts":
    recipients.contact_ids = actions.pick_contacts("picked")
elif how == "Upload a CSV":
    upload = st.file_uploader("CSV with first_name, last_name, email, mobile", type="csv")
    if upload is not None and (read := actions.read_recipients_csv(upload)):
        recipients.csv, recipients.csv_read = read
        file_summary(recipients.csv_read)
    recipients.csv_to_contacts = st.checkbox(
        "Add these people to my contacts",
        key="csv-to-contacts",
        help="Unticked, they get this send-out only: they stay out of All contacts.",
    )
problem("recipients")

st.subheader("When")
later = st.toggle("Schedule for later", key="later")
scheduled_at = None
if later:
    day, hour = st.columns(2)
    chosen_day = day.date_input(
        "Date",
        key="day",
        on_change=fixed("scheduled_at"),
    )
    zone = present.time_zone()
    chosen_time = hour.time_input(f"Time ({zone})", key="time", on_change=fixed("scheduled_at"))
    scheduled_at = datetime.combine(chosen_day, chosen_time, ZoneInfo(zone)).astimezone(UTC)
problem("scheduled_at")

st.session_state[KEPT] = {f: st.session_state[f] for f in KEPT_FIELDS if f in st.session_state}
draft = Draft(
    name=name,
    channels=channels,
    communication_type=kind,
    recipients=recipients,
    subject=subject,
    html_body=html or None,
    text_body=text or None,
    sms_text=sms or None,
    scheduled_at=scheduled_at,
    tracking=tracking,
    forward_to=(forward_to or "").strip() or None,
    auto_reply_text=(auto_reply or "").strip() or None,
)


def refused(error: Exception) -> None:
    if isinstance(error, SendoutError):
        st.session_state["compose_errors"] = {e.field: e.message for e in error.errors}
        st.rerun()
    st.error(actions.sentence(error), icon=":material/error:")


if st.button("Schedule..." if later else "Send now...", type="primary", key="send"):
    try:  # nothing goes before the person has seen whom it reaches, and said yes
        st.session_state["compose-asking"] = (draft, actions.preview_sendout(draft))
        st.session_state["compose_errors"] = {}
    except actions.PREVIEW_ERRORS as error:
        refused(error)
asking = st.session_state.get("compose-asking")
if asking and asking[0] != draft:  # changed since: asked again at the next press
    del st.session_state["compose-asking"]
elif asking:
    reach = asking[1]
    if later:
        when = f"on {present.local(scheduled_at):%a %d %b %Y at %H:%M} ({present.time_zone()})"
        question = f"Schedule **{name.strip()}** to go {when} to {present.people(reach.people)}?"
    else:
        question = f"Send **{name.strip()}** now to {present.people(reach.people)}?"
    with st.container(border=True):
        st.warning("\n\n".join([question, *present.reach_words(reach)]), icon=":material/send:")
        yes, no = st.columns(2)
        if yes.button("Yes, schedule it" if later else "Yes, send it", type="primary", key="yes"):
            del st.session_state["compose-asking"]
            try:
                created = actions.create_sendout(draft, send_now=not later)
            except actions.PREVIEW_ERRORS as error:
                refused(error)
            else:
                st.session_state["sendout_id"] = created.sendout_id
                st.session_state.pop(KEPT, None)  # sent: the next send-out starts afresh
                for field in KEPT_FIELDS:
                    st.session_state.pop(field, None)
                st.switch_page("views/sendout.py")
        if no.button("No, not yet", key="no"):
            del st.session_state["compose-asking"]
            st.rerun()
