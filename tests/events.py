"""Small builders of provider payloads for tests: only the fields the parsers read."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path


def soon(minutes: int = 10) -> str:
    """A provider's time a little after now: later than anything a test did before, and
    within the day ahead that ingest believes (a later time is quarantined)."""
    return (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ses(kind: str, recipient: str = "ada@example.com", message_id: str = "msg-1", **extra) -> dict:
    """An SES event publishing record of `kind` (Delivery, Bounce, ...) tagged with our id."""
    event = {
        "eventType": kind,
        "mail": {
            "timestamp": "2026-11-02T09:00:00.000Z",
            "messageId": f"ses-{message_id}",
            "destination": [recipient],
            "tags": {"sendout_message_id": [message_id]},
        },
    }
    at = extra.pop("at", "2026-11-02T09:00:05.000Z")
    if kind == "Delivery":
        event["delivery"] = {"timestamp": at, "recipients": [recipient]}
    elif kind == "Bounce":
        event["bounce"] = {
            "bounceType": extra.pop("bounce_type", "Permanent"),
            "bounceSubType": extra.pop("subtype", "General"),
            "timestamp": at,
            "bouncedRecipients": [
                {"emailAddress": recipient, "status": extra.pop("status", "5.1.1")}
            ],
        }
    elif kind == "Complaint":
        event["complaint"] = {
            "timestamp": at,
            "complainedRecipients": [{"emailAddress": recipient}],
        }
    elif kind == "Subscription":
        event["subscription"] = {
            "timestamp": at,
            "newTopicPreferences": {"unsubscribeAll": True},
        }
    elif kind == "Open":
        event["open"] = {"timestamp": at}
    elif kind == "Click":
        event["click"] = {"timestamp": at, "link": extra.pop("link", "https://example.org/")}
    event.update(extra)
    return event


def sendgrid(event: str, email: str = "ada@example.com", event_id: str = "sg-1", **extra) -> dict:
    """A SendGrid Event Webhook event."""
    return {
        "email": email,
        "timestamp": 1793610000,
        "event": event,
        "sg_event_id": event_id,
        "sg_message_id": "abc123.filter0001",
        **extra,
    }


def write_ndjson(path: Path, events: list) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def twilio_status(sid: str, status: str, to: str, error_code: str | None = None, **extra) -> dict:
    """A Twilio message status callback (form fields, all strings)."""
    event = {"MessageSid": sid, "MessageStatus": status, "To": to, "AccountSid": "AC1"}
    if error_code:
        event["ErrorCode"] = error_code
    return {**event, **extra}


def twilio_inbound(sid: str, sender: str, body: str, at: str) -> dict:
    """An inbound SMS as our webhook receiver records it (with the time of receipt)."""
    return {
        "MessageSid": sid,
        "SmsStatus": "received",
        "From": sender,
        "To": "+14155550000",
        "Body": body,
        "AccountSid": "AC1",
        "sendout_received_at": at,
    }
