"""The peer: what an analyst would write with pandas to load the same events into DuckDB.

Reads SES Firehose NDJSON and SendGrid arrays, maps them to the same canonical event types,
drops duplicates and stores the table with its raw payloads. Usage: pandas_peer.py DB FILE...
"""

import hashlib
import json
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

SES_TYPES = {
    "Send": "queued",
    "Delivery": "delivered",
    "Open": "opened",
    "Click": "clicked",
    "DeliveryDelay": "deferred",
    "Complaint": "complaint",
    "Reject": "failed",
}
SENDGRID_TYPES = {
    "processed": "queued",
    "delivered": "delivered",
    "open": "opened",
    "click": "clicked",
    "deferred": "deferred",
    "spamreport": "complaint",
    "unsubscribe": "unsubscribed",
}


def ses_frame(path: Path) -> pd.DataFrame:
    lines = path.read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    df = pd.json_normalize(records)
    status = df.get("bounce.bouncedRecipients").map(
        lambda r: r[0].get("status") if isinstance(r, list) and r else None
    )
    event_type = df["eventType"].map(SES_TYPES)
    bounced = df["eventType"].eq("Bounce")
    event_type = np.where(
        bounced & status.isin(["5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10"]),
        "bad_email",
        np.where(bounced, "bounced", event_type),
    )
    time_text = (
        df.get("delivery.timestamp")
        .fillna(df.get("open.timestamp"))
        .fillna(df.get("click.timestamp"))
        .fillna(df.get("bounce.timestamp"))
        .fillna(df.get("complaint.timestamp"))
        .fillna(df.get("deliveryDelay.timestamp"))
        .fillna(df["mail.timestamp"])
    )
    payload = [json.dumps(r) for r in records]
    return pd.DataFrame(
        {
            "event_id": [hashlib.md5(p.encode()).hexdigest() for p in payload],
            "provider": "ses",
            "event_type": event_type,
            "sendout_message_id": df["mail.tags.sendout_message_id"].str[0],
            "provider_message_id": df["mail.messageId"],
            "recipient": df["mail.destination"].str[0].str.lower(),
            "occurred_at": pd.to_datetime(time_text, utc=True, format="ISO8601"),
            "url": df.get("click.link"),
            "payload": payload,
        }
    )


def sendgrid_frame(path: Path) -> pd.DataFrame:
    records = json.loads(path.read_text())
    df = pd.DataFrame.from_records(records)
    event_type = df["event"].map(SENDGRID_TYPES)
    event_type = np.where(
        df["event"].eq("bounce"),
        "bounced",
        np.where(df["event"].eq("dropped"), "skipped", event_type),
    )
    return pd.DataFrame(
        {
            "event_id": df["sg_event_id"],
            "provider": "sendgrid",
            "event_type": event_type,
            "sendout_message_id": df["sendout_message_id"],
            "provider_message_id": df["sg_message_id"].str.split(".").str[0],
            "recipient": df["email"].str.lower(),
            "occurred_at": pd.to_datetime(df["timestamp"], unit="s", utc=True),
            "url": df.get("url"),
            "payload": [json.dumps(r) for r in records],
        }
    )


def main(db: str, files: list[str]) -> None:
    frames = [
        ses_frame(Path(f)) if f.endswith(".ndjson") else sendgrid_frame(Path(f)) for f in files
    ]
    events = pd.concat(frames, ignore_index=True).drop_duplicates(["provider", "event_id"])
    con = duckdb.connect(db)
    con.register("frame", events)
    con.execute("CREATE TABLE events AS SELECT * FROM frame")
    con.close()
    print(len(events))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
