"""Users: who may log in, with what role; add, change role, set a password, remove (admins)."""

import streamlit as st

from dashboards import actions, auth, data, present
from warehouse.users import MIN_PASSWORD, Role

ROLE_HELP = (
    "Viewer: reads every page and exports. Sender: also composes, sends, schedules, cancels, "
    "resends and adds to the Unsubscribes list. Admin: also removes from it, corrects "
    "addresses and manages users."
)

st.title("Users")
listed = data.user_list()
present.show_table(
    listed.with_columns(
        has_password=listed["has_password"].replace_strict(
            {True: "Password", False: "Identity provider"}, return_dtype=str
        )
    ),
    {
        "user_name": "User",
        "role": "Role",
        "has_password": "Logs in with",
        "created_at": "Added",
        "password_changed_at": "Password set",
    },
)


def add_user() -> None:
    form = st.session_state
    if actions.add_user(form["new-user"], form["new-role"], form["new-password"]):
        form["new-user"] = ""
    form["new-password"] = ""  # never left in the page


add, change = st.columns(2)
with add.form("add-user-form"):
    st.subheader("Add a user")
    st.text_input("User name", key="new-user")
    roles = [str(r) for r in Role]
    st.radio(
        "Role",
        roles,
        index=roles.index(Role.ADMIN if listed.is_empty() else Role.VIEWER),  # the first: admin
        horizontal=True,
        key="new-role",
        help=ROLE_HELP,
        format_func=present.role_name,
    )
    st.text_input(
        f"Password (at least {MIN_PASSWORD} characters)", type="password", key="new-password"
    )
    st.form_submit_button("Add user", on_click=add_user)
    actions.show_notice("add-user")


def change_role() -> None:
    actions.set_role(st.session_state["change-user-name"], st.session_state["change-role"])


def set_password() -> None:
    form = st.session_state
    actions.set_password(form["change-user-name"], form["change-password"])
    form["change-password"] = ""  # never left in the page


def remove_user() -> None:
    actions.remove_user(st.session_state["change-user-name"])
    st.session_state["remove-user-confirm"] = False


with change.container(border=True):
    st.subheader("Change a user")
    actions.show_notice("change-user")
    if listed.is_empty():
        st.caption("No user yet: add the first one, an admin, on the left.")
        st.stop()
    name = st.selectbox("User", listed["user_name"].to_list(), key="change-user-name")
    roles = dict(zip(listed["user_name"], listed["role"], strict=True))
    if name is not None and st.session_state.get("change-role-of") != name:
        # the role buttons start at the chosen user's role, whoever is chosen
        st.session_state["change-role"], st.session_state["change-role-of"] = roles[name], name
    st.radio(
        "Role",
        [str(r) for r in Role],
        horizontal=True,
        key="change-role",
        format_func=present.role_name,
    )
    me = auth.current()
    giving_up = (
        me is not None
        and me.logged_in
        and name == me.name
        and st.session_state["change-role"] != Role.ADMIN
    )
    if giving_up:  # one click would take this page away from the person using it
        sure_role = st.checkbox(
            "Yes, I give up my admin role (only another admin can give it back)",
            key="demote-self-confirm",
        )
    st.button(
        "Change role",
        key="change-role-button",
        on_click=change_role,
        disabled=giving_up and not sure_role,
    )
    password = st.text_input("New password", type="password", key="change-password")
    st.button(
        "Set password", key="set-password-button", disabled=not password, on_click=set_password
    )
    if me is not None and name == me.name:
        st.caption("You cannot remove yourself; another admin can.")
    else:
        sure = st.checkbox(f"Yes, {name} may no longer log in", key="remove-user-confirm")
        st.button("Remove user", key="remove-user-button", disabled=not sure, on_click=remove_user)
