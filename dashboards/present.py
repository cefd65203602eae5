"""How a page shows the warehouse's values to a person: words for codes, times in the reader's
time zone without an offset, money with its currency, and headers in words."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
import streamlit as st

from flows.settings import settings
from warehouse.contact_rows import RowNote
from warehouse.sendouts import Created
from warehouse.users import Role
from warehouse.vocabulary import (
    BOUNCE_REASON_WORDS,
    CHANNEL_WORDS,
    REASON_WORDS,
    SCOPE_WORDS,
    TYPE_WORDS,
    Channel,
    DisplayStatus,
    SendoutStatus,
    reason_words,
)

ROLE_WORDS = {str(role): str(role).capitalize() for role in Role}

WORDS = {
    "reason": {str(k): v for k, v in REASON_WORDS.items()},
    "bounce_reason": {str(k): v for k, v in BOUNCE_REASON_WORDS.items()},
    "scope": {str(k): v for k, v in SCOPE_WORDS.items()},
    "communication_type": {str(k): v for k, v in TYPE_WORDS.items()},
    "channel": {str(k): v for k, v in CHANNEL_WORDS.items()},
    "role": ROLE_WORDS,
}
TIME_FORMAT = "%Y-%m-%d %H:%M"  # sorts as it reads


def reason_name(reason: str) -> str:
    """Why an address is on the Unsubscribes list, in words."""
    return WORDS["reason"].get(str(reason), str(reason))


def entry_key(key: str) -> str:
    """An Unsubscribes entry's "<channel> <address>" as a person reads it: "Email: ..."."""
    channel, _, address = key.partition(" ")
    return f"{WORDS['channel'].get(channel, channel)}: {address}"


AUTOMATIC = "Sendout, automatically"  # who made a change its rules made


def who(name: str) -> str:
    """Who made a change, as a person reads it."""
    return AUTOMATIC if name == "sendout" else name


def by_whom(column: str) -> pl.Expr:
    """A column of who made each change, as a person reads it (`who`)."""
    return pl.col(column).replace_strict({"sendout": AUTOMATIC}, default=pl.col(column))


def role_name(role: str) -> str:
    """A role as a page names it: Viewer, Sender, Admin."""
    return ROLE_WORDS.get(str(role), str(role))


def time_zone() -> str:
    """The reader's time zone (their browser's), else UTC."""
    zone = st.context.timezone or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return zone


def local(moment: datetime) -> datetime:
    """A time in the reader's zone."""
    return moment.astimezone(ZoneInfo(time_zone()))


def money(amount: float | None) -> str:
    """An amount with two decimals and the currency: 12.34 GBP."""
    return f"{amount or 0:,.2f} {settings().currency}"


def readable(frame: pl.DataFrame) -> pl.DataFrame:
    """Codes as words, times as text in the reader's zone (no offset), and empty cells blank."""
    zone = time_zone()
    times = [
        name
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    ]
    return frame.with_columns(
        *(
            pl.col(name).replace_strict(words, default=pl.col(name))
            for name, words in WORDS.items()
            if name in frame.columns
        ),
        *(
            pl.col(name).dt.convert_time_zone(zone).dt.strftime(TIME_FORMAT).fill_null("")
            for name in times
        ),
    ).with_columns(pl.col(pl.String).fill_null(""))


def failure_reasons(column: str, channel: str) -> pl.Expr:
    """A column of reasons a delivery failed, in the words of its channel (a number for SMS,
    a mailbox for email)."""
    words = {str(reason): text for reason, text in reason_words(channel).items()}
    return pl.col(column).replace_strict(words, default=pl.col(column))


def skip_reasons(column: str) -> pl.Expr:
    """Why messages were skipped, in words: "On the Unsubscribes list (replied STOP)"."""
    said = pl.col(column)
    for code, words in WORDS["reason"].items():
        said = said.str.replace(f"({code})", f"({words[:1].lower()}{words[1:]})", literal=True)
    return said.str.slice(0, 1).str.to_uppercase() + said.str.slice(1)


def why_not_delivered(channel: str, sendout_status: str) -> pl.Expr:
    """A recipient row's Why, in words: why it failed, bounced or was delayed, why it was
    skipped, or (a message of a cancelled send-out still Queued) that it never went."""
    cancelled = pl.lit(sendout_status == SendoutStatus.CANCELLED)
    never_went = pl.when(cancelled & (pl.col("status") == str(DisplayStatus.QUEUED))).then(
        pl.lit("Cancelled before it went")
    )
    return pl.coalesce(
        failure_reasons("bounce_reason", channel), skip_reasons("skip_reason"), never_went
    )


