"""Unsubscribe causes by send-out and channel (a marimo notebook). Reads the analysts' copy of
the warehouse, read-only: `sendout snapshot` prints its path (data/sendout.snapshot.duckdb next
to $SENDOUT_DB); never the live file."""

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import marimo as mo
    import plotly.express as px

    from warehouse.settings import WarehouseSettings
    from warehouse.snapshot import query

    config = WarehouseSettings()  # $SENDOUT_DB, $SENDOUT_SNAPSHOT

    return config, mo, px, query


@app.cell
def _(config, mo, px, query):
    causes = query(
        config,
        """
        SELECT coalesce(sendouts.name, '(no send-out known)') AS sendout,
               unsubscribes.channel, unsubscribes.reason, count(*) AS entries
        FROM unsubscribes LEFT JOIN sendouts USING (sendout_id)
        GROUP BY ALL ORDER BY entries DESC
        """,
    )
    figure = px.bar(
        causes,
        x="sendout",
        y="entries",
        color="reason",
        facet_col="channel",
        title="Current Unsubscribes entries by cause",
    )
    mo.vstack([mo.md("## Why addresses are on the list"), figure, causes])
    return (causes,)


@app.cell
def _(config, mo, query):
    changes = query(
        config,
        """
        SELECT date_trunc('week', changed_at) AS week, action, reason, count(*) AS changes
        FROM unsubscribe_changes GROUP BY ALL ORDER BY week, action, reason
        """,
    )
    mo.vstack([mo.md("## Changes to the list, by week (append-only history)"), changes])
    return (changes,)


if __name__ == "__main__":
    app.run()
