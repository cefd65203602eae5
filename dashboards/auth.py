"""Who is using the dashboard, and what they may do. `gate` runs before any page: with users
defined and no live session only the login form renders; with none, the dashboard is open to
this machine only, as it always was. A session lives in the browser tab's Streamlit session and
ends after `session_idle_minutes` without a click (a reload of the tab also ends it). The role
is read again from the warehouse at every click, so a removed user or a changed role applies at
once; pages (app.py), buttons (views) and actions (actions.py) all ask `may`."""

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import streamlit as st

from dashboards import data
from flows.settings import settings
from warehouse import users
from warehouse.audit import Actor, operator
from warehouse.users import Role

SESSION = "person"  # session_state: {"name": ..., "seen": epoch seconds of the last full run}
ASKED_FOR = "asked-for"  # session_state: (page's url path, query) a link led to before login


class NotAllowed(PermissionError):
    """A person asked for something their role does not allow (the page did not offer it)."""


@dataclass(frozen=True)
class Person:
    name: str
    role: Role
    logged_in: bool  # False: no users are defined, and this machine's user acts


def _idle_limit() -> float:
    return settings().session_idle_minutes * 60


def _open_to_others() -> bool:
    """Whether this server can be reached from other machines: its address, or a visitor's."""
    address = st.get_option("server.address")
    visitor = st.context.ip_address  # None from this machine (a test's stand-in is no str)
    return (address is not None and not users.is_loopback(address)) or isinstance(visitor, str)


def current() -> Person | None:
    """The person of this session, or None when nobody is logged in (or the session ended)."""
    if not data.user_count():
        return Person(operator().name, Role.ADMIN, logged_in=False)
    session = st.session_state.get(SESSION)
    if not session or time.time() - session["seen"] > _idle_limit():
        return None
    role = data.user_role(session["name"])
    return None if role is None else Person(session["name"], Role(role), logged_in=True)


def may(needed: Role) -> bool:
    """Whether the person here may do what needs `needed` (pages and buttons ask this)."""
    person = current()
    return person is not None and users.allows(person.role, needed)


def require(needed: Role) -> Actor:
    """The person acting, checked again on the server side: NotAllowed if their role does not
    allow it, whatever the page showed."""
    person = current()
    if person is None:
        raise NotAllowed("Your session has ended; log in again.")
    if not users.allows(person.role, needed):
        raise NotAllowed(
            f"Your role ({person.role}) does not allow this; it needs {needed} or above."
        )
    return Actor(person.name, "dashboard")


def still_here() -> None:
    """For fragments that re-run by themselves: once the session has ended, the whole app runs
    again and shows the login form instead of fresh data."""
    if data.user_count() and current() is None:
        st.rerun(scope="app")


def gate() -> Person:
    """Who is here, before any page runs; otherwise the login form (or why the dashboard will
    not serve), and the run stops."""
    if not data.user_count():
        if _open_to_others():
            st.error(users.NO_USERS_ELSEWHERE, icon=":material/lock:")
            st.stop()
        st.sidebar.caption(
            "No logins are set up: anyone on this machine can use this dashboard. "
            f"`{users.FIRST_USER}` adds the first user."
        )
        return current()
    session = st.session_state.get(SESSION)
    person = current()
    if person is None:
        if session:
            st.session_state.clear()  # nothing of theirs (a draft, a question) for the next
            st.session_state["login-note"] = "Your session ended; please log in again."
            if settings().dashboard_login == "oidc":
                st.logout()  # else the identity provider's cookie would log them in at once
        path = urlsplit(st.context.url or "").path.strip("/")  # the URL here has no query
        st.session_state.setdefault(ASKED_FOR, (path, st.query_params.to_dict()))
        _login_page()
        st.stop()
    session["seen"] = time.time()
    _sidebar(person)
    return person


def go_where_asked(pages: list[st.Page]) -> None:
    """After logging in, open the page a link led to (a send-out's details, say), with its
    query, if the person's role offers it; otherwise the page they are on stays."""
    path, query = st.session_state.pop(ASKED_FOR, ("", {}))
    asked = next((page for page in pages if path and page.url_path == path), None)
    if asked is not None:
        st.switch_page(asked, query_params=query)


def _login_page() -> None:
    """The login form alone: nothing of the warehouse's data is read or shown."""
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        st.title("Sendout")
        if settings().dashboard_login == "oidc":
            _oidc_login()
        else:
            _password_login()


def _password_login() -> None:
    if note := st.session_state.pop("login-note", None):
        st.info(note, icon=":material/info:")
    with st.form("login"):
        name = st.text_input("User name", key="login-name")
        password = st.text_input("Password", type="password", key="login-password")
        pressed = st.form_submit_button("Log in", type="primary")
    if pressed and not (name.strip() and password):  # no attempt: nothing to check, or count
        st.error("Enter your user name and your password.", icon=":material/error:")
    elif pressed:
        from dashboards import actions  # actions import this module

        attempt = actions.log_in(name, password)
        if attempt.user is None:
            st.error(attempt.message, icon=":material/error:")
            return
        st.session_state[SESSION] = {"name": attempt.user.user_name, "seen": time.time()}
        st.rerun()


def _oidc_login() -> None:
    """The organisation's identity provider logs people in (st.login, configured in
    .streamlit/secrets.toml); the users table still says what each may do."""
    if not st.user.is_logged_in:
        st.button("Log in with your organisation's account", on_click=st.login, type="primary")
        return
    email = (st.user.get("email") or "").lower()
    if data.user_role(email) is None:
        st.warning(
            f"You are logged in as {email}, who has no role here: ask an admin to run "
            f"`sendout users add {email} --role viewer --no-password`.",
            icon=":material/lock:",
        )
        st.button("Log out", on_click=st.logout)
        return
    st.session_state[SESSION] = {"name": email, "seen": time.time()}
    st.rerun()


def _sidebar(person: Person) -> None:
    st.sidebar.caption(f"Logged in as **{person.name}** ({person.role})")
    if st.sidebar.button("Log out", key="log-out"):
        st.session_state.clear()  # nothing of theirs (a draft, a question) for the next person
        if settings().dashboard_login == "oidc":
            st.logout()
        st.rerun()
