"""Email through any SMTP relay (Postfix, or SES, SendGrid, Mailgun and Postmark endpoints).

Connections are opened once and reused, `smtp_connections` of them in parallel; an optional rate
limit spreads messages over time. Every message carries our message id in its Message-ID and in
each provider's tag header, so the provider's events join back, and in its envelope sender
(VERP: `bounces+<id>@domain`), so the bounce mail of any relay joins back too. Where the relay
offers DSN (RFC 3461) we ask to hear of success, failure and delay, with our id as ENVID. The
relay's answer at RCPT is the first outcome: 5xx is a bounce (the classifier says whether it
proves a bad address), 4xx is retried and then deferred.
"""

import queue
import smtplib
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path

from flows.senders import RateLimit, SenderUnavailable
from flows.senders.mime import MessageTemplate
from flows.settings import Settings
from flows.tracking import tracking_secret
from warehouse.dispatch_state import Outcome, Outgoing
from warehouse.vocabulary import EventType, Provider

RETRIES = 3
RETRY_PAUSE = 0.5  # seconds, doubled after each try


class TemporaryFailure(Exception):
    def __init__(self, code: int, reply: bytes):
        self.code, self.reply = code, reply.decode(errors="replace")


def return_path(bounce_address: str, message_id: str) -> str:
    """The VERP envelope sender of one message: our id after a "+" in the local part."""
    local, _, domain = bounce_address.rpartition("@")
    return f"{local}+{message_id}@{domain}"


def bounce_address(config: Settings, sender: str | None = None) -> str:
    """Where bounces go: the configured address, else bounces@ the domain of the message's
    From address (so the return path aligns with it for SPF and DMARC)."""
    if config.bounce_address:
        return parseaddr(config.bounce_address)[1]
    domain = parseaddr(sender or config.email_from)[1].rpartition("@")[2] or "sendout.invalid"
    return f"bounces@{domain}"


def xtext(text: str) -> str:
    """RFC 3461's xtext: "+", "=" and anything outside printable ASCII as +HH."""
    if text.isascii() and text.isprintable() and not any(c in text for c in " +="):
        return text  # most addresses: nothing to encode
    return "".join(
        c if 33 <= ord(c) <= 126 and c not in "+=" else "".join(f"+{b:02X}" for b in c.encode())
        for c in text
    )


def _enhanced(reply: str) -> str | None:
    first = reply.split(maxsplit=1)[0] if reply.strip() else ""
    return first if first.count(".") == 2 and first.replace(".", "").isdigit() else None


def refused(message_id: str, code: int, reply: bytes, at: datetime) -> Outcome:
    """The outcome of a permanent refusal at RCPT: a bounce, with the relay's words. Whether
    it proves a bad address, its kind and its reason are the classifier's to say when it is
    recorded (warehouse/parsers/classify.sql), as for every other bounce."""
    text = reply.decode(errors="replace")
    return Outcome(
        message_id,
        EventType.BOUNCED,
        Provider.SMTP,
        at,
        status_code=_enhanced(text),
        reason=f"{code} {text}",
    )


