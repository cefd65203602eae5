"""The sandbox provider: sends nothing, needs no account or network, and tells a realistic,
reproducible story of what happened to each message as real provider files in the landing folder
(SES event publishing records for email, Twilio callbacks and inbound messages for SMS), so that
ingest, statuses and the dashboard run exactly as in production.

Outcomes are decided by a hash of the seed, the recipient and the content: the same send-out
gives the same story every time. Event times are spread after the send like real traffic
(deliveries within seconds, opens and replies over hours). Like a real provider, the sandbox
never reports an event before it happens: what is still to come waits in
`<landing>/sandbox/pending/`, in files by when they fall due (named `.pending`, which ingest does
not read), and `release_due` (run by the continuous ingester and the scheduled ingest) renames
each into the landing folder once its time has passed.
"""

import hashlib
import os
import uuid
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from flows.senders import RateLimit
from flows.settings import Settings
from warehouse.dispatch_state import Outcome, Outgoing
from warehouse.folders import PENDING_SUFFIX
from warehouse.own_records import handled_sms, received_callback, timestamp, write_landing_file
from warehouse.vocabulary import KEYWORDS, Channel, CommunicationType, EventType, Provider


class Dice:
    """Reproducible random numbers for one message."""

    def __init__(self, seed: int, message_id: str):
        self._digest = hashlib.blake2b(f"{seed}:{message_id}".encode(), digest_size=64).digest()
        self._next = 0

    def roll(self) -> float:
        """The next number in [0, 1)."""
        chunk = self._digest[self._next : self._next + 4]
        self._next = (self._next + 4) % 60
        return int.from_bytes(chunk, "big") / 2**32

    def seconds(self, low: float, high: float) -> timedelta:
        return timedelta(seconds=low + (high - low) * self.roll())


def story_key(message: Outgoing) -> str:
    """What decides a message's story with the seed: who gets what, on which channel. Not the
    message id (random), so the same send-out tells the same story every time it is built."""
    return f"{message.channel}:{message.recipient}:{message.subject or ''}:{message.sms_text or ''}"


# Pending events are grouped in files by when they fall due: to 2 s over the next minute, to
# 30 s over the next hour, to 5 minutes beyond; a file is released once all of it is due.
DUE_BUCKETS = [(timedelta(minutes=1), 2), (timedelta(hours=1), 30), (timedelta.max, 300)]
# a pending file is released this long after its last event is due, so that a sender still
# appending to it (it chose the file a moment before) has finished
RELEASE_GRACE_SECONDS = 2


def pending_folder(landing: Path) -> Path:
    """Where the sandbox keeps the events whose time has not come."""
    return Path(landing) / "sandbox" / "pending"


def _due_at(moment: datetime, now: datetime) -> int:
    """The epoch second by which the pending file holding `moment` is entirely due."""
    width = next(seconds for horizon, seconds in DUE_BUCKETS if moment - now < horizon)
    return (int(moment.timestamp()) // width + 1) * width


def hold_back(folder: Path, prefix: str, records: list[tuple[datetime, dict]], now: datetime):
    """Append records whose time is still to come to the pending files they fall due with."""
    by_file: dict[int, list[bytes]] = defaultdict(list)
    for moment, record in records:
        by_file[_due_at(moment, now)].append(orjson.dumps(record) + b"\n")
    folder.mkdir(parents=True, exist_ok=True)
    for due, lines in by_file.items():
        # one write in append mode: two senders appending to one file do not interleave lines
        with (folder / f"{prefix}-{due:012d}{PENDING_SUFFIX}").open("ab") as handle:
            handle.write(b"".join(lines))


def release_due(landing: Path, now: datetime | None = None) -> int:
    """Move every pending file that is entirely due into the landing folder; return how many.

    A rename, so a crash leaves each file either pending or landed, never both or neither.
    """
    folder = pending_folder(landing)
    if not folder.is_dir():
        return 0
    now_epoch = (now or datetime.now(UTC)).timestamp()
    released = 0
    for path in sorted(folder.glob(f"*{PENDING_SUFFIX}")):
        prefix, _, due = path.stem.rpartition("-")
        if not due.isdigit() or int(due) + RELEASE_GRACE_SECONDS > now_epoch:
            continue
        target = Path(landing) / "sandbox"
        target.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target / f"{prefix}-due{due}-{uuid.uuid4().hex[:8]}.ndjson")
        except FileNotFoundError:  # another process (the scheduled ingest) released it first
            continue
        released += 1
    return released


