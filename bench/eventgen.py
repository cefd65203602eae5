"""Generate realistic provider event files for benchmarks: SES Firehose NDJSON and SendGrid arrays.

Reproducible from a seed. About 2% of events are re-delivered in a later file (duplicates) and
every file is shuffled, so events arrive out of order, as they do from real providers.
"""

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
DOMAINS = ("gmail.com", "outlook.com", "yahoo.co.uk", "example.org", "icloud.com", "btinternet.com")
SES_KINDS = (
    ("Send", 30),
    ("Delivery", 28),
    ("Open", 20),
    ("Click", 8),
    ("Bounce", 3),
    ("DeliveryDelay", 2),
    ("Complaint", 1),
)
SENDGRID_KINDS = (
    ("processed", 30),
    ("delivered", 28),
    ("open", 20),
    ("click", 8),
    ("bounce", 3),
    ("deferred", 2),
    ("dropped", 1),
    ("spamreport", 1),
    ("unsubscribe", 1),
)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _ses_event(rng: random.Random, kind: str, n: int) -> dict:
    recipient = f"person{n % 400_000}@{DOMAINS[n % len(DOMAINS)]}"
    sent_at = START + timedelta(seconds=n // 50)
    at = sent_at + timedelta(seconds=rng.randint(1, 86_400))
    message_id = f"0102018f{n:08x}-{uuid.UUID(int=rng.getrandbits(128))}-000000"
    event = {
        "eventType": kind,
        "mail": {
            "timestamp": _iso(sent_at),
            "source": "Newsletter <news@sendout.example.org>",
            "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/sendout.example.org",
            "sendingAccountId": "123456789012",
            "messageId": message_id,
            "destination": [recipient],
            "headersTruncated": False,
            "headers": [
                {"name": "From", "value": "Newsletter <news@sendout.example.org>"},
                {"name": "To", "value": recipient},
                {"name": "Subject", "value": "Your November update"},
                {"name": "MIME-Version", "value": "1.0"},
                {"name": "Content-Type", "value": "multipart/alternative"},
            ],
            "commonHeaders": {
                "from": ["Newsletter <news@sendout.example.org>"],
                "to": [recipient],
                "messageId": message_id,
                "subject": "Your November update",
            },
            "tags": {
                "ses:configuration-set": ["sendout"],
                "ses:source-ip": ["192.0.2.10"],
                "ses:from-domain": ["sendout.example.org"],
                "ses:caller-identity": ["sendout"],
                "sendout_message_id": [f"msg-{n:09d}"],
            },
        },
    }
    if kind == "Delivery":
        event["delivery"] = {
            "timestamp": _iso(at),
            "processingTimeMillis": rng.randint(200, 4000),
            "recipients": [recipient],
            "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": "a8-70.smtp-out.amazonses.com",
        }
    elif kind == "Open":
        event["open"] = {
            "timestamp": _iso(at),
            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)",
            "ipAddress": "198.51.100.7",
        }
    elif kind == "Click":
        event["click"] = {
            "timestamp": _iso(at),
            "ipAddress": "198.51.100.7",
            "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
            "link": f"https://sendout.example.org/news/{n % 7}",
            "linkTags": {"campaign": ["november"]},
        }
    elif kind == "Bounce":
        permanent = rng.random() < 0.7
        event["bounce"] = {
            "bounceType": "Permanent" if permanent else "Transient",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": recipient,
                    "action": "failed",
                    "status": "5.1.1" if permanent else "4.2.2",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown"
                    if permanent
                    else "smtp; 452 4.2.2 mailbox full",
                }
            ],
            "timestamp": _iso(at),
            "feedbackId": str(uuid.UUID(int=rng.getrandbits(128))),
            "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
        }
    elif kind == "DeliveryDelay":
        event["deliveryDelay"] = {
            "timestamp": _iso(at),
            "delayType": "MailboxFull",
            "expirationTime": _iso(at + timedelta(hours=12)),
            "delayedRecipients": [
                {"emailAddress": recipient, "status": "4.2.2", "diagnosticCode": "452 4.2.2 full"}
            ],
        }
    elif kind == "Complaint":
        event["complaint"] = {
            "feedbackId": str(uuid.UUID(int=rng.getrandbits(128))),
            "complaintSubType": None,
            "complainedRecipients": [{"emailAddress": recipient}],
            "timestamp": _iso(at),
            "userAgent": "Yahoo!-Mail-Feedback/2.0",
            "complaintFeedbackType": "abuse",
            "arrivalDate": _iso(at),
        }
    else:
        event["send"] = {}
    return event


def _sendgrid_event(rng: random.Random, kind: str, n: int) -> dict:
    sent = int((START + timedelta(seconds=n // 50)).timestamp())
    event = {
        "email": f"person{n % 400_000}@{DOMAINS[n % len(DOMAINS)]}",
        "timestamp": sent + rng.randint(1, 86_400),
        "smtp-id": f"<{n:x}.sendout@ismtpd0001p1lon1.sendgrid.net>",
        "event": kind,
        "category": ["newsletter"],
        "sg_event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "sg_message_id": f"14c5d75ce93.dfd.{n:x}.filter0001.16648.5515E0B88.0",
        "sendout_message_id": f"msg-{n:09d}",
    }
    if kind == "delivered":
        event["response"] = "250 OK"
    elif kind == "open":
        event["useragent"] = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0"
        event["ip"] = "198.51.100.7"
        event["sg_machine_open"] = rng.random() < 0.3
    elif kind == "click":
        event["url"] = f"https://sendout.example.org/news/{n % 7}"
        event["url_offset"] = {"index": 0, "type": "html"}
    elif kind == "bounce":
        event.update(type="bounce", status="5.1.1", reason="550 5.1.1 unknown user")
    elif kind == "deferred":
        event.update(response="400 try again later", attempt="5")
    elif kind == "dropped":
        event["reason"] = "Bounced Address"
    return event


def _pick(rng: random.Random, kinds: tuple[tuple[str, int], ...], count: int) -> list[str]:
    names, weights = zip(*kinds, strict=True)
    return rng.choices(names, weights=weights, k=count)


def generate(folder: Path, events: int, files: int = 8, seed: int = 7) -> list[Path]:
    """Write `events` events (half SES NDJSON, half SendGrid arrays) into `files` files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    per_file = events // files
    written, n, redelivered = [], 0, []
    for index in range(files):
        count = per_file if index < files - 1 else events - per_file * (files - 1)
        ses = index % 2 == 0
        kinds = _pick(rng, SES_KINDS if ses else SENDGRID_KINDS, count)
        make = _ses_event if ses else _sendgrid_event
        batch = [make(rng, kind, n + i) for i, kind in enumerate(kinds)]
        n += count
        # re-deliver 2% of the events of the file two before (same provider) in this one
        if index >= 2:
            previous = redelivered[index - 2]
            batch[: len(previous)] = previous
        redelivered.append(rng.sample(batch, k=count // 50))
        rng.shuffle(batch)
        if ses:
            path = folder / f"ses-firehose-{index:03d}.ndjson"
            path.write_bytes(b"\n".join(orjson.dumps(e) for e in batch) + b"\n")
        else:
            path = folder / f"sendgrid-webhook-{index:03d}.json"
            path.write_bytes(orjson.dumps(batch))
        written.append(path)
    return written


if __name__ == "__main__":
    import sys

    folder, events, files, seed = sys.argv[1], *map(int, sys.argv[2:5])
    generate(Path(folder), events, files, seed)
