"""What the documentation promises about statuses, rates, costs, replies, the Unsubscribes list,
`sendout lookup`, `sendout report` and the analysts' tables, checked as a user meets it.

Every test drives the `sendout` command (its click entry point `flows.cli.cli`, in this process
for speed; `.venv/bin/sendout` in a subprocess where settings come from the environment) on a
DuckDB file of its own in tmp_path: it creates a send-out (`sendout sendouts create --csv`, and
`sendout dispatch` through the built-in sandbox where dispatch matters), writes the provider
files a real provider would send back (SES, SendGrid, Mailgun, Postmark, Twilio, shaped after
their documented payloads: tests/fixtures/providers/) and reads them with `sendout ingest`.
Then it looks where a user looks: `sendout report --json`, `sendout lookup`, `sendout
unsubscribes`, and the documented tables and views. Each test quotes the sentence of README.md,
docs/statuses.md, docs/warehouse.md, docs/ingest.md, docs/bounces.md or ../shared/DESIGN.md it
checks.
"""

import csv
import itertools
import json
import os
import stat
import subprocess
import time
import urllib.parse
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

SENDOUT = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "sendout"

# Provider times: a little in the past, so that every event is believed ("from 2000-01-01 to a
# day after ingest"); `later()` for what must happen after the test's own actions (a reply to a
# message created now, a bounce newer than a manual removal).
NOW = datetime.now(UTC).replace(microsecond=0)
BASE = NOW - timedelta(hours=3)
_ids = itertools.count(1)


def at(minutes: float) -> datetime:
    return BASE + timedelta(minutes=minutes)


def later(minutes: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=minutes)


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def utc(value) -> datetime:
    """A TIMESTAMPTZ read back from DuckDB, or an ISO text from JSON, as an aware UTC time."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC)


# ---------------------------------------------------------------------------------------------
# Provider payloads, shaped after each provider's documented samples.


def ses(kind: str, message_id: str, to: str, when: datetime, **detail) -> dict:
    """An SES event publishing record (as Firehose writes it), tagged with our message id."""
    mail_time = detail.pop("mail_time", when)
    record = {
        "eventType": kind,
        "mail": {
            "timestamp": iso_z(mail_time),
            "source": "Sendout News <news@example.com>",
            "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/example.com",
            "sendingAccountId": "123456789012",
            "messageId": f"0102018f76b1-{message_id}-000000",
            "destination": [to],
            "headersTruncated": False,
            "tags": {
                "ses:operation": ["SendRawEmail"],
                "ses:configuration-set": ["sendout-events"],
                "ses:source-ip": ["192.0.2.10"],
                "sendout_message_id": [message_id],
            },
        },
    }
    stamp = iso_z(when)
    if kind == "Send":
        record["send"] = {}
    elif kind == "Delivery":
        record["delivery"] = {
            "timestamp": stamp,
            "processingTimeMillis": 2663,
            "recipients": [to],
            "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": "b224-31.smtp-out.eu-west-1.amazonses.com",
        }
    elif kind == "DeliveryDelay":
        record["deliveryDelay"] = {
            "timestamp": stamp,
            "delayType": "TransientCommunicationFailure",
            "expirationTime": iso_z(when + timedelta(hours=12)),
            "delayedRecipients": [
                {
                    "emailAddress": to,
                    "status": "4.4.1",
                    "diagnosticCode": "smtp; 421 4.4.1 Unable to connect to remote host",
                }
            ],
            "reportingMTA": "b224-31.smtp-out.eu-west-1.amazonses.com",
        }
    elif kind == "Bounce":
        recipient = {
            "emailAddress": to,
            "action": detail.pop("action", "failed"),
            "status": detail.pop("status", "5.1.1"),
            "diagnosticCode": detail.pop(
                "diagnostic", "smtp; 550 5.1.1 user unknown: no such mailbox"
            ),
        }
        record["bounce"] = {
            "feedbackId": f"0102018f-feedback-{next(_ids)}-BOUNCE",
            "bounceType": detail.pop("bounce_type", "Permanent"),
            "bounceSubType": detail.pop("subtype", "General"),
            "bouncedRecipients": [recipient],
            "timestamp": stamp,
            "reportingMTA": "dns; amazonses.com",
        }
    elif kind == "Complaint":
        record["complaint"] = {
            "feedbackId": f"0102018f-feedback-{next(_ids)}-COMPLAINT",
            "complainedRecipients": [{"emailAddress": to}],
            "timestamp": stamp,
            "userAgent": "Yahoo!-Mail-Feedback/2.0",
            "complaintFeedbackType": detail.pop("feedback_type", "abuse"),
            "arrivalDate": stamp,
        }
    elif kind == "Open":
        record["open"] = {
            "ipAddress": "192.0.2.1",
            "timestamp": stamp,
            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148",
        }
    elif kind == "Click":
        record["click"] = {
            "ipAddress": "192.0.2.1",
            "link": detail.pop("link", "https://example.com/news?utm_source=sendout"),
            "linkTags": {"section": ["hero"]},
            "timestamp": stamp,
            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148",
        }
    elif kind == "Reject":
        record["reject"] = {"reason": "Bad content"}
    elif kind == "Subscription":
        record["subscription"] = {
            "contactList": "Customers",
            "timestamp": stamp,
            "source": "UnsubscribeHeader",
            "newTopicPreferences": detail.pop(
                "new_preferences",
                {
                    "unsubscribeAll": True,
                    "topicSubscriptionStatus": [
                        {"topicName": "Newsletter", "subscriptionStatus": "OptOut"}
                    ],
                },
            ),
            "oldTopicPreferences": {
                "unsubscribeAll": False,
                "topicSubscriptionStatus": [
                    {"topicName": "Newsletter", "subscriptionStatus": "OptIn"}
                ],
            },
        }
    else:
        raise ValueError(kind)
    assert not detail, detail
    return record


def sendgrid(event: str, message_id: str, to: str, when: datetime, **fields) -> dict:
    """A SendGrid Event Webhook event (epoch seconds), with our id as a custom arg."""
    sg_id = f"Xh3bQ5n2{message_id[-12:]}"
    return {
        "email": to,
        "timestamp": int(when.timestamp()),
        "smtp-id": f"<{sg_id}@geopod-ismtpd-3>",
        "event": event,
        "category": ["news"],
        "sg_event_id": f"sg-event-{next(_ids)}==",
        "sg_message_id": f"{sg_id}.filterdrecv-6d7c8b5f4c-x2k9p-1-6643A1F0-1.0",
        "sendout_message_id": message_id,
        **fields,
    }


def mailgun(event: str, message_id: str, to: str, when: datetime, **fields) -> dict:
    """A Mailgun webhook body (`signature` + `event-data`), epoch seconds as a float."""
    data = {
        "id": f"mg-{next(_ids)}-q7Y2mW0bT5",
        "timestamp": when.timestamp() + 0.101234,
        "log-level": "info",
        "event": event,
        "recipient": to,
        "recipient-domain": to.split("@")[1],
        "tags": ["news"],
        "campaigns": [],
        "user-variables": {"sendout_message_id": message_id},
        "envelope": {
            "sender": "bounce+5f2c1e@mg.example.com",
            "transport": "smtp",
            "sending-ip": "198.51.100.40",
            "targets": to,
        },
        "flags": {"is-routed": False, "is-authenticated": True, "is-test-mode": False},
        "message": {
            "headers": {
                "to": to,
                "message-id": f"{message_id}@mg.example.com",
                "from": "Sendout News <news@mg.example.com>",
                "subject": "News",
            },
            "attachments": [],
            "size": 4812,
        },
        **fields,
    }
    return {
        "signature": {
            "token": f"{next(_ids):050d}",
            "timestamp": str(int(when.timestamp())),
            "signature": "0" * 64,
        },
        "event-data": data,
    }


def postmark(record_type: str, message_id: str, to: str, when: datetime, **fields) -> dict:
    """A Postmark webhook object (its times with an offset and seven fractional digits)."""
    stamp = when.astimezone(timezone(timedelta(hours=-5))).strftime("%Y-%m-%dT%H:%M:%S.%f")
    stamp = stamp + "1-05:00"
    record = {
        "RecordType": record_type,
        "MessageStream": "outbound",
        "MessageID": f"883953f4-6105-42a2-a16a-{message_id[-12:]}",
        "Metadata": {"sendout_message_id": message_id},
        "Tag": "news",
        "ServerID": 23,
    }
    if record_type == "Delivery":
        record |= {"Recipient": to, "DeliveredAt": stamp, "Details": "smtp;250 2.0.0 OK"}
    elif record_type == "Open":
        record |= {
            "Recipient": to,
            "ReceivedAt": stamp,
            "FirstOpen": True,
            "Platform": "WebMail",
            "ReadSeconds": 5,
            "UserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Chrome/124.0",
        }
    else:  # Bounce and SpamComplaint share a shape
        record |= {
            "ID": next(_ids),
            "Type": fields.pop("Type", record_type),
            "TypeCode": fields.pop("TypeCode", 1),
            "Name": fields.pop("Name", "Bounce"),
            "Description": fields.pop("Description", "The server was unable to deliver."),
            "Details": fields.pop("Details", ""),
            "Email": to,
            "From": "news@example.com",
            "BouncedAt": stamp,
            "DumpAvailable": True,
            "Inactive": True,
            "CanActivate": True,
            "Subject": "News",
        }
    return record | fields


def twilio(status: str, message_id: str, to: str, when: datetime, error: str = "") -> dict:
    """A Twilio status callback as our webhook receiver lands it: the form fields (all
    strings), with the callback URL's query (`sendout_message_id`) and the time of receipt."""
    sid = "SM" + message_id[-32:].rjust(32, "0")
    record = {
        "SmsSid": sid,
        "SmsStatus": status,
        "MessageStatus": status,
        "To": to,
        "MessageSid": sid,
        "AccountSid": "AC3f9e1b7c5d2a4e6f8091a2b3c4d5e6f7",
        "From": "+14155550100",
        "ApiVersion": "2010-04-01",
        "sendout_message_id": message_id,
        "sendout_received_at": iso_z(when),
    }
    if error:
        record["ErrorCode"] = error
    return record


def twilio_inbound(sender: str, body: str, when: datetime) -> dict:
    """An inbound SMS ("a message comes in") as our webhook receiver lands it."""
    sid = f"SM{next(_ids):032d}"
    return {
        "ToCountry": "GB",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "FromCountry": "GB",
        "To": "+14155550100",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": "AC3f9e1b7c5d2a4e6f8091a2b3c4d5e6f7",
        "From": sender,
        "ApiVersion": "2010-04-01",
        "sendout_received_at": iso_z(when),
    }


# ---------------------------------------------------------------------------------------------
# A workspace: one warehouse file, driven through the `sendout` command.


