"""DuckDB alone on the benchmark's files: the yardsticks for `sendout ingest`.

    duckdb_baselines.py scan FILE...     count the rows (the practical limit named by the issue)
    duckdb_baselines.py fields FILE...   read the fields Sendout stores into tables (stricter)

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


def main(mode: str, files: list[str]) -> int:
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


if __name__ == "__main__":
    print(main(sys.argv[1], sys.argv[2:]))
