"""Users, roles, the login throttle and the audit record, in the warehouse and through the CLI."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from flows.cli import cli
from flows.settings import settings
from tests.warehouse_builders import add_people
from warehouse import audit, sendouts, unsubscribes, users
from warehouse.db import open_warehouse
from warehouse.sendouts import Draft, Recipients

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def con(db_path):
    with open_warehouse(db_path) as connection:
        yield connection


@pytest.fixture
def delays(monkeypatch):
    """A 1 s first delay, up to 15 minutes (the defaults, stated)."""
    monkeypatch.setenv("SENDOUT_LOGIN_DELAY_SECONDS", "1")
    monkeypatch.setenv("SENDOUT_LOGIN_DELAY_MAX_SECONDS", "900")
    settings.cache_clear()
    yield
    settings.cache_clear()


def test_a_password_is_stored_as_an_argon2_hash_and_logs_in(con):
    users.add(con, "Ada", "sender", "correct horse battery", by="root")

    stored = con.sql("SELECT user_name, role, password_hash FROM users").fetchall()
    login = users.log_in(con, "ada", "correct horse battery", now=T0)

    assert stored[0][:2] == ("ada", "sender")
    assert stored[0][2].startswith("$argon2id$") and "correct" not in stored[0][2]
    assert login.user.user_name == "ada" and login.user.role == users.Role.SENDER


def test_a_wrong_password_and_an_unknown_name_get_the_same_refusal(con, delays):
    users.add(con, "ada", "viewer", "correct horse battery")

    wrong_password = users.log_in(con, "ada", "guess guess guess", now=T0)
    unknown_name = users.log_in(con, "bob", "guess guess guess", now=T0)

    assert wrong_password.user is None and unknown_name.user is None
    assert wrong_password.message == unknown_name.message
    assert wrong_password.message.startswith("Wrong user name or password.")


def test_after_a_wrong_password_the_next_attempt_must_wait_even_with_the_right_one(con, delays):
    users.add(con, "ada", "viewer", "correct horse battery")

    first = users.log_in(con, "ada", "guess guess guess", now=T0)
    too_soon = users.log_in(con, "ada", "correct horse battery", now=T0 + timedelta(seconds=0.5))
    second = users.log_in(con, "ada", "another guess", now=T0 + timedelta(seconds=1))
    later = users.log_in(con, "ada", "correct horse battery", now=T0 + timedelta(seconds=3))

    assert first.wait_seconds == 1
    assert too_soon.user is None and too_soon.message.startswith("Too many failed attempts")
    assert second.wait_seconds == 2  # doubled
    assert later.user is not None
    # a success forgets the name's failures
    assert con.sql(
        "SELECT count(*) FROM login_throttles WHERE throttle_key = 'user:ada'"
    ).fetchall() == [(0,)]


def test_the_throttle_survives_a_restart(db_path, delays):
    with open_warehouse(db_path) as con:
        users.add(con, "ada", "viewer", "correct horse battery")
        users.log_in(con, "ada", "guess guess guess", now=T0)
    with open_warehouse(db_path) as con:  # a new process would open it like this
        again = users.log_in(con, "ada", "correct horse battery", now=T0)

    assert again.user is None and again.wait_seconds == 1


def test_many_failures_across_names_slow_every_attempt(con, delays):
    users.add(con, "ada", "viewer", "correct horse battery")
    for n in range(users.FREE_FAILURES_OVERALL + 1):
        users.log_in(con, f"name{n}", "guess guess guess", now=T0)

    refused = users.log_in(con, "ada", "correct horse battery", now=T0)

    assert refused.user is None and refused.message.startswith("Too many failed attempts")


def test_the_last_admin_stays_while_other_users_exist(con):
    users.add(con, "root", "admin", "correct horse battery")
    users.add(con, "ada", "viewer", "correct horse battery")

    with pytest.raises(users.UserError, match="last admin"):
        users.remove(con, "root")
    with pytest.raises(users.UserError, match="last admin"):
        users.set_role(con, "root", "sender")
    with pytest.raises(users.UserError, match="at least 10 characters"):
        users.set_password(con, "ada", "short")
    with pytest.raises(users.UserError, match="only spaces"):
        users.set_password(con, "ada", " " * 12)
    with pytest.raises(users.UserError, match="without accents"):
        users.add(con, "zoë", "viewer", "correct horse battery")
    with pytest.raises(users.UserError, match="not a role"):
        users.add(con, "bob", "owner", "correct horse battery")


def test_roles_rank_viewer_sender_admin():
    assert users.allows("admin", "sender") and users.allows("sender", "sender")
    assert not users.allows("viewer", "sender") and not users.allows(None, "viewer")
    assert users.is_loopback("127.0.0.1") and users.is_loopback("localhost")
    assert not users.is_loopback("0.0.0.0") and not users.is_loopback("")


# an email to every contact, for tomorrow
TOMORROW = Draft(
    name="News",
    channels=["email"],
    communication_type="marketing",
    recipients=Recipients(all_contacts=True),
    subject="Hi",
    text_body="Hello",
    scheduled_at=datetime.now(UTC) + timedelta(days=1),
)


def test_the_audit_record_names_who_sent_cancelled_and_changed_the_list(db_path):
    add_people(db_path, 3)
    sender = audit.Actor("sam", "dashboard")
    with open_warehouse(db_path) as con:
        created = sendouts.create(con, TOMORROW, by=sender)
        sendouts.cancel(con, created.sendout_id, by=sender)
        unsubscribes.add(con, "email", "a@example.org", "all", sender, "asked")
        unsubscribes.remove(con, "email", "a@example.org", audit.Actor("root", "dashboard"), "oops")
        found = audit.entries(con)

    assert [(e["done_by"], e["via"], e["action"]) for e in reversed(found)] == [
        ("sam", "dashboard", "schedule"),
        ("sam", "dashboard", "cancel"),
        ("sam", "dashboard", "unsubscribe_add"),
        ("root", "dashboard", "unsubscribe_remove"),
    ]
    assert found[-1]["subject"] == created.sendout_id and "'News'" in found[-1]["detail"]


def test_the_audit_record_says_sending_started_only_when_it_did(db_path, tmp_path, monkeypatch):
    monkeypatch.setenv("SENDOUT_USER", "ops")
    monkeypatch.setenv("SENDOUT_LANDING", str(tmp_path / "landing"))  # the sandbox's
    settings.cache_clear()
    add_people(db_path, 3)
    with open_warehouse(db_path) as con:
        scheduled = sendouts.create(con, TOMORROW).sendout_id
        cancelled = sendouts.create(con, replace(TOMORROW, name="Off")).sendout_id
        sendouts.cancel(con, cancelled)
        now = sendouts.create(con, replace(TOMORROW, scheduled_at=None)).sendout_id
    dispatch = ["--db", str(db_path), "dispatch"]

    not_due = CliRunner().invoke(cli, [*dispatch, scheduled])
    off = CliRunner().invoke(cli, [*dispatch, cancelled])
    sent = CliRunner().invoke(cli, [*dispatch, now])

    assert "is scheduled for" in not_due.output and "was cancelled" in off.output
    assert sent.exit_code == 0, sent.output
    with open_warehouse(db_path) as con:
        started = [e for e in audit.entries(con) if e["action"] == "send"]
    assert [(e["done_by"], e["via"], e["subject"]) for e in started] == [("ops", "cli", now)]


def test_the_cli_manages_users_and_records_the_operator(db_path, monkeypatch):
    monkeypatch.setenv("SENDOUT_USER", "ops")
    runner = CliRunner()
    base = ["--db", str(db_path), "users"]

    added = runner.invoke(
        cli, [*base, "add", "Ada", "--role", "sender", "--password-stdin"], input="long enough pw\n"
    )
    role = runner.invoke(cli, [*base, "set-role", "ada", "admin"])
    password = runner.invoke(
        cli, [*base, "set-password", "ada", "--password-stdin"], input="another long one\n"
    )
    listed = runner.invoke(cli, [*base, "list"])
    short = runner.invoke(
        cli, [*base, "add", "bob", "--role", "viewer", "--password-stdin"], input="short\n"
    )

    assert added.exit_code == 0, added.output
    assert "ada is now admin" in role.output and password.exit_code == 0
    assert listed.output.split()[:2] == ["ada", "admin"]
    assert short.exit_code == 1
    assert "Error: a password needs at least 10 characters" in short.output
    with open_warehouse(db_path) as con:
        login = users.log_in(con, "ada", "another long one")
        entries = audit.entries(con)
    assert login.user is not None
    assert [(e["done_by"], e["action"]) for e in reversed(entries)] == [
        ("ops", "user_add"),
        ("ops", "user_set_role"),
        ("ops", "user_set_password"),
        ("ada", "log_in"),
    ]


def test_the_cli_says_when_no_user_is_an_admin(db_path):
    base = ["--db", str(db_path), "users"]
    runner = CliRunner()

    viewer = runner.invoke(
        cli, [*base, "add", "ann", "--role", "viewer", "--password-stdin"], input="long enough pw\n"
    )
    admin = runner.invoke(cli, [*base, "set-role", "ann", "admin"])

    assert viewer.exit_code == 0 and "added ann (viewer)" in viewer.stdout
    assert "no user is an admin" in viewer.stderr
    assert "sendout users set-role NAME admin" in viewer.stderr
    assert admin.exit_code == 0 and admin.stderr == ""


def test_the_dashboard_refuses_another_address_without_users(db_path):
    refused = CliRunner().invoke(cli, ["--db", str(db_path), "dashboard", "--address", "0.0.0.0"])

    assert refused.exit_code == 1
    assert (
        "has no users" in refused.output and "sendout users add NAME --role admin" in refused.output
    )


def test_the_demo_has_an_admin_whose_password_is_printed_once(tmp_path, monkeypatch):
    monkeypatch.setenv("SENDOUT_LANDING", str(tmp_path / "landing"))
    settings.cache_clear()
    db = tmp_path / "demo.duckdb"

    built = CliRunner().invoke(cli, ["--db", str(db), "demo", "--contacts", "20"])
    password = built.output.split("with the password ")[1].split()[0]

    assert built.exit_code == 0, built.output
    assert built.output.count(password) == 1
    with open_warehouse(db) as con:
        login = users.log_in(con, "demo-admin", password)
    assert login.user.role == users.Role.ADMIN
    settings.cache_clear()