class Workspace:
    """One warehouse file in a folder of its own, driven through the `sendout` command.

    By default the command runs in this process (`flows.cli.cli`, the entry point of
    `.venv/bin/sendout`, through click's runner: the same command, without paying Python's
    imports of DuckDB and polars for every call); a workspace given settings runs
    `.venv/bin/sendout` in a subprocess with them in its environment, as a user would."""

    def __init__(self, root: Path, **settings: str):
        self.root = root
        self.db = root / "sendout.duckdb"
        self.files = root / "provider-files"
        self.files.mkdir(exist_ok=True)
        self.subprocess = bool(settings)
        # Nothing of the caller's SENDOUT_* settings, and nothing of the repository's data/.
        self.settings = {k: None for k in os.environ if k.startswith("SENDOUT_")}
        self.settings |= {"SENDOUT_LANDING": str(root / "landing"), "SENDOUT_USER": "tester"}
        self.settings |= settings

    def run(self, *args: str, expect: int = 0) -> str:
        argv = ["--db", str(self.db), *args]
        if not self.subprocess:
            from click.testing import CliRunner

            from flows.cli import cli

            result = CliRunner().invoke(cli, argv, env=self.settings, catch_exceptions=False)
            assert result.exit_code == expect, (args, result.output)
            return result.stdout
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENDOUT_")}
        env |= {k: v for k, v in self.settings.items() if v is not None}
        proc = subprocess.run(
            [str(SENDOUT), *argv],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == expect, (args, proc.stdout, proc.stderr)
        return proc.stdout

    def json(self, *args: str):
        return json.loads(self.run(*args, "--json"))

    def create(
        self,
        people: list[dict],
        channels: tuple[str, ...] = ("email",),
        kind: str = "marketing",
        sms_text: str = "Hi {first_name}",
        extra: tuple[str, ...] = (),
    ) -> dict[str, str]:
        """A send-out to `people` (dicts of first_name/email/mobile); returns the send-out id
        under "sendout" and each message id under its recipient address."""
        path = self.root / f"recipients-{next(_ids)}.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, ["first_name", "last_name", "email", "mobile"])
            writer.writeheader()
            for person in people:
                writer.writerow({"last_name": "Tester", **person})
        args = ["sendouts", "create", "--name", f"News {path.stem}", "--type", kind]
        args += ["--csv", str(path), *extra]
        for channel in channels:
            args += ["--channel", channel]
        if "email" in channels:
            args += ["--subject", "Hi {first_name}", "--text", "Hello"]
        if "sms" in channels:
            args += ["--sms-text", sms_text]
        sendout_id = self.json(*args)["sendout_id"]
        rows = self.sql(
            "SELECT recipient, message_id FROM messages WHERE sendout_id = ?", sendout_id
        )
        return {"sendout": sendout_id} | {r["recipient"]: r["message_id"] for r in rows}

    def write(self, records: list[dict], shape: str = "") -> Path:
        """A provider file: JSON lines (SES, Mailgun, Postmark, Twilio as our receiver writes
        them), a JSON array (SendGrid's Event Webhook), or form-encoded lines (Twilio)."""
        shape = shape or ("array" if "sg_event_id" in records[0] else "ndjson")
        name = f"events-{next(_ids):04d}"
        if shape == "ndjson":
            path = self.files / f"{name}.ndjson"
            path.write_text("".join(json.dumps(r) + "\n" for r in records))
        elif shape == "array":
            path = self.files / f"{name}.json"
            path.write_text(json.dumps(records, indent=2))
        elif shape == "form":
            path = self.files / f"{name}.txt"
            path.write_text("".join(urllib.parse.urlencode(r) + "\n" for r in records))
        else:
            raise ValueError(shape)
        return path

    def ingest(self, *files: list[dict], shape: str = "") -> dict:
        """`sendout ingest` of one provider file per list given, in one run."""
        return self.json("ingest", *(str(self.write(records, shape)) for records in files))

    def sql(self, query: str, *params) -> list[dict]:
        with duckdb.connect(str(self.db), read_only=True) as con:
            cursor = con.execute(query, list(params))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def status(self, message_id: str) -> dict:
        (row,) = self.sql("SELECT * FROM message_status WHERE message_id = ?", message_id)
        return row

    def report(self, sendout_id: str) -> dict[str, dict]:
        """`sendout report ID --json`, one row per channel."""
        return {row["channel"]: row for row in self.json("report", sendout_id)}

    def entries(self, address: str) -> set[tuple[str, str]]:
        """The address's active entries on the Unsubscribes list: (reason, scope)."""
        rows = self.sql("SELECT reason, scope FROM unsubscribes WHERE address = ?", address)
        return {(r["reason"], r["scope"]) for r in rows}


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


STATUS_COLUMNS = [
    "queued",
    "skipped",
    "sent",
    "delivered",
    "bounced",
    "complaint",
    "bad_number",
    "bad_email",
    "opened",
    "clicked",
    "failed",
]


# ---------------------------------------------------------------------------------------------
# A message's final status


def test_the_highest_ranked_event_wins_whatever_order_events_arrive_in(ws):
    """statuses.md: "The highest-ranked of its events wins, never the last to arrive:
    complaint > clicked > opened > bad_email = bad_number > bounced > failed > delivered >
    deferred > skipped > sent > queued"; "`deferred` shows as Sent"; "A message with no events
    yet (or only `queued`) shows as Queued". DESIGN §4: "Deduplicate on (provider, provider
    event id) before ranking" and "Event times are for display ... never for precedence"."""
    names = [
        "complaint",
        "clicked",
        "opened",
        "bademail",
        "bounced",
        "failed",
        "delivered",
        "deferred",
        "skipped",
        "queued",
        "nothing",
    ]
    so = ws.create([{"first_name": n, "email": f"{n}@example.com"} for n in names])
    m = {n: so[f"{n}@example.com"] for n in names}

    def ev(name, kind, minute, **detail):
        return ses(kind, m[name], f"{name}@example.com", at(minute), **detail)

    # What arrives first is the message's highest event, even though it happened last.
    first = [
        ev("complaint", "Complaint", 30),
        ev("clicked", "Click", 20),
        ev("opened", "Open", 20),
        ev("bademail", "Bounce", 5, status="5.1.1", subtype="NoEmail"),
        ev(
            "bounced",
            "Bounce",
            40,
            status="5.7.1",
            diagnostic="smtp; 550 5.7.1 Message rejected as spam by content filter",
        ),
        ev("failed", "Reject", 1),
        ev("delivered", "Delivery", 10),
        ev("deferred", "DeliveryDelay", 5),
        ev(
            "skipped",
            "Bounce",
            1,
            subtype="Suppressed",
            diagnostic="Amazon SES has suppressed sending to this address",
        ),
        ev("queued", "Send", 0),
    ]
    # Then the earlier, lower-ranked events, with some of the first file re-delivered.
    second = [
        ev("complaint", "Delivery", 2),
        ev("complaint", "Open", 10),
        ev("complaint", "Click", 11),
        ev("clicked", "Delivery", 2),
        ev("clicked", "Open", 15),
        ev("opened", "Send", 0),
        ev("opened", "Delivery", 2),
        ev("bademail", "Send", 0),
        ev("bounced", "Delivery", 2),
        ev("failed", "Send", 0),
        ev("delivered", "DeliveryDelay", 3),
        ev("delivered", "Send", 0),
        ev("deferred", "Send", 0),
        ev("skipped", "Send", 0),
        first[0],
        first[6],
    ]
    summary_first = ws.ingest(first)
    summary_second = ws.ingest(second)

    assert summary_first["events_new"] == len(first)
    assert summary_second["events_new"] == len(second) - 2
    assert summary_second["events_duplicate"] == 2
    expected = {
        "complaint": "Complaint",
        "clicked": "Clicked",
        "opened": "Opened",
        "bademail": "Bad email",
        "bounced": "Bounced",
        "failed": "Failed",
        "delivered": "Delivered",
        "deferred": "Sent",
        "skipped": "Skipped",
        "queued": "Queued",
        "nothing": "Queued",
    }
    assert {n: ws.status(m[n])["status"] for n in names} == expected
    complained = ws.status(m["complaint"])
    assert (complained["is_opened"], complained["is_clicked"]) == (True, True)
    assert (complained["has_complained"], complained["click_count"]) == (True, 1)

    report = ws.report(so["sendout"])["email"]
    assert {c: report[c] for c in STATUS_COLUMNS} == {
        "queued": 2,
        "skipped": 1,
        "sent": 1,
        "delivered": 1,
        "bounced": 1,
        "complaint": 1,
        "bad_number": 0,
        "bad_email": 1,
        "opened": 1,
        "clicked": 1,
        "failed": 1,
    }


def test_deferred_and_delivered_is_delivered_in_either_order_and_deferred_alone_shows_sent(ws):
    """DESIGN §4: "`deferred` then `delivered` is delivered, in any arrival order."
    statuses.md: "`deferred` shows as Sent: the message was handed on and may still be
    delivered." ingest.md: SendGrid `deferred`, Mailgun "`failed` temporary | `deferred`"."""
    people = ["early", "late", "waiting", "retrying"]
    so = ws.create([{"first_name": p, "email": f"{p}@example.org"} for p in people])
    m = {p: so[f"{p}@example.org"] for p in people}
    deferral = {"response": "400 try again later", "attempt": "5"}

    ws.ingest(
        [
            sendgrid("deferred", m["early"], "early@example.org", at(1), **deferral),
            sendgrid("delivered", m["late"], "late@example.org", at(9), response="250 OK"),
            sendgrid("deferred", m["waiting"], "waiting@example.org", at(1), **deferral),
        ],
    )
    ws.ingest(
        [
            sendgrid("delivered", m["early"], "early@example.org", at(9), response="250 OK"),
            sendgrid("deferred", m["late"], "late@example.org", at(1), **deferral),
        ],
    )
    ws.ingest(
        [
            mailgun(
                "failed",
                m["retrying"],
                "retrying@example.org",
                at(2),
                severity="temporary",
                reason="generic",
                **{
                    "delivery-status": {
                        "attempt-no": 1,
                        "code": 421,
                        "enhanced-code": "4.4.1",
                        "message": "4.4.1 Connection timed out",
                        "description": "",
                        "retry-seconds": 600,
                    }
                },
            )
        ]
    )

    statuses = {p: ws.status(m[p])["status"] for p in people}
    assert statuses == {
        "early": "Delivered",
        "late": "Delivered",
        "waiting": "Sent",
        "retrying": "Sent",
    }
    assert utc(ws.status(m["early"])["delivered_at"]) == at(9)


def test_a_late_bounce_after_delivery_wins_and_only_a_hard_bounce_lists_the_address(ws):
    """DESIGN §4: "A bounce after `delivered` wins (providers document late asynchronous
    bounces)" and "A final soft bounce (SES Transient ...) shows as Bounced with
    `bounce_kind = soft`". bounces.md: "Only hard bounces add a `bounced` entry to the
    Unsubscribes list ... So a spam block or a DMARC failure never lists a good address"."""
    people = ["disabled", "full", "blocked"]
    so = ws.create([{"first_name": p, "email": f"{p}@example.net"} for p in people])
    m = {p: so[f"{p}@example.net"] for p in people}
    ws.ingest([ses("Delivery", m[p], f"{p}@example.net", at(1)) for p in people])
    ws.ingest(
        [
            ses(
                "Bounce",
                m["disabled"],
                "disabled@example.net",
                at(30),
                status="5.2.1",
                diagnostic="smtp; 550 5.2.1 The email account that you tried to reach is disabled",
            ),
            ses(
                "Bounce",
                m["full"],
                "full@example.net",
                at(30),
                bounce_type="Transient",
                subtype="MailboxFull",
                status="4.2.2",
                diagnostic="smtp; 452 4.2.2 The email account is over quota",
            ),
            ses(
                "Bounce",
                m["blocked"],
                "blocked@example.net",
                at(30),
                status="5.7.1",
                diagnostic="smtp; 554 5.7.1 Service unavailable; client host blocked using "
                "Spamhaus",
            ),
        ]
    )

    got = {p: ws.status(m[p]) for p in people}
    assert {p: (s["status"], s["bounce_kind"], s["bounce_reason"]) for p, s in got.items()} == {
        "disabled": ("Bounced", "hard", "mailbox_disabled"),
        "full": ("Bounced", "soft", "mailbox_full"),
        "blocked": ("Bounced", "soft", "policy"),
    }
    assert ws.entries("disabled@example.net") == {("bounced", "all")}
    assert ws.entries("full@example.net") == set()
    assert ws.entries("blocked@example.net") == set()
    # The delivery came first and stays the message's delivery time.
    assert utc(got["disabled"]["delivered_at"]) == at(1)


def test_bad_email_needs_proof_and_a_full_mailbox_is_never_a_bad_address(ws):
    """bounces.md: "words that the mailbox is full ("over quota" ...) say it exists, so they
    win over a code that calls the address unknown (Orange answers a full mailbox "552
    5.1.1"): `mailbox_full`, soft, never `bad_email`"; "`bad_email` needs proof ... a code
    that proves it (5.1.1 ...)"; DESIGN §6: bad email -> `bad_email`, scope `all`."""
    so = ws.create(
        [
            {"first_name": "Orange", "email": "plein@example.fr"},
            {"first_name": "Gone", "email": "gone@example.com"},
        ]
    )
    ws.ingest(
        [
            ses(
                "Bounce",
                so["plein@example.fr"],
                "plein@example.fr",
                at(5),
                status="5.1.1",
                diagnostic="smtp; 552 5.1.1 <plein@example.fr>: Boite du destinataire pleine "
                "(over quota)",
            ),
            ses(
                "Bounce",
                so["gone@example.com"],
                "gone@example.com",
                at(5),
                status="5.1.1",
                diagnostic="smtp; 550 5.1.1 <gone@example.com>: Recipient address rejected: "
                "User unknown in virtual mailbox table",
            ),
        ]
    )

    full = ws.status(so["plein@example.fr"])
    gone = ws.status(so["gone@example.com"])
    assert (full["status"], full["bounce_kind"], full["bounce_reason"]) == (
        "Bounced",
        "soft",
        "mailbox_full",
    )
    assert (gone["status"], gone["bounce_kind"], gone["bounce_reason"]) == (
        "Bad email",
        "hard",
        "user_unknown",
    )
    assert ws.entries("plein@example.fr") == set()
    assert ws.entries("gone@example.com") == {("bad_email", "all")}


def test_bounce_kind_is_the_hardest_among_the_top_ranked_events(ws):
    """statuses.md: "`bounce_kind` is the hardest kind among the top-ranked events (hard beats
    soft), and `bounce_reason` that event's reason" (in either order of arrival)."""
    so = ws.create(
        [
            {"first_name": "Hardfirst", "email": "hardfirst@example.com"},
            {"first_name": "Softfirst", "email": "softfirst@example.com"},
        ]
    )

    def hard(name, minute):
        return ses(
            "Bounce",
            so[f"{name}@example.com"],
            f"{name}@example.com",
            at(minute),
            status="5.2.1",
            diagnostic="smtp; 550 5.2.1 mailbox disabled, account disabled",
        )

    def soft(name, minute):
        return ses(
            "Bounce",
            so[f"{name}@example.com"],
            f"{name}@example.com",
            at(minute),
            status="5.7.1",
            diagnostic="smtp; 554 5.7.1 blocked using Spamhaus",
        )

    ws.ingest([hard("hardfirst", 10), soft("softfirst", 10)])
    ws.ingest([soft("hardfirst", 20), hard("softfirst", 20)])

    for name in ("hardfirst", "softfirst"):
        row = ws.status(so[f"{name}@example.com"])
        assert (row["status"], row["bounce_kind"], row["bounce_reason"]) == (
            "Bounced",
            "hard",
            "mailbox_disabled",
        ), name
        assert ws.entries(f"{name}@example.com") == {("bounced", "all")}


def test_a_complaint_outranks_a_click_and_lists_the_address_but_not_spam_is_no_complaint(ws):
    """DESIGN §3: `complaint` = "recipient marked it as spam (a feedback report other than
    `not-spam`)"; §6: spam complaint -> `complaint`, scope `all`. ingest.md: "SES | `Complaint`
    with feedback type `not-spam` | quarantined: it is no complaint"."""
    so = ws.create(
        [
            {"first_name": "Angry", "email": "angry@example.com"},
            {"first_name": "Sorry", "email": "sorry@example.com"},
        ]
    )
    angry, sorry = so["angry@example.com"], so["sorry@example.com"]
    summary = ws.ingest(
        [
            ses("Delivery", angry, "angry@example.com", at(1)),
            ses("Open", angry, "angry@example.com", at(5)),
            ses("Click", angry, "angry@example.com", at(6)),
            ses("Complaint", angry, "angry@example.com", at(7)),
            ses("Delivery", sorry, "sorry@example.com", at(1)),
            ses("Complaint", sorry, "sorry@example.com", at(8), feedback_type="not-spam"),
        ]
    )

    assert summary["quarantined"] == 1
    assert ws.status(angry)["status"] == "Complaint"
    assert ws.status(angry)["has_complained"] is True
    assert ws.status(sorry)["status"] == "Delivered"
    assert ws.status(sorry)["has_complained"] is False
    assert ws.entries("angry@example.com") == {("complaint", "all")}
    assert ws.entries("sorry@example.com") == set()


def test_an_unsubscribe_is_no_status_and_lists_for_marketing_only(ws):
    """DESIGN §4: "`unsubscribed` is not a display status: it sets `has_unsubscribed` on the
    message and feeds the Unsubscribes list"; §6: unsubscribe link -> `unsubscribed`, scope
    `marketing`. ingest.md: "SES | `Subscription` with `unsubscribeAll` or a topic `OptOut` |
    `unsubscribed`". statuses.md (Lookup): "for a marketing unsubscribe, that non-marketing
    messages still reach them". ingest.md: SES Subscription "other changes quarantined"."""
    so = ws.create(
        [
            {"first_name": "Leaving", "email": "leaving@example.com"},
            {"first_name": "Staying", "email": "staying@example.com"},
            {"first_name": "Topic", "email": "topic@example.com"},
        ]
    )
    leaving, staying = so["leaving@example.com"], so["staying@example.com"]
    summary = ws.ingest(
        [
            ses("Delivery", leaving, "leaving@example.com", at(1)),
            ses("Subscription", leaving, "leaving@example.com", at(20)),
            ses(
                "Subscription",
                so["topic@example.com"],
                "topic@example.com",
                at(22),
                new_preferences={
                    "unsubscribeAll": False,
                    "topicSubscriptionStatus": [
                        {"topicName": "Newsletter", "subscriptionStatus": "OptOut"}
                    ],
                },
            ),
            ses("Delivery", staying, "staying@example.com", at(1)),
            ses(
                "Subscription",
                staying,
                "staying@example.com",
                at(21),
                new_preferences={
                    "unsubscribeAll": False,
                    "topicSubscriptionStatus": [
                        {"topicName": "Newsletter", "subscriptionStatus": "OptIn"}
                    ],
                },
            ),
        ]
    )

    assert summary["quarantined"] == 1
    row = ws.status(leaving)
    assert (row["status"], row["has_unsubscribed"]) == ("Delivered", True)
    assert ws.status(staying)["has_unsubscribed"] is False
    assert ws.entries("leaving@example.com") == {("unsubscribed", "marketing")}
    assert ws.entries("staying@example.com") == set()
    assert ws.entries("topic@example.com") == {("unsubscribed", "marketing")}
    found = ws.json("lookup", "leaving@example.com")
    assert [(e["reason"], e["scope"]) for e in found["entries"]] == [("unsubscribed", "marketing")]
    assert any("non-marketing" in line for line in found["advice"])


def test_marketing_sendouts_skip_a_marketing_unsubscribe_and_non_marketing_ones_reach_it(ws):
    """DESIGN §6: "marketing send-outs skip every active entry; non-marketing send-outs skip
    only entries whose scope is `all`. A skipped message gets status Skipped and costs
    nothing." statuses.md: "`skipped` events recorded by dispatch itself (provider `sendout`)
    never add entries". README: "right after `sendout dispatch` returns, `sendout report` shows
    it"."""
    ws.run(
        "unsubscribes",
        "add",
        "email",
        "Quiet@Example.com",
        "--reason",
        "asked on the phone",
        "--scope",
        "marketing",
        "--by",
        "ops",
    )
    person = [{"first_name": "Quiet", "email": "quiet@example.com"}]
    news = ws.create(person, kind="marketing")
    notice = ws.create(person, kind="non_marketing")

    ws.run("dispatch", news["sendout"])
    ws.run("dispatch", notice["sendout"])

    assert ws.status(news["quiet@example.com"])["status"] == "Skipped"
    assert ws.status(news["quiet@example.com"])["cost"] == 0
    assert ws.status(notice["quiet@example.com"])["status"] == "Sent"
    news_report = ws.report(news["sendout"])["email"]
    notice_report = ws.report(notice["sendout"])["email"]
    assert (news_report["skipped"], news_report["cost"]) == (1, 0)
    assert (notice_report["sent"], notice_report["sendout_status"]) == (1, "Sent")
    assert notice_report["cost"] == pytest.approx(0.0001)
    changes = ws.sql(
        "SELECT reason, action FROM unsubscribe_changes WHERE address = 'quiet@example.com'"
    )
    assert changes == [{"reason": "manual", "action": "add"}]
    found = ws.json("lookup", "quiet@example.com")
    assert sorted((m["status"], m["communication_type"]) for m in found["messages"]) == [
        ("Sent", "non_marketing"),
        ("Skipped", "marketing"),
    ]
    assert any("skipped" in line.lower() for line in found["advice"])


# ---------------------------------------------------------------------------------------------
# Opens, clicks and rates


def test_open_click_and_human_open_rates_divide_unique_counts_by_accepted(ws):
    """DESIGN §5: "open rate = unique opened (a click counts as an open) / accepted; human open
    rate excludes messages whose only opens are machine opens; click rate = unique clicked /
    accepted; click-to-open = unique clicked / unique opened"; statuses.md:
    "`is_machine_open_only`: opened, every open a machine's (SendGrid `sg_machine_open` ...)
    and nothing clicked"; "A click counts as an open"."""
    people = ["robot", "human", "clicker", "both", "unread", "bounce"]
    so = ws.create([{"first_name": p, "email": f"{p}@example.com"} for p in people])
    m = {p: so[f"{p}@example.com"] for p in people}
    machine = {"sg_machine_open": True, "useragent": "Mozilla/5.0", "ip": "17.58.102.41"}
    person = {"sg_machine_open": False, "useragent": "Mozilla/5.0 (iPhone)", "ip": "203.0.113.7"}
    link = {"url": "https://example.com/offer", "useragent": "Mozilla/5.0 (iPhone)"}
    events = [
        sendgrid("delivered", m[p], f"{p}@example.com", at(1), response="250 OK")
        for p in people
        if p != "bounce"
    ]
    events += [
        sendgrid("open", m["robot"], "robot@example.com", at(2), **machine),
        sendgrid("open", m["robot"], "robot@example.com", at(3), **machine),
        sendgrid("open", m["human"], "human@example.com", at(30), **person),
        sendgrid("click", m["clicker"], "clicker@example.com", at(40), **link),
        sendgrid("click", m["clicker"], "clicker@example.com", at(45), **link),
        sendgrid("open", m["both"], "both@example.com", at(2), **machine),
        sendgrid("click", m["both"], "both@example.com", at(50), **link),
        sendgrid(
            "bounce",
            m["bounce"],
            "bounce@example.com",
            at(1),
            type="blocked",
            status="5.7.1",
            bounce_classification="Reputation",
            reason="554 5.7.1 Service unavailable; client host blocked using Spamhaus",
        ),
    ]
    ws.ingest(events)

    rows = {p: ws.status(m[p]) for p in people}
    assert {p: r["status"] for p, r in rows.items()} == {
        "robot": "Opened",
        "human": "Opened",
        "clicker": "Clicked",
        "both": "Clicked",
        "unread": "Delivered",
        "bounce": "Bounced",
    }
    assert {p: r["is_machine_open_only"] for p, r in rows.items() if r["is_opened"]} == {
        "robot": True,
        "human": False,
        "clicker": False,
        "both": False,
    }
    assert (rows["robot"]["open_count"], rows["robot"]["machine_open_count"]) == (2, 2)
    # A click counts as an open: its time is the first open's.
    assert rows["clicker"]["is_opened"] is True
    assert utc(rows["clicker"]["first_opened_at"]) == at(40)
    assert utc(rows["clicker"]["first_clicked_at"]) == at(40)
    assert rows["clicker"]["click_count"] == 2  # people's click events; unique counts below

    report = ws.report(so["sendout"])["email"]
    assert report["accepted"] == 5
    assert (report["unique_opened"], report["unique_human_opened"]) == (4, 3)
    assert report["unique_clicked"] == 2
    assert report["open_rate"] == pytest.approx(4 / 5)
    assert report["human_open_rate"] == pytest.approx(3 / 5)
    assert report["click_rate"] == pytest.approx(2 / 5)
    assert report["click_to_open_rate"] == pytest.approx(2 / 4)


def test_a_link_scanners_click_counts_as_a_machine_open_not_a_click(ws):
    """statuses.md: "A machine's click (a link scanner following every link on delivery:
    Mailgun's `bot` ...) proves no more than a machine's open, so it counts as one: it does not
    make the message Clicked, add to `click_count` or set `first_clicked_at`. The event keeps
    `event_type` `clicked` with `is_machine_open` set"."""
    so = ws.create(
        [
            {"first_name": "Scanned", "email": "scanned@example.com"},
            {"first_name": "Reader", "email": "reader@example.com"},
        ]
    )
    scanned, reader = so["scanned@example.com"], so["reader@example.com"]
    bot = {
        "client-type": "unknown",
        "user-agent": "Mozilla/5.0",
        "device-type": "unknown",
        "bot": "generic",
    }
    human = {
        "client-type": "browser",
        "user-agent": "Mozilla/5.0 (Windows NT 10.0) Firefox/125.0",
        "device-type": "desktop",
        "bot": "",
    }
    ws.ingest(
        [
            mailgun("delivered", scanned, "scanned@example.com", at(1)),
            mailgun(
                "clicked",
                scanned,
                "scanned@example.com",
                at(1.1),
                url="https://example.com/offer",
                **{"client-info": bot},
            ),
            mailgun("delivered", reader, "reader@example.com", at(1)),
            mailgun(
                "clicked",
                reader,
                "reader@example.com",
                at(1.1),
                url="https://example.com/offer",
                **{"client-info": bot},
            ),
            mailgun(
                "clicked",
                reader,
                "reader@example.com",
                at(30),
                url="https://example.com/offer",
                **{"client-info": human},
            ),
        ]
    )

    row = ws.status(scanned)
    assert row["status"] == "Opened"
    assert (row["is_opened"], row["is_clicked"], row["click_count"]) == (True, False, 0)
    assert row["first_clicked_at"] is None
    assert row["is_machine_open_only"] is True
    assert (row["open_count"], row["machine_open_count"]) == (1, 1)
    (event,) = ws.sql(
        "SELECT event_type, is_machine_open, url FROM events "
        "WHERE message_id = ? AND event_type <> 'delivered'",
        scanned,
    )
    assert event == {
        "event_type": "clicked",
        "is_machine_open": True,
        "url": "https://example.com/offer",
    }
    person = ws.status(reader)
    assert (person["status"], person["click_count"], person["is_machine_open_only"]) == (
        "Clicked",
        1,
        False,
    )
    assert utc(person["first_clicked_at"]) == at(30) + timedelta(microseconds=101234)
    report = ws.report(so["sendout"])["email"]
    assert (report["unique_opened"], report["unique_human_opened"]) == (2, 1)
    assert report["unique_clicked"] == 1


def test_rates_are_null_not_zero_when_their_divisor_is_zero(ws):
    """statuses.md: "Rates divide unique counts by `accepted`, click-to-open by unique opens,
    and are null (not zero) when the divisor is zero." warehouse.md: `accepted` = "messages
    sent (neither skipped nor queued) - (bounced + bad_email + bad_number + failed)"."""
    bounced = ws.create(
        [
            {"first_name": "A", "email": "a@example.com"},
            {"first_name": "B", "email": "b@example.com"},
        ]
    )
    unread = ws.create([{"first_name": "C", "email": "c@example.com"}])
    ws.ingest(
        [
            ses("Bounce", bounced["a@example.com"], "a@example.com", at(1), status="5.1.1"),
            ses("Reject", bounced["b@example.com"], "b@example.com", at(1)),
            ses("Delivery", unread["c@example.com"], "c@example.com", at(1)),
        ]
    )

    nothing_accepted = ws.report(bounced["sendout"])["email"]
    assert nothing_accepted["accepted"] == 0
    assert (nothing_accepted["bad_email"], nothing_accepted["failed"]) == (1, 1)
    for rate in ("open_rate", "human_open_rate", "click_rate", "click_to_open_rate"):
        assert nothing_accepted[rate] is None, rate
    none_opened = ws.report(unread["sendout"])["email"]
    assert none_opened["accepted"] == 1
    assert (none_opened["open_rate"], none_opened["click_rate"]) == (0, 0)
    assert none_opened["click_to_open_rate"] is None


# ---------------------------------------------------------------------------------------------
# Money


def test_costs_use_the_configured_prices_and_currency_and_skip_what_was_not_sent(tmp_path):
    """statuses.md: "Billable: every message handed to a provider that was not skipped (bounced
    ones too). A message still Queued with no event costs nothing yet. Email: 1 unit at
    `$SENDOUT_EMAIL_COST` ... SMS: one unit per segment at `$SENDOUT_SMS_SEGMENT_COST` ...,
    currency `$SENDOUT_CURRENCY`"; "Costs are rounded to a millionth." warehouse.md `cost`:
    "`billable_units` x the configured rate, in `$SENDOUT_CURRENCY`". (`sendout` runs in a
    subprocess with these settings in its environment.)"""
    ws = Workspace(
        tmp_path,
        SENDOUT_EMAIL_COST="0.25",
        SENDOUT_SMS_SEGMENT_COST="0.0333333333",
        SENDOUT_CURRENCY="EUR",
    )
    people = ["got", "bounced", "dropped", "waiting"]
    texter = "+447911100001"
    so = ws.create(
        [{"first_name": p, "email": f"{p}@example.com"} for p in people]
        + [{"first_name": "a" * 307, "mobile": texter}],
        channels=("email", "sms"),
        sms_text="{first_name}",
    )
    m = {p: so[f"{p}@example.com"] for p in people}
    ws.ingest(
        [
            ses("Delivery", m["got"], "got@example.com", at(1)),
            ses("Bounce", m["bounced"], "bounced@example.com", at(1), status="5.1.1"),
            ses(
                "Bounce",
                m["dropped"],
                "dropped@example.com",
                at(1),
                subtype="OnAccountSuppressionList",
                diagnostic="Amazon SES did not send the message to this address because it "
                "is on the suppression list for your account.",
            ),
        ],
        [twilio("delivered", so[texter], texter, at(1))],
    )

    rows = {p: ws.status(m[p]) for p in people}
    assert {p: (r["status"], r["billable_units"], r["cost"]) for p, r in rows.items()} == {
        "got": ("Delivered", 1, 0.25),
        "bounced": ("Bad email", 1, 0.25),
        "dropped": ("Skipped", 0, 0),
        "waiting": ("Queued", 0, 0),
    }
    sms = ws.status(so[texter])
    assert (sms["billable_units"], sms["cost"]) == (3, 0.1)  # 0.0999999999, to a millionth
    report = ws.report(so["sendout"])
    assert report["email"]["cost"] == pytest.approx(0.5)
    assert report["sms"]["cost"] == 0.1
    text = ws.run("report", so["sendout"])
    assert "EUR" in text and "GBP" not in text
    # A provider's suppression list is a reason of its own on the list.
    assert ws.entries("dropped@example.com") == {("provider_suppressed", "all")}


SEGMENT_CASES = {
    # name: (text, segments) -- statuses.md's GSM-7 and UCS-2 rules
    "gsm160": ("a" * 160, 1),
    "gsm161": ("a" * 161, 2),
    "gsm306": ("a" * 306, 2),
    "gsm307": ("a" * 307, 3),
    "euro80": ("€" * 80, 1),
    "euro81": ("€" * 81, 2),
    "braces80": ("{" * 80, 1),
    "braces81": ("{" * 81, 2),
    "extension81": ("^}\\[~]|" * 11 + "^}\\[", 2),  # 81 extension characters: 162 septets
    "extension70": ("^}\\[~]|" * 10, 1),
    "accented160": ("é" * 40 + "£" * 40 + "ñ" * 40 + "Ä" * 40, 1),  # all in GSM-7's basic set
    "accented161": ("ü" * 161, 2),
    "delta153x2": ("Δ" * 306, 2),
    "acute70": ("á" * 70, 1),  # á is not GSM-7
    "acute71": ("á" * 71, 2),
    "one_emoji": ("a" * 68 + "😀", 1),
    "one_emoji_over": ("a" * 69 + "😀", 2),
    "ucs70": ("ł" * 70, 1),
    "ucs71": ("ł" * 71, 2),
    "ucs134": ("ł" * 134, 2),
    "ucs135": ("ł" * 135, 3),
    "emoji35": ("😀" * 35, 1),
    "emoji36": ("😀" * 36, 2),
}


def test_sms_is_billed_per_segment_by_the_documented_gsm7_and_ucs2_rules(ws):
    """statuses.md: "SMS: one unit per segment at `$SENDOUT_SMS_SEGMENT_COST` (default 0.04)";
    "GSM-7 text is 160 septets alone or 153 per part, GSM extension characters (`^ { } \\ [ ~
    ] | €` and form feed) count two; any other character makes the text UCS-2, 70 UTF-16 units
    alone or 67 per part (an emoji outside the basic plane is two)"."""
    people = [
        {"first_name": text, "mobile": f"+4479111{n:05d}"}
        for n, (text, _) in enumerate(SEGMENT_CASES.values())
    ]
    # The SMS is the recipient's first name, filled in by the template.
    so = ws.create(people, channels=("sms",), sms_text="{first_name}")
    m = {name: so[f"+4479111{n:05d}"] for n, name in enumerate(SEGMENT_CASES)}
    ws.ingest(
        [
            twilio("delivered", m[name], f"+4479111{n:05d}", at(1))
            for n, name in enumerate(SEGMENT_CASES)
        ]
    )

    texts = {r["message_id"]: r["sms_text"] for r in ws.sql("SELECT * FROM messages")}
    assert {name: texts[m[name]] for name in SEGMENT_CASES} == {
        name: text for name, (text, _) in SEGMENT_CASES.items()
    }
    got = {name: ws.status(m[name]) for name in SEGMENT_CASES}
    assert {name: row["billable_units"] for name, row in got.items()} == {
        name: segments for name, (_, segments) in SEGMENT_CASES.items()
    }
    for name, row in got.items():
        assert row["cost"] == pytest.approx(SEGMENT_CASES[name][1] * 0.04), name
    total = sum(segments for _, segments in SEGMENT_CASES.values())
    assert ws.report(so["sendout"])["sms"]["cost"] == pytest.approx(total * 0.04)


def test_twilio_outcomes_map_to_statuses_the_list_and_accepted(ws):
    """ingest.md: Twilio `sent`/`delivered`; "`undelivered`/`failed` with 30003 | `deferred`";
    "with 21211, 21614, 21635, 30005, 30006 | `bad_number`"; "with 21610 (recipient replied STOP
    to Twilio) | `skipped`"; "other errors | `failed`". statuses.md: "A provider's suppression
    adds `provider_suppressed`"; DESIGN §6: bad number -> `bad_number`, scope `all`;
    warehouse.md: `accepted` = "messages sent (neither skipped nor queued) - (bounced +
    bad_email + bad_number + failed)"."""
    names = ["ok", "later", "stopped", "wrong", "filtered"]
    number = {n: f"+44791110000{i}" for i, n in enumerate(names)}
    so = ws.create(
        [{"first_name": n, "mobile": number[n]} for n in names],
        channels=("sms",),
        sms_text="Your appointment is tomorrow",
    )
    m = {n: so[number[n]] for n in names}

    def cb(name, status, minute, error=""):
        return twilio(status, m[name], number[name], at(minute), error)

    ws.ingest(
        [
            cb("ok", "delivered", 3),
            cb("later", "undelivered", 3, "30003"),
            cb("stopped", "failed", 1, "21610"),
            cb("wrong", "undelivered", 3, "30006"),
            cb("filtered", "undelivered", 3, "30007"),
        ]
    )
    ws.ingest(
        [
            cb("ok", "sent", 2),
            cb("ok", "queued", 1),
            cb("later", "sent", 2),
            cb("stopped", "queued", 0),
            cb("wrong", "sent", 2),
            cb("filtered", "sent", 2),
        ]
    )

    rows = {n: ws.status(m[n]) for n in names}
    assert {n: (r["status"], r["billable_units"]) for n, r in rows.items()} == {
        "ok": ("Delivered", 1),
        "later": ("Sent", 1),
        "stopped": ("Skipped", 0),
        "wrong": ("Bad number", 1),
        "filtered": ("Failed", 1),
    }
    assert ws.entries(number["stopped"]) == {("provider_suppressed", "all")}
    assert ws.entries(number["wrong"]) == {("bad_number", "all")}
    assert ws.entries(number["filtered"]) == set()
    report = ws.report(so["sendout"])["sms"]
    assert report["accepted"] == 2
    assert report["cost"] == pytest.approx(4 * 0.04)


# ---------------------------------------------------------------------------------------------
# Replies


def test_a_reply_answers_the_latest_sms_sent_before_it_and_stop_lists_the_number(ws):
    """statuses.md: "An inbound SMS is classified from its whole body, trimmed, in any case";
    "It answers the latest outbound SMS sent to that number before it arrived (sent time, else
    the message's creation time)"; "Inbound SMS are billed per segment of their text".
    warehouse.md `sendout_channel_stats.cost`: "messages' cost plus, on the SMS row, its
    inbound ... SMS"; DESIGN §6: STOP -> `stop_reply`, scope `all`."""
    ada, bob = "+447911100001", "+447911100002"
    first = ws.create(
        [{"first_name": "Ada", "mobile": ada}, {"first_name": "Bob", "mobile": bob}],
        channels=("sms",),
    )
    second = ws.create([{"first_name": "Ada", "mobile": ada}], channels=("sms",))
    ws.ingest(
        [
            twilio("delivered", first[ada], ada, at(1)),
            twilio("delivered", first[bob], bob, at(1)),
            twilio("delivered", second[ada], ada, at(60)),
        ]
    )
    ws.ingest(
        [
            twilio_inbound(ada, "Is this about Tuesday?", at(30)),
            twilio_inbound(bob, "STOP it please", at(31)),
            twilio_inbound(ada, "  Stop ", later(1)),
        ],
        shape="form",
    )

    replies = ws.sql(
        "SELECT from_number, body, keyword, message_id, sendout_id, billable_units, cost "
        "FROM inbound_messages ORDER BY received_at"
    )
    assert [(r["from_number"], r["keyword"], r["message_id"]) for r in replies] == [
        (ada, "other", first[ada]),
        (bob, "other", first[bob]),
        (ada, "stop", second[ada]),
    ]
    assert [r["sendout_id"] for r in replies] == [
        first["sendout"],
        first["sendout"],
        second["sendout"],
    ]
    assert [r["billable_units"] for r in replies] == [1, 1, 1]
    assert ws.entries(ada) == {("stop_reply", "all")}
    assert ws.entries(bob) == set()
    first_sms = ws.report(first["sendout"])["sms"]
    second_sms = ws.report(second["sendout"])["sms"]
    assert (first_sms["inbound"], second_sms["inbound"]) == (2, 1)
    assert first_sms["cost"] == pytest.approx(2 * 0.04 + 2 * 0.04)
    assert second_sms["cost"] == pytest.approx(0.04 + 0.04)
    found = ws.json("lookup", "+44 7911 100001")
    assert [(e["reason"], e["scope"]) for e in found["entries"]] == [("stop_reply", "all")]


def test_reply_keywords_are_read_from_the_whole_trimmed_body_in_any_case(ws):
    """statuses.md: "STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT are `stop`; START, UNSTOP,
    YES are `start`; HELP, INFO `help`; anything else `other`"."""
    bodies = {
        "STOP": "stop",
        " stopall ": "stop",
        "Unsubscribe": "stop",
        "cancel\n": "stop",
        "End": "stop",
        "QUIT": "stop",
        "start": "start",
        "Unstop": "start",
        "yes": "start",
        " HELP": "help",
        "info": "help",
        "stop please": "other",
        "Yes please, what time?": "other",
        "STOP.": "other",
    }
    numbers = {body: f"+4479112{n:05d}" for n, body in enumerate(bodies)}
    long_replies = {"a" * 161: 2, "ł" * 71: 2, "Thanks 😀": 1}
    summary = ws.ingest(
        [twilio_inbound(numbers[b], b, at(n)) for n, b in enumerate(bodies)]
        + [twilio_inbound(f"+4479113{n:05d}", text, at(30)) for n, text in enumerate(long_replies)]
    )

    assert summary["unmatched"] == 0  # ingest.md: "Inbound SMS never count as unmatched"
    rows = ws.sql("SELECT * FROM inbound_messages")
    # "none if nothing was sent before"
    assert {(r["message_id"], r["sendout_id"]) for r in rows} == {(None, None)}
    got = {r["from_number"]: r["keyword"] for r in rows}
    assert {body: got[numbers[body]] for body in bodies} == bodies
    listed = {r["address"] for r in ws.sql("SELECT address FROM unsubscribes")}
    assert listed == {numbers[b] for b, k in bodies.items() if k == "stop"}
    # "Inbound SMS are billed per segment of their text"
    units = {r["body"]: r["billable_units"] for r in rows}
    assert (units["STOP"], units["Yes please, what time?"]) == (1, 1)
    assert {text: units[text] for text in long_replies} == long_replies


def test_start_lifts_a_stop_by_time_not_by_arrival_and_leaves_other_entries(ws):
    """statuses.md: "one address can be listed for several reasons and lifting one (START lifts
    `stop_reply`) leaves the others"; "a START sent after a STOP lifts it even if the START was
    ingested first"; "events count whether or not they matched one of our messages"."""
    cy = "+447911100003"
    ws.run("unsubscribes", "add", "sms", "+44 7911 100003", "--reason", "asked by phone")
    assert ws.entries(cy) == {("manual", "all")}

    ws.ingest([twilio_inbound(cy, "START", later(10))])
    ws.ingest([twilio_inbound(cy, "STOP", later(5))])
    assert ws.entries(cy) == {("manual", "all")}

    ws.ingest([twilio_inbound(cy, "STOP", later(20))])
    assert ws.entries(cy) == {("manual", "all"), ("stop_reply", "all")}

    ws.ingest([twilio_inbound(cy, "unstop", later(30))])
    assert ws.entries(cy) == {("manual", "all")}


# ---------------------------------------------------------------------------------------------
# The Unsubscribes list: what adds, what removes, what never forgets


def test_a_manual_removal_stands_until_something_newer_happens(ws):
    """statuses.md: "a manual removal stands until something newer happens (a new bounce lists
    the address again)"; "`unsubscribe_changes` is append-only; the view `unsubscribes` shows
    the entries whose latest change is an `add`"; DESIGN §6 "a removal is a new row, so
    nothing is ever lost"."""
    address = "bea@example.com"
    old = ws.create([{"first_name": "Bea", "email": address}])
    ws.ingest([ses("Bounce", old[address], address, at(5), status="5.1.1")])
    assert ws.entries(address) == {("bad_email", "all")}

    ws.run("unsubscribes", "remove", "email", address, "--reason", "typo fixed", "--by", "ops")
    assert ws.entries(address) == set()
    ws.run("refresh", "--full")
    # An old event re-delivered now (dated before the removal) changes nothing either.
    ws.ingest([ses("Bounce", old[address], address, at(6), status="5.1.1")])
    assert ws.entries(address) == set()

    new = ws.create([{"first_name": "Bea", "email": address}])
    ws.ingest([ses("Bounce", new[address], address, later(2), status="5.1.1")])
    assert ws.entries(address) == {("bad_email", "all")}

    history = ws.sql(
        "SELECT action, reason, changed_by, note FROM unsubscribe_changes "
        "WHERE address = ? ORDER BY change_id",
        address,
    )
    assert [(h["action"], h["reason"]) for h in history] == [
        ("add", "bad_email"),
        ("remove", "bad_email"),
        ("add", "bad_email"),
    ]
    assert (history[1]["changed_by"], history[1]["note"]) == ("ops", "typo fixed")
    assert "typo fixed" in ws.run("unsubscribes", "history", address)


def test_three_soft_bounces_of_distinct_messages_without_a_delivery_list_the_address(ws):
    """statuses.md: "A soft-bounce streak counts soft bounces of distinct messages since the
    address's last delivery, open or click; the third adds `repeated_soft_bounce`". DESIGN
    §6: "three soft bounces in a row across send-outs, no delivery between" -> scope `all`;
    a delay (`deferred`) is no bounce."""
    names = ("dora", "fay", "gus", "ivy")
    people = [{"first_name": p, "email": f"{p}@example.com"} for p in names]
    sendouts = [ws.create(people) for _ in range(3)]
    extra = ws.create([people[2]])

    def soft(so, name, minute):
        address = f"{name}@example.com"
        return ses(
            "Bounce",
            so[address],
            address,
            at(minute),
            bounce_type="Transient",
            subtype="MailboxFull",
            status="4.2.2",
            diagnostic="smtp; 452 4.2.2 The email account is over quota",
        )

    s1, s2, s3 = sendouts
    ws.ingest(
        [
            soft(s1, "dora", 10),
            soft(s2, "dora", 20),
            soft(s3, "dora", 30),
            # fay: three soft bounces, but of two messages
            soft(s1, "fay", 10),
            soft(s2, "fay", 20),
            soft(s2, "fay", 25),
            # gus: three soft bounces with a delivery between
            soft(s1, "gus", 10),
            soft(s2, "gus", 20),
            ses("Delivery", extra["gus@example.com"], "gus@example.com", at(25)),
            soft(s3, "gus", 30),
            # ivy: three delays (deferred, no bounce)
            *(
                ses("DeliveryDelay", so["ivy@example.com"], "ivy@example.com", at(10 * n))
                for n, so in enumerate(sendouts, start=1)
            ),
        ]
    )

    assert ws.entries("dora@example.com") == {("repeated_soft_bounce", "all")}
    assert ws.entries("fay@example.com") == set()
    assert ws.entries("gus@example.com") == set()
    assert ws.entries("ivy@example.com") == set()


def test_events_of_messages_we_do_not_know_still_count_for_the_list(ws):
    """statuses.md: "events count whether or not they matched one of our messages". ingest.md:
    "Events for messages that do not exist yet are kept with a null `message_id` (counted as
    "unmatched")"."""
    summary = ws.ingest([ses("Complaint", "msg_not_one_of_ours", "Stranger@Example.com", at(5))])

    assert summary["unmatched"] == 1
    assert ws.entries("stranger@example.com") == {("complaint", "all")}
    (event,) = ws.sql("SELECT message_id, recipient FROM events")
    assert event == {"message_id": None, "recipient": "stranger@example.com"}


# ---------------------------------------------------------------------------------------------
# `sendout lookup`


def test_lookup_explains_a_rejected_address_and_a_delivered_unopened_one(ws):
    """statuses.md: "`sendout lookup ADDRESS` prints the entries, every message sent to the
    address with its status and communication type, and the advice ...: listed and by which
    scope; nothing sent; ... rejected by the receiving side (check the address); delivered but
    not opened (spam/junk folder, safe senders)"."""
    so = ws.create(
        [
            {"first_name": "Typo", "email": "typo@example.com"},
            {"first_name": "Quiet", "email": "quiet@example.com"},
            {"first_name": "Dmarc", "email": "dmarc@example.com"},
        ],
        kind="non_marketing",
    )
    ws.ingest(
        [
            ses(
                "Bounce",
                so["dmarc@example.com"],
                "dmarc@example.com",
                at(1),
                status="5.7.26",
                diagnostic="smtp; 550 5.7.26 This message does not pass authentication checks",
            ),
            ses("Bounce", so["typo@example.com"], " Typo@Example.COM", at(1), status="5.1.1"),
            ses("Delivery", so["quiet@example.com"], "quiet@example.com", at(1)),
        ]
    )

    rejected = ws.json("lookup", " TYPO@example.com ")
    assert ws.sql("SELECT DISTINCT recipient FROM events WHERE event_type = 'bad_email'") == [
        {"recipient": "typo@example.com"}
    ]
    assert rejected["address"] == "typo@example.com"
    assert [(e["reason"], e["scope"]) for e in rejected["entries"]] == [("bad_email", "all")]
    assert [(m["status"], m["communication_type"]) for m in rejected["messages"]] == [
        ("Bad email", "non_marketing")
    ]
    assert any("rejected" in line for line in rejected["advice"])
    (entry,) = ws.sql("SELECT * FROM unsubscribes WHERE address = 'typo@example.com'")
    (event,) = ws.sql("SELECT event_id FROM events WHERE event_type = 'bad_email'")
    assert {k: entry[k] for k in ("sendout_id", "message_id", "cause", "added_by")} == {
        "sendout_id": so["sendout"],
        "message_id": so["typo@example.com"],
        "cause": "bad_email",
        "added_by": "sendout",
    }
    assert entry["cause_event_id"] == event["event_id"]
    text = ws.run("lookup", "quiet@example.com")
    assert "not on the Unsubscribes list" in text
    assert "Delivered" in text
    assert "spam or junk folder" in text and "safe senders" in text
    # bounces.md: "a spam block or a DMARC failure never lists a good address: the advice for
    # it is to fix the sending domain."
    refused = ws.json("lookup", "dmarc@example.com")
    assert refused["entries"] == []
    assert any("DMARC" in line for line in refused["advice"])
    assert not any("typos" in line for line in refused["advice"])
    nothing = ws.run("lookup", "nobody@example.com")
    assert "Nothing was sent" in nothing


# ---------------------------------------------------------------------------------------------
# `sendout report`, the send-out's figures, and refresh


def _mixed_sendout(ws: Workspace) -> dict:
    """An email + SMS send-out whose messages end every way, told in three ingests."""
    people = [
        {"first_name": "Ann", "email": "ann@example.com", "mobile": "+447911100001"},
        {"first_name": "Ben", "email": "ben@example.com", "mobile": "+447911100002"},
        {"first_name": "Cat", "email": "cat@example.com", "mobile": "+447911100003"},
        {"first_name": "Dan", "email": "dan@example.com", "mobile": "+447911100004"},
        {"first_name": "Eve", "email": "eve@example.com"},
        {"first_name": "Fox", "email": "fox@example.com"},
    ]
    so = ws.create(people, channels=("email", "sms"))
    e = {p["first_name"]: so[p["email"]] for p in people}
    s = {p["first_name"]: so[p["mobile"]] for p in people if "mobile" in p}
    ws.ingest(
        [
            ses("Delivery", e["Ann"], "ann@example.com", at(1)),
            ses("Delivery", e["Ben"], "ben@example.com", at(1)),
            ses("Bounce", e["Cat"], "cat@example.com", at(1), status="5.1.1"),
            ses("DeliveryDelay", e["Dan"], "dan@example.com", at(1)),
        ],
        [
            twilio("delivered", s["Ann"], "+447911100001", at(1)),
            twilio("undelivered", s["Ben"], "+447911100002", at(1), "30006"),
        ],
    )
    ws.ingest(
        [
            ses("Open", e["Ann"], "ann@example.com", at(10)),
            ses("Click", e["Ann"], "ann@example.com", at(11)),
            ses("Open", e["Ben"], "ben@example.com", at(12)),
            ses("Reject", e["Eve"], "eve@example.com", at(1)),
        ],
        [twilio("sent", s["Cat"], "+447911100003", at(2))],
    )
    ws.ingest(
        [
            ses("Complaint", e["Ben"], "ben@example.com", at(40)),
            ses("Subscription", e["Ann"], "ann@example.com", at(50)),
        ],
        [twilio_inbound("+447911100001", "Thanks!", later(1))],
    )
    return so


def test_report_json_counts_add_up_and_rates_follow_the_documented_formulas(ws):
    """warehouse.md `sendout_channel_stats`: "`planned` messages created for the send-out on
    this channel"; "`done` messages with an outcome"; "`accepted` messages sent (neither
    skipped nor queued) - (bounced + bad_email + bad_number + failed)"; "`open_rate`,
    `human_open_rate`, `click_rate` the unique counts / accepted"; "`cost` messages' cost plus,
    on the SMS row, its inbound ... SMS". statuses.md: "Status, progress and counts have one
    home, `sendout_summary` ..., which ... `sendout report` and analysts all read"."""
    so = _mixed_sendout(ws)

    report = ws.report(so["sendout"])
    email, sms = report["email"], report["sms"]
    assert {c: email[c] for c in STATUS_COLUMNS if email[c]} == {
        "queued": 1,
        "sent": 1,
        "bad_email": 1,
        "failed": 1,
        "complaint": 1,
        "clicked": 1,
    }
    assert {c: sms[c] for c in STATUS_COLUMNS if sms[c]} == {
        "delivered": 1,
        "bad_number": 1,
        "sent": 1,
        "queued": 1,
    }
    for row in (email, sms):
        assert sum(row[c] for c in STATUS_COLUMNS) == row["planned"]
        assert row["done"] == row["planned"] - row["queued"]
        attempted = row["planned"] - row["queued"] - row["skipped"]
        taken_out = row["bounced"] + row["bad_email"] + row["bad_number"] + row["failed"]
        assert row["accepted"] == attempted - taken_out
    assert (email["planned"], email["accepted"]) == (6, 3)
    assert (sms["planned"], sms["accepted"]) == (4, 2)
    assert (email["unique_opened"], email["unique_clicked"]) == (2, 1)
    assert email["open_rate"] == pytest.approx(2 / 3)
    assert email["click_rate"] == pytest.approx(1 / 3)
    assert email["click_to_open_rate"] == pytest.approx(1 / 2)
    assert sms["inbound"] == 1
    costs = {
        r["channel"]: r["cost"]
        for r in ws.sql(
            "SELECT channel, sum(cost) AS cost FROM message_status WHERE sendout_id = ? "
            "GROUP BY channel",
            so["sendout"],
        )
    }
    assert email["cost"] == pytest.approx(costs["email"]) == pytest.approx(5 * 0.0001)
    assert sms["cost"] == pytest.approx(costs["sms"] + 0.04) == pytest.approx(4 * 0.04)
    assert email["sendout_status"] == "Delivered"
    # Analysts read the very same figures.
    (summary,) = ws.sql(
        "SELECT * FROM sendout_summary WHERE sendout_id = ? AND channel = 'email'", so["sendout"]
    )
    assert {k: summary[k] for k in ("accepted", "unique_opened", "complaint", "planned")} == {
        k: email[k] for k in ("accepted", "unique_opened", "complaint", "planned")
    }


def test_refresh_full_gives_the_same_results_as_the_incremental_refreshes(ws):
    """warehouse.md: "`sendout refresh` does the same by hand (`--full` rebuilds every row).
    Each refresh takes in the events stored since the last one ... so its cost follows what is
    new. Every reader ... sees the same figures." statuses.md: "deriving twice adds nothing"."""
    so = _mixed_sendout(ws)
    skip = {"refreshed_at"}

    def state():
        statuses = ws.sql("SELECT * FROM message_status ORDER BY message_id")
        return (
            [{k: v for k, v in row.items() if k not in skip} for row in statuses],
            ws.json("report", so["sendout"]),
            ws.sql("SELECT * FROM unsubscribes ORDER BY change_id"),
            ws.sql("SELECT * FROM inbound_messages ORDER BY event_id"),
        )

    before = state()
    changes_before = ws.sql("SELECT count(*) AS n FROM unsubscribe_changes")[0]["n"]
    ws.run("refresh", "--full")
    after_full = state()
    ws.run("refresh")

    assert after_full == before
    assert state() == before
    assert ws.sql("SELECT count(*) AS n FROM unsubscribe_changes")[0]["n"] == changes_before


def test_the_sendouts_own_status_follows_its_messages(ws):
    """statuses.md: "Cancelled if cancelled; else Delivered once any message was delivered;
    else Sent once any message was sent; else Scheduled while its time is in the future; else
    Sending...". DESIGN §5 "Sending... (created or started, no message sent yet)"."""
    ann, ben = "+447911100001", "+447911100002"
    so = ws.create(
        [{"first_name": "Ann", "mobile": ann}, {"first_name": "Ben", "mobile": ben}],
        channels=("sms",),
    )
    assert ws.report(so["sendout"])["sms"]["sendout_status"] == "Sending..."

    ws.ingest([twilio("sent", so[ann], ann, at(1))])
    row = ws.report(so["sendout"])["sms"]
    assert (row["sendout_status"], utc(row["sendout_sent_at"])) == ("Sent", at(1))
    assert row["sendout_delivered_at"] is None

    ws.ingest([twilio("delivered", so[ben], ben, at(5))])
    row = ws.report(so["sendout"])["sms"]
    assert (row["sendout_status"], utc(row["sendout_delivered_at"])) == ("Delivered", at(5))
    assert row["done"] == row["planned"] == 2

    when = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S")
    later_one = ws.create([{"first_name": "Ann", "email": "ann@example.com"}], extra=("--at", when))
    scheduled = later_one["sendout"]
    (row,) = ws.json("report", scheduled)
    assert row["sendout_status"] == "Scheduled"
    ws.run("sendouts", "cancel", scheduled)
    (row,) = ws.json("report", scheduled)
    assert row["sendout_status"] == "Cancelled"


def test_scheduled_turns_into_sending_when_the_time_comes_without_a_refresh(ws):
    """statuses.md: "else Scheduled while its time is in the future; else Sending.... It is a
    view, so Scheduled turns into Sending... when the time comes without a refresh"."""
    due = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    so = ws.create(
        [{"first_name": "Ann", "email": "ann@example.com"}],
        extra=("--at", due.strftime("%Y-%m-%d %H:%M:%S")),
    )
    (row,) = ws.json("report", so["sendout"])
    assert row["sendout_status"] == "Scheduled"
    assert utc(row["scheduled_at"]) == due

    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.2)
    (row,) = ws.json("report", so["sendout"])
    assert row["sendout_status"] == "Sending..."


