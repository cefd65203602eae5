"""Who may use the dashboard: users with a role and an Argon2 password hash, and the login check
that slows down guessing. Roles rank viewer < sender < admin; what each may do is decided by
`allows`, which both the dashboard's pages and its actions ask.

Throttling is kept in the warehouse (`login_throttles`) so that restarting the dashboard does
not reset it: after a wrong password the next attempt at that user name must wait, twice as
long after each further failure; and past a number of failures across all names (someone
trying many names), every attempt waits. A refusal never says whether the name or the password
was wrong."""

import ipaddress
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache

import duckdb
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from warehouse.audit import Actor, AuditAction, record
from warehouse.db import transaction
from warehouse.settings import WarehouseSettings

NAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,63}$")
MIN_PASSWORD = 10
ALL_NAMES = "*"  # the throttle key of every attempt
FREE_FAILURES_OVERALL = 20  # failures across all names before every attempt waits
QUIET_RESET = timedelta(hours=1)  # a key's failures are forgotten after this long without one
WRONG = "Wrong user name or password."
FIRST_USER = "sendout users add NAME --role admin"
NO_USERS_ELSEWHERE = (
    "The dashboard has no users, so it serves this machine only (127.0.0.1): add one with "
    f"`{FIRST_USER}` before serving it on another address."
)


class Role(StrEnum):
    VIEWER = "viewer"  # reads pages and exports
    SENDER = "sender"  # also composes, sends, schedules, cancels, resends, adds unsubscribes
    ADMIN = "admin"  # also removes unsubscribes, corrects addresses, manages users


RANK = {Role.VIEWER: 0, Role.SENDER: 1, Role.ADMIN: 2}


class UserError(ValueError):
    """A change to the users that cannot be made; the message is one sentence for a person."""


@dataclass(frozen=True)
class User:
    user_name: str
    role: Role
    created_at: datetime
    password_changed_at: datetime | None
    has_password: bool


@dataclass(frozen=True)
class Login:
    """What a login attempt came to: the user, or why not and how long the next must wait."""

    user: User | None
    message: str = ""
    wait_seconds: float = 0.0


def allows(role: Role | str | None, needed: Role | str) -> bool:
    """Whether someone with `role` may do what needs `needed`."""
    return role is not None and RANK[Role(role)] >= RANK[Role(needed)]


def is_loopback(address: str) -> bool:
    """Whether a server address reaches this machine only (an empty address is every one)."""
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip()).is_loopback
    except ValueError:
        return False


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id with the library's recommended cost


@cache
def _decoy_hash() -> str:
    """A hash to check an unknown name against, so it takes as long as a known one."""
    return _hasher().hash("no such user, no such password")


def normalise_name(name: str) -> str:
    """A user name as stored: trimmed and lower-cased (an email works as a name)."""
    cleaned = name.strip().lower()
    if not NAME.match(cleaned):
        raise UserError(
            f"{name!r} cannot be a user name: use up to 64 of the letters a to z (without "
            "accents), digits and . _ @ + -, starting with a letter or digit"
        )
    return cleaned


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise UserError(f"{role!r} is not a role: choose viewer, sender or admin") from None


