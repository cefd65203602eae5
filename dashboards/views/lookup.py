"""Why didn't they get it? Everything about one email address or phone number."""

import polars as pl
import streamlit as st

from dashboards import actions, data, present
from warehouse.addresses import InvalidAddressError

st.title("Why didn't they get it?")
address = st.text_input("Email address or phone number", key="address")
if address.strip():
    try:
        if "@" not in address and any(c.isalpha() for c in address):  # a name, say
            raise InvalidAddressError(
                f"{address.strip()!r} is neither an email address nor a phone number: type one "
                "of the person's (their send-outs' pages find them by name)"
            )
        found = data.lookup(address)
    except InvalidAddressError as error:
        st.error(actions.capitalised(str(error)), icon=":material/error:")
        st.stop()
    st.subheader(found.address)
    if not found.entries:
        st.caption("Not on the Unsubscribes list.")
    for entry in found.entries:
        st.warning(
            f"{present.reason_name(entry.reason)} ({present.WORDS['scope'][entry.scope]}) "
            f"since {present.local(entry.added_at):%d %b %Y}, by {present.who(entry.added_by)}: "
            f"{entry.note or entry.why or entry.cause}"
        )
    if found.messages:
        messages = pl.DataFrame(
            [vars(m) for m in found.messages], schema=data.LOOKUP_MESSAGE_SCHEMA
        )
        present.show_table(
            messages,
            {
                "sendout_name": "Send-out",
                "communication_type": "Type",
                "status": "Status",
                "first_sent_at": f"Sent ({present.time_zone()})",
                "delivered_at": "Delivered",
                "first_opened_at": "First opened",
                "why": "Why it failed",
            },
            wide=("why",),
        )
    st.markdown("\n".join(f"- {line}" for line in found.advice))