def full_name() -> pl.Expr:
    """A person's first and last name as one, whichever of them is missing."""
    return pl.concat_str("first_name", "last_name", separator=" ", ignore_nulls=True)


def show_table(
    frame: pl.DataFrame,
    headers: dict[str, str],
    money_in: tuple[str, ...] = (),
    wide: tuple[str, ...] = (),
    narrow: tuple[str, ...] = (),
):
    """A table a person reads: the columns in `headers` only, in that order, under those
    words, with `readable` values, money in its currency, the `wide` columns (sentences)
    wide enough to read and the `narrow` ones (small counts) no wider than they need."""
    config: dict[str, object] = {
        name: (
            st.column_config.NumberColumn(header, format=f"%.2f {settings().currency}")
            if name in money_in
            else st.column_config.TextColumn(header, width="medium")
            if name in wide
            else st.column_config.NumberColumn(header, width="small")
            if name in narrow
            else header
        )
        for name, header in headers.items()
    }
    return st.dataframe(
        readable(frame),
        hide_index=True,
        width="stretch",
        column_order=list(headers),
        column_config=config,
    )


NOT_SENT_SHOWN = 20  # people left out listed in words; the send-out's page tables the rest


def not_sent(rows: list[RowNote], at_most: int = NOT_SENT_SHOWN) -> str:
    """The rows of a recipients CSV, or typed addresses, that could not be sent to (the first
    `at_most` of them)."""
    lines = [f"- {r.where}: {r.reason}" for r in rows[:at_most]]
    more = f"\n- and {len(rows) - at_most:,} more" if len(rows) > at_most else ""
    return f"Not sent to {len(rows):,} of the people given:\n" + "\n".join(lines) + more


# a channel's address a person may lack, and what they then do not get
NO_ADDRESS = {
    Channel.EMAIL: ("no email address", "emails"),
    Channel.SMS: ("no mobile number", "SMS"),
}


def people(count: int) -> str:
    return f"{count:,} {'person' if count == 1 else 'people'}"


def reach_words(reach: Created) -> list[str]:
    """What the question before sending adds to whom it reaches: who gets nothing on a
    channel for want of an address there, and who is left out and why."""
    notes = []
    for channel, count in reach.without.items():
        if count:
            lacking, what = NO_ADDRESS[Channel(channel)]
            has, gets = ("has", "gets") if count == 1 else ("have", "get")
            notes.append(f"{count:,} of the people chosen {has} {lacking} and {gets} no {what}.")
    if reach.rejected:
        notes.append(not_sent(reach.rejected, at_most=5))
    return notes


WAITING_SAID_AFTER = timedelta(minutes=2)  # the scheduler looks every minute


def minutes_overdue(status: str, due_at: datetime, done: int, now: datetime) -> int | None:
    """For how many minutes a send-out with `status`, due at `due_at`, has been due while none
    of its messages has an outcome (`done` 0): its dispatch never started (no scheduler) or
    died before the first message. None when that is not so, or for less than
    WAITING_SAID_AFTER."""
    late = now - due_at
    if status != SendoutStatus.SENDING or done or late < WAITING_SAID_AFTER:
        return None
    return int(late.total_seconds() // 60)


def sendout_overdue(rows: list[dict], now: datetime) -> int | None:
    """`minutes_overdue` of a send-out from its rows (one a channel, as its page reads them)."""
    first = rows[0]
    due_at = first["scheduled_at"] or first["created_at"]
    done = sum(r["done"] or 0 for r in rows)
    return minutes_overdue(first["sendout_status"], due_at, done, now)


def plain(text: str) -> str:
    """Text someone typed (a name, an SMS reply) as Markdown that shows it as it is: no link,
    image, emphasis or colour of its own."""
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~:$])", r"\\\1", text)


def minutes(count: int) -> str:
    """A while of `count` minutes in words: minutes up to 90, hours up to two days, then days."""
    if count < 90:
        unit = "minute"
    elif count < 48 * 60:
        count, unit = count // 60, "hour"
    else:
        count, unit = count // (24 * 60), "day"
    return f"{count:,} {unit}{'' if count == 1 else 's'}"


def waiting_words(late: int, cancel: bool) -> str:
    """What the page of a send-out says when it is `late` minutes overdue; with `cancel`, that
    the person can cancel it there."""
    return (
        f"Nothing has gone out yet, {minutes(late)} after it was due. Send-outs go out while "
        "Sendout's scheduler runs: ask whoever runs Sendout to check it"
        + (", or cancel it below." if cancel else ".")
    )