# ---------------------------------------------------------------------------------------------
# Timestamps


def test_provider_times_in_any_documented_form_are_stored_as_the_same_utc_instant(ws):
    """warehouse.md: "All times are `TIMESTAMPTZ` in UTC." DESIGN §7: "Timestamps come as
    ISO-8601 (with or without `Z`, with offsets, 7 fractional digits), epoch seconds as int,
    float or string: parse all of them to UTC." statuses.md: "opens and clicks set their flags,
    counts and first times whatever the status"."""
    people = ["pm", "sg", "mg", "ses"]
    so = ws.create([{"first_name": p, "email": f"{p}@example.com"} for p in people])
    m = {p: so[f"{p}@example.com"] for p in people}
    delivered = at(7)
    ws.ingest([postmark("Delivery", m["pm"], "pm@example.com", delivered)])
    ws.ingest(
        [sendgrid("delivered", m["sg"], "sg@example.com", delivered, response="250 OK")],
    )
    ws.ingest([mailgun("delivered", m["mg"], "mg@example.com", delivered)])
    # SES: a later open arrives first, the earlier one afterwards.
    ws.ingest([ses("Delivery", m["ses"], "ses@example.com", delivered)])
    ws.ingest([ses("Open", m["ses"], "ses@example.com", at(30))])
    ws.ingest([ses("Open", m["ses"], "ses@example.com", at(20))])

    types = {
        r["column_name"]: r["column_type"]
        for r in ws.sql("DESCRIBE SELECT occurred_at, ingested_at FROM events")
    }
    assert types == {"occurred_at": "TIMESTAMP WITH TIME ZONE"} | {
        "ingested_at": "TIMESTAMP WITH TIME ZONE"
    }
    delivered_events = {
        r["message_id"]: utc(r["occurred_at"])
        for r in ws.sql("SELECT message_id, occurred_at FROM events WHERE event_type='delivered'")
    }
    assert delivered_events[m["pm"]] == delivered  # -05:00, seven digits
    assert delivered_events[m["sg"]] == delivered  # epoch int
    assert delivered_events[m["mg"]] == delivered + timedelta(microseconds=101234)  # epoch float
    assert delivered_events[m["ses"]] == delivered  # Z with milliseconds
    assert utc(ws.status(m["pm"])["delivered_at"]) == delivered
    row = ws.status(m["ses"])
    assert utc(row["first_opened_at"]) == at(20)
    assert row["open_count"] == 2
    (report,) = ws.json("report", so["sendout"])
    assert utc(report["first_delivered_at"]) == delivered


