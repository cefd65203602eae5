"""SMS reply keywords and costs (a marimo notebook). Reads the analysts' copy of the warehouse,
read-only: `sendout snapshot` prints its path (data/sendout.snapshot.duckdb next to
$SENDOUT_DB); never the live file."""

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
    keywords = query(
        config,
        """
        SELECT coalesce(sendouts.name, '(unknown)') AS sendout, keyword, status,
               count(*) AS replies
        FROM inbound_messages LEFT JOIN sendouts USING (sendout_id)
        GROUP BY ALL ORDER BY replies DESC
        """,
    )
    figure = px.bar(keywords, x="sendout", y="replies", color="keyword", title="Replies by keyword")
    mo.vstack([mo.md("## What people reply"), figure, keywords])
    return (keywords,)


@app.cell
def _(config, mo, query):
    costs = query(
        config,
        """
        SELECT sendout_id, channel, planned, skipped, cost, inbound
        FROM sendout_summary WHERE channel = 'sms' ORDER BY cost DESC
        """,
    )
    mo.vstack([mo.md("## What SMS cost (segments, replies, forwards and auto-replies)"), costs])
    return (costs,)


if __name__ == "__main__":
    app.run()
