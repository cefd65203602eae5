"""Build a small warehouse in a test: send-outs, messages, and events through real ingest."""

import itertools
from datetime import datetime
from pathlib import Path

from tests.events import write_ndjson
from warehouse.db import open_warehouse
from warehouse.ingest import ingest_paths
from warehouse.refresh import RefreshSummary, refresh

_files = itertools.count()


def add_sendout(
    db: Path,
    sendout_id: str,
    channels: tuple[str, ...] = ("email",),
    communication_type: str = "marketing",
    **columns: object,
) -> None:
    """A send-out row; extra columns (scheduled_at, cancelled_at, forward_to, ...) by name."""
    names = ["sendout_id", "name", "channels", "communication_type", *columns]
    values = [
        sendout_id,
        f"Send-out {sendout_id}",
        list(channels),
        communication_type,
        *columns.values(),
    ]
    with open_warehouse(db) as con:
        con.execute(
            f"INSERT INTO sendouts ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            values,
        )


def add_message(
    db: Path,
    message_id: str,
    sendout_id: str,
    recipient: str,
    channel: str = "email",
    sms_text: str | None = None,
    provider_message_id: str | None = None,
    created_at: datetime | None = None,
) -> None:
    with open_warehouse(db) as con:
        con.execute(
            """
            INSERT INTO messages (message_id, sendout_id, contact_id, channel, recipient,
                sms_text, provider_message_id, created_at)
            VALUES (?, ?, hash(?) % 1000000000, ?, ?, ?, ?, coalesce(?, current_timestamp))
            """,
            [
                message_id,
                sendout_id,
                message_id,
                channel,
                recipient,
                sms_text,
                provider_message_id,
                created_at,
            ],
        )


def ingest_events(db: Path, folder: Path, events: list[dict], suffix: str = ".ndjson") -> None:
    """Write provider events to a new file in `folder` and ingest it for real."""
    folder.mkdir(exist_ok=True)
    path = write_ndjson(folder / f"events-{next(_files)}{suffix}", events)
    ingest_paths(db, [path])


def run_refresh(db: Path, full: bool = False) -> RefreshSummary:
    with open_warehouse(db) as con:
        return refresh(con, full=full)


def add_people(db: Path, count: int) -> None:
    """`count` contacts P0, P1, ... with an email p<n>@example.com and a UK mobile each."""
    with open_warehouse(db) as con:
        con.execute(
            "INSERT INTO contacts (first_name, email, mobile) "
            "SELECT 'P' || i, 'p' || i || '@example.com', '+4479111' || lpad(i::VARCHAR, 5, '0') "
            "FROM range(?) t(i)",
            [count],
        )


def create_sendout(
    db: Path, channels=("email",), communication_type: str = "marketing", **extra
) -> str:
    """A send-out to every contact through warehouse.sendouts, as the CLI makes it."""
    from warehouse import sendouts
    from warehouse.sendouts import Draft, Recipients

    draft = Draft(
        name="News",
        channels=list(channels),
        communication_type=communication_type,
        recipients=Recipients(all_contacts=True),
        subject="Hi {first_name}" if "email" in channels else None,
        text_body="Hello" if "email" in channels else None,
        sms_text="Hi {first_name}" if "sms" in channels else None,
        **extra,
    )
    with open_warehouse(db) as con:
        return sendouts.create(con, draft).sendout_id


def add_long_unsubscribe_list(db: Path, note: str = "replied 'stop it please'") -> None:
    """150 entries without a note, and the oldest of all with `note`: it sorts below row 100,
    where a frame's types guessed from the first rows would not expect a text."""
    from warehouse import unsubscribes

    with open_warehouse(db) as con:
        for n in range(150):
            unsubscribes.add(con, "email", f"quiet{n}@example.com", "all", "ops", "-")
        con.execute("UPDATE unsubscribe_changes SET note = NULL WHERE cause = 'manual'")
        unsubscribes.add(con, "sms", "+447911000123", "all", "ops", note)
        con.execute(
            "UPDATE unsubscribe_changes SET effective_at = TIMESTAMPTZ '2020-01-01 00:00:00+00' "
            "WHERE address = '+447911000123'"
        )
