"""Sendout's dashboard: routes only; each page is a file under views/. Before any page runs, the
login gate decides who is here (dashboards/auth.py); the navigation offers only the pages their
role may use, so the others cannot be reached."""

import streamlit as st

from dashboards import auth, data
from warehouse.db import NotAWarehouseError
from warehouse.users import Role, allows

st.set_page_config(page_title="Sendout", page_icon="✉️", layout="wide")
try:
    data.ensure_warehouse()
except NotAWarehouseError as error:  # a setting to mend before anything else can be shown
    st.error(f"{error}. Whoever runs Sendout can point it at the warehouse and start it again.")
    st.stop()
person = auth.gate()

PAGES = [
    (
        Role.VIEWER,
        st.Page("views/messages.py", title="Messages", icon=":material/inbox:", default=True),
    ),
    (Role.SENDER, st.Page("views/new_sendout.py", title="New send-out", icon=":material/edit:")),
    (
        Role.VIEWER,
        st.Page(
            "views/sendout.py",
            title="Send-out details",
            icon=":material/insights:",
            url_path="sendout",
        ),
    ),
    (Role.VIEWER, st.Page("views/unsubscribes.py", title="Unsubscribes", icon=":material/block:")),
    (
        Role.VIEWER,
        st.Page(
            "views/lookup.py",
            title="Why didn't they get it?",
            icon=":material/search:",
            url_path="lookup",
        ),
    ),
    (Role.ADMIN, st.Page("views/audit.py", title="Who did what", icon=":material/history:")),
    (Role.ADMIN, st.Page("views/users.py", title="Users", icon=":material/group:")),
]
offered = [page for needed, page in PAGES if allows(person.role, needed)]
navigation = st.navigation(offered)
auth.go_where_asked(offered)
navigation.run()
