"""Final status of each message and the figures of each send-out, computed with polars.

Every function here is a pure LazyFrame transform, so it can be tested on frames built by hand;
`warehouse.refresh` reads the inputs from the warehouse and writes the results back.
"""

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from warehouse.sms import segments
from warehouse.vocabulary import (
    DISPLAY_STATUS,
    SENT_EVIDENCE,
    STATUS_COLUMNS,
    STATUS_RANK,
    BounceKind,
    BounceReason,
    Channel,
    DisplayStatus,
    EventType,
)

MONEY_DECIMALS = 6  # costs are rounded to a millionth of the currency unit
# Event types in ascending rank, as a polars Enum whose physical codes sort like the ranks.
# bad_email and bad_number share a rank but never meet on one message, so adjacent codes do.
# `unsubscribed` (a flag, not a status) comes last and is kept out of the ranking.
RANKED_EVENTS = sorted(STATUS_RANK, key=lambda e: (STATUS_RANK[e], e == EventType.BAD_NUMBER))
EVENT_CODES = [str(e) for e in RANKED_EVENTS] + [str(EventType.UNSUBSCRIBED)]
EVENT_ENUM = pl.Enum(EVENT_CODES)
KIND_SCORE = {str(BounceKind.SOFT): 1, str(BounceKind.HARD): 2}  # the harder bounce wins
KIND_ENUM = pl.Enum(sorted(KIND_SCORE, key=KIND_SCORE.get))  # physical code + 1 is the score
# read back (message_status) through KIND_SCORE: scores must be the positions + 1, below 4
assert sorted(KIND_SCORE.values()) == list(range(1, len(KIND_SCORE) + 1)) and len(KIND_SCORE) < 4
DISPLAY = {code: str(DISPLAY_STATUS[e]) for code, e in enumerate(RANKED_EVENTS)}


def _code(event: EventType) -> int:
    return EVENT_CODES.index(str(event))


@dataclass(frozen=True)
class Prices:
    """What one email and one SMS segment cost (configuration, DESIGN §5)."""

    email: float
    sms_segment: float


def _when(condition: pl.Expr) -> pl.Expr:
    return pl.when(condition).then(pl.col("occurred_at"))


def message_outcomes(events: pl.LazyFrame) -> pl.LazyFrame:
    """One row per message from its events: the highest-ranked event and the engagement facts.

    Input columns: message_id, event_type, occurred_at, is_machine_open, bounce_kind,
    bounce_reason. Arrival order and duplicates do not matter: only ranks, counts and minimum
    times are used. The top event and its bounce kind are one number, `top_key` = code * 4 +
    kind score, and with the precision of its bounce reason another, `ranked` = top_key * 16
    + precision, so one maximum picks all three (`_top_event`). A machine's click (a link
    scanner's) proves no more than a machine's open, so it counts as one. Every column is a
    maximum, sum, minimum or "any" (or the top event's), so the outcomes of two sets of events
    merge into those of both (`merge_outcomes`).
    """
    code = pl.col("code")
    sent_evidence = [_code(e) for e in SENT_EVIDENCE]
    opens = [_code(EventType.OPENED), _code(EventType.CLICKED)]
    return (
        events.with_columns(code=pl.col("event_type").cast(EVENT_ENUM).to_physical().cast(pl.Int32))
        .with_columns(
            code=pl.when((code == _code(EventType.CLICKED)) & pl.col("is_machine_open"))
            .then(_code(EventType.OPENED))
            .otherwise(code)
        )
        .with_columns(
            top_key=pl.when(code < len(RANKED_EVENTS)).then(
                code * 4
                + (pl.col("bounce_kind").cast(KIND_ENUM, strict=False).to_physical() + 1)
                .fill_null(0)
                .cast(pl.Int32)
            )
        )
        .with_columns(_ranked())
        .group_by("message_id")
        .agg(
            pl.col("ranked").max(),
            open_count=(code == _code(EventType.OPENED)).sum().cast(pl.Int32),
            click_count=(code == _code(EventType.CLICKED)).sum().cast(pl.Int32),
            machine_open_count=((code == _code(EventType.OPENED)) & pl.col("is_machine_open"))
            .sum()
            .cast(pl.Int32),
            first_sent_at=_when(code.is_in(sent_evidence)).min(),
            delivered_at=_when(code == _code(EventType.DELIVERED)).min(),
            first_opened_at=_when(code.is_in(opens)).min(),
            first_clicked_at=_when(code == _code(EventType.CLICKED)).min(),
            has_unsubscribed=(code == _code(EventType.UNSUBSCRIBED)).any(),
            has_complained=(code == _code(EventType.COMPLAINT)).any(),
        )
        .with_columns(_top_event())
        .select("message_id", *OUTCOME_COLUMNS)
    )


