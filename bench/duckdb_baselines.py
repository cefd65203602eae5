"""DuckDB alone on the benchmark's files: the yardsticks for `sendout ingest`.

    duckdb_baselines.py scan FILE...     count the rows (the practical limit named by the issue)
    duckdb_baselines.py fields FILE...   read the fields Sendout stores into tables (stricter)
    duckdb_baselines.py load DB FILE...  load every field of the files into tables of a new
                                         DuckDB file, written out (what "loading" them is)

Prints the number of events read.
"""

import sys

import duckdb

SES_FIELDS = """
CREATE TABLE ses AS
SELECT eventType, mail.messageId, mail.destination[1] AS recipient,
       mail.tags.sendout_message_id[1] AS sendout_message_id,
       coalesce(delivery.timestamp, open.timestamp, click.timestamp, bounce.timestamp,
                mail.timestamp) AS occurred_at,
       click.link AS url
FROM read_json_auto($files, union_by_name = true)
"""
SENDGRID_FIELDS = """
CREATE TABLE sendgrid AS
SELECT event, email, sg_event_id, sg_message_id, sendout_message_id, "timestamp", url
FROM read_json_auto($files, union_by_name = true)
"""


LOAD = "CREATE TABLE {table} AS SELECT * FROM read_json_auto($files, union_by_name = true)"


def main(mode: str, files: list[str]) -> int:
    if mode == "load":
        return load(files[0], files[1:])
    con = duckdb.connect()
    ndjson = [f for f in files if f.endswith(".ndjson")]
    arrays = [f for f in files if f.endswith(".json")]
    if mode == "scan":
        count = "SELECT count(*) FROM read_json_auto($files)"
        return sum(
            con.sql(count, params={"files": group}).fetchall()[0][0] for group in (ndjson, arrays)
        )
    con.execute(SES_FIELDS, {"files": ndjson})
    con.execute(SENDGRID_FIELDS, {"files": arrays})
    return con.sql(
        "SELECT (SELECT count(*) FROM ses) + (SELECT count(*) FROM sendgrid)"
    ).fetchall()[0][0]


def load(db: str, files: list[str]) -> int:
    """Every field of the files into a table per kind of file, in a DuckDB file that is closed
    (checkpointed) at the end; returns the rows loaded."""
    con = duckdb.connect(db)
    loaded = 0
    for table, suffix in (("firehose", ".ndjson"), ("webhook", ".json")):
        group = [f for f in files if f.endswith(suffix)]
        if not group:
            continue
        con.execute(LOAD.format(table=table), {"files": group})
        loaded += con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    con.close()
    return loaded


if __name__ == "__main__":
    print(main(sys.argv[1], sys.argv[2:]))
