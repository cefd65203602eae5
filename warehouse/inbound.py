"""Inbound SMS: what each reply asks, which send-out it answers, and what it cost (DESIGN §5-§6).

Pure LazyFrame transforms; `warehouse.refresh` feeds them from the warehouse.
"""

import polars as pl

from warehouse.sms import segments
from warehouse.status import MONEY_DECIMALS, Prices
from warehouse.vocabulary import KEYWORDS, EventType, InboundStatus, Keyword


def keyword(body: pl.Expr) -> pl.Expr:
    """stop / start / help / other, from the whole body, trimmed, in any case."""
    word = body.str.strip_chars().str.to_uppercase()
    classified = pl.when(word.is_in(list(KEYWORDS[Keyword.STOP]))).then(pl.lit(str(Keyword.STOP)))
    for kind in (Keyword.START, Keyword.HELP):
        classified = classified.when(word.is_in(list(KEYWORDS[kind]))).then(pl.lit(str(kind)))
    return classified.otherwise(pl.lit(str(Keyword.OTHER)))


def inbound_messages(
    received: pl.LazyFrame,
    handled: pl.LazyFrame,
    outbound: pl.LazyFrame,
    sendouts: pl.LazyFrame,
    prices: Prices,
    forward_to: str | None,
    auto_reply_text: str | None,
) -> pl.LazyFrame:
    """The `inbound_messages` rows.

    received: event_id, provider_message_id, from_number, received_at, body (one per inbound SMS)
    handled: provider_message_id (of the inbound SMS), event_type (forwarded/replied),
        occurred_at, body (the reply's text)
    outbound: message_id, sendout_id, recipient, sent_at (outbound SMS messages)
    sendouts: sendout_id, forward_to, auto_reply_text (per send-out settings)
    """
    handling = handled.group_by("provider_message_id").agg(
        forwarded_at=pl.col("occurred_at")
        .filter(pl.col("event_type") == str(EventType.FORWARDED))
        .min(),
        replied_at=pl.col("occurred_at")
        .filter(pl.col("event_type") == str(EventType.REPLIED))
        .min(),
        reply_body=pl.col("body").filter(pl.col("event_type") == str(EventType.REPLIED)).first(),
    )
    answered = (
        received.sort("received_at")
        .join_asof(
            outbound.drop_nulls("sent_at").sort("sent_at"),
            left_on="received_at",
            right_on="sent_at",
            by_left="from_number",
            by_right="recipient",
            strategy="backward",
            check_sortedness=False,  # sorted just above; polars cannot check it per group
        )
        .join(handling, on="provider_message_id", how="left")
        .join(sendouts, on="sendout_id", how="left")
    )
    units = (
        segments(pl.col("body").fill_null(""))
        + pl.when(pl.col("forwarded_at").is_not_null())
        .then(segments(pl.col("body").fill_null("")))
        .otherwise(0)
        + pl.when(pl.col("replied_at").is_not_null())
        .then(segments(pl.col("reply_body").fill_null("")))
        .otherwise(0)
    )
    return answered.select(
        "event_id",
        "received_at",
        "from_number",
        "body",
        keyword(pl.col("body").fill_null("")).alias("keyword"),
        pl.when(pl.col("replied_at").is_not_null())
        .then(pl.lit(str(InboundStatus.REPLIED)))
        .when(pl.col("forwarded_at").is_not_null())
        .then(pl.lit(str(InboundStatus.FORWARDED)))
        .otherwise(pl.lit(str(InboundStatus.RECEIVED)))
        .alias("status"),
        "message_id",
        "sendout_id",
        "forwarded_at",
        "replied_at",
        pl.col("forward_to").fill_null(pl.lit(forward_to, dtype=pl.String)),
        pl.col("auto_reply_text").fill_null(pl.lit(auto_reply_text, dtype=pl.String)),
        units.cast(pl.Int32).alias("billable_units"),
        (units * prices.sms_segment).round(MONEY_DECIMALS).alias("cost"),
    )
