"""Sendout's dashboard: routes only; each page is a file under views/."""

import streamlit as st

from dashboards import data

st.set_page_config(page_title="Sendout", page_icon="✉️", layout="wide")
data.ensure_warehouse()

PAGES = [
    st.Page("views/messages.py", title="Messages", icon=":material/inbox:", default=True),
    st.Page("views/new_sendout.py", title="New send-out", icon=":material/edit:"),
    st.Page(
        "views/sendout.py", title="Send-out details", icon=":material/insights:", url_path="sendout"
    ),
    st.Page("views/unsubscribes.py", title="Unsubscribes", icon=":material/block:"),
    st.Page(
        "views/lookup.py",
        title="Why didn't they get it?",
        icon=":material/search:",
        url_path="lookup",
    ),
]
st.navigation(PAGES).run()
