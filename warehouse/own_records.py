"""Sendout's own records: what its webhook service and its sandbox write for ingest, built here
only, in the shapes the parsers read, so that writer and parser cannot drift apart.

- Tracking events (`sendout_event`: opened, clicked, unsubscribed), read by parsers/smtp.sql.
- Forwarded and replied SMS: Twilio's callback fields with our event as `MessageStatus`, read by
  parsers/twilio.sql, as are Twilio callbacks we received or the sandbox tells, which carry the
  time we received them (`sendout_received_at`: Twilio's own callbacks have none).
"""

import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson

from warehouse.vocabulary import EventType


def timestamp(moment: datetime | None = None) -> str:
    """An instant as our records write it: UTC, to the millisecond, with a Z (now if none)."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)  # the Z says UTC: never local time
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def tracking_event(
    event: EventType,
    message_id: str,
    url: str | None,
    user_agent: str | None,
    is_machine_open: bool,
    at: datetime | None = None,
) -> dict:
    """A fetch of one of our tracking links: the pixel, a link, the unsubscribe page."""
    return {
        "sendout_event": str(event),
        "id": uuid.uuid4().hex,
        "sendout_message_id": message_id,
        "at": timestamp(at),
        "url": url or None,
        "user_agent": user_agent,
        "is_machine_open": is_machine_open,
    }


def received_callback(fields: dict, at: datetime | None = None) -> dict:
    """A Twilio callback (or inbound SMS) as received, with when we received it."""
    return {**fields, "sendout_received_at": timestamp(at)}


def handled_sms(sid: str, event: EventType, to: str, body: str, at: datetime | None = None) -> dict:
    """What we did with an inbound SMS: forwarded it to `to`, or replied to its sender."""
    fields = {"MessageSid": sid, "MessageStatus": str(event), "To": to, "Body": body}
    return received_callback(fields, at)


def write_landing_file(
    folder: Path, prefix: str, records: list[dict], then: Callable[[], None] | None = None
) -> Path | None:
    """Write NDJSON records as one new landing file, atomically and durably (a temporary name,
    fsync, rename, the folder fsynced) so that ingest never reads half a file; None if no
    records. `then` runs the moment the file is there (before the folder's fsync)."""
    if not records:
        if then:
            then()
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prefix}-{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.ndjson"
    partial = path.with_suffix(".partial")
    with partial.open("wb") as handle:
        handle.write(b"".join(orjson.dumps(r) + b"\n" for r in records))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    if then:
        then()
    sync_folder(folder)
    return path


def sync_folder(folder: Path) -> None:
    """Make a folder's entries durable: a file renamed into it survives a crash."""
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
