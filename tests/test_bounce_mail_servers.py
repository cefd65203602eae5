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
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.test_bounce_mail import (
    as_list,
    differences,
    new_warehouse,
    read_events,
    read_quarantine,
)
from tests.warehouse_builders import add_message
from warehouse.ingest import ingest_paths

SERVERS = FIXTURES / "mail" / "servers"
LABELS: dict[str, dict] = json.loads((SERVERS / "labels.json").read_text())["files"]

# Our messages were handed over the day before the first of these bounces.
SENT_AT = datetime(2025, 3, 10, tzinfo=UTC)


def our_messages(label: dict) -> list[tuple[str, str]]:
    """The messages a file is about: (our id, the address we sent to)."""
    ids = [i for i in as_list(label["sendout_message_id"]) if i]
    return [(i, e["recipient"]) for i in ids[:1] for e in label["events"]]


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

    found = differences(label, events, quarantine, joined=True)
    assert found == [], f"{label['mta']}: {label['why']}"
