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
    """Who reported an event. `smtp` is what our own SMTP sender and tracking record;
    `sendout` is what dispatch itself decided (a message skipped by the Unsubscribes list);
    `mail` is bounce mail from any relay (DSNs, feedback reports), read as raw email."""

    SES = "ses"
    SENDGRID = "sendgrid"
    MAILGUN = "mailgun"
    POSTMARK = "postmark"
    TWILIO = "twilio"
    SMTP = "smtp"
    SENDOUT = "sendout"
    MAIL = "mail"


#: Providers whose event logs `sendout ingest` reads, with the channel their events are on.
INGESTIBLE_PROVIDERS: dict[Provider, Channel] = {
    Provider.SES: Channel.EMAIL,
    Provider.SENDGRID: Channel.EMAIL,
    Provider.MAILGUN: Channel.EMAIL,
    Provider.POSTMARK: Channel.EMAIL,
    Provider.TWILIO: Channel.SMS,
    Provider.SMTP: Channel.EMAIL,  # what our tracking service saw (opens, clicks, unsubscribes)
    Provider.MAIL: Channel.EMAIL,
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
    """`hard`: the address will not take mail (permanent, about the recipient); `soft`: it may
    later (temporary, or about this message or its sender: full, blocked, too big)."""

    HARD = "hard"
    SOFT = "soft"


class Verdict(StrEnum):
    """What the reporter of a delivery attempt says of it: the classifier's first piece of
    evidence (warehouse/parsers/classify.sql). `gave_up`: it stopped retrying temporary
    failures (a final soft bounce)."""

    FAILED = "failed"
    GAVE_UP = "gave_up"
    DELAYED = "delayed"
    DELIVERED = "delivered"


class BounceReason(StrEnum):
    """Why a message was not delivered, decided by warehouse/parsers/classify.sql from all the
    evidence (DESIGN §4). Only `user_unknown` and `domain_unknown` can prove a bad address.
    Listed from the most precise to the least: between two equal events, the earlier wins."""

    USER_UNKNOWN = "user_unknown"
    DOMAIN_UNKNOWN = "domain_unknown"
    MAILBOX_FULL = "mailbox_full"
    MAILBOX_DISABLED = "mailbox_disabled"
    POLICY = "policy"
    AUTHENTICATION = "authentication"
    TOO_BIG = "too_big"
    EXPIRED = "expired"
    NETWORK = "network"
    OTHER = "other"


class DisplayStatus(StrEnum):
    """What the dashboard shows for an outbound message (DESIGN §3)."""

    QUEUED = "Queued"
    SKIPPED = "Skipped"
    SENT = "Sent"
    DELIVERED = "Delivered"
    BOUNCED = "Bounced"
    COMPLAINT = "Complaint"
    BAD_NUMBER = "Bad number"
    BAD_EMAIL = "Bad email"
    OPENED = "Opened"
    CLICKED = "Clicked"
    FAILED = "Failed"


#: Precedence of outbound events for a message's final status (DESIGN §4): the highest wins,
#: never the last to arrive. `skipped` ranks above what only says a message left us (`sent`,
#: `queued`) and below anything proving a delivery attempt. `unsubscribed` sets a flag instead.
STATUS_RANK: dict[EventType, int] = {
    EventType.QUEUED: 1,
    EventType.SENT: 2,
    EventType.SKIPPED: 3,
    EventType.DEFERRED: 4,
    EventType.DELIVERED: 5,
    EventType.FAILED: 6,
    EventType.BOUNCED: 7,
    EventType.BAD_EMAIL: 8,
    EventType.BAD_NUMBER: 8,
    EventType.OPENED: 9,
    EventType.CLICKED: 10,
    EventType.COMPLAINT: 11,
}

#: The display status of a message whose highest-ranked event is the key. A deferred message
#: was handed on and may still be delivered, so it shows as Sent.
DISPLAY_STATUS: dict[EventType, DisplayStatus] = {
    EventType.QUEUED: DisplayStatus.QUEUED,
    EventType.SENT: DisplayStatus.SENT,
    EventType.SKIPPED: DisplayStatus.SKIPPED,
    EventType.DEFERRED: DisplayStatus.SENT,
    EventType.DELIVERED: DisplayStatus.DELIVERED,
    EventType.FAILED: DisplayStatus.FAILED,
    EventType.BOUNCED: DisplayStatus.BOUNCED,
    EventType.BAD_EMAIL: DisplayStatus.BAD_EMAIL,
    EventType.BAD_NUMBER: DisplayStatus.BAD_NUMBER,
    EventType.OPENED: DisplayStatus.OPENED,
    EventType.CLICKED: DisplayStatus.CLICKED,
    EventType.COMPLAINT: DisplayStatus.COMPLAINT,
}

#: Events that prove a message left us (for first_sent_at).
SENT_EVIDENCE = frozenset(STATUS_RANK) - {EventType.QUEUED, EventType.SKIPPED, EventType.FAILED}


# the display statuses a message of the channel never has (an SMS fails, it does not bounce)
NEVER_ON: dict[Channel, set[DisplayStatus]] = {
    Channel.EMAIL: {DisplayStatus.BAD_NUMBER},
    Channel.SMS: {
        DisplayStatus.BOUNCED,
        DisplayStatus.COMPLAINT,
        DisplayStatus.BAD_EMAIL,
        DisplayStatus.OPENED,
        DisplayStatus.CLICKED,
    },
}


class SendoutStatus(StrEnum):
    """A send-out's own status on the Messages page (DESIGN §5)."""

    SCHEDULED = "Scheduled"
    SENDING = "Sending..."
    SENT = "Sent"
    DELIVERED = "Delivered"
    CANCELLED = "Cancelled"


class InboundStatus(StrEnum):
    RECEIVED = "Received"
    FORWARDED = "Forwarded"
    REPLIED = "Replied"


class Keyword(StrEnum):
    """What an inbound SMS asks for, from its whole trimmed body (DESIGN §6)."""

    STOP = "stop"
    START = "start"
    HELP = "help"
    OTHER = "other"


KEYWORDS: dict[Keyword, frozenset[str]] = {
    Keyword.STOP: frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}),
    Keyword.START: frozenset({"START", "UNSTOP", "YES"}),
    Keyword.HELP: frozenset({"HELP", "INFO"}),
}


