"""Charts as pure functions of data: figure in, nothing else touched."""

import plotly.graph_objects as go

from warehouse.vocabulary import STATUS_COLUMNS, DisplayStatus

# greens for what reached people, told apart: delivered, opened (lighter), clicked (teal)
COLOURS = {
    DisplayStatus.DELIVERED: "#2e7d32",
    DisplayStatus.OPENED: "#81c784",
    DisplayStatus.CLICKED: "#00897b",
    DisplayStatus.SENT: "#90caf9",
    DisplayStatus.QUEUED: "#cfd8dc",
    DisplayStatus.SKIPPED: "#b0bec5",
    DisplayStatus.BOUNCED: "#ef6c00",
    DisplayStatus.BAD_EMAIL: "#c62828",
    DisplayStatus.BAD_NUMBER: "#c62828",
    DisplayStatus.COMPLAINT: "#6a1b9a",
    DisplayStatus.FAILED: "#8d6e63",
}


def status_doughnut(row: dict) -> go.Figure:
    """A doughnut of a channel's messages by display status (statuses with none left out)."""
    statuses = [s for s in DisplayStatus if row.get(STATUS_COLUMNS[s])]
    planned = row.get("planned") or 0
    figure = go.Figure(
        go.Pie(
            labels=[str(s) for s in statuses],
            values=[row[STATUS_COLUMNS[s]] for s in statuses],
            hole=0.55,
            marker={"colors": [COLOURS[s] for s in statuses]},
            sort=False,
        )
    )
    figure.update_layout(
        margin={"t": 10, "b": 10, "l": 10, "r": 10},
        height=320,
        annotations=[
            {
                "text": f"{planned:,}<br>{'message' if planned == 1 else 'messages'}",
                "showarrow": False,
                "font": {"size": 16},
            }
        ],
    )
    return figure
