"""Bounce mail as real mail servers send it: every message of tests/fixtures/mail/servers.

Forty messages written for this project from what Exim, qmail, Google Workspace, Outlook.com,
Exchange, Yahoo, iCloud, Zoho, Fastmail, Domino, GroupWise, Zimbra, Courier, MDaemon, Mimecast,
Proofpoint, Barracuda, Amazon SES, Postfix, T-Online, Orange, Yandex, Mail.ru and a Japanese
ISP send, in English, German, French, Russian and Japanese, plain, quoted-printable and base64;
and four messages that are no bounce (an unmarked out-of-office, a challenge, a read receipt, a
mailing list's moderation notice). tests/fixtures/mail/servers/labels.json says what each must
give, read from docs/bounces.md independently of the parser (its `_about` explains the fields:
those of tests/fixtures/mail/labels.json plus `bounce_kind`).

Each file is ingested for real, into a warehouse of its own that holds the message it is about,
and must give exactly its labelled events, joined to that message. One test per file, so a
failure names the server.
"""

import json
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.test_bounce_mail import (
    BOUNCE_REASONS,
    FAILURES,
    WITHOUT_REASON,
    allowed,
    as_list,
    new_warehouse,
    read_quarantine,
)
from tests.warehouse_builders import add_message
from warehouse.db import connect, fetch_dicts
from warehouse.ingest import ingest_paths

SERVERS = FIXTURES / "mail" / "servers"
LABELS: dict[str, dict] = json.loads((SERVERS / "labels.json").read_text())["files"]

# Our messages were handed over the day before the first of these bounces.
SENT_AT = datetime(2025, 3, 10, tzinfo=UTC)


def read_events(db: Path) -> list[dict]:
    with connect(db, read_only=True) as con:
        return fetch_dicts(
            con.execute(
                "SELECT provider, channel, event_type, recipient, status_code, bounce_kind,"
                " bounce_reason, reason, sendout_message_id, message_id FROM events"
                " ORDER BY recipient, event_type"
            )
        )


def our_messages(label: dict) -> list[tuple[str, str]]:
    """The messages a file is about: (our id, the address we sent to)."""
    ids = [i for i in as_list(label["sendout_message_id"]) if i]
    return [(i, e["recipient"]) for i in ids[:1] for e in label["events"]]


def differences(label: dict, events: list[dict], quarantine: list[dict]) -> list[str]:
    """What the events and quarantine of one ingested file get wrong against its label."""
    expected = {e["recipient"]: e for e in label["events"]}
    required = {e["recipient"] for e in label["events"] if not e.get("optional")}
    counts = Counter(row["recipient"] for row in events)
    problems = [f"{r}: no event" for r in sorted(required - counts.keys())]
    problems += [f"{r}: {n} events, one expected" for r, n in counts.items() if n > 1]
    for row in events:
        who = row["recipient"]
        if (row["provider"], row["channel"]) != ("mail", "email"):
            problems.append(f"{who}: provider/channel {row['provider']}/{row['channel']}")
        if who not in expected:
            problems.append(
                f"{who}: an unexpected {row['event_type']}/{row['bounce_reason']} event"
                f" ({row['reason']!r})"
            )
            continue
        wanted = expected[who]
        for field in ("event_type", "bounce_reason", "status_code", "bounce_kind"):
            if not allowed(row[field], wanted.get(field)):
                problems.append(f"{who}: {field} {row[field]!r}, labelled {wanted[field]!r}")
        if row["event_type"] in WITHOUT_REASON and row["bounce_reason"] is not None:
            problems.append(
                f"{who}: a {row['event_type']} has bounce_reason {row['bounce_reason']}"
            )
        if row["event_type"] in FAILURES and row["bounce_reason"] not in BOUNCE_REASONS:
            problems.append(f"{who}: bounce_reason {row['bounce_reason']!r} is not a reason")
        text = wanted.get("reason_contains")
        if text and text.lower() not in (row["reason"] or "").lower():
            problems.append(f"{who}: reason {row['reason']!r} lacks {text!r}")
        ids = as_list(label["sendout_message_id"])
        if row["sendout_message_id"] not in ids:
            problems.append(
                f"{who}: sendout_message_id {row['sendout_message_id']!r}, labelled"
                f" {label['sendout_message_id']!r}"
            )
        if row["message_id"] not in [i for i in ids if i]:
            problems.append(f"{who}: joined message {row['message_id']!r}, expected one of {ids!r}")
    reasons = [row["reason"] for row in quarantine]
    if label["quarantined"] is True and not reasons:
        problems.append("not quarantined")
    if reasons and not all(reasons):
        problems.append("quarantined without a reason")
    if label["quarantined"] is False and reasons:
        problems.append(f"quarantined: {reasons}")
    return problems


@pytest.fixture(scope="module")
def ingest_server_message(tmp_path_factory):
    """Ingest one file, as `sendout ingest` would, into a warehouse holding its message."""

    def run(name: str) -> tuple[list[dict], list[dict]]:
        folder = tmp_path_factory.mktemp("server")
        db = new_warehouse(folder / "warehouse.duckdb")
        for message_id, recipient in our_messages(LABELS[name]):
            add_message(db, message_id, "so-servers", recipient, created_at=SENT_AT)
        (folder / "in").mkdir()
        path = folder / "in" / name
        shutil.copyfile(SERVERS / name, path)
        ingest_paths(db, [path])
        return read_events(db), read_quarantine(db)

    return run


def test_every_message_in_the_folder_is_labelled():
    assert sorted(p.name for p in SERVERS.glob("*.eml")) == sorted(LABELS)


@pytest.mark.parametrize("name", sorted(LABELS), ids=[Path(n).stem for n in sorted(LABELS)])
def test_each_server_message_gives_its_labelled_events(name, ingest_server_message):
    label = LABELS[name]
    events, quarantine = ingest_server_message(name)

    assert differences(label, events, quarantine) == [], f"{label['mta']}: {label['why']}"
