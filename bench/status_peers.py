"""The yardsticks of bench/status.py, each run in a process of its own:

    status_peers.py sql DB      one hand-written DuckDB query computing the final statuses
    status_peers.py pandas DB   the same with pandas (the peer an analyst would write)

Prints the seconds the computation took inside the process (start-up excluded).
"""

import sys
import time

import duckdb

from warehouse.vocabulary import STATUS_RANK

RANKS = {str(event): rank for event, rank in STATUS_RANK.items()}
SQL_FINAL_STATUS = """
CREATE TEMP TABLE final_status AS
SELECT
    messages.message_id,
    arg_max(events.event_type, ranks.rank) AS top_event,
    count(*) FILTER (WHERE events.event_type = 'opened') AS open_count,
    count(*) FILTER (WHERE events.event_type = 'clicked') AS click_count,
    min(events.occurred_at) FILTER (WHERE events.event_type = 'delivered') AS delivered_at,
    min(events.occurred_at) FILTER (WHERE events.event_type IN ('opened', 'clicked'))
        AS first_opened_at
FROM messages
LEFT JOIN events USING (message_id)
LEFT JOIN (SELECT unnest($types) AS event_type, unnest($ranks) AS rank) AS ranks
    USING (event_type)
GROUP BY messages.message_id
"""


def sql(db: str) -> float:
    con = duckdb.connect(db, read_only=True)
    started = time.perf_counter()
    con.execute(SQL_FINAL_STATUS, {"types": list(RANKS), "ranks": list(RANKS.values())})
    return time.perf_counter() - started


def pandas(db: str) -> float:
    started = time.perf_counter()
    con = duckdb.connect(db, read_only=True)
    events = con.sql("SELECT message_id, event_type, occurred_at FROM events").df()
    ranked = events[events["event_type"].isin(list(RANKS))].copy()
    ranked["rank"] = ranked["event_type"].map(RANKS)
    by_message = ranked.groupby("message_id")
    top = ranked.loc[by_message["rank"].idxmax(), ["message_id", "event_type"]]
    counts = ranked.pivot_table(
        index="message_id", columns="event_type", values="rank", aggfunc="count", fill_value=0
    )
    opens = ranked[ranked["event_type"].isin(["opened", "clicked"])]
    first_opened = opens.groupby("message_id")["occurred_at"].min()
    messages = con.sql("SELECT message_id FROM messages").df()
    final = messages.merge(top, on="message_id", how="left").join(counts, on="message_id")
    final = final.join(first_opened, on="message_id")
    assert len(final) == len(messages)
    return time.perf_counter() - started


if __name__ == "__main__":
    print(round({"sql": sql, "pandas": pandas}[sys.argv[1]](sys.argv[2]), 2))
