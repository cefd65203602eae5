"""Bounce mail: `sendout ingest` on .eml files, Maildir folders and mbox files.

Each failed recipient in a delivery report (RFC 3464, or one of the formats real mail servers
send) is one `mail` event, classified as tests/fixtures/mail/labels.json says; an ARF report is a
complaint; an auto-reply is never a bounce; a message naming no failed recipient goes to
quarantine; broken input never stops the rest of a folder.

labels.json was written by reading each message, independently of the parser; its `_about` key
explains the fields (a list is a set of allowed values, null in bounce_reason or status_code
means "not checked"). The fixtures are described in tests/fixtures/mail/README.md.
"""

import base64
import json
import mailbox
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.warehouse_builders import add_message
from warehouse.db import connect, fetch_dicts, open_warehouse
from warehouse.ingest import ingest_paths

MAIL = FIXTURES / "mail"
LABELS: dict[str, dict] = json.loads((MAIL / "labels.json").read_text())["files"]

BOUNCE_REASONS = {
    "user_unknown",
    "domain_unknown",
    "mailbox_full",
    "mailbox_disabled",
    "policy",
    "authentication",
    "too_big",
    "expired",
    "network",
    "other",
}
FAILURES = {"bounced", "bad_email", "deferred"}
WITHOUT_REASON = {"delivered", "complaint"}

# Our message ids, as the hand-written fixtures carry them.
VERP_ID = "msg_3f2a9c4e8b1d4f6a9e0c7b5d2a1f8e64"  # rfc/verp_dsn.eml
NEVER_SENT_ID = "msg_00000000deadbeef00000000deadbeef"  # rfc/backscatter_unknown_message_id.eml
ARF_ID = "msg_5c8d1e2f3a4b4c6d8e9f0a1b2c3d4e5f"  # rfc/rfc5965_arf_abuse.eml
BIG_ID = "msg_0e1f2a3b4c5d46e7f8091a2b3c4d5e6f"  # the 20 MB message built below

# A mix for the Maildir, mbox and CLI tests: sendmail, Postfix, Yahoo (three recipients), qmail,
# a delay warning, Exim, an ARF complaint, a Postfix relay report, RFC 3464's mixed-action report
# and a vacation reply (no event).
A_FEW = [
    "flufl/dsn_11.txt",
    "flufl/postfix_01.txt",
    "flufl/yahoo_10.txt",
    "flufl/qmail_03.txt",
    "flufl/simple_35.txt",
    "flufl/exim_01.txt",
    "rfc/rfc5965_arf_abuse.eml",
    "rfc/google_5_7_26_dmarc.eml",
    "rfc/rfc3464_multiple_recipients.eml",
    "rfc/rfc3834_vacation.eml",
]


# -- helpers ------------------------------------------------------------------------------------


@dataclass
class Ingested:
    """What one ingest left in a warehouse of its own."""

    summary: object
    events: list[dict]
    quarantine: list[dict]


def new_warehouse(path: Path) -> Path:
    with open_warehouse(path):
        pass
    return path


def read_events(db: Path) -> list[dict]:
    with connect(db, read_only=True) as con:
        return fetch_dicts(
            con.execute(
                "SELECT provider, channel, event_type, recipient, status_code, bounce_kind,"
                " bounce_reason, reason, sendout_message_id, message_id FROM events"
                " ORDER BY recipient, event_type"
            )
        )


def read_quarantine(db: Path) -> list[dict]:
    with connect(db, read_only=True) as con:
        return fetch_dicts(
            con.execute("SELECT source_file, reason FROM quarantine ORDER BY quarantine_id")
        )


