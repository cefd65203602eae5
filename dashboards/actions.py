"""What a person does from the dashboard: each a short write through the warehouse, then the
cached reads are cleared. Each action checks the person's role again here, on the server,
whatever the page offered (auth.require), and the warehouse records it in the audit record
under their name. Dispatch is started through Prefect's API when a Prefect server is
configured, else through the `sendout dispatch` command in the background."""

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb
import streamlit as st

from dashboards import auth, data, present
from dashboards.auth import NotAllowed
from flows.settings import settings
from warehouse import audit, resends, sendouts
from warehouse import unsubscribes as unsubscribe_list
from warehouse import users as user_store
from warehouse.addresses import InvalidAddressError
from warehouse.contact_rows import ContactImportError, ReadContacts, read_contacts
from warehouse.contacts import correct_address
from warehouse.db import WarehouseLockedError
from warehouse.refresh import refresh
from warehouse.sendouts import Created, Draft, Recipients, SendoutError
from warehouse.unsubscribes import UnsubscribeError
from warehouse.users import Login, Role, UserError
from warehouse.vocabulary import CommunicationType

DEPLOYMENT = "dispatch-sendout/dispatch-sendout"
T = TypeVar("T")
# what the warehouse raises when a person's request cannot be done: said in one sentence
LIBRARY_ERRORS = (
    SendoutError,
    UnsubscribeError,
    InvalidAddressError,
    ContactImportError,
    WarehouseLockedError,
    UserError,
    NotAllowed,
    ValueError,
)


def pick_contacts(key: str) -> list[int]:
    """A search box and a pick list of the matching contacts (the first 100); those picked
    stay picked when the search changes (they are offered whatever it finds)."""
    found = data.search_contacts(st.text_input("Find contacts", key=f"{key}-search"))
    labels = st.session_state.setdefault(f"{key}-labels", {})
    labels.update(zip(found["contact_id"].to_list(), found["label"].to_list(), strict=True))
    offered = dict.fromkeys([*st.session_state.get(key, []), *found["contact_id"].to_list()])
    return st.multiselect("Contacts", list(offered), format_func=labels.get, key=key)


def read_recipients_csv(upload) -> tuple[Path, ReadContacts] | None:
    """Read an uploaded recipients CSV once, as soon as it is chosen (a progress bar while a
    big file is read; the warehouse is not held meanwhile). None, with the reason shown, when
    the file cannot be read."""
    last = st.session_state.get("recipients-csv")
    if last and last[0] == upload.file_id:
        return last[1]
    saved = Path(tempfile.mkdtemp()) / Path(upload.name).name
    saved.write_bytes(upload.getvalue())
    bar = st.progress(0.0, text=f"Reading {upload.name}")

    def show(done: int, total: int) -> None:
        text = f"Reading {upload.name}: line {done:,} of {total:,}"
        bar.progress(done / max(total, 1), text=text)

    try:
        read = read_contacts(saved, settings().default_region, show, name=upload.name)
    except ContactImportError as error:
        st.error(sentence(error), icon=":material/error:")
        return None
    finally:
        bar.empty()
    st.session_state["recipients-csv"] = (upload.file_id, (saved, read))
    return saved, read


