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
    Channel,
    DisplayStatus,
    EventType,
)

MONEY_DECIMALS = 6  # costs are rounded to a millionth of the currency unit
RANKS = {str(event): rank for event, rank in STATUS_RANK.items()}
DISPLAY = {str(event): str(status) for event, status in DISPLAY_STATUS.items()}
OPENS = [str(EventType.OPENED), str(EventType.CLICKED)]


@dataclass(frozen=True)
class Prices:
    """What one email and one SMS segment cost (configuration, DESIGN §5)."""

    email: float
    sms_segment: float


def _is(event_type: EventType) -> pl.Expr:
    return pl.col("event_type") == str(event_type)


def _first_at(condition: pl.Expr) -> pl.Expr:
    return pl.col("occurred_at").filter(condition).min()


def message_outcomes(events: pl.LazyFrame) -> pl.LazyFrame:
    """One row per message from its events: the highest-ranked event and the engagement facts.

    Input columns: message_id, event_type, occurred_at, is_machine_open, bounce_kind.
    Arrival order and duplicates do not matter: only ranks, counts and minimum times are used.
    """
    rank = pl.col("event_type").replace_strict(RANKS, default=None, return_dtype=pl.Int8)
    return (
        events.with_columns(rank=rank)
        .group_by("message_id")
        .agg(
            top_rank=pl.col("rank").max(),
            top_event=pl.col("event_type").filter(pl.col("rank") == pl.col("rank").max()).first(),
            top_kinds=pl.col("bounce_kind").filter(pl.col("rank") == pl.col("rank").max()),
            open_count=_is(EventType.OPENED).sum().cast(pl.Int32),
            click_count=_is(EventType.CLICKED).sum().cast(pl.Int32),
            machine_open_count=(_is(EventType.OPENED) & pl.col("is_machine_open"))
            .sum()
            .cast(pl.Int32),
            first_sent_at=_first_at(pl.col("event_type").is_in([str(e) for e in SENT_EVIDENCE])),
            delivered_at=_first_at(_is(EventType.DELIVERED)),
            first_opened_at=_first_at(pl.col("event_type").is_in(OPENS)),
            first_clicked_at=_first_at(_is(EventType.CLICKED)),
            has_unsubscribed=_is(EventType.UNSUBSCRIBED).any(),
            has_complained=_is(EventType.COMPLAINT).any(),
        )
        .with_columns(
            bounce_kind=pl.when(pl.col("top_kinds").list.contains(str(BounceKind.HARD)))
            .then(pl.lit(str(BounceKind.HARD)))
            .when(pl.col("top_kinds").list.contains(str(BounceKind.SOFT)))
            .then(pl.lit(str(BounceKind.SOFT)))
        )
        .drop("top_kinds")
    )


def message_status(
    messages: pl.LazyFrame, outcomes: pl.LazyFrame, prices: Prices, refreshed_at: datetime
) -> pl.LazyFrame:
    """The `message_status` rows: every message, with or without events yet.

    Input `messages`: message_id, sendout_id, channel, recipient, sms_text.
    """
    status = (
        pl.col("top_event")
        .replace_strict(DISPLAY, default=None, return_dtype=pl.String)
        .fill_null(str(DisplayStatus.QUEUED))
    )
    billable = pl.col("top_event").is_not_null() & (status != str(DisplayStatus.SKIPPED))
    units = pl.when(pl.col("channel") == str(Channel.SMS)).then(segments(pl.col("sms_text")))
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
            "bounce_kind",
            "has_unsubscribed",
            "has_complained",
            pl.when(billable)
            .then(units.otherwise(1))
            .otherwise(0)
            .cast(pl.Int32)
            .alias("billable_units"),
        )
        .with_columns(
            cost=(
                pl.col("billable_units")
                * unit_price.then(prices.sms_segment).otherwise(prices.email)
            ).round(MONEY_DECIMALS),
            refreshed_at=pl.lit(refreshed_at, dtype=pl.Datetime("us", "UTC")),
        )
    )


def _count(status: DisplayStatus) -> pl.Expr:
    return (pl.col("status") == str(status)).sum().cast(pl.Int32)


def _rate(numerator: str, denominator: str) -> pl.Expr:
    """A share, or null (not zero) when there is nothing to divide by."""
    return (
        pl.when(pl.col(denominator) > 0)
        .then(pl.col(numerator) / pl.col(denominator))
        .otherwise(None)
    )


def channel_stats(statuses: pl.LazyFrame, inbound: pl.LazyFrame) -> pl.LazyFrame:
    """`sendout_channel_stats`: one row per (send-out, channel) from its messages' statuses.

    accepted = messages sent - (bounced + bad + failed), where sent means attempted (neither
    skipped nor still queued); rates divide by accepted, click-to-open by unique opens.
    Input `inbound`: sendout_id, inbound (count), inbound_cost, for the SMS channel.
    """
    counts = {column: _count(status) for status, column in STATUS_COLUMNS.items()}
    attempted = pl.col("planned") - pl.col("queued") - pl.col("skipped")
    return (
        statuses.group_by("sendout_id", "channel")
        .agg(
            planned=pl.len().cast(pl.Int32),
            **counts,
            unique_opened=pl.col("is_opened").sum().cast(pl.Int32),
            unique_human_opened=(pl.col("is_opened") & ~pl.col("is_machine_open_only"))
            .sum()
            .cast(pl.Int32),
            unique_clicked=pl.col("is_clicked").sum().cast(pl.Int32),
            message_cost=pl.col("cost").sum(),
            first_sent_at=pl.col("first_sent_at").min(),
            first_delivered_at=pl.col("delivered_at").min(),
        )
        .with_columns(
            done=(pl.col("planned") - pl.col("queued")).cast(pl.Int32),
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