def test_impossible_times_are_quarantined_with_the_value_named(ws):
    """ingest.md: "A record whose time is unparseable, not finite (`Infinity`), before 2000 ...
    or more than a day ahead ... is quarantined, and the reason names the value"; warehouse.md
    `occurred_at`: "Always from 2000-01-01 to a day after ingest"."""
    so = ws.create([{"first_name": "Tim", "email": "tim@example.com"}])
    mid = so["tim@example.com"]
    future = ses("Delivery", mid, "tim@example.com", at(0))
    future["delivery"]["timestamp"] = "9999-12-31T00:00:00.000Z"
    past = ses("Open", mid, "tim@example.com", at(0))
    past["open"]["timestamp"] = "1800-01-01T00:00:00Z"
    tomorrow = ses("Click", mid, "tim@example.com", later(60 * 26))
    summary = ws.ingest([future, past, tomorrow])

    assert (summary["quarantined"], summary["events_new"]) == (3, 0)
    reasons = [r["reason"] for r in ws.sql("SELECT reason FROM quarantine ORDER BY source_line")]
    assert "9999-12-31" in reasons[0]
    assert "1800-01-01" in reasons[1]
    assert ws.status(mid)["status"] == "Queued"
    assert ws.status(mid)["first_opened_at"] is None