def start_dispatch(sendout_id: str, by: audit.Actor) -> str:
    """Start sending in the background; say how. The audit record names `by`: a Prefect run
    is recorded here, as it is asked for (whichever run then takes the send-out: the one asked
    for, or the schedule's, which may come first); `sendout dispatch` records itself under the
    $SENDOUT_USER it is given, once it has taken the send-out."""
    if os.environ.get("PREFECT_API_URL"):
        from prefect.deployments import run_deployment

        with data.writing() as con:
            audit.record(con, by, audit.AuditAction.SEND, sendout_id)
        run = run_deployment(DEPLOYMENT, parameters={"sendout_id": sendout_id}, timeout=0)
        return f"dispatch started as Prefect flow run {run.name}"
    command = [
        str(Path(sys.executable).with_name("sendout")),
        "--db",
        str(settings().db),
        "dispatch",
        sendout_id,
    ]
    subprocess.Popen(
        command,
        env={**os.environ, "SENDOUT_USER": by.name, "SENDOUT_VIA": by.via},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return "dispatch started in the background"


# what asking whom a send-out reaches can meet: a draft that cannot be, a role that may not
# send, a warehouse busy for longer than a page waits (said with `sentence`)
PREVIEW_ERRORS = (SendoutError, NotAllowed, WarehouseLockedError)


def preview_sendout(draft: Draft) -> Created:
    """Whom the draft would reach and who would be left out, before anything is kept or sent
    (SendoutError: what is wrong with it; NotAllowed: a role that may not send)."""
    by = auth.require(Role.SENDER)
    with data.writing() as con:  # the people of a CSV are made contacts, then rolled back
        return sendouts.preview(con, draft, by=by)


def create_sendout(draft: Draft, send_now: bool) -> Created:
    """Create a send-out (SendoutError tells what is wrong; NotAllowed, a role that may not
    send) and start it when it is for now."""
    by = auth.require(Role.SENDER)
    with data.writing() as con:
        created = sendouts.create(con, draft, by=by, config=settings())
    data.clear()
    if send_now:
        start_dispatch(created.sendout_id, by)  # the details page it switches to shows it move
    return created  # its page lists the people given who could not be sent to


def sentence(error: Exception) -> str:
    """What went wrong, as one sentence for the person who asked (library errors are written
    as sentences; a send-out's names its first problem)."""
    if isinstance(error, SendoutError):
        return error.errors[0].message
    if isinstance(error, WarehouseLockedError):
        return "Sendout is busy with other work on its data; please try again in a moment."
    text = str(error).strip()
    return capitalised(text) if text else "That did not work."


def capitalised(text: str) -> str:
    """A library's message (lower-case, to follow a name at the CLI) as a page shows it; one
    that begins with an address, a file's or a user's name keeps it as it is."""
    first = text.split(" ", 1)[0].rstrip(",:;")
    return text[:1].upper() + text[1:] if first.isalpha() and first.islower() else text


def notify(place: str, kind: str, text: str) -> None:
    """Keep a message for `place` (a form or button) until the next action there. What other
    places said was done goes (this action may have changed it); their errors stay to be read."""
    notices = st.session_state.setdefault("notices", {})
    for other in [p for p, (was, _) in notices.items() if was != "error"]:
        del notices[other]
    notices[place] = (kind, text)


def show_notice(place: str) -> None:
    """Show what the last action at `place` did, or why it did not."""
    kind, text = st.session_state.get("notices", {}).get(place, (None, None))
    if kind == "error":
        st.error(text, icon=":material/error:")
    elif kind == "success":
        st.success(text, icon=":material/check_circle:")
    elif kind == "warning":
        st.warning(text, icon=":material/warning:")


def act(
    place: str,
    needed: Role,
    write: Callable[[duckdb.DuckDBPyConnection, audit.Actor], T],
    done: Callable[[T], str],
) -> T | None:
    """Run one write, by a person whose role allows `needed`, on a short connection; say what
    it did at `place` (`done` runs once it is committed), or why not (a refused role or a
    library error, as one sentence). Returns what the write returned, or None."""
    try:
        by = auth.require(needed)
        with data.writing() as con:
            result = write(con, by)
    except LIBRARY_ERRORS as error:
        notify(place, "error", sentence(error))
        return None
    data.clear()
    notify(place, "success", done(result))
    return result


def add_unsubscribe(
    channel: str,
    address: str,
    scope: str,
    note: str,
    sendout_id: str | None = None,
    place: str = "add-unsubscribe",
) -> bool:
    """Put an address on the Unsubscribes list by hand; True when it is there."""
    added = act(
        place,
        Role.SENDER,
        lambda con, by: unsubscribe_list.add(
            con, channel, address, scope, by, note, sendout_id, settings().default_region
        ),
        lambda entry: f"{entry.address} is on the Unsubscribes list",
    )
    return added is not None


def remove_unsubscribe(channel: str, address: str, note: str) -> list | None:
    """Take an address off the list (every entry of it on the channel), with why."""
    return act(
        "remove-unsubscribe",
        Role.ADMIN,
        lambda con, by: unsubscribe_list.remove(
            con, channel, address, by, note, region=settings().default_region
        ),
        lambda removed: (
            f"Removed {address} ({', '.join(present.reason_name(e.reason) for e in removed)}); "
            "messages may go to it again."
        ),
    )


def cancel_button(place, sendout_id: str, name: str, recipients: int) -> None:
    """A Cancel button in `place` for a send-out that has not started, and its question;
    what it did is said where `show_notice("cancel")` is."""
    asking = st.session_state.get("cancelling") == sendout_id
    if place.button("Cancel", key=f"cancel-{sendout_id}", disabled=asking):
        st.session_state["cancelling"] = sendout_id
        st.rerun()
    if not asking:
        return
    with st.container(border=True):
        st.warning(
            f"Cancel **{name}**? The {present.people(recipients)} it is for will not get it, "
            "and it cannot be sent later.",
            icon=":material/warning:",
        )
        yes, no = st.columns(2)
        if yes.button("Yes, cancel it", key=f"cancel-yes-{sendout_id}", type="primary"):
            cancel_sendout(sendout_id, name)
            st.session_state.pop("cancelling")
            st.rerun()
        if no.button("No, keep it", key=f"cancel-no-{sendout_id}"):
            st.session_state.pop("cancelling")
            st.rerun()


def cancel_sendout(sendout_id: str, name: str) -> None:
    """Cancel a send-out before its first message goes."""
    act(
        "cancel",
        Role.SENDER,
        lambda con, by: sendouts.cancel(con, sendout_id, by=by),
        lambda _: f"{name} is cancelled; nothing will be sent.",
    )


def _resend(
    sendout_id: str, create: Callable[[duckdb.DuckDBPyConnection, audit.Actor], Created]
) -> bool:
    """Create the resend and start it once it is stored; the page stays on the send-out the
    person was reading, and says what happened there (`show_notice(f"resend-{sendout_id}")`,
    not on another send-out's page). True when it was created."""
    return None is not act(
        f"resend-{sendout_id}",
        Role.SENDER,
        create,
        lambda c: (
            f"Sent again to {present.people(c.people)}, as a new send-out of its own: "
            f"{start_dispatch(c.sendout_id, auth.require(Role.SENDER))}."
            + "".join(f"\n\n{note}" for note in present.reach_words(c))
        ),
    )


def resend_to(sendout_id: str, contact_ids: list[int], typed: str = "") -> bool:
    """Send the send-out again to the people picked and typed; True when it was created."""
    chosen = Recipients(contact_ids=contact_ids, typed=typed, region=settings().default_region)
    return _resend(
        sendout_id,
        lambda con, by: resends.resend_to(con, sendout_id, chosen, by=by, config=settings()),
    )


def preview_resend_to(sendout_id: str, contact_ids: list[int], typed: str = "") -> Created:
    """Whom `resend_to` would reach (SendoutError: no one), nothing kept."""
    by = auth.require(Role.SENDER)
    chosen = Recipients(contact_ids=contact_ids, typed=typed, region=settings().default_region)
    with data.writing() as con:
        return resends.preview_resend_to(con, sendout_id, chosen, by)


def resend_to_non_openers(sendout_id: str, exclude_machine_openers: bool) -> None:
    def create(con: duckdb.DuckDBPyConnection, by: audit.Actor) -> Created:
        refresh(con, config=settings())  # who opened is known as of the latest events
        return resends.resend_to_non_openers(
            con, sendout_id, exclude_machine_openers, by=by, config=settings()
        )

    _resend(sendout_id, create)


def correct_contact(contact_id: int | None, channel: str, address: str) -> None:
    """Store a corrected address; the bad one stays listed. Where the new one is on the list
    too, the person is warned that send-outs will not reach it."""
    place = f"correct-{contact_id}-{channel}"
    if contact_id is None:
        notify(place, "error", "This address belongs to no contact any more.")
        return
    corrected = act(
        place,
        Role.ADMIN,
        lambda con, by: _correct(con, by, contact_id, channel, address),
        lambda said: said[0],
    )
    if corrected and corrected[1]:
        notify(place, "warning", corrected[0])


def _correct(con, by: audit.Actor, contact_id: int, channel: str, address: str) -> tuple[str, bool]:
    """The correction; what it means for the send-outs to come, in words, and whether the new
    address is on the Unsubscribes list."""
    stored = correct_address(con, contact_id, channel, address, settings().default_region, by)
    listed = [e for e in unsubscribe_list.entries(con, stored) if e.channel == channel]
    if not listed:
        return f"The contact's {channel} is now {stored}; the next send-out reaches it.", False
    reached = (
        "every send-out skips it"
        if unsubscribe_list.skip_reason(con, channel, stored, CommunicationType.NON_MARKETING)
        else "marketing send-outs skip it"
    )
    why = ", ".join(present.reason_name(e.reason) for e in listed)
    return (
        f"The contact's {channel} is now {stored}, but it is on the Unsubscribes list "
        f"({why}): {reached}.",
        True,
    )


def log_in(name: str, password: str) -> Login:
    """One login attempt, within the throttle (the refusal says how long the next must wait)."""
    with data.writing() as con:
        return user_store.log_in(con, name, password, config=settings())


def add_user(name: str, role: str, password: str) -> bool:
    """An admin adds a user; True when they are added. The first must be an admin: from then
    on every page asks for a login, and someone must be able to manage users."""
    if role != Role.ADMIN and not data.user_count():
        notify(
            "add-user",
            "error",
            "The first user must be an admin: once there is a user, everyone logs in, and "
            "only an admin can add the others.",
        )
        return False
    added = act(
        "add-user",
        Role.ADMIN,
        lambda con, by: user_store.add(con, name, role, password, by),
        lambda user: f"{user.user_name} can log in now, as {user.role}.",
    )
    return added is not None


def set_role(name: str, role: str) -> None:
    act(
        "change-user",
        Role.ADMIN,
        lambda con, by: user_store.set_role(con, name, role, by),
        lambda user: f"{user.user_name} is now {user.role}.",
    )


def set_password(name: str, password: str) -> None:
    act(
        "change-user",
        Role.ADMIN,
        lambda con, by: user_store.set_password(con, name, password, by),
        lambda _: f"{name} has a new password.",
    )


def remove_user(name: str) -> None:
    act(
        "change-user",
        Role.ADMIN,
        lambda con, by: user_store.remove(con, name, by),
        lambda user: f"{user.user_name} is removed; their session ends at their next click.",
    )
