"""Deliverability by receiving domain and over time (a marimo notebook: `marimo edit` it, or run
it as a script). Reads the analysts' copy of the warehouse, read-only: `sendout snapshot` prints
its path (data/sendout.snapshot.duckdb next to $SENDOUT_DB); never the live file."""

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import marimo as mo
    import plotly.express as px
    import polars as pl

    from warehouse.settings import WarehouseSettings
    from warehouse.snapshot import query

    config = WarehouseSettings()  # $SENDOUT_DB, $SENDOUT_SNAPSHOT

    return config, mo, pl, px, query


@app.cell
def _(config, mo, pl, px, query):
    by_domain = query(
        config,
        """
        SELECT split_part(recipient, '@', 2) AS domain,
               count(*) AS messages,
               count(*) FILTER (WHERE status IN ('Delivered', 'Opened', 'Clicked')) AS delivered,
               count(*) FILTER (WHERE status IN ('Bounced', 'Bad email')) AS bounced,
               count(*) FILTER (WHERE status = 'Complaint') AS complaints
        FROM message_status
        WHERE channel = 'email' AND status NOT IN ('Queued', 'Skipped')
        GROUP BY ALL ORDER BY messages DESC
        """,
    ).with_columns(delivery_rate=pl.col("delivered") / pl.col("messages"))
    figure = px.bar(by_domain, x="domain", y="delivery_rate", title="Delivery rate by domain")
    mo.vstack([mo.md("## Deliverability by receiving domain"), by_domain, figure])
    return (by_domain,)


@app.cell
def _(config, mo, px, query):
    over_time = query(
        config,
        """
        SELECT date_trunc('day', occurred_at) AS day, event_type, count(*) AS events
        FROM events
        WHERE channel = 'email'
          AND event_type IN ('delivered', 'bounced', 'bad_email', 'deferred', 'complaint')
        GROUP BY ALL ORDER BY day
        """,
    )
    daily = px.bar(
        over_time, x="day", y="events", color="event_type", title="Delivery outcomes per day"
    )
    mo.vstack([mo.md("## Over time"), daily])
    return (over_time,)


if __name__ == "__main__":
    app.run()