# ---------------------------------------------------------------------------------------------
# Idempotency


def test_ingesting_the_same_events_again_doubles_nothing(ws):
    """ingest.md: "Running it twice changes nothing: a file with the same bytes is skipped, and
    an event already stored (same provider and event id) is counted as a duplicate." DESIGN §7:
    Twilio's event id is "(MessageSid, status, ErrorCode)", so a callback delivered again later
    is the same event."""
    ann, bob = "+447911100001", "bob@example.com"
    so = ws.create(
        [{"first_name": "Ann", "mobile": ann}, {"first_name": "Bob", "email": bob}],
        channels=("email", "sms"),
    )
    events = [
        ses("Delivery", so[bob], bob, at(1)),
        ses("Open", so[bob], bob, at(5)),
        ses("Open", so[bob], bob, at(6)),
        ses("Click", so[bob], bob, at(7)),
    ]
    path = ws.write(events)
    first = ws.json("ingest", str(path))
    twilio_first = ws.ingest([twilio("delivered", so[ann], ann, at(2))])
    report = ws.json("report", so["sendout"])
    status = ws.status(so[bob])

    again = ws.json("ingest", str(path))
    copy = ws.files / "copy-of-the-same-file.ndjson"
    copy.write_bytes(path.read_bytes())
    same_bytes = ws.json("ingest", str(copy))
    redelivered = ws.ingest(list(reversed(events)))
    twilio_again = ws.ingest([twilio("delivered", so[ann], ann, at(9))])

    assert (first["events_new"], twilio_first["events_new"]) == (4, 1)
    assert (again["files_skipped"], again["events_new"]) == (1, 0)
    assert (same_bytes["files_skipped"], same_bytes["events_new"]) == (1, 0)
    assert (redelivered["events_new"], redelivered["events_duplicate"]) == (0, 4)
    assert (twilio_again["events_new"], twilio_again["events_duplicate"]) == (0, 1)
    assert ws.sql("SELECT count(*) AS n FROM events")[0]["n"] == 5
    assert ws.json("report", so["sendout"]) == report
    assert ws.status(so[bob]) | {"refreshed_at": None} == status | {"refreshed_at": None}
    assert (status["open_count"], status["click_count"]) == (2, 1)


# ---------------------------------------------------------------------------------------------
# Provider mappings a user depends on


def test_postmark_bounce_types_and_subscription_changes_map_as_documented(ws):
    """ingest.md: "Postmark | `Bounce` `HardBounce` (5.1.x in Details: `bad_email`),
    `BadEmailAddress`, `SoftBounce`, `Transient`, `DnsError`, `ManuallyDeactivated` | `bounced`
    hard, `bad_email`, `bounced` soft, `deferred`, `deferred`, `skipped`"; "`SubscriptionChange`
    suppressing with `ManualSuppression` by the recipient | `unsubscribed`"."""
    names = ["hard", "badaddr", "soft", "transient", "dns", "deactivated", "spam", "reader"]
    so = ws.create([{"first_name": n, "email": f"{n}@example.com"} for n in names])
    m = {n: so[f"{n}@example.com"] for n in names}

    def bounce(name, kind, details, **fields):
        return postmark("Bounce", m[name], f"{name}@example.com", at(5), Type=kind, **fields) | {
            "Details": details
        }

    ws.ingest(
        [
            bounce("hard", "HardBounce", "smtp;550 5.1.1 The email account does not exist."),
            bounce("badaddr", "BadEmailAddress", "Invalid email address"),
            bounce("soft", "SoftBounce", "smtp;452 4.2.2 The email account is over quota."),
            bounce("transient", "Transient", "smtp;421 4.4.2 Connection dropped, retrying"),
            bounce("dns", "DnsError", "smtp;451 4.4.3 Temporary DNS lookup failure, will retry"),
            bounce("deactivated", "ManuallyDeactivated", "Manually deactivated"),
            postmark(
                "SpamComplaint",
                m["spam"],
                "spam@example.com",
                at(9),
                Type="SpamComplaint",
                TypeCode=512,
            ),
            postmark("Delivery", m["reader"], "reader@example.com", at(1)),
            postmark("Open", m["reader"], "reader@example.com", at(3)),
            {
                "RecordType": "SubscriptionChange",
                "MessageID": "883953f4-6105-42a2-a16a-00000000001f",
                "ServerID": 23,
                "MessageStream": "broadcast",
                "ChangedAt": iso_z(at(8)),
                "Recipient": "reader@example.com",
                "Origin": "Recipient",
                "SuppressSending": True,
                "SuppressionReason": "ManualSuppression",
                "Tag": "news",
                "Metadata": {"sendout_message_id": m["reader"]},
            },
        ]
    )

    rows = {n: ws.status(m[n]) for n in names}
    assert {n: (r["status"], r["bounce_kind"]) for n, r in rows.items()} == {
        "hard": ("Bad email", "hard"),
        "badaddr": ("Bad email", "hard"),
        "soft": ("Bounced", "soft"),
        "transient": ("Sent", None),
        "dns": ("Sent", None),
        "deactivated": ("Skipped", None),
        "spam": ("Complaint", None),
        "reader": ("Opened", None),
    }
    assert rows["reader"]["has_unsubscribed"] is True
    assert ws.entries("reader@example.com") == {("unsubscribed", "marketing")}
    assert ws.entries("spam@example.com") == {("complaint", "all")}
    assert ws.entries("soft@example.com") == set()