class SmtpSender:
    """Sends email batches over a pool of reused SMTP connections."""

    def __init__(self, config: Settings):
        self.config = config
        self.rate = RateLimit(config.email_rate)
        self.tracking = None  # tracked send-outs get tracking once a public base URL is set
        if config.tracking_base_url:
            secret = config.tracking_secret.get_secret_value() if config.tracking_secret else None
            self.tracking = (
                tracking_secret(secret, Path(config.db).parent),
                config.tracking_base_url.rstrip("/"),
            )
        self.templates: dict[tuple, MessageTemplate] = {}
        self.idle: queue.SimpleQueue[smtplib.SMTP] = queue.SimpleQueue()
        self.on_outcome: Callable[[Outcome], None] | None = None  # told of each at once
        self.on_start: Callable[[str], None] | None = None  # told of each as it goes out
        self.pool = ThreadPoolExecutor(max_workers=max(1, config.smtp_connections))

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        try:
            connection = smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=30)
            if config.smtp_starttls:
                # verify the relay's certificate (against SENDOUT_SMTP_CA_FILE when given)
                connection.starttls(context=ssl.create_default_context(cafile=config.smtp_ca_file))
            if config.smtp_user:
                password = config.smtp_password.get_secret_value() if config.smtp_password else ""
                connection.login(config.smtp_user, password)
        except (OSError, smtplib.SMTPException) as error:
            raise SenderUnavailable(
                f"the SMTP relay {config.smtp_host}:{config.smtp_port} cannot be used: {error}"
            ) from error
        return connection

    def _take(self) -> smtplib.SMTP:
        try:
            return self.idle.get_nowait()
        except queue.Empty:
            return self._connect()

    def send(self, batch: list[Outgoing]) -> list[Outcome]:
        """Send a batch over the connections in parallel; one outcome per message, in order."""
        slices = max(1, self.config.smtp_connections)
        parts = [batch[i::slices] for i in range(slices)]
        results: dict[str, Outcome] = {}
        for outcomes in self.pool.map(self._send_part, parts):
            results.update((o.message_id, o) for o in outcomes)
        return [results[m.message_id] for m in batch]

    def _send_part(self, part: list[Outgoing]) -> list[Outcome]:
        if not part:
            return []
        connection = self._take()
        outcomes = []
        try:
            for message in part:
                if self.on_start:  # the journal: a crash now may send this one twice
                    self.on_start(message.message_id)
                outcomes.append(self._send_one(connection, message))
                if self.on_outcome:  # the dispatch journal: durable before the batch ends
                    self.on_outcome(outcomes[-1])
        except BaseException:
            connection.close()
            raise
        self.idle.put(connection)
        return outcomes

    def _template(self, message: Outgoing) -> MessageTemplate:
        """The send-out's template, built the first time one of its messages is sent."""
        track = self.tracking if message.is_tracked else None
        key = (message.sendout_id, message.sender, track is not None, bool(message.html_body))
        template = self.templates.get(key)
        if template is None:
            sender = message.sender or self.config.email_from
            bounces = bounce_address(self.config, message.sender)
            configuration_set = self.config.ses_configuration_set
            template = MessageTemplate(sender, bounces, configuration_set, track, key[3])
            self.templates[key] = template
        return template

    def _send_one(self, connection: smtplib.SMTP, message: Outgoing) -> Outcome:
        template = self._template(message)
        data = template.fill(message)
        pause = RETRY_PAUSE
        for attempt in range(RETRIES):
            self.rate.wait()
            try:
                return self._transaction(connection, message, template.bounce_address, data)
            except TemporaryFailure as failure:
                if attempt == RETRIES - 1:
                    return Outcome(
                        message.message_id,
                        EventType.DEFERRED,
                        Provider.SMTP,
                        datetime.now(UTC),
                        status_code=_enhanced(failure.reply),
                        reason=f"{failure.code} {failure.reply}",
                    )
            except (smtplib.SMTPServerDisconnected, OSError):
                connection.close()
                connection.connect(self.config.smtp_host, self.config.smtp_port)
            time.sleep(pause)
            pause *= 2
        raise SenderUnavailable(
            f"the SMTP relay kept dropping the connection at {message.message_id}"
        )

    def _envelope(
        self, connection: smtplib.SMTP, message: Outgoing, bounces: str
    ) -> tuple[bytes, bytes]:
        """MAIL and RCPT commands: the VERP return path, and DSN where the relay offers it."""
        sender = return_path(bounces, message.message_id)
        mail, rcpt = f"MAIL FROM:<{sender}>", f"RCPT TO:<{message.recipient}>"
        if self.config.smtp_dsn and connection.has_extn("dsn"):
            mail += f" RET=HDRS ENVID={xtext(message.message_id)}"
            # ORCPT: the address we sent to, so a report names it even after a forward
            rcpt += f" NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;{xtext(message.recipient)}"
        return mail.encode() + b"\r\n", rcpt.encode() + b"\r\n"

    def _transaction(
        self, connection: smtplib.SMTP, message: Outgoing, bounces: str, data: bytes
    ) -> Outcome:
        connection.ehlo_or_helo_if_needed()  # again after a reconnect
        mail, rcpt = self._envelope(connection, message, bounces)
        if connection.has_extn("pipelining"):  # RFC 2920: one round trip for the three
            connection.send(mail + rcpt + b"DATA\r\n")
            replies = [connection.getreply() for _ in range(3)]
        else:
            replies = []
            for command in (mail, rcpt, b"DATA\r\n"):
                connection.send(command)
                replies.append(connection.getreply())
                if replies[-1][0] >= 400:
                    break
        if replies[-1][0] == 354 and len(replies) == 3 and max(c for c, _ in replies[:2]) < 400:
            connection.send(data.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
            return self._accepted(message, *connection.getreply())
        if replies[-1][0] == 354:  # a relay that wants data it refused a recipient for
            connection.send(b".\r\n")
            connection.getreply()
        connection.rset()
        return self._refused(message, replies)

    def _refused(self, message: Outgoing, replies: list[tuple[int, bytes]]) -> Outcome:
        """The outcome of the first command the relay refused (MAIL, RCPT or DATA)."""
        step, (code, reply) = next((n, r) for n, r in enumerate(replies) if r[0] >= 400)
        if code < 500:
            raise TemporaryFailure(code, reply)
        if step == 0:
            sender = return_path(bounce_address(self.config, message.sender), message.message_id)
            raise SenderUnavailable(f"the SMTP relay refuses the sender {sender}: {code}")
        return refused(message.message_id, code, reply, datetime.now(UTC))

    def _accepted(self, message: Outgoing, code: int, reply: bytes) -> Outcome:
        """The outcome of the relay's answer to the message's data."""
        text = reply.decode(errors="replace")
        if code >= 500:
            return Outcome(
                message.message_id,
                EventType.FAILED,
                Provider.SMTP,
                datetime.now(UTC),
                status_code=_enhanced(text) or str(code),
                reason=f"{code} {text}",
            )
        if code >= 400:
            raise TemporaryFailure(code, reply)
        return Outcome(
            message.message_id,
            EventType.SENT,
            Provider.SMTP,
            datetime.now(UTC),
            provider_message_id=_queue_id(text),
        )

    def close(self) -> None:
        """Say goodbye on every connection."""
        self.pool.shutdown(wait=True)
        while True:
            try:
                connection = self.idle.get_nowait()
            except queue.Empty:
                return
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()


def _queue_id(reply: str) -> str | None:
    """The relay's id for the message ("250 Ok <id>", "queued as ID"), if it gave one."""
    words = reply.replace("<", " ").replace(">", " ").split()
    if "as" in words and words.index("as") + 1 < len(words):
        return words[words.index("as") + 1]
    return words[-1] if len(words) > 1 and words[0].lower() == "ok" else None