class UnsubscribeReason(StrEnum):
    STOP_REPLY = "stop_reply"
    BOUNCED = "bounced"
    BAD_EMAIL = "bad_email"
    BAD_NUMBER = "bad_number"
    COMPLAINT = "complaint"
    UNSUBSCRIBED = "unsubscribed"
    PROVIDER_SUPPRESSED = "provider_suppressed"
    REPEATED_SOFT_BOUNCE = "repeated_soft_bounce"
    MANUAL = "manual"


class UnsubscribeScope(StrEnum):
    """`all` blocks every send-out on the channel; `marketing` only marketing ones."""

    ALL = "all"
    MARKETING = "marketing"


#: The cause of an Unsubscribes change a person made (other causes are event types and replies).
MANUAL_CAUSE = "manual"


class ChangeAction(StrEnum):
    ADD = "add"
    REMOVE = "remove"


#: How many soft bounces in a row, across send-outs and with no delivery between, add an entry.
SOFT_BOUNCE_STREAK = 3

#: The column that counts each display status in sendout_channel_stats ("Bad email" -> bad_email).
STATUS_COLUMNS: dict[DisplayStatus, str] = {
    status: str(status).lower().replace(" ", "_") for status in DisplayStatus
}

#: How a person reads each reason of the Unsubscribes list (the seed's words).
REASON_WORDS: dict[UnsubscribeReason, str] = {
    UnsubscribeReason.STOP_REPLY: "Replied STOP",
    UnsubscribeReason.BOUNCED: "Bounced",
    UnsubscribeReason.BAD_EMAIL: "Bad email",
    UnsubscribeReason.BAD_NUMBER: "Bad number",
    UnsubscribeReason.COMPLAINT: "Complaint",
    UnsubscribeReason.UNSUBSCRIBED: "Unsubscribed",
    UnsubscribeReason.PROVIDER_SUPPRESSED: "Refused by the provider",
    UnsubscribeReason.REPEATED_SOFT_BOUNCE: "Soft bounces in a row",
    UnsubscribeReason.MANUAL: "Added by hand",
}

#: How a person reads a bounce reason.
BOUNCE_REASON_WORDS: dict[BounceReason, str] = {
    BounceReason.USER_UNKNOWN: "Mailbox does not exist",
    BounceReason.DOMAIN_UNKNOWN: "Domain does not exist",
    BounceReason.MAILBOX_FULL: "Mailbox full",
    BounceReason.MAILBOX_DISABLED: "Mailbox disabled",
    BounceReason.POLICY: "Blocked as spam or by policy",
    BounceReason.AUTHENTICATION: "Sender authentication failed (SPF, DKIM, DMARC)",
    BounceReason.TOO_BIG: "Message too big",
    BounceReason.EXPIRED: "Gave up retrying",
    BounceReason.NETWORK: "Network or server problem",
    BounceReason.OTHER: "Other",
}


#: The same reasons where an SMS failed: a number, a carrier, not a mailbox.
SMS_BOUNCE_REASON_WORDS: dict[BounceReason, str] = {
    **BOUNCE_REASON_WORDS,
    BounceReason.USER_UNKNOWN: "Number does not exist or cannot receive SMS",
    BounceReason.POLICY: "Blocked by the carrier or as spam",
    BounceReason.NETWORK: "Carrier or network problem",
}


def reason_words(channel: str) -> dict[BounceReason, str]:
    """How a person reads the reasons a delivery failed on `channel`."""
    return SMS_BOUNCE_REASON_WORDS if channel == Channel.SMS else BOUNCE_REASON_WORDS


def failure_words(
    reason: str | None, status_code: str | None = None, channel: str = Channel.EMAIL
) -> str | None:
    """Why a delivery failed, as a person reads it: "Mailbox does not exist (5.1.1)"."""
    if reason is None:
        return None
    words = reason_words(channel)[BounceReason(reason)]
    return f"{words} ({status_code})" if status_code else words


#: How a person reads a scope, a communication type and a channel.
SCOPE_WORDS: dict[UnsubscribeScope, str] = {
    UnsubscribeScope.ALL: "All messages",
    UnsubscribeScope.MARKETING: "Marketing only",
}
TYPE_WORDS: dict[CommunicationType, str] = {
    CommunicationType.MARKETING: "Marketing",
    CommunicationType.NON_MARKETING: "Non-marketing",
}
CHANNEL_WORDS: dict[Channel, str] = {Channel.EMAIL: "Email", Channel.SMS: "SMS"}
# what a person needs to be reached on a channel, as a sentence says it
ADDRESS_WORDS: dict[Channel, str] = {
    Channel.EMAIL: "an email address",
    Channel.SMS: "a mobile number",
}