def test_sendgrid_drops_and_bounces_map_as_documented(ws):
    """ingest.md: "SendGrid | `dropped` Bounced/Unsubscribed/Spam Reporting Address | `skipped`;
    `Invalid`/`Invalid Address` is `bad_email`; others `failed`"; "`bounce` type `bounce` /
    `blocked` | `bounced` (`bad_email` on 5.1.x, or `bounce_classification` Invalid Address) /
    soft". DESIGN §3 `skipped`: "Not charged"."""
    names = ["suppressed", "unsubbed", "invalid", "content", "unknown", "blocked", "spam", "group"]
    so = ws.create([{"first_name": n, "email": f"{n}@example.com"} for n in names])
    m = {n: so[f"{n}@example.com"] for n in names}

    def drop(name, reason):
        return sendgrid(
            "dropped", m[name], f"{name}@example.com", at(1), reason=reason, status="5.0.0"
        )

    ws.ingest(
        [
            drop("suppressed", "Bounced Address"),
            drop("unsubbed", "Unsubscribed Address"),
            drop("invalid", "Invalid"),
            drop("content", "Spam Content (if Spam Checker app is enabled)"),
            sendgrid(
                "bounce",
                m["unknown"],
                "unknown@example.com",
                at(2),
                type="bounce",
                status="5.1.1",
                bounce_classification="Invalid Address",
                reason="550 5.1.1 The email account that you tried to reach does not exist.",
            ),
            sendgrid(
                "bounce",
                m["blocked"],
                "blocked@example.com",
                at(2),
                type="blocked",
                status="5.7.1",
                bounce_classification="Reputation",
                reason="554 5.7.1 Service unavailable; client host blocked using Spamhaus",
            ),
            sendgrid("delivered", m["spam"], "spam@example.com", at(2), response="250 OK"),
            sendgrid("spamreport", m["spam"], "spam@example.com", at(30)),
            sendgrid("delivered", m["group"], "group@example.com", at(2), response="250 OK"),
            sendgrid(
                "group_unsubscribe",
                m["group"],
                "group@example.com",
                at(31),
                asm_group_id=42,
                url="https://example.com/preferences",
            ),
        ],
    )

    rows = {n: ws.status(m[n]) for n in names}
    assert {n: (r["status"], r["billable_units"]) for n, r in rows.items()} == {
        "spam": ("Complaint", 1),
        "group": ("Delivered", 1),
        "suppressed": ("Skipped", 0),
        "unsubbed": ("Skipped", 0),
        "invalid": ("Bad email", 1),
        "content": ("Failed", 1),
        "unknown": ("Bad email", 1),
        "blocked": ("Bounced", 1),
    }
    assert rows["blocked"]["bounce_kind"] == "soft"
    assert ws.entries("suppressed@example.com") == {("provider_suppressed", "all")}
    assert ws.entries("blocked@example.com") == set()
    assert ws.entries("unknown@example.com") == {("bad_email", "all")}
    assert ws.entries("spam@example.com") == {("complaint", "all")}
    assert ws.entries("group@example.com") == {("unsubscribed", "marketing")}


# ---------------------------------------------------------------------------------------------
# The analysts' snapshot and the documented columns


def words(text: str) -> list[str]:
    return text.split()


DOCUMENTED_COLUMNS = {
    # warehouse.md's tables, column by column
    "events": words("""event_id provider channel event_type message_id sendout_message_id
        provider_message_id recipient occurred_at is_machine_open url bounce_kind status_code
        bounce_reason reason body payload source_file source_line ingested_at time_problem
        seq"""),
    "message_status": words("""message_id sendout_id channel recipient status is_opened is_clicked
        open_count click_count first_sent_at delivered_at first_opened_at first_clicked_at
        is_machine_open_only bounce_kind bounce_reason has_unsubscribed has_complained
        billable_units cost refreshed_at top_key machine_open_count"""),
    "sendout_summary": [
        *words("planned done accepted"),
        *STATUS_COLUMNS,
        *words("""unique_opened unique_human_opened unique_clicked open_rate human_open_rate
        click_rate click_to_open_rate inbound cost first_sent_at first_delivered_at
        sendout_status sendout_sent_at sendout_delivered_at"""),
    ],
    "inbound_messages": words("""event_id received_at from_number body keyword status message_id
        sendout_id forwarded_at replied_at forward_to auto_reply_text billable_units
        cost"""),
    "unsubscribe_changes": words("""change_id channel address reason action scope sendout_id
        message_id cause cause_event_id changed_by note effective_at changed_at"""),
    "unsubscribes": words("""channel address reason scope sendout_id message_id cause cause_event_id
        added_by note added_at change_id"""),
}


def test_the_snapshot_holds_the_documented_tables_read_only_with_utc_times(ws):
    """warehouse.md: "`data/sendout.snapshot.duckdb`: next to the warehouse, its name with
    `.snapshot` before the suffix ... It is the whole warehouse, every table below, as of its
    last publish, and it is read-only (mode 0444)"; published "after `sendout ingest` when it
    took in new events"; "All times are `TIMESTAMPTZ` in UTC"; and the columns of each table."""
    so = ws.create(
        [{"first_name": "Ann", "email": "ann@example.com", "mobile": "+447911100001"}],
        channels=("email", "sms"),
    )
    ws.ingest(
        [
            ses("Delivery", so["ann@example.com"], "ann@example.com", at(1)),
            ses("Complaint", so["ann@example.com"], "ann@example.com", at(2)),
        ],
        [twilio_inbound("+447911100001", "STOP", later(1))],
    )

    snapshot = ws.root / "sendout.snapshot.duckdb"
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o444
    assert ws.json("snapshot") == {"path": str(snapshot)}
    with duckdb.connect(str(snapshot), read_only=True) as con:
        for table, columns in DOCUMENTED_COLUMNS.items():
            described = con.execute(f"DESCRIBE {table}").fetchall()
            have = {name: kind for name, kind, *_ in described}
            missing = [c for c in columns if c not in have]
            assert not missing, (table, missing)
            for name, kind in have.items():
                if name.endswith("_at"):
                    assert kind == "TIMESTAMP WITH TIME ZONE", (table, name, kind)
        (status,) = con.execute(
            "SELECT status, has_complained FROM message_status WHERE channel = 'email'"
        ).fetchall()
        assert status == ("Complaint", True)
        listed = con.execute(
            "SELECT channel, reason, scope FROM unsubscribes ORDER BY 1"
        ).fetchall()
        assert listed == [("email", "complaint", "all"), ("sms", "stop_reply", "all")]
        (blocked,) = con.execute(
            "SELECT count(*) FROM messages JOIN sendouts USING (sendout_id) "
            "WHERE EXISTS (SELECT 1 FROM unsubscribes AS u WHERE u.channel = messages.channel "
            "AND u.address = messages.recipient "
            "AND entry_blocks(u.scope, sendouts.communication_type))"
        ).fetchone()
        assert blocked == 2


# ---------------------------------------------------------------------------------------------
# More of what the status columns mean


def test_first_sent_at_done_and_bounce_columns_say_what_the_docs_say(ws):
    """warehouse.md `message_status`: "`first_sent_at` earliest event proving it left us (sent,
    delivered, deferred, a bounce, an open...)"; "`bounce_kind` `hard`/`soft` for Bounced and
    Bad email"; "`bounce_reason` the reason of the event that set the status (null unless it
    failed or was delayed)"; `sendout_channel_stats.done`: "messages with an outcome: any
    event"."""
    names = ["openonly", "queuedonly", "recovered", "delayed", "bouncedthenopened", "nothing"]
    so = ws.create([{"first_name": n, "email": f"{n}@example.com"} for n in names])
    m = {n: so[f"{n}@example.com"] for n in names}

    def ev(name, kind, minute, **detail):
        return ses(kind, m[name], f"{name}@example.com", at(minute), **detail)

    ws.ingest(
        [
            ev("openonly", "Open", 12),
            ev("queuedonly", "Send", 0),
            ev("recovered", "DeliveryDelay", 3),
            ev("recovered", "Delivery", 20),
            ev("delayed", "DeliveryDelay", 4),
            ev(
                "bouncedthenopened",
                "Bounce",
                5,
                bounce_type="Transient",
                subtype="General",
                status="4.4.7",
                diagnostic="smtp; 4.4.7 Message expired after 30 attempts",
            ),
            ev("bouncedthenopened", "Open", 50),
        ]
    )

    rows = {n: ws.status(m[n]) for n in names}
    assert {n: r["status"] for n, r in rows.items()} == {
        "openonly": "Opened",
        "queuedonly": "Queued",
        "recovered": "Delivered",
        "delayed": "Sent",
        "bouncedthenopened": "Opened",
        "nothing": "Queued",
    }
    first_sent = {n: r["first_sent_at"] and utc(r["first_sent_at"]) for n, r in rows.items()}
    assert first_sent == {
        "openonly": at(12),
        "queuedonly": None,
        "recovered": at(3),
        "delayed": at(4),
        "bouncedthenopened": at(5),
        "nothing": None,
    }
    assert rows["openonly"]["delivered_at"] is None
    assert (rows["recovered"]["bounce_reason"], rows["recovered"]["bounce_kind"]) == (None, None)
    assert rows["delayed"]["bounce_reason"] == "network"
    assert rows["bouncedthenopened"]["bounce_kind"] is None
    report = ws.report(so["sendout"])["email"]
    assert (report["planned"], report["done"], report["queued"]) == (6, 5, 2)
    assert utc(report["first_sent_at"]) == at(3)


def test_events_dated_before_the_hand_over_are_kept_with_the_time_of_receipt(ws):
    """ingest.md: "An event more than **5 minutes** ... earlier than that [the hand-over,
    `messages.outcome_at`] is **kept, with the time of receipt** (the file's modification time,
    never before the hand-over), and `events.time_problem` says so and names the provider's own
    time"; "The summary counts these (... `retimed` in `--json`)"."""
    names = ["skewed", "stale", "close"]
    so = ws.create([{"first_name": n, "email": f"{n}@example.com"} for n in names])
    ws.run("dispatch", so["sendout"])
    m = {n: so[f"{n}@example.com"] for n in names}
    handed = {
        r["message_id"]: utc(r["outcome_at"])
        for r in ws.sql("SELECT message_id, outcome_at FROM messages")
    }
    last_hand_over = max(handed.values())
    wrong_clock = last_hand_over - timedelta(hours=1)
    slightly_early = handed[m["close"]] - timedelta(minutes=3)
    received = ws.write(
        [
            ses("Bounce", m["skewed"], "skewed@example.com", wrong_clock, status="5.1.1"),
            ses("Delivery", m["close"], "close@example.com", slightly_early),
        ]
    )
    # A file received after the hand-over, and one whose time is before it (a copied file).
    received_at = last_hand_over + timedelta(milliseconds=100)
    time.sleep(max(0.0, (received_at - datetime.now(UTC)).total_seconds()) + 0.1)
    os.utime(received, (received_at.timestamp(), received_at.timestamp()))
    copied = ws.write([ses("Delivery", m["stale"], "stale@example.com", wrong_clock)])
    copied_at = last_hand_over - timedelta(minutes=30)
    os.utime(copied, (copied_at.timestamp(), copied_at.timestamp()))
    summary = ws.json("ingest", str(received), str(copied))

    assert summary["retimed"] == 2
    events = {
        r["message_id"]: r
        for r in ws.sql(
            "SELECT message_id, occurred_at, time_problem FROM events WHERE provider = 'ses'"
        )
    }
    assert abs(utc(events[m["skewed"]]["occurred_at"]) - received_at) < timedelta(milliseconds=5)
    assert wrong_clock.strftime("%H:%M:%S") in events[m["skewed"]]["time_problem"]
    assert abs(utc(events[m["stale"]]["occurred_at"]) - handed[m["stale"]]) < timedelta(
        milliseconds=5
    )
    assert events[m["stale"]]["time_problem"]
    assert utc(events[m["close"]]["occurred_at"]) == slightly_early.replace(
        microsecond=slightly_early.microsecond // 1000 * 1000
    )
    assert events[m["close"]]["time_problem"] is None
    # What it reports still counts.
    assert ws.status(m["skewed"])["status"] == "Bad email"
    assert ws.entries("skewed@example.com") == {("bad_email", "all")}


def test_an_entry_applies_to_its_own_channel_only(ws):
    """DESIGN §6: "An entry applies to its channel only (an email entry never blocks SMS)."
    statuses.md: "entries apply to their own channel only"."""
    ws.run("unsubscribes", "add", "email", "both@example.com", "--reason", "bounced a lot")
    so = ws.create(
        [{"first_name": "Both", "email": "both@example.com", "mobile": "+447911100009"}],
        channels=("email", "sms"),
    )
    ws.run("dispatch", so["sendout"])

    assert ws.status(so["both@example.com"])["status"] == "Skipped"
    # The SMS went to the (sandbox) provider: queued at Twilio, not skipped.
    assert ws.status(so["+447911100009"])["status"] != "Skipped"
    report = ws.report(so["sendout"])
    assert (report["email"]["skipped"], report["sms"]["skipped"]) == (1, 0)
    assert report["sms"]["done"] == 1


# ---------------------------------------------------------------------------------------------
# Replies that were forwarded and answered


def test_forwarded_and_auto_replied_sms_take_the_sendouts_settings_and_are_billed(ws):
    """statuses.md: "Forwarded and Replied come from ... records the webhook service lands
    (`MessageStatus` `forwarded` / `replied`). The forwarding number and auto-reply text shown
    are the send-out's, else the global settings"; "Inbound SMS are billed per segment of their
    text, again when forwarded, plus the segments of the auto-reply when one was sent"."""
    ann = "+447911100001"
    so = ws.create(
        [{"first_name": "Ann", "mobile": ann}],
        channels=("sms",),
        extra=("--forward-to", "07911 200001", "--auto-reply", "Thanks, we will call you"),
    )
    ws.ingest([twilio("delivered", so[ann], ann, at(1))])
    # 150 characters: one segment; the forward carries "From +44...: " before it (two).
    text = "Can we move it to Friday? " + "I am away on Thursday, back late. " * 3 + "x" * 22
    assert len(text) == 150
    reply = twilio_inbound(ann, text, later(1))
    handled = [
        {
            "MessageSid": reply["MessageSid"],
            "MessageStatus": status,
            "To": to,
            "Body": body,
            "sendout_received_at": iso_z(later(1.1)),
        }
        for status, to, body in [
            ("forwarded", "+447911200001", f"From {ann}: {text}"),
            ("replied", ann, "Thanks, we will call you"),
        ]
    ]
    ws.ingest([reply], handled)

    (row,) = ws.sql("SELECT * FROM inbound_messages")
    assert row["status"] == "Replied"
    assert (row["forward_to"], row["auto_reply_text"]) == (
        "+447911200001",
        "Thanks, we will call you",
    )
    assert row["forwarded_at"] is not None and row["replied_at"] is not None
    assert row["billable_units"] == 1 + 1 + 1
    assert row["cost"] == pytest.approx(3 * 0.04)
    sms = ws.report(so["sendout"])["sms"]
    assert sms["cost"] == pytest.approx(0.04 + 3 * 0.04)


