"""What a person does from the dashboard: each a short write through the warehouse, then the
cached reads are cleared. Dispatch is started through Prefect's API when a Prefect server is
configured, else through the `sendout dispatch` command in the background."""

import getpass
import os
import subprocess
import sys
from pathlib import Path

import streamlit as st

from dashboards import data
from warehouse import sendouts
from warehouse import unsubscribes as unsubscribe_list
from warehouse.addresses import InvalidAddressError
from warehouse.contacts import ContactImportError, correct_address
from warehouse.refresh import refresh
from warehouse.sendouts import Created, Draft, Recipients, SendoutError
from warehouse.settings import settings
from warehouse.unsubscribes import UnsubscribeError

DEPLOYMENT = "dispatch-sendout/dispatch-sendout"


def who() -> str:
    """The person making a change (the dashboard runs as them, or as its service account)."""
    return os.environ.get("SENDOUT_USER") or getpass.getuser()


def pick_contacts(key: str) -> list[int]:
    """A search box and a pick list of the matching contacts (the first 100)."""
    found = data.search_contacts(st.text_input("Find contacts", key=f"{key}-search"))
    labels = dict(zip(found["contact_id"].to_list(), found["label"].to_list(), strict=True))
    return st.multiselect("Contacts", list(labels), format_func=labels.get, key=key)


def start_dispatch(sendout_id: str) -> str:
    """Start sending in the background; say how."""
    if os.environ.get("PREFECT_API_URL"):
        from prefect.deployments import run_deployment

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
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return "dispatch started in the background"


def create_sendout(draft: Draft, send_now: bool) -> Created:
    """Create a send-out (SendoutError tells what is wrong) and start it when it is for now."""
    with data.writing() as con:
        created = sendouts.create(con, draft)
    data.clear()
    if send_now:
        st.session_state["dispatch_note"] = start_dispatch(created.sendout_id)
    return created


def add_unsubscribe(
    channel: str, address: str, scope: str, note: str, sendout_id: str | None = None
) -> None:
    try:
        with data.writing() as con:
            unsubscribe_list.add(con, channel, address, scope, who(), note, sendout_id)
    except (UnsubscribeError, ValueError) as error:
        st.error(str(error))
        return
    data.clear()


def remove_unsubscribe(channel: str, address: str, note: str) -> list:
    with data.writing() as con:
        removed = unsubscribe_list.remove(con, channel, address, who(), note)
    data.clear()
    return removed


def _resent(created: Created) -> None:
    note = start_dispatch(created.sendout_id)
    st.session_state["sendout_id"] = created.sendout_id
    st.success(f"New send-out {created.sendout_id} with {created.messages} messages: {note}")
    data.clear()


def resend_to(sendout_id: str, contact_ids: list[int]) -> None:
    try:
        with data.writing() as con:
            created = sendouts.resend_to(con, sendout_id, Recipients(contact_ids=contact_ids))
    except SendoutError as error:
        st.error(error.errors[0].message)
        return
    _resent(created)


def resend_to_non_openers(sendout_id: str, exclude_machine_openers: bool) -> None:
    try:
        with data.writing() as con:
            refresh(con)  # who opened is known as of the latest events
            created = sendouts.resend_to_non_openers(con, sendout_id, exclude_machine_openers)
    except SendoutError as error:
        st.error(error.errors[0].message)
        return
    _resent(created)


def correct_contact(contact_id: int | None, channel: str, address: str) -> None:
    """Store a corrected address; the bad one stays listed, the new one is not."""
    if contact_id is None:
        st.error("This address belongs to no contact any more.")
        return
    try:
        with data.writing() as con:
            stored = correct_address(con, contact_id, channel, address)
    except (InvalidAddressError, ContactImportError) as error:
        st.error(str(error))
        return
    data.clear()
    st.success(f"The contact's {channel} is now {stored}; the next send-out reaches it.")