class Sandbox(ABC):
    """What both sandbox senders share: accept each message at once, then write its story."""

    prefix = ""  # of the landing files
    event_type = EventType.SENT  # the immediate outcome
    provider = Provider.SMTP
    channel = Channel.EMAIL

    def __init__(self, config: Settings, now=datetime.now):
        self.rate = RateLimit(
            config.email_rate if self.channel == Channel.EMAIL else config.sms_rate
        )
        self.seed = config.sandbox_seed
        self.folder = Path(config.landing) / "sandbox"
        self.pending = pending_folder(config.landing)
        self.now = now  # when messages are sent (the demo sends in the past)
        # the dispatch journal, as for a real sender: a batch "goes out" as its files are
        # written, so a crash sends again only a batch caught writing them, flagged
        self.on_outcome: Callable[..., None] | None = None  # given the batch's outcomes
        self.on_start: Callable[..., None] | None = None  # given the batch's message ids

    @abstractmethod
    def provider_id(self, message: Outgoing) -> str:
        """The id the pretend provider gives the message."""

    @abstractmethod
    def story(
        self, message: Outgoing, provider_id: str, sent_at: datetime
    ) -> Iterator[tuple[datetime, dict]]:
        """The provider records of what happens to the message, each with when it happens."""

    def send(self, batch: list[Outgoing]) -> list[Outcome]:
        records, outcomes = [], []
        for message in batch:
            self.rate.wait()  # the channel's configured rate, as a real sender keeps it
            sent_at = self.now().astimezone()
            provider_id = self.provider_id(message)
            outcomes.append(
                Outcome(
                    message.message_id,
                    self.event_type,
                    self.provider,
                    sent_at,
                    provider_message_id=provider_id,
                )
            )
            records.extend(self.story(message, provider_id, sent_at))
        if self.on_start:
            self.on_start(*(outcome.message_id for outcome in outcomes))
        now = datetime.now(UTC)  # the real time: what has happened by now is reported now
        hold_back(self.pending, self.prefix, [(at, r) for at, r in records if at > now], now)
        written = [r for at, r in records if at <= now]
        write_landing_file(self.folder, self.prefix, written, then=lambda: self._sent(outcomes))
        return outcomes

    def _sent(self, outcomes: list[Outcome]) -> None:
        """The batch's file is there: its outcomes to the journal at once, in one write."""
        if self.on_outcome:
            self.on_outcome(*outcomes)

    def close(self) -> None:  # noqa: B027  (a sender's close; the sandbox holds nothing)
        """Nothing to release."""


class SandboxEmail(Sandbox):
    """Email through a pretend relay in front of SES."""

    prefix = "ses"

    def provider_id(self, message: Outgoing) -> str:
        return "0102019" + hashlib.md5(message.message_id.encode()).hexdigest()[:24]

    def story(
        self, message: Outgoing, ses_id: str, sent_at: datetime
    ) -> Iterator[tuple[datetime, dict]]:
        dice = Dice(self.seed, story_key(message))
        mail = {
            "timestamp": timestamp(sent_at),
            "source": message.sender or "sendout@example.org",
            "messageId": ses_id,
            "destination": [message.recipient],
            "tags": {"sendout_message_id": [message.message_id]},
        }
        recipients = [{"emailAddress": message.recipient}]

        def event(kind: str, key: str, at: datetime, **body) -> tuple[datetime, dict]:
            return at, {"eventType": kind, "mail": mail, key: {"timestamp": timestamp(at), **body}}

        def bounce(at: datetime, kind: str, status: str, diagnostic: str) -> tuple[datetime, dict]:
            bounced = [{**recipients[0], "status": status, "diagnosticCode": diagnostic}]
            return event(
                "Bounce",
                "bounce",
                at,
                bounceType=kind,
                bounceSubType="General",
                bouncedRecipients=bounced,
            )

        yield sent_at, {"eventType": "Send", "mail": mail, "send": {}}
        fate = dice.roll()
        at = sent_at + dice.seconds(1, 8)
        if fate < 0.02:
            yield bounce(at, "Permanent", "5.1.1", "smtp; 550 5.1.1 user unknown")
            return
        if fate < 0.04:
            yield bounce(at, "Permanent", "5.7.1", "smtp; 550 5.7.1 rejected by policy")
            return
        if fate < 0.06:
            yield event(
                "DeliveryDelay",
                "deliveryDelay",
                at,
                delayType="MailboxFull",
                delayedRecipients=recipients,
            )
            yield bounce(at + timedelta(hours=6), "Transient", "4.2.2", "452 4.2.2 mailbox full")
            return
        yield event(
            "Delivery",
            "delivery",
            at,
            recipients=[message.recipient],
            smtpResponse="250 2.6.0 Message received",
        )
        if dice.roll() < 0.45:
            opened = at + dice.seconds(30, 6 * 3600)
            yield event("Open", "open", opened, userAgent="Mozilla/5.0")
            if dice.roll() < 0.3:
                clicked = opened + dice.seconds(2, 600)
                yield event("Click", "click", clicked, link="https://example.org/news")
        later = at + dice.seconds(60, 86400)
        roll = dice.roll()
        if roll < 0.005:
            yield event(
                "Complaint",
                "complaint",
                later,
                complainedRecipients=recipients,
                complaintFeedbackType="abuse",
            )
        elif roll < 0.015 and message.communication_type == CommunicationType.MARKETING:
            yield event(
                "Subscription", "subscription", later, newTopicPreferences={"unsubscribeAll": True}
            )


