"""Why didn't they receive it? Everything about one email address or phone number."""

import streamlit as st

from dashboards import data
from warehouse.addresses import InvalidAddressError

st.title("Why didn't they receive it?")
address = st.text_input("Email address or phone number", key="address")
if address.strip():
    try:
        found = data.lookup(address)
    except InvalidAddressError as error:
        st.error(str(error))
        st.stop()
    listed = "is on the Unsubscribes list" if found.entries else "is not on the Unsubscribes list"
    st.subheader(f"{found.address} {listed}")
    for entry in found.entries:
        st.warning(
            f"{entry.reason} ({entry.scope}) since {entry.added_at:%d %b %Y}, by "
            f"{entry.added_by}: {entry.note or entry.cause}"
        )
    if found.messages:
        st.dataframe([vars(m) for m in found.messages], hide_index=True)
    st.markdown("\n".join(f"- {line}" for line in found.advice))