def _hash(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    if not password.strip():
        raise UserError("a password cannot be only spaces")
    return _hasher().hash(password)


def users(con: duckdb.DuckDBPyConnection) -> list[User]:
    """Every user, by name."""
    rows = con.execute(
        "SELECT user_name, role, created_at, password_changed_at, password_hash IS NOT NULL "
        "FROM users ORDER BY user_name"
    ).fetchall()
    return [User(name, Role(role), *rest) for name, role, *rest in rows]


def count(con: duckdb.DuckDBPyConnection) -> int:
    """How many users there are: with none, the dashboard serves this machine only, unguarded."""
    return con.execute("SELECT count(*) FROM users").fetchall()[0][0]


def find(con: duckdb.DuckDBPyConnection, name: str) -> User | None:
    """One user by name, or None."""
    return next((u for u in users(con) if u.user_name == name.strip().lower()), None)


def _existing(con: duckdb.DuckDBPyConnection, name: str) -> User:
    found = find(con, name)
    if found is None:
        raise UserError(f"there is no user {name.strip().lower()!r}")
    return found


def add(
    con: duckdb.DuckDBPyConnection,
    name: str,
    role: Role | str,
    password: str | None,
    by: Actor | str | None = None,
) -> User:
    """Add a user. Without a password they can only log in through the identity provider."""
    name, role = normalise_name(name), _role(role)
    hashed = None if password is None else _hash(password)
    with transaction(con):
        if find(con, name) is not None:
            raise UserError(f"there is a user {name!r} already")
        con.execute(
            "INSERT INTO users (user_name, role, password_hash, password_changed_at) "
            "VALUES (?, ?, ?, CASE WHEN ? IS NULL THEN NULL ELSE current_timestamp END)",
            [name, str(role), hashed, hashed],
        )
        record(con, by, AuditAction.USER_ADD, name, f"role {role}")
    return _existing(con, name)


def _refuse_last_admin(con: duckdb.DuckDBPyConnection, user: User, what: str) -> None:
    admins = [u for u in users(con) if u.role == Role.ADMIN]
    others = count(con) > 1
    if user.role == Role.ADMIN and len(admins) == 1 and others:
        raise UserError(
            f"the last admin is {user.user_name}; make another user admin before {what}"
        )


def remove(con: duckdb.DuckDBPyConnection, name: str, by: Actor | str | None = None) -> User:
    """Remove a user: their sessions end at their next click. Not oneself on the dashboard:
    the session would end with no way back in (at the command line it may be a way out)."""
    with transaction(con):
        user = _existing(con, name)
        if isinstance(by, Actor) and by.via == "dashboard" and by.name == user.user_name:
            raise UserError("you cannot remove yourself; another admin can")
        _refuse_last_admin(con, user, "removing them")
        con.execute("DELETE FROM users WHERE user_name = ?", [user.user_name])
        con.execute(
            "DELETE FROM login_throttles WHERE throttle_key = ?", [f"user:{user.user_name}"]
        )
        record(con, by, AuditAction.USER_REMOVE, user.user_name, f"was {user.role}")
    return user


def set_role(
    con: duckdb.DuckDBPyConnection, name: str, role: Role | str, by: Actor | str | None = None
) -> User:
    """Give a user another role (it applies at their next click)."""
    role = _role(role)
    with transaction(con):
        user = _existing(con, name)
        if role != Role.ADMIN:
            _refuse_last_admin(con, user, "changing their role")
        con.execute("UPDATE users SET role = ? WHERE user_name = ?", [str(role), user.user_name])
        record(con, by, AuditAction.USER_SET_ROLE, user.user_name, f"{user.role} → {role}")
    return _existing(con, name)


def set_password(
    con: duckdb.DuckDBPyConnection, name: str, password: str, by: Actor | str | None = None
) -> None:
    """Give a user a new password (the old one stops working at once)."""
    hashed = _hash(password)
    with transaction(con):
        user = _existing(con, name)
        con.execute(
            "UPDATE users SET password_hash = ?, password_changed_at = current_timestamp "
            "WHERE user_name = ?",
            [hashed, user.user_name],
        )
        con.execute(
            "DELETE FROM login_throttles WHERE throttle_key = ?", [f"user:{user.user_name}"]
        )
        record(con, by, AuditAction.USER_SET_PASSWORD, user.user_name, "password changed")


def _wait_until(con: duckdb.DuckDBPyConnection, keys: list[str]) -> datetime | None:
    rows = con.execute(
        "SELECT max(blocked_until) FROM login_throttles WHERE throttle_key IN (SELECT unnest(?))",
        [keys],
    ).fetchall()
    return rows[0][0]


def delay(failures: int, free: int, config: WarehouseSettings) -> float:
    """Seconds the next attempt waits after `failures` failures (none while within `free`):
    the base delay, doubled for each further failure, up to the maximum."""
    if failures <= free:
        return 0.0
    return min(
        config.login_delay_seconds * 2 ** (failures - free - 1), config.login_delay_max_seconds
    )


def _count_failure(
    con: duckdb.DuckDBPyConnection,
    key: str,
    free: int,
    now: datetime,
    config: WarehouseSettings,
) -> float:
    row = con.execute(
        "SELECT failures, last_failed_at FROM login_throttles WHERE throttle_key = ?", [key]
    ).fetchall()
    failures = 1 if not row or now - row[0][1] > QUIET_RESET else row[0][0] + 1
    wait = delay(failures, free, config)
    con.execute(
        "INSERT OR REPLACE INTO login_throttles VALUES (?, ?, ?, ?)",
        [key, failures, now, now + timedelta(seconds=wait)],
    )
    return wait


def _password_matches(stored: str | None, password: str) -> bool:
    try:
        return _hasher().verify(stored or _decoy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def log_in(
    con: duckdb.DuckDBPyConnection,
    name: str,
    password: str,
    now: datetime | None = None,
    config: WarehouseSettings | None = None,
) -> Login:
    """Check a user name and password, within the throttle (`config`'s delays; the embedded
    ones if none). While a wait is running, the attempt is refused without looking at the
    password, so guessing cannot go faster."""
    now = now or datetime.now(UTC)
    config = config or WarehouseSettings.embedded()
    cleaned = name.strip().lower()
    keys = [f"user:{cleaned}", ALL_NAMES]
    blocked = _wait_until(con, keys)
    if blocked is not None and blocked > now:
        wait = (blocked - now).total_seconds()
        return Login(
            None, f"Too many failed attempts: wait {math.ceil(wait)} s and try again.", wait
        )
    stored = con.execute(
        "SELECT password_hash FROM users WHERE user_name = ?", [cleaned]
    ).fetchall()
    if not _password_matches(stored[0][0] if stored else None, password):
        with transaction(con):
            wait = max(
                _count_failure(con, keys[0], 0, now, config),
                _count_failure(con, ALL_NAMES, FREE_FAILURES_OVERALL, now, config),
            )
        return Login(None, f"{WRONG} The next attempt can be made in {math.ceil(wait)} s.", wait)
    with transaction(con):
        con.execute("DELETE FROM login_throttles WHERE throttle_key = ?", [keys[0]])
        if _hasher().check_needs_rehash(stored[0][0]):
            con.execute(
                "UPDATE users SET password_hash = ? WHERE user_name = ?",
                [_hasher().hash(password), cleaned],
            )
        record(con, Actor(cleaned, "dashboard"), AuditAction.LOG_IN, cleaned)
    return Login(_existing(con, cleaned))
