"""The words Sendout uses for channels, providers, event types and statuses (DESIGN §3-§4).

Every other module imports its strings from here. SQL files that must spell an event type are
checked against this module by tests/test_vocabulary.py.
"""

from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class CommunicationType(StrEnum):
    MARKETING = "marketing"
    NON_MARKETING = "non_marketing"


class Provider(StrEnum):
    """Who reported an event. `smtp` is what our own SMTP sender and tracking record."""

    SES = "ses"
    SENDGRID = "sendgrid"
    MAILGUN = "mailgun"
    POSTMARK = "postmark"
    TWILIO = "twilio"
    SMTP = "smtp"


#: Providers whose event logs `sendout ingest` reads, with the channel their events are on.
INGESTIBLE_PROVIDERS: dict[Provider, Channel] = {
    Provider.SES: Channel.EMAIL,
    Provider.SENDGRID: Channel.EMAIL,
    Provider.MAILGUN: Channel.EMAIL,
    Provider.POSTMARK: Channel.EMAIL,
    Provider.TWILIO: Channel.SMS,
}


class EventType(StrEnum):
    """What a provider event means once parsed."""

    QUEUED = "queued"
    SKIPPED = "skipped"
    SENT = "sent"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    BAD_EMAIL = "bad_email"
    BAD_NUMBER = "bad_number"
    FAILED = "failed"
    COMPLAINT = "complaint"
    UNSUBSCRIBED = "unsubscribed"
    OPENED = "opened"
    CLICKED = "clicked"
    RECEIVED = "received"
    FORWARDED = "forwarded"
    REPLIED = "replied"


#: Events about an inbound SMS: a separate stream that never sets an outbound message's status.
INBOUND_EVENT_TYPES = frozenset({EventType.RECEIVED, EventType.FORWARDED, EventType.REPLIED})


class BounceKind(StrEnum):
    HARD = "hard"
    SOFT = "soft"
