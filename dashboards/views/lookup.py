"""Why didn't they get it? Everything about one email address or phone number."""

import polars as pl
import streamlit as st

from dashboards import actions, data, present
from warehouse.addresses import NOT_AN_ADDRESS, InvalidAddressError

st.title("Why didn't they get it?")
address = st.text_input("Email address or phone number", key="address")
if address.strip():
    try:
        found = data.lookup(address)
    except InvalidAddressError as error:
        said = actions.capitalised(str(error))
        if NOT_AN_ADDRESS in said:  # a name, say: where a name finds someone
            said += ". To find someone by name, search the recipients on a send-out's page."
        st.error(said, icon=":material/error:")
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