def as_eml(name: str, folder: Path, prefix: str = "") -> Path:
    """A fixture copied into `folder` as a .eml file (flufl.bounce's files are .txt)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{prefix}{Path(name).stem}.eml"
    shutil.copyfile(MAIL / name, target)
    return target


def message_bytes(name: str) -> bytes:
    """A fixture's bytes without the mbox `From ` line some of flufl.bounce's files start with."""
    data = (MAIL / name).read_bytes()
    if data.startswith(b"From "):
        data = data.split(b"\n", 1)[1]
    return data


def make_maildir(folder: Path, names: list[str]) -> Path:
    """A Maildir holding the fixtures: half unread in new/, half read (moved to cur/, flag S)."""
    box = mailbox.Maildir(folder, create=True)
    for i, name in enumerate(names):
        key = box.add(message_bytes(name))
        if i % 2:
            os.rename(folder / "new" / key, folder / "cur" / f"{key}:2,S")
    return folder


def make_mbox(path: Path, names: list[str]) -> Path:
    box = mailbox.mbox(path, create=True)
    box.lock()
    for name in names:
        box.add(message_bytes(name))
    box.flush()
    box.unlock()
    box.close()
    return path


def write_big_bounce(path: Path) -> Path:
    """A Postfix report (552 5.3.4) that returns the whole message: a 20 MB base64 attachment."""
    boundary = "BIG0123456789.1715680900/mta1.sendout.example"
    head = f"""\
Return-Path: <>
Date: Tue, 14 May 2024 10:01:40 +0000 (UTC)
From: MAILER-DAEMON@mta1.sendout.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: bounces+{BIG_ID}@bounces.example
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="{boundary}"

--{boundary}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mta1.sendout.example.

<big@example.org>: host mx.example.org[192.0.2.30] said: 552 5.3.4 Message
    size exceeds fixed limit (in reply to end of DATA command)

--{boundary}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mta1.sendout.example

Final-Recipient: rfc822; big@example.org
Original-Recipient: rfc822;big@example.org
Action: failed
Status: 5.3.4
Diagnostic-Code: smtp; 552 5.3.4 Message size exceeds fixed limit

--{boundary}
Content-Description: Undelivered Message
Content-Type: message/rfc822

From: News <news@sendout.example>
To: big@example.org
Subject: The annual report
Message-ID: <{BIG_ID}@sendout.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="inner"

--inner
Content-Type: text/plain; charset=us-ascii

The report is attached.

--inner
Content-Type: application/pdf; name="report.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="report.pdf"

