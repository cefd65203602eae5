"""Engagement: opens and clicks by hour and weekday, machine against human opens (a marimo
notebook). Reads the analysts' copy of the warehouse, read-only: `sendout snapshot` prints its
path (data/sendout.snapshot.duckdb next to $SENDOUT_DB); never the live file."""

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import marimo as mo
    import plotly.express as px

    from warehouse.settings import WarehouseSettings
    from warehouse.snapshot import query
    from warehouse.vocabulary import EventType

    config = WarehouseSettings()  # $SENDOUT_DB, $SENDOUT_SNAPSHOT

    return EventType, config, mo, px, query


@app.cell
def _(EventType, config, mo, px, query):
    when = query(
        config,
        """
        SELECT dayname(occurred_at) AS weekday, isodow(occurred_at) AS day_number,
               hour(occurred_at) AS hour, event_type, count(*) AS events
        FROM events
        WHERE event_type IN ('opened', 'clicked') AND NOT is_machine_open  -- people only
        GROUP BY ALL ORDER BY day_number, hour
        """,
    )
    heat = px.density_heatmap(
        when.filter(when["event_type"] == EventType.OPENED),
        x="hour",
        y="weekday",
        z="events",
        title="Opens by hour and weekday (UTC)",
    )
    mo.vstack([mo.md("## When people open and click"), heat, when])
    return (when,)


@app.cell
def _(config, mo, query):
    machines = query(
        config,
        """
        SELECT sendout_id,
               count(*) FILTER (WHERE is_opened) AS opened,
               count(*) FILTER (WHERE is_opened AND is_machine_open_only) AS machine_only,
               count(*) FILTER (WHERE is_clicked) AS clicked
        FROM message_status WHERE channel = 'email'
        GROUP BY ALL ORDER BY opened DESC
        """,
    )
    mo.vstack([mo.md("## Machine opens (Apple Mail Privacy Protection, scanners)"), machines])
    return (machines,)


if __name__ == "__main__":
    app.run()