REPLIES = [
    ("STOP", 0.02),
    ("Thanks, see you then", 0.025),
    ("stop it please", 0.005),
    ("START", 0.002),
]


class SandboxSms(Sandbox):
    """SMS through a pretend Twilio API; replies are forwarded and answered as the webhook
    service would (the send-out's choices, else the settings')."""

    prefix = "twilio"
    event_type = EventType.QUEUED
    provider = Provider.TWILIO
    channel = Channel.SMS

    def __init__(self, config: Settings, now=datetime.now):
        super().__init__(config, now)
        self.forward_to = config.forward_to
        self.auto_reply_text = config.auto_reply_text

    def handling(
        self, message: Outgoing, sid: str, body: str, received: datetime
    ) -> Iterator[tuple[datetime, dict]]:
        """What our webhook service records after it forwards or answers a reply. Twilio
        answers its own keywords (STOP, START, HELP), so those get no auto-reply of ours."""
        forward_to = message.forward_to or self.forward_to
        is_keyword = any(body.strip().upper() in words for words in KEYWORDS.values())
        auto_reply = None if is_keyword else message.auto_reply_text or self.auto_reply_text
        handled = [
            (EventType.FORWARDED, f"From {message.recipient}: {body}", forward_to),
            (EventType.REPLIED, auto_reply, auto_reply),
        ]
        for seconds, (status, text, wanted) in enumerate(handled, start=1):
            if wanted:
                at = received + timedelta(seconds=seconds)
                yield at, handled_sms(sid, status, message.recipient, text, at)

    def provider_id(self, message: Outgoing) -> str:
        return "SM" + hashlib.md5(message.message_id.encode()).hexdigest()

    def story(
        self, message: Outgoing, sid: str, sent_at: datetime
    ) -> Iterator[tuple[datetime, dict]]:
        dice = Dice(self.seed, story_key(message))
        at = sent_at + dice.seconds(1, 4)

        def status(value: str, moment: datetime, error: str | None = None) -> tuple[datetime, dict]:
            callback = {
                "MessageSid": sid,
                "SmsSid": sid,
                "AccountSid": "ACsandbox",
                "MessageStatus": value,
                "To": message.recipient,
                "From": "+14155550000",
                "sendout_message_id": message.message_id,
            }
            fields = {**callback, "ErrorCode": error} if error else callback
            return moment, received_callback(fields, moment)

        yield status("sent", at)
        fate = dice.roll()
        if fate < 0.03:
            yield status("undelivered", at + dice.seconds(5, 60), "30005")
            return
        if fate < 0.05:
            yield status("undelivered", at + dice.seconds(5, 60), "30003")
            return
        if fate < 0.06:
            yield status("failed", at + dice.seconds(5, 60), "30007")
            return
        delivered = at + dice.seconds(2, 30)
        yield status("delivered", delivered)
        roll, threshold = dice.roll(), 0.0
        for body, share in REPLIES:
            threshold += share
            if roll < threshold:
                replied = delivered + dice.seconds(60, 4 * 3600)
                inbound = {
                    "MessageSid": f"SMin{sid[2:22]}",
                    "SmsSid": f"SMin{sid[2:22]}",
                    "AccountSid": "ACsandbox",
                    "SmsStatus": "received",
                    "From": message.recipient,
                    "To": "+14155550000",
                    "Body": body,
                }
                yield replied, received_callback(inbound, replied)
                yield from self.handling(message, f"SMin{sid[2:22]}", body, replied)
                return