# ---------------------------------------------------------------------------------------------
# Bounce mail from our own relay


def _dsn(to: str, recipient: str, original_headers: str, envelope_id: str = "") -> str:
    envelope = f"Original-Envelope-Id: {envelope_id}\n" if envelope_id else ""
    date = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    return f"""Return-Path: <>
From: MAILER-DAEMON@relay.example.org (Mail Delivery System)
To: {to}
Subject: Undelivered Mail Returned to Sender
Date: {date}
Message-ID: <dsn-{next(_ids)}@relay.example.org>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain; charset=us-ascii

This is the mail system at host relay.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host mx.example.com[192.0.2.25] said: 550 5.1.1
    <{recipient}>: Recipient address rejected: User unknown in virtual mailbox
    table (in reply to RCPT TO command)

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.org
{envelope}Arrival-Date: {date}

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.com
Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User
    unknown in virtual mailbox table

--BOUNDARY
Content-Type: text/rfc822-headers

{original_headers}
--BOUNDARY--
"""


def test_bounce_mail_joins_its_message_and_backscatter_lists_no_one(ws):
    """bounces.md: "A report joins its message by, in order: the VERP address it was sent to
    ..."; "A report that joins nothing (backscatter: a bounce for mail we never sent) is kept
    as an unmatched event and never puts anyone on the Unsubscribes list"; "RFC 3834
    auto-replies (vacation, out of office) are never bounces: they are kept in quarantine"."""
    so = ws.create([{"first_name": "Typo", "email": "typo@example.com"}])
    mid = so["typo@example.com"]
    ours = _dsn(
        f"bounces+{mid}@example.org",
        "typo@example.com",
        f"From: Sendout <news@example.org>\nTo: typo@example.com\nSubject: Hi Typo\n"
        f"Message-ID: <{mid}@example.org>\nX-Sendout-Message-Id: {mid}\n",
        envelope_id=mid,
    )
    backscatter = _dsn(
        "bounces@example.org",
        "stranger@example.net",
        "From: Someone Else <forged@example.org>\nTo: stranger@example.net\n"
        "Subject: Cheap watches\nMessage-ID: <forged-1@spam.example.net>\n",
    )
    date = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    vacation = f"""From: Typo Person <typo@example.com>
To: bounces+{mid}@example.org
Subject: Out of office: Hi Typo
Date: {date}
Message-ID: <ooo-1@example.com>
Auto-Submitted: auto-replied
In-Reply-To: <{mid}@example.org>
Content-Type: text/plain; charset=utf-8

I am away until Monday with no access to email.
"""
    paths = []
    for name, text in [("ours", ours), ("backscatter", backscatter), ("vacation", vacation)]:
        path = ws.files / f"{name}.eml"
        path.write_text(text)
        paths.append(str(path))
    summary = ws.json("ingest", *paths)

    assert summary["quarantined"] == 1
    assert summary["unmatched"] == 1
    row = ws.status(mid)
    assert (row["status"], row["bounce_kind"], row["bounce_reason"]) == (
        "Bad email",
        "hard",
        "user_unknown",
    )
    assert ws.entries("typo@example.com") == {("bad_email", "all")}
    assert ws.entries("stranger@example.net") == set()
    (reason,) = ws.sql("SELECT reason FROM quarantine")
    assert "auto-reply" in reason["reason"]


# ---------------------------------------------------------------------------------------------
# The Unsubscribes list by hand


def test_the_audit_record_of_a_change_by_hand_at_the_cli_names_sendout_user(ws):
    """warehouse.md `audit_entries`: "Written in the same transaction as the change it records";
    `done_by`: "the dashboard's logged-in user; at the CLI `$SENDOUT_USER`, else the system
    user"; `action` includes `unsubscribe_add`, `unsubscribe_remove`. (This workspace runs
    `sendout` with SENDOUT_USER=tester.)"""
    ws.run("unsubscribes", "add", "email", "ann@example.com", "--reason", "asked by phone")
    ws.run("unsubscribes", "remove", "email", "ann@example.com", "--reason", "asked again")
    ws.create([{"first_name": "Bo", "email": "bo@example.com"}])

    audit = ws.sql("SELECT action, via, done_by FROM audit_entries ORDER BY entry_id")
    assert [(a["action"], a["via"]) for a in audit] == [
        ("unsubscribe_add", "cli"),
        ("unsubscribe_remove", "cli"),
        ("create", "cli"),
    ]
    assert [a["done_by"] for a in audit] == ["tester", "tester", "tester"]


def test_the_list_by_hand_normalises_addresses_and_export_neutralises_cells(ws):
    """DESIGN §6: "Keyed by (channel, normalised address): emails trimmed and lower-cased;
    phones in E.164 (... with a configurable default region)" (default GB). statuses.md:
    "`export` (CSV whose cells starting with `= + - @`, tab or carriage return are prefixed with
    `'` ...; that includes E.164 numbers, which then keep their `+`)"; "lifting one ... leaves
    the others"."""
    ws.run("unsubscribes", "add", "sms", "07911 100004", "--reason", '=HYPERLINK("x")')
    ws.run("unsubscribes", "add", "email", "  Mixed@Example.COM ", "--reason", "asked")
    ws.ingest([twilio_inbound("+447911100004", "STOP", at(5))])
    assert ws.entries("+447911100004") == {("manual", "all"), ("stop_reply", "all")}
    assert ws.entries("mixed@example.com") == {("manual", "all")}

    ws.run(
        "unsubscribes", "remove", "sms", "+447911100004", "--only", "stop_reply", "--reason", "ok"
    )
    assert ws.entries("+447911100004") == {("manual", "all")}
    listed = ws.json("unsubscribes", "list")
    assert {e["address"] for e in listed} == {"+447911100004", "mixed@example.com"}
    assert listed[0]["address"] == "mixed@example.com"  # newest first

    exported = ws.run("unsubscribes", "export")
    rows = list(csv.reader(exported.splitlines()))
    cells = [cell for row in rows[1:] for cell in row]
    assert "'+447911100004" in cells
    assert "+447911100004" not in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]


# ---------------------------------------------------------------------------------------------
# Event ids: the same event from two routes


def test_the_same_event_from_a_webhook_and_from_the_api_or_sns_is_stored_once(ws):
    """DESIGN §7: Mailgun's event id is "`event-data.id` + day" ("webhook `{"signature",
    "event-data"}` and Events API `items[]`"); SES's is the "SNS `MessageId`". ingest.md:
    "an event already stored (same provider and event id) is counted as a duplicate"."""
    so = ws.create(
        [
            {"first_name": "Mo", "email": "mo@example.com"},
            {"first_name": "Sam", "email": "sam@example.com"},
        ]
    )
    webhook = mailgun("opened", so["mo@example.com"], "mo@example.com", at(10))
    page = {"items": [webhook["event-data"]], "paging": {"next": "https://api.mailgun.net/x"}}
    page_path = ws.files / "mailgun-events-page.json"
    page_path.write_text(json.dumps(page, indent=2))
    inner = ses("Open", so["sam@example.com"], "sam@example.com", at(11))
    envelope = {
        "Type": "Notification",
        "MessageId": "5b2f7c1e-9a0d-5e8f-b3c4-1d2e3f4a5b6c",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:sendout-ses-events",
        "Message": json.dumps(inner),
        "Timestamp": iso_z(at(11)),
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService.pem",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }
    first = ws.ingest([webhook], [envelope])
    # SNS delivers the same notification again, later; the Events API page is polled.
    again = dict(envelope, Timestamp=iso_z(at(12)))
    second = ws.json("ingest", str(ws.write([again])), str(page_path))

    assert first["events_new"] == 2
    assert (second["events_new"], second["events_duplicate"]) == (0, 2)
    assert ws.status(so["mo@example.com"])["open_count"] == 1
    assert ws.status(so["sam@example.com"])["open_count"] == 1


# ---------------------------------------------------------------------------------------------
# Joining events that carry no id of ours


def test_events_without_our_id_join_by_the_provider_message_id_recorded_at_send(ws):
    """ingest.md: "`events.message_id` is filled from `sendout_message_id` when the provider
    echoed our id back, else from `provider_message_id` recorded at send." DESIGN §7: SES
    "`mail.messageId` recorded at send" (legacy notifications carry no tags); Twilio "`MessageSid`
    recorded at send"."""
    ada_mail, ada_phone = "ada@example.com", "+447911100001"
    so = ws.create(
        [{"first_name": "Ada", "email": ada_mail, "mobile": ada_phone}],
        channels=("email", "sms"),
        kind="non_marketing",
    )
    ws.run("dispatch", so["sendout"])
    recorded = {
        r["channel"]: r["provider_message_id"]
        for r in ws.sql("SELECT channel, provider_message_id FROM messages")
    }
    legacy = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": ada_mail,
                    "status": "5.1.1",
                    "action": "failed",
                    "diagnosticCode": f"smtp; 550 5.1.1 <{ada_mail}>... User unknown",
                }
            ],
            "timestamp": iso_z(later(1)),
            "feedbackId": "0000018f76e1bb01-33322211-cccc-cccc-cccc-ddddaaaa068a-000000",
            "reportingMTA": "dns; mx.example.com",
        },
        "mail": {
            "timestamp": iso_z(later(0.5)),
            "messageId": recorded["email"],
            "source": "news@example.com",
            "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/example.com",
            "sendingAccountId": "123456789012",
            "destination": [ada_mail],
        },
    }
    callback = twilio("delivered", "unused", ada_phone, later(1))
    del callback["sendout_message_id"]
    callback["MessageSid"] = callback["SmsSid"] = recorded["sms"]
    summary = ws.ingest([legacy], [callback])

    assert summary["unmatched"] == 0
    assert ws.status(so[ada_mail])["status"] == "Bad email"
    assert ws.status(so[ada_phone])["status"] == "Delivered"


# ---------------------------------------------------------------------------------------------
# The list, told out of order


def test_the_soft_bounce_streak_and_the_list_hold_whatever_order_events_are_ingested_in(ws):
    """statuses.md: "The latest vote decides"; "deriving twice adds nothing, and an incremental
    refresh reads only new events"; "A soft-bounce streak counts soft bounces of distinct
    messages since the address's last delivery, open or click; the third adds
    `repeated_soft_bounce`". README: an Unsubscribes list "that is never wrong and never
    forgets": a delivery later on does not lift a hard bounce."""
    people = [{"first_name": p, "email": f"{p}@example.com"} for p in ("dora", "hal")]
    s1, s2, s3 = (ws.create(people) for _ in range(3))

    def soft(so, name, minute):
        address = f"{name}@example.com"
        return ses(
            "Bounce",
            so[address],
            address,
            at(minute),
            bounce_type="Transient",
            subtype="General",
            status="5.7.1",
            diagnostic="smtp; 550 5.7.1 Message rejected by policy",
        )

    # dora's streak arrives newest first, one ingest at a time.
    ws.ingest(
        [
            soft(s3, "dora", 30),
            ses("Bounce", s1["hal@example.com"], "hal@example.com", at(10), status="5.1.1"),
        ]
    )
    ws.ingest(
        [soft(s2, "dora", 20), ses("Delivery", s2["hal@example.com"], "hal@example.com", at(20))]
    )
    assert ws.entries("dora@example.com") == set()
    ws.ingest([soft(s1, "dora", 10), ses("Open", s3["hal@example.com"], "hal@example.com", at(40))])

    assert ws.entries("dora@example.com") == {("repeated_soft_bounce", "all")}
    assert ws.entries("hal@example.com") == {("bad_email", "all")}
    ws.run("refresh", "--full")
    assert ws.entries("dora@example.com") == {("repeated_soft_bounce", "all")}
    assert ws.entries("hal@example.com") == {("bad_email", "all")}


# ---------------------------------------------------------------------------------------------
# More provider mappings


def test_mailgun_and_ses_failures_map_as_documented(ws):
    """ingest.md: "Mailgun | `failed` with reason `old` (retries exhausted), whatever the
    severity | `bounced` soft"; "`failed` permanent with reason `suppress-*` | `skipped`";
    "`failed` permanent with 5.1.x or "no such user/mailbox" | `bad_email`"; "`rejected` |
    `failed`"; "SES | a bounced recipient whose own `action` is `delayed` | `deferred`"; "SES |
    `Complaint` with `complaintSubType` `OnAccountSuppressionList` | `skipped` (SES did not
    send)"; "SES | `Bounce` Permanent + `NoEmail` ... | `bad_email` (hard)"."""
    names = ["old", "suppressed", "nouser", "rejected", "delayed", "sessupp", "noemail"]
    so = ws.create([{"first_name": n, "email": f"{n}@example.org"} for n in names])
    m = {n: so[f"{n}@example.org"] for n in names}

    def mg_failed(name, severity, reason, code, enhanced, message):
        status = {
            "attempt-no": 1,
            "code": code,
            "enhanced-code": enhanced,
            "message": message,
            "description": "",
        }
        return mailgun(
            "failed",
            m[name],
            f"{name}@example.org",
            at(5),
            severity=severity,
            reason=reason,
            **{"delivery-status": status, "log-level": "error"},
        )

    rejected = mailgun(
        "rejected",
        m["rejected"],
        "rejected@example.org",
        at(5),
        reject={"reason": "Sandbox subdomains are for test purposes only", "description": ""},
    )
    del rejected["event-data"]["recipient"]
    complaint = ses("Complaint", m["sessupp"], "sessupp@example.org", at(5))
    complaint["complaint"]["complaintSubType"] = "OnAccountSuppressionList"
    ws.ingest(
        [
            mg_failed("old", "temporary", "old", 498, "", "Too old"),
            mg_failed("suppressed", "permanent", "suppress-bounce", 605, "", ""),
            mg_failed(
                "nouser",
                "permanent",
                "bounce",
                550,
                "5.1.1",
                "5.1.1 The email account that you tried to reach does not exist.",
            ),
            rejected,
        ],
        [
            ses(
                "Bounce",
                m["delayed"],
                "delayed@example.org",
                at(5),
                bounce_type="Transient",
                action="delayed",
                status="4.4.7",
                diagnostic="smtp; 451 4.4.7 still trying",
            ),
            complaint,
            ses(
                "Bounce",
                m["noemail"],
                "noemail@example.org",
                at(5),
                subtype="NoEmail",
                status="5.0.0",
                diagnostic="smtp; 550 5.0.0 rejected",
            ),
        ],
    )

    rows = {n: ws.status(m[n]) for n in names}
    assert {n: (r["status"], r["bounce_kind"]) for n, r in rows.items()} == {
        "old": ("Bounced", "soft"),
        "suppressed": ("Skipped", None),
        "nouser": ("Bad email", "hard"),
        "rejected": ("Failed", None),
        "delayed": ("Sent", None),
        "sessupp": ("Skipped", None),
        "noemail": ("Bad email", "hard"),
    }
    assert rows["old"]["bounce_reason"] == "expired"
    assert (rows["sessupp"]["has_complained"], rows["sessupp"]["billable_units"]) == (False, 0)
    assert ws.entries("sessupp@example.org") == {("provider_suppressed", "all")}
    assert ws.entries("suppressed@example.org") == {("provider_suppressed", "all")}
    assert ws.entries("old@example.org") == set()