"""
    line = base64.b64encode(bytes(range(57))) + b"\n"  # 76 characters, as MIME wants
    with path.open("wb") as out:
        out.write(head.encode("ascii"))
        out.write(line * (20 * 1024 * 1024 // len(line)))
        out.write(f"\n--inner--\n\n--{boundary}--\n".encode("ascii"))
    assert path.stat().st_size > 20 * 1024 * 1024
    return path


def as_list(label) -> list:
    return label if isinstance(label, list) else [label]


def allowed(value, label) -> bool:
    """A label is a value, a list of allowed values, or None for "not checked"."""
    return label is None or value in as_list(label)


def differences(
    label: dict, events: list[dict], quarantine: list[dict], joined: bool = False
) -> list[str]:
    """What the events and quarantine of one ingested file get wrong against its label (with
    `joined`, each event must also have joined the message it names)."""
    expected = {e["recipient"]: e for e in label["events"]}
    required = {e["recipient"] for e in label["events"] if not e.get("optional")}
    counts = Counter(row["recipient"] for row in events)
    problems = [f"{r}: no event" for r in sorted(required - counts.keys())]
    problems += [f"{r}: {n} events, one expected" for r, n in counts.items() if n > 1]
    ids = as_list(label["sendout_message_id"])
    for row in events:
        who = row["recipient"]
        if (row["provider"], row["channel"]) != ("mail", "email"):
            problems.append(f"{who}: provider/channel {row['provider']}/{row['channel']}")
        if who not in expected:
            problems.append(f"{who}: an unexpected {row['event_type']} event ({row['reason']!r})")
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
        if row["sendout_message_id"] not in ids:
            problems.append(
                f"{who}: sendout_message_id {row['sendout_message_id']!r}, labelled {ids!r}"
            )
        if joined and row["message_id"] not in [i for i in ids if i]:
            problems.append(f"{who}: joined message {row['message_id']!r}, expected one of {ids!r}")
    reasons = [row["reason"] for row in quarantine]
    if label["quarantined"] is True and not reasons:
        problems.append("not quarantined")
    if reasons and not all(reasons):
        problems.append("quarantined without a reason")
    if label["quarantined"] is False and reasons:
        problems.append(f"quarantined: {reasons}")
    return problems


def required_recipients(name: str) -> set[str]:
    return {e["recipient"] for e in LABELS[name]["events"] if not e.get("optional")}


def event_key(row: dict) -> tuple:
    return (
        row["recipient"],
        row["event_type"],
        row["bounce_reason"],
        row["status_code"],
        row["sendout_message_id"],
    )


@pytest.fixture(scope="session")
def ingest_alone(tmp_path_factory):
    """Ingest one fixture, as a .eml file, into a new warehouse of its own (once a session)."""
    done: dict[str, Ingested] = {}

    def run(name: str) -> Ingested:
        if name not in done:
            folder = tmp_path_factory.mktemp("alone")
            db = new_warehouse(folder / "warehouse.duckdb")
            summary = ingest_paths(db, [as_eml(name, folder / "in")])
            done[name] = Ingested(summary, read_events(db), read_quarantine(db))
        return done[name]

    return run


# -- every labelled message ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LABELS))
def test_each_message_gives_its_labelled_events(name, ingest_alone):
    got = ingest_alone(name)
    assert differences(LABELS[name], got.events, got.quarantine) == [], LABELS[name]["why"]


def test_the_corpus_is_classified_as_labelled(ingest_alone):
    """At least 95% of the labelled (file, recipient) pairs get the labelled type and reason,
    and no address without proof of being wrong is ever called a bad email."""
    pairs = hits = 0
    misses, false_bad = [], []
    for name, label in sorted(LABELS.items()):
        expected = {e["recipient"]: e for e in label["events"]}
        try:
            events = ingest_alone(name).events
        except Exception as error:
            events = []
            misses.append(f"{name}: ingest raised {error!r}")
        found = {row["recipient"]: row for row in events}
        for who in sorted(required_recipients(name)):
            wanted, row = expected[who], found.get(who)
            pairs += 1
            if (
                row is not None
                and allowed(row["event_type"], wanted["event_type"])
                and allowed(row["bounce_reason"], wanted["bounce_reason"])
            ):
                hits += 1
            else:
                got = "no event" if row is None else f"{row['event_type']}/{row['bounce_reason']}"
                labelled = f"{wanted['event_type']}/{wanted['bounce_reason']}"
                misses.append(f"{name} {who}: {got}, labelled {labelled}")
        for row in events:
            wanted = expected.get(row["recipient"])
            may_be_bad = wanted is not None and "bad_email" in as_list(wanted["event_type"])
            if row["event_type"] == "bad_email" and not may_be_bad:
                false_bad.append(f"{name} {row['recipient']}: bad_email ({row['reason']})")

    share = hits / pairs
    print(f"\n{hits} of {pairs} labelled recipients classified as labelled ({share:.1%})")
    print("\n".join(["misses:", *misses, "bad_email without proof:", *false_bad]))
    assert false_bad == []
    assert share >= 0.95, "\n".join(misses)


# -- a few of them, spelled out -----------------------------------------------------------------


def test_one_yahoo_report_gives_one_event_per_recipient_each_with_its_own_reason(
    db_path, tmp_path, query
):
    ingest_paths(db_path, [as_eml("flufl/yahoo_10.txt", tmp_path)])

    rows = query("SELECT recipient, event_type, bounce_reason FROM events ORDER BY 1")
    assert [tuple(row.values()) for row in rows] == [
        ("userx@example.com", "bad_email", "user_unknown"),  # doesn't have a yahoo.com account
        ("usery@example.com", "bounced", "mailbox_disabled"),  # disabled or discontinued
        ("userz@example.com", "bad_email", "user_unknown"),
    ]


def test_an_arf_report_is_a_complaint_from_the_original_recipient(db_path, tmp_path, query):
    ingest_paths(db_path, [as_eml("rfc/rfc5965_arf_abuse.eml", tmp_path)])

    assert query(
        "SELECT provider, event_type, recipient, bounce_reason, sendout_message_id FROM events"
    ) == [
        {
            "provider": "mail",
            "event_type": "complaint",
            "recipient": "ivan@example.com",
            "bounce_reason": None,
            "sendout_message_id": ARF_ID,
        }
    ]


def test_an_out_of_office_reply_is_never_a_bounce(db_path, tmp_path, query):
    summary = ingest_paths(db_path, [as_eml("rfc/rfc3834_vacation.eml", tmp_path)])

    assert summary.events_new == 0
    assert query("SELECT count(*) AS n FROM events") == [{"n": 0}]


def test_a_report_naming_no_recipient_is_quarantined_with_a_reason(db_path, tmp_path, query):
    path = as_eml("rfc/no_recipients.eml", tmp_path)

    summary = ingest_paths(db_path, [path])

    assert (summary.events_new, summary.quarantined) == (0, 1)
    [kept] = query("SELECT source_file, reason FROM quarantine")
    assert Path(kept["source_file"]).name == path.name
    assert kept["reason"]


# -- Maildir and mbox ---------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["maildir", "mbox"])
def test_a_maildir_or_an_mbox_gives_the_same_events_as_the_single_files(
    layout, tmp_path, ingest_alone
):
    expected = Counter(event_key(row) for name in A_FEW for row in ingest_alone(name).events)
    quarantined = sum(len(ingest_alone(name).quarantine) for name in A_FEW)
    source = (
        make_maildir(tmp_path / "Maildir", A_FEW)
        if layout == "maildir"
        else make_mbox(tmp_path / "bounces.mbox", A_FEW)
    )
    db = new_warehouse(tmp_path / "warehouse.duckdb")

    ingest_paths(db, [source])

    assert Counter(event_key(row) for row in read_events(db)) == expected
    assert len(read_quarantine(db)) == quarantined
    assert expected, "the single files gave no events to compare with"


def test_a_message_still_being_written_to_maildir_tmp_is_not_read(tmp_path):
    box = make_maildir(tmp_path / "Maildir", ["flufl/postfix_01.txt"])
    (box / "tmp" / "1715680000.M1P1.mx").write_bytes(message_bytes("rfc/verp_dsn.eml"))
    db = new_warehouse(tmp_path / "warehouse.duckdb")

    ingest_paths(db, [box])

    assert [row["recipient"] for row in read_events(db)] == ["xxxxx@local.ie"]


def test_ingesting_the_same_maildir_twice_adds_nothing(db_path, tmp_path, query):
    box = make_maildir(tmp_path / "Maildir", A_FEW)
    every_event = "SELECT event_id, event_type, recipient FROM events ORDER BY ALL"

    first = ingest_paths(db_path, [box])
    before = (query(every_event), query("SELECT count(*) AS n FROM quarantine"))
    second = ingest_paths(db_path, [box])
    # A mail client reads the unread ones: new/<key> becomes cur/<key>:2,S, same content.
    for message in list((box / "new").iterdir()):
        message.rename(box / "cur" / f"{message.name}:2,S")
    third = ingest_paths(db_path, [box])

    assert first.events_new > 0
    assert (second.events_new, third.events_new) == (0, 0)
    assert (query(every_event), query("SELECT count(*) AS n FROM quarantine")) == before


def test_a_maildir_whose_bundle_fails_is_ingested_message_by_message(tmp_path, monkeypatch):
    """Storing the bundle fails once (a full disk, say): it is rolled back and each message is
    ingested on its own, parsed on the same connection as the bundle was."""
    import warehouse.ingest as ingest

    box = make_maildir(tmp_path / "Maildir", ["flufl/postfix_01.txt", "rfc/verp_dsn.eml"])
    db = new_warehouse(tmp_path / "warehouse.duckdb")
    store, failures = ingest.store_batch, []

    def store_failing_once(*args, **kwargs):
        if not failures:
            failures.append("the bundle")
            raise OSError(28, "No space left on device")
        return store(*args, **kwargs)

    monkeypatch.setattr(ingest, "store_batch", store_failing_once)
    summary = ingest_paths(db, [box])

    assert failures == ["the bundle"]
    assert summary.files_read == 2
    assert len(read_events(db)) == 2


# -- bad input ----------------------------------------------------------------------------------


def test_bad_messages_do_not_stop_a_folder_and_every_good_message_keeps_its_events(
    tmp_path, ingest_alone
):
    folder = tmp_path / "landing"
    # Sorted first, so that everything good is read after them.
    unusable = ["rfc/truncated_mime.eml", "rfc/no_recipients.eml"]
    for name in unusable:
        as_eml(name, folder, prefix="0-")
    (folder / "0-garbage.eml").write_bytes(bytes(range(256)) * 64)
    write_big_bounce(folder / "0-big_attachment.eml")
    odd_but_readable = [
        "rfc/charset_unknown_8bit.eml",
        "rfc/latin1_declared_utf8.eml",
        "rfc/truncated_after_report.eml",
        "flufl/newmailru_01.txt",  # KOI8-R, 8-bit
        "flufl/simple_25.txt",  # text/html, undeclared GB2312
        "flufl/qmail_08.txt",  # charset=ansi_x3.110-1983, an auto-reply
    ]
    good = ["flufl/postfix_01.txt", "flufl/yahoo_13.txt", "rfc/verp_dsn.eml"]
    for name in odd_but_readable + good:
        as_eml(name, folder, prefix="1-")
    db = new_warehouse(tmp_path / "warehouse.duckdb")

    ingest_paths(db, [folder])

    events = read_events(db)
    quarantine = read_quarantine(db)
    quarantined_files = {Path(row["source_file"]).name for row in quarantine}
    expected = Counter(
        event_key(row) for name in odd_but_readable + good for row in ingest_alone(name).events
    )
    assert Counter(event_key(r) for r in events if r["recipient"] != "big@example.org") == expected
    assert {r for name in odd_but_readable + good for r in required_recipients(name)} <= {
        row["recipient"] for row in events
    }
    assert {"0-truncated_mime.eml", "0-no_recipients.eml", "0-garbage.eml"} <= quarantined_files
    assert all(row["reason"] for row in quarantine)
    # The 20 MB message gives its bounce, or is quarantined with a reason: never lost.
    big = [event_key(r) for r in events if r["recipient"] == "big@example.org"]
    assert big == [("big@example.org", "bounced", "too_big", "5.3.4", BIG_ID)] or (
        big == [] and "0-big_attachment.eml" in quarantined_files
    )


# -- the command --------------------------------------------------------------------------------


@pytest.mark.slow
def test_sendout_ingest_reads_a_folder_of_eml_bounces(db_path, tmp_path, query):
    folder = tmp_path / "bounces"
    names = [name for name in A_FEW if LABELS[name]["events"]]
    for name in names:
        as_eml(name, folder)
    expected = sum(len(required_recipients(name)) for name in names)
    sendout = shutil.which("sendout", path=Path(sys.executable).parent) or "sendout"
    env = {**os.environ, "SENDOUT_DB": str(db_path)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sendout, "ingest", *args, str(folder)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    first = run("--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert (summary["files_read"], summary["events_new"]) == (len(names), expected)
    assert query("SELECT count(*) AS n FROM events WHERE provider = 'mail'") == [{"n": expected}]

    again = run()
    assert again.returncode == 0, again.stderr
    assert "events new 0" in again.stdout


# -- joining our messages -----------------------------------------------------------------------


def test_a_bounce_to_our_verp_address_joins_the_message_it_bounces(db_path, tmp_path, query):
    add_message(db_path, VERP_ID, "so-1", "frank@example.net")

    summary = ingest_paths(db_path, [as_eml("rfc/verp_dsn.eml", tmp_path)])

    assert query(
        "SELECT event_type, recipient, status_code, sendout_message_id, message_id FROM events"
    ) == [
        {
            "event_type": "bad_email",
            "recipient": "frank@example.net",
            "status_code": "5.1.1",
            "sendout_message_id": VERP_ID,
            "message_id": VERP_ID,
        }
    ]
    assert summary.unmatched == 0


# Where a report names our message: fixture, our id in it, the recipient.
WAYS_TO_OUR_MESSAGE = {
    "VERP return path": ("rfc/verp_dsn.eml", VERP_ID, "frank@example.net"),
    "Original-Envelope-Id": (
        "rfc/postfix_5_3_4_too_big.eml",
        "msg_7e6d5c4b3a2940f8e7d6c5b4a3928170",
        "nora@example.org",
    ),
    "X-Sendout-Message-Id of the returned headers": (
        "rfc/exchange_5_2_2_mailbox_full.eml",
        "msg_1d2c3b4a59684f7e8d9cab0b1c2d3e4f",
        "liam@example.org",
    ),
    "Message-ID of the returned message": (
        "rfc/m365_5_4_1_access_denied.eml",
        "msg_9a8b7c6d5e4f40318f2e1d0c9b8a7f6e",
        "kim@example.net",
    ),
    "ARF report": ("rfc/rfc5965_arf_abuse.eml", ARF_ID, "ivan@example.com"),
}


@pytest.mark.parametrize("way", list(WAYS_TO_OUR_MESSAGE))
def test_each_way_a_report_names_our_message_joins_it(way, db_path, tmp_path, query):
    name, message_id, recipient = WAYS_TO_OUR_MESSAGE[way]
    add_message(db_path, message_id, "so-1", recipient)

    summary = ingest_paths(db_path, [as_eml(name, tmp_path)])

    assert query("SELECT recipient, message_id FROM events") == [
        {"recipient": recipient, "message_id": message_id}
    ]
    assert summary.unmatched == 0


def test_backscatter_for_a_message_we_never_sent_is_kept_but_joins_nothing(
    db_path, tmp_path, query
):
    add_message(db_path, VERP_ID, "so-1", "frank@example.net")

    summary = ingest_paths(db_path, [as_eml("rfc/backscatter_unknown_message_id.eml", tmp_path)])

    assert query("SELECT recipient, sendout_message_id, message_id FROM events") == [
        {"recipient": "pat@example.org", "sendout_message_id": NEVER_SENT_ID, "message_id": None}
    ]
    assert summary.unmatched == 1


def test_a_failure_of_another_address_in_our_bounce_is_not_pinned_on_our_recipient(
    db_path, tmp_path, query
):
    """A bounce of frank's message that reports a forward target's failure (or names a helpdesk
    in its text) keeps that event unmatched: frank's message keeps its status and nobody is
    listed."""
    add_message(db_path, VERP_ID, "so-1", "frank@example.net")
    dsn = (
        (MAIL / "rfc" / "verp_dsn.eml")
        .read_bytes()
        .replace(b"Frank@Example.NET", b"frank.forward@gmail.example")
    )
    (tmp_path / "forward.eml").write_bytes(dsn)

    summary = ingest_paths(db_path, [tmp_path / "forward.eml"])

    [event] = query("SELECT recipient, message_id FROM events")
    assert event == {"recipient": "frank.forward@gmail.example", "message_id": None}
    assert summary.unmatched == 1


HOSTILE = {
    "broken encoded words.eml": b"From: =?utf-8?b?!!!?= <MAILER-DAEMON@x.example>\n"
    b"Subject: =?utf-8?b?@@@?=\nTo: =?utf-8?q?=ZZ?=\n\nUndelivered\n",
    "empty feedback report.eml": b"From: abuse@x.example\nContent-Type: multipart/report;"
    b" report-type=feedback-report; boundary=B\n\n--B\nContent-Type: message/feedback-report"
    b"\n\n\n--B--\n",
    "idna charset and a date past any calendar.eml": b"From: MAILER-DAEMON@x.example\n"
    b"Subject: Undelivered Mail\nDate: 1 Jan 99999999999999999999\n"
    b"Content-Type: text/plain; charset=idna\n\n<gone@y.example>: 550 5.1.1 unknown \xff\xfe\n",
    "a line of dashes a megabyte long.eml": b"From: MAILER-DAEMON@x.example\n"
    b"Subject: Undelivered Mail\n\n" + b"-" * 1_000_000 + b"\n<also.gone@y.example>: 550 5.1.1\n",
}


def test_hostile_messages_are_read_or_kept_and_never_stop_the_folder(db_path, tmp_path, query):
    folder = tmp_path / "hostile"
    folder.mkdir()
    for name, raw in HOSTILE.items():
        (folder / name).write_bytes(raw)
    shutil.copy(MAIL / "rfc" / "verp_dsn.eml", folder / "zz good.eml")

    summary = ingest_paths(db_path, [folder])

    recipients = {r["recipient"] for r in query("SELECT recipient FROM events")}
    assert {"frank@example.net", "gone@y.example"} <= recipients
    assert summary.files_read == len(HOSTILE) + 1
    kept = query("SELECT source_file, reason FROM quarantine")
    assert all(row["reason"] for row in kept)