#: Bounce reasons from the least precise to the most (the vocabulary lists `other` last): a
#: reason's precision is its code here plus one, 0 for none.
REASON_ENUM = pl.Enum([str(r) for r in reversed(BounceReason)])
REASON_BY_PRECISION = {code + 1: reason for code, reason in enumerate(REASON_ENUM.categories)}
REASON_SLOTS = 16  # more than there are reasons
assert len(BounceReason) < REASON_SLOTS


def _ranked() -> pl.Expr:
    """`ranked`: an event's top_key and its bounce reason's precision in one number, whose
    maximum is the top event with, among equal top events, the most precise reason, so that
    every grouping of the events gives the same one (a sort within each message took three
    times as long)."""
    precision = pl.col("bounce_reason").cast(REASON_ENUM, strict=False).to_physical() + 1
    return (pl.col("top_key") * REASON_SLOTS + precision.fill_null(0).cast(pl.Int32)).alias(
        "ranked"
    )


def _top_event() -> list[pl.Expr]:
    """top_key and bounce_reason from the maximum of `ranked`."""
    return [
        (pl.col("ranked") // REASON_SLOTS).cast(pl.Int32).alias("top_key"),
        (pl.col("ranked") % REASON_SLOTS)
        .replace_strict(REASON_BY_PRECISION, default=None, return_dtype=pl.String)
        .alias("bounce_reason"),
    ]


#: How each column of `message_outcomes` combines over two sets of events.
_MERGE = {
    "open_count": pl.Expr.sum,
    "click_count": pl.Expr.sum,
    "machine_open_count": pl.Expr.sum,
    "first_sent_at": pl.Expr.min,
    "delivered_at": pl.Expr.min,
    "first_opened_at": pl.Expr.min,
    "first_clicked_at": pl.Expr.min,
    "has_unsubscribed": pl.Expr.any,
    "has_complained": pl.Expr.any,
}
OUTCOME_COLUMNS = ["top_key", *_MERGE, "bounce_reason"]


def merge_outcomes(known: pl.LazyFrame, new: pl.LazyFrame) -> pl.LazyFrame:
    """The outcomes of the events behind `known` and `new` together (each distinct event must
    be in one of them only): what a message's stored status and its new events make."""
    return (
        pl.concat([known.select("message_id", *OUTCOME_COLUMNS), new], how="vertical_relaxed")
        .with_columns(_ranked())
        .group_by("message_id")
        .agg(
            pl.col("ranked").max(),
            *(merge(pl.col(name)).alias(name) for name, merge in _MERGE.items()),
        )
        .with_columns(_top_event())
        .with_columns(pl.col("open_count", "click_count", "machine_open_count").cast(pl.Int32))
        .select("message_id", *OUTCOME_COLUMNS)
    )


def message_facts(messages: pl.LazyFrame) -> pl.LazyFrame:
    """What a message's status needs to know of it, from its `messages` row: its ids, channel
    and recipient, and for an SMS how many segments its text is billed as."""
    return messages.select(
        "message_id",
        "sendout_id",
        "channel",
        "recipient",
        sms_segments=pl.when(pl.col("channel") == str(Channel.SMS)).then(
            segments(pl.col("sms_text"))
        ),
    )


def message_status(
    messages: pl.LazyFrame, outcomes: pl.LazyFrame, prices: Prices, refreshed_at: datetime
) -> pl.LazyFrame:
    """The `message_status` rows: every message, with or without events yet.

    Input `messages`: `message_facts` (message_id, sendout_id, channel, recipient,
    sms_segments), from the messages or from their stored status rows.
    """
    top_code = pl.col("top_key") // 4
    status = top_code.replace_strict(DISPLAY, default=None, return_dtype=pl.String).fill_null(
        str(DisplayStatus.QUEUED)
    )
    billable = top_code.is_not_null() & (status != str(DisplayStatus.SKIPPED))
    bounce_kind = (
        pl.col("top_key")
        .mod(4)
        .replace_strict({v: k for k, v in KIND_SCORE.items()}, default=None, return_dtype=pl.String)
    )
    units = pl.when(pl.col("channel") == str(Channel.SMS)).then(pl.col("sms_segments"))
    unit_price = pl.when(pl.col("channel") == str(Channel.SMS))
    return (
        messages.join(outcomes, on="message_id", how="left")
        .with_columns(
            pl.col("open_count", "click_count", "machine_open_count").fill_null(0),
            pl.col("has_unsubscribed", "has_complained").fill_null(False),
        )
        .select(
            "message_id",
            "sendout_id",
            "channel",
            "recipient",
            status.alias("status"),
            ((pl.col("open_count") > 0) | (pl.col("click_count") > 0)).alias("is_opened"),
            (pl.col("click_count") > 0).alias("is_clicked"),
            "open_count",
            "click_count",
            "first_sent_at",
            "delivered_at",
            "first_opened_at",
            "first_clicked_at",
            (
                (pl.col("open_count") > 0)
                & (pl.col("machine_open_count") == pl.col("open_count"))
                & (pl.col("click_count") == 0)
            ).alias("is_machine_open_only"),
            bounce_kind.alias("bounce_kind"),
            "bounce_reason",
            "has_unsubscribed",
            "has_complained",
            pl.when(billable)
            .then(units.otherwise(1))
            .otherwise(0)
            .cast(pl.Int32)
            .alias("billable_units"),
            "top_key",
            "machine_open_count",
            pl.col("sms_segments").cast(pl.Int32),
        )
        .with_columns(
            cost=(
                pl.col("billable_units")
                * unit_price.then(prices.sms_segment).otherwise(prices.email)
            ).round(MONEY_DECIMALS),
            refreshed_at=pl.lit(refreshed_at, dtype=pl.Datetime("us", "UTC")),
        )
    )


#: What `sendout_status_groups` (and `channel_stats`' input) groups messages by.
GROUP_KEYS = [
    "sendout_id",
    "channel",
    "status",
    "has_outcome",
    "is_opened",
    "is_clicked",
    "is_machine_open_only",
]


def status_groups(statuses: pl.LazyFrame) -> pl.LazyFrame:
    """`sendout_status_groups` rows from `message_status` rows: how many messages of a send-out
    and channel fall in each combination the figures count, their cost and earliest times."""
    return (
        statuses.with_columns(has_outcome=pl.col("top_key").is_not_null())
        .group_by(GROUP_KEYS)
        .agg(
            messages=pl.len().cast(pl.Int64),
            cost=pl.col("cost").sum(),
            first_sent_at=pl.col("first_sent_at").min(),
            delivered_at=pl.col("delivered_at").min(),
        )
    )


def move_groups(stored: pl.LazyFrame, added: pl.LazyFrame, removed: pl.LazyFrame) -> pl.LazyFrame:
    """The groups once the messages whose old `message_status` rows are `removed` have their
    new rows `added`. Counts and costs add up. A message's first times only ever move earlier,
    so the earliest time of a send-out stays right even where a group keeps the time of a
    message that has left it for another (which carries that time or an earlier one)."""
    leaving = status_groups(removed).with_columns(
        messages=-pl.col("messages"),
        cost=-pl.col("cost"),
        first_sent_at=pl.lit(None, pl.Datetime("us", "UTC")),
        delivered_at=pl.lit(None, pl.Datetime("us", "UTC")),
    )
    return (
        pl.concat([stored, status_groups(added), leaving], how="vertical_relaxed")
        .group_by(GROUP_KEYS)
        .agg(
            pl.col("messages").sum(),
            pl.col("cost").sum(),
            pl.col("first_sent_at").min(),
            pl.col("delivered_at").min(),
        )
        .filter(pl.col("messages") > 0)
    )


def _count(condition: pl.Expr) -> pl.Expr:
    """How many messages meet the condition (each input row stands for `messages` of them)."""
    return pl.col("messages").filter(condition).sum().cast(pl.Int32)


def _rate(numerator: str, denominator: str) -> pl.Expr:
    """A share, or null (not zero) when there is nothing to divide by."""
    return (
        pl.when(pl.col(denominator) > 0)
        .then(pl.col(numerator) / pl.col(denominator))
        .otherwise(None)
    )


def channel_stats(statuses: pl.LazyFrame, inbound: pl.LazyFrame) -> pl.LazyFrame:
    """`sendout_channel_stats`: one row per (send-out, channel) from its messages' statuses.

    Input `statuses`: message_status rows grouped by what the figures need (sendout_id,
    channel, status, has_outcome, is_opened, is_clicked, is_machine_open_only) with `messages`
    (how many),
    `cost` (their sum), first_sent_at and delivered_at (their minimum); one row per message
    with messages = 1 works as well. `has_outcome`: the message has any event (dispatch's own
    outcome or a provider's), so progress (`done`) counts it.
    accepted = messages sent - (bounced + bad + failed), where sent means attempted (neither
    skipped nor still queued); rates divide by accepted, click-to-open by unique opens.
    Input `inbound`: sendout_id, inbound (count), inbound_cost, for the SMS channel.
    """
    counts = {
        column: _count(pl.col("status") == str(status)) for status, column in STATUS_COLUMNS.items()
    }
    attempted = pl.col("planned") - pl.col("queued") - pl.col("skipped")
    return (
        statuses.group_by("sendout_id", "channel")
        .agg(
            planned=pl.col("messages").sum().cast(pl.Int32),
            done=_count(pl.col("has_outcome")),
            **counts,
            unique_opened=_count(pl.col("is_opened")),
            unique_human_opened=_count(pl.col("is_opened") & ~pl.col("is_machine_open_only")),
            unique_clicked=_count(pl.col("is_clicked")),
            message_cost=pl.col("cost").sum(),
            first_sent_at=pl.col("first_sent_at").min(),
            first_delivered_at=pl.col("delivered_at").min(),
        )
        .with_columns(
            accepted=(
                attempted
                - pl.col("bounced")
                - pl.col("bad_email")
                - pl.col("bad_number")
                - pl.col("failed")
            ).cast(pl.Int32),
        )
        .with_columns(
            open_rate=_rate("unique_opened", "accepted"),
            human_open_rate=_rate("unique_human_opened", "accepted"),
            click_rate=_rate("unique_clicked", "accepted"),
            click_to_open_rate=_rate("unique_clicked", "unique_opened"),
        )
        .join(
            inbound.with_columns(channel=pl.lit(str(Channel.SMS))),
            on=["sendout_id", "channel"],
            how="left",
        )
        .with_columns(
            inbound=pl.col("inbound").fill_null(0).cast(pl.Int32),
            cost=(pl.col("message_cost") + pl.col("inbound_cost").fill_null(0.0)).round(
                MONEY_DECIMALS
            ),
        )
        .drop("message_cost", "inbound_cost")
    )