def test_more_time_forms_and_twilio_time_of_receipt(ws):
    """DESIGN §7: "Timestamps come as ISO-8601 (with or without `Z`, with offsets ...), epoch
    seconds as int, float or string: parse all of them to UTC." ingest.md: "Twilio callbacks
    carry no event time: a field `sendout_received_at` ... is used when present, else the
    file's modification time"."""
    so = ws.create(
        [
            {"first_name": "Str", "email": "str@example.com"},
            {"first_name": "Off", "email": "off@example.com"},
            {"first_name": "Nz", "email": "nz@example.com"},
            {"first_name": "Tw", "mobile": "+447911100001"},
        ],
        channels=("email", "sms"),
    )
    when = at(33)
    as_string = sendgrid("delivered", so["str@example.com"], "str@example.com", when)
    as_string["timestamp"] = str(int(when.timestamp()))
    with_offset = ses("Delivery", so["off@example.com"], "off@example.com", when)
    with_offset["delivery"]["timestamp"] = when.astimezone(timezone(timedelta(hours=2))).isoformat()
    without_zone = ses("Delivery", so["nz@example.com"], "nz@example.com", when)
    without_zone["delivery"]["timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%S.000")
    callback = twilio("delivered", so["+447911100001"], "+447911100001", when)
    del callback["sendout_received_at"]
    twilio_file = ws.write([callback], shape="form")
    os.utime(twilio_file, (when.timestamp(), when.timestamp()))
    ws.json(
        "ingest",
        str(ws.write([as_string])),
        str(ws.write([with_offset, without_zone])),
        str(twilio_file),
    )

    for recipient in ("str@example.com", "off@example.com", "nz@example.com", "+447911100001"):
        assert utc(ws.status(so[recipient])["delivered_at"]) == when, recipient


# ---------------------------------------------------------------------------------------------
# Dispatch's own outcomes and what providers say after


def test_a_twilio_queued_sms_is_done_at_once_and_the_sendout_turns_sent_with_the_callback(ws):
    """statuses.md: "A Twilio message is "queued" at Twilio until its `sent` callback arrives
    ...: it counts as done at once, and the send-out turns Sent with that callback, as DESIGN §3
    and §5 define queued and sent." The sandbox stands in for Twilio (README)."""
    ann = "+447911100001"
    so = ws.create([{"first_name": "Ann", "mobile": ann}], channels=("sms",))
    ws.run("dispatch", so["sendout"])

    row = ws.report(so["sendout"])["sms"]
    assert (row["done"], row["planned"], row["queued"]) == (1, 1, 1)
    assert row["sendout_status"] == "Sending..."
    (sid,) = ws.sql("SELECT provider_message_id AS sid FROM messages")
    callback = twilio("sent", so[ann], ann, later(0.1))
    callback["MessageSid"] = callback["SmsSid"] = sid["sid"]
    ws.ingest([callback])
    row = ws.report(so["sendout"])["sms"]
    assert (row["sendout_status"], row["sent"], row["queued"]) == ("Sent", 1, 0)


def test_a_message_our_relay_took_that_the_provider_then_suppressed_shows_skipped(ws):
    """statuses.md: "Where `skipped` ranks ...: above what only says the message left us
    (`sent`, `queued`) and below anything proving a delivery attempt. So our relay accepting a
    message that the provider then drops from its suppression list shows Skipped"; "Billable:
    every message handed to a provider that was not skipped"."""
    so = ws.create(
        [
            {"first_name": "Sup", "email": "sup@example.com"},
            {"first_name": "Del", "email": "del@example.com"},
        ],
        kind="non_marketing",
    )
    ws.run("dispatch", so["sendout"])
    assert ws.status(so["sup@example.com"])["status"] == "Sent"
    ws.ingest(
        [
            ses(
                "Bounce",
                so["sup@example.com"],
                "sup@example.com",
                later(1),
                subtype="Suppressed",
                diagnostic="Amazon SES has suppressed sending to this address",
            ),
            ses("Delivery", so["del@example.com"], "del@example.com", later(1)),
        ]
    )

    row = ws.status(so["sup@example.com"])
    assert (row["status"], row["billable_units"], row["cost"]) == ("Skipped", 0, 0)
    report = ws.report(so["sendout"])["email"]
    assert (report["skipped"], report["delivered"], report["accepted"]) == (1, 1, 1)
    assert report["cost"] == pytest.approx(0.0001)


def test_the_more_precise_reason_wins_between_equal_events(ws):
    """bounces.md: "Between two equal events of a message, the more precise reason is the
    message's." (a full mailbox, then a vague 5.0.0 refusal of the same message)"""
    s1 = ws.create([{"first_name": "Kim", "email": "kim@example.com"}])
    vague = ses(
        "Bounce",
        s1["kim@example.com"],
        "kim@example.com",
        at(10),
        bounce_type="Transient",
        subtype="General",
        status="5.0.0",
        diagnostic="smtp; 554 5.0.0 Service unavailable",
    )
    precise = ses(
        "Bounce",
        s1["kim@example.com"],
        "kim@example.com",
        at(5),
        bounce_type="Transient",
        subtype="MailboxFull",
        status="4.2.2",
        diagnostic="smtp; 452 4.2.2 Mailbox full",
    )
    ws.ingest([precise])
    ws.ingest([vague])

    row = ws.status(s1["kim@example.com"])
    assert (row["status"], row["bounce_kind"], row["bounce_reason"]) == (
        "Bounced",
        "soft",
        "mailbox_full",
    )


def test_machine_and_human_opens_arriving_in_separate_ingests_give_the_same_figures(ws):
    """statuses.md: "`is_machine_open_only`: opened, every open a machine's ..., and nothing
    clicked"; warehouse.md: "Each refresh takes in the events stored since the last one ... and
    folds them into the stored status of their messages"; `--full` "rebuilds every row"."""
    names = ["machinefirst", "humanfirst", "machineclick"]
    so = ws.create([{"first_name": n, "email": f"{n}@example.com"} for n in names])
    m = {n: so[f"{n}@example.com"] for n in names}
    machine = {"sg_machine_open": True, "useragent": "Mozilla/5.0", "ip": "17.58.102.41"}
    person = {"sg_machine_open": False, "useragent": "Mozilla/5.0 (iPhone)", "ip": "203.0.113.7"}

    def ev(kind, name, minute, **extra):
        return sendgrid(kind, m[name], f"{name}@example.com", at(minute), **extra)

    ws.ingest([ev("open", "machinefirst", 2, **machine), ev("open", "humanfirst", 30, **person)])
    ws.ingest([ev("open", "machineclick", 2, **machine)])
    first = {n: ws.status(m[n])["is_machine_open_only"] for n in names}
    ws.ingest(
        [
            ev("open", "machinefirst", 40, **person),
            ev("open", "humanfirst", 2, **machine),
            ev("click", "machineclick", 50, url="https://example.com/x", useragent="Mozilla/5.0"),
        ]
    )

    assert first == {"machinefirst": True, "humanfirst": False, "machineclick": True}
    rows = {n: ws.status(m[n]) for n in names}
    assert {n: r["is_machine_open_only"] for n, r in rows.items()} == dict.fromkeys(names, False)
    assert utc(rows["humanfirst"]["first_opened_at"]) == at(2)
    assert (rows["machinefirst"]["open_count"], rows["machinefirst"]["machine_open_count"]) == (
        2,
        1,
    )
    report = ws.report(so["sendout"])["email"]
    assert (report["unique_opened"], report["unique_human_opened"]) == (3, 3)
    ws.run("refresh", "--full")
    assert ws.report(so["sendout"])["email"] == report


def test_re_delivered_replies_and_derived_id_events_count_once(ws):
    """DESIGN §4: "where a provider gives no event id, derive one deterministically from the
    payload (same payload → same id)" (Postmark: "derived"); §7 Twilio's id is "(MessageSid,
    status, ErrorCode)", so an inbound SMS Twilio posts twice is one reply, billed once."""
    ann = "+447911100001"
    so = ws.create(
        [{"first_name": "Ann", "mobile": ann}, {"first_name": "Pat", "email": "pat@example.com"}],
        channels=("email", "sms"),
    )
    stop = twilio_inbound(ann, "STOP", later(1))
    posted_again = dict(stop, sendout_received_at=iso_z(later(2)))
    opened = postmark("Open", so["pat@example.com"], "pat@example.com", at(5))
    delivered = postmark("Delivery", so["pat@example.com"], "pat@example.com", at(1))
    ws.ingest([twilio("delivered", so[ann], ann, at(1)), stop], [opened])
    # Postmark retries the open, in a file of its own with the delivery.
    summary = ws.ingest([posted_again], [delivered, opened])

    assert (summary["events_new"], summary["events_duplicate"]) == (1, 2)
    (reply,) = ws.sql("SELECT * FROM inbound_messages")
    assert (reply["keyword"], reply["billable_units"]) == ("stop", 1)
    assert ws.report(so["sendout"])["sms"]["inbound"] == 1
    assert ws.status(so["pat@example.com"])["open_count"] == 1
    changes = ws.sql("SELECT action FROM unsubscribe_changes WHERE address = ?", ann)
    assert changes == [{"action": "add"}]


def test_mailgun_complaints_unsubscribes_and_bot_opens_map_as_documented(ws):
    """DESIGN §3: `complaint`, `unsubscribed` and `opened` with `is_machine_open` (scanners);
    warehouse.md `is_machine_open`: "Mailgun `client-info.bot`"; DESIGN §6: complaint ->
    scope `all`, unsubscribe -> scope `marketing`."""
    names = ["annoyed", "leaver", "scanned"]
    so = ws.create([{"first_name": n, "email": f"{n}@example.net"} for n in names])
    m = {n: so[f"{n}@example.net"] for n in names}
    bot = {"client-type": "unknown", "user-agent": "Mozilla/5.0", "bot": "generic"}
    ws.ingest(
        [
            *(mailgun("delivered", m[n], f"{n}@example.net", at(1)) for n in names),
            mailgun("complained", m["annoyed"], "annoyed@example.net", at(20)),
            mailgun("unsubscribed", m["leaver"], "leaver@example.net", at(21)),
            mailgun("opened", m["scanned"], "scanned@example.net", at(1.2), **{"client-info": bot}),
        ]
    )

    rows = {n: ws.status(m[n]) for n in names}
    assert {n: r["status"] for n, r in rows.items()} == {
        "annoyed": "Complaint",
        "leaver": "Delivered",
        "scanned": "Opened",
    }
    assert rows["scanned"]["is_machine_open_only"] is True
    assert rows["leaver"]["has_unsubscribed"] is True
    assert ws.entries("annoyed@example.net") == {("complaint", "all")}
    assert ws.entries("leaver@example.net") == {("unsubscribed", "marketing")}
    report = ws.report(so["sendout"])["email"]
    assert (report["unique_opened"], report["unique_human_opened"]) == (1, 0)
    assert report["human_open_rate"] == 0


def test_replies_take_the_global_forwarding_settings_and_show_a_change_after_refresh_full(
    tmp_path,
):
    """statuses.md: "The forwarding number and auto-reply text shown are the send-out's, else
    the global settings; a change of those settings shows after `sendout refresh --full`".
    warehouse.md `inbound_messages.forward_to, auto_reply_text`: "the send-out's settings, else
    the global ones (`$SENDOUT_FORWARD_TO`, `$SENDOUT_AUTO_REPLY_TEXT`)"."""
    ws = Workspace(
        tmp_path, SENDOUT_FORWARD_TO="+447911200001", SENDOUT_AUTO_REPLY_TEXT="We got it"
    )
    ann = "+447911100001"
    so = ws.create([{"first_name": "Ann", "mobile": ann}], channels=("sms",))
    ws.ingest(
        [twilio("delivered", so[ann], ann, at(1))],
        [twilio_inbound(ann, "Running late", later(1))],
    )
    (row,) = ws.sql("SELECT forward_to, auto_reply_text, sendout_id FROM inbound_messages")
    assert row == {
        "forward_to": "+447911200001",
        "auto_reply_text": "We got it",
        "sendout_id": so["sendout"],
    }

    ws.settings |= {"SENDOUT_FORWARD_TO": "+447911200002", "SENDOUT_AUTO_REPLY_TEXT": "Noted"}
    ws.run("refresh", "--full")
    (row,) = ws.sql("SELECT forward_to, auto_reply_text FROM inbound_messages")
    assert row == {"forward_to": "+447911200002", "auto_reply_text": "Noted"}


# bounces.md's classifier, end to end through SES: (status, diagnostic) -> (status shown,
# bounce_kind, bounce_reason, listed reasons)
CLASSIFIER_CASES = {
    "m365": (
        "5.4.1",
        "smtp; 550 5.4.1 Recipient address rejected: Access denied. AS(201806281)",
        ("Bounced", "hard", "user_unknown", {("bounced", "all")}),
    ),
    "oursender": (
        "5.1.1",
        "smtp; 550 5.1.1 <bounces@example.org>: Sender address rejected: User unknown in "
        "local recipient table",
        ("Bounced", "soft", "policy", set()),
    ),
    "vague": (
        "5.0.0",
        "smtp; 550 5.0.0 Requested action not taken",
        ("Bounced", "hard", "other", {("bounced", "all")}),
    ),
    "wordsunknown": (
        "5.0.0",
        "smtp; 550 5.0.0 <wordsunknown@example.com>: User unknown",
        ("Bad email", "hard", "user_unknown", {("bad_email", "all")}),
    ),
    "domain": (
        "5.1.2",
        "smtp; 550 5.1.2 Host or domain name not found",
        ("Bad email", "hard", "domain_unknown", {("bad_email", "all")}),
    ),
    "dmarc": (
        "5.7.26",
        "smtp; 550 5.7.26 This message does not pass authentication checks (DMARC)",
        ("Bounced", "soft", "authentication", set()),
    ),
    "toobig": (
        "5.3.4",
        "smtp; 552 5.3.4 Message size exceeds fixed maximum message size",
        ("Bounced", "soft", "too_big", set()),
    ),
}


def test_the_classifier_decides_kind_reason_and_listing_as_bounces_md_says(ws):
    """bounces.md: "Microsoft 365's "5.4.1 Recipient address rejected: Access denied" is
    `user_unknown` but no proof: `bounced`"; "Words about our own sender or return address
    ("Sender address rejected" ...) are `policy` and never proof, whatever the code"; "A 5.0.0
    alone proves nothing"; "the remote server's own words that the mailbox does not exist
    ("user unknown" ...) under no code or one that says nothing (5.0.0 ...)" prove a bad
    address; "Hard or soft is about the address"; "Only hard bounces add a `bounced` entry"."""
    so = ws.create([{"first_name": n, "email": f"{n}@example.com"} for n in CLASSIFIER_CASES])
    ws.ingest(
        [
            ses(
                "Bounce",
                so[f"{n}@example.com"],
                f"{n}@example.com",
                at(5),
                status=code,
                diagnostic=text,
            )
            for n, (code, text, _) in CLASSIFIER_CASES.items()
        ]
    )

    got, want = {}, {}
    for name, (_, _, expected) in CLASSIFIER_CASES.items():
        row = ws.status(so[f"{name}@example.com"])
        address = f"{name}@example.com"
        got[name] = (row["status"], row["bounce_kind"], row["bounce_reason"], ws.entries(address))
        want[name] = expected
    assert got == want


def test_ingest_no_refresh_leaves_the_figures_to_a_later_refresh(ws):
    """ingest.md: "Then, when anything new was stored, it refreshes statuses and figures
    incrementally, so `sendout report` shows it (`--no-refresh` leaves that to a later `sendout
    refresh`, for a large backfill)"."""
    so = ws.create([{"first_name": "Bulk", "email": "bulk@example.com"}])
    path = ws.write([ses("Delivery", so["bulk@example.com"], "bulk@example.com", at(1))])
    summary = ws.json("ingest", "--no-refresh", str(path))
    assert summary["events_new"] == 1
    assert ws.report(so["sendout"])["email"]["queued"] == 1

    ws.run("refresh")
    row = ws.report(so["sendout"])["email"]
    assert (row["queued"], row["delivered"], row["sendout_status"]) == (0, 1, "Delivered")
