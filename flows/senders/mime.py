"""The email of a send-out as the bytes that go on the wire: built once, filled in per message.

Building every message with the `email` package cost about 0.3 ms of CPU each, under the GIL,
and was the SMTP sender's bottleneck (docs/performance.md). What differs between two messages
of a send-out is small: the recipient, the subject and bodies once personalised, and our message
id in the headers that make every provider's events join back. So a `MessageTemplate` holds the
rest (From, the MIME structure and its boundary, the constant headers) as ready bytes, and
`fill` adds only those parts; a body that is the same for everyone is encoded once.
"""

import binascii
import json
import secrets
import time
from email.header import Header
from email.utils import formataddr, parseaddr
from functools import lru_cache

from flows.tracking import add_tracking, unsubscribe_url
from warehouse.dispatch_state import Outgoing

QP = b"Content-Transfer-Encoding: quoted-printable\r\n"
TEXT_PART = b'Content-Type: text/plain; charset="utf-8"\r\n' + QP
HTML_PART = b'Content-Type: text/html; charset="utf-8"\r\n' + QP


def header_text(text: str) -> str:
    """A header value on one line, RFC 2047-encoded when it is not ASCII (a line break in a
    subject must never start a header of its own)."""
    text = " ".join(text.splitlines())
    return text if text.isascii() else Header(text, "utf-8").encode()


def address_header(address: str) -> str:
    """An address header: a display name outside ASCII is encoded, the address kept readable."""
    name, email = parseaddr(address)
    return formataddr((" ".join(name.splitlines()), email), charset="utf-8")


@lru_cache(maxsize=16)
def quoted_printable(body: str) -> bytes:
    """A body as quoted-printable with CRLF line ends: readable in transit, safe for any text.
    Cached, so a body without placeholders is encoded once per send-out."""
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    return binascii.b2a_qp(text.encode(), istext=True).replace(b"\n", b"\r\n")


def sender_domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "sendout.invalid"


class MessageTemplate:
    """What the messages of one send-out (one sender, tracked or not) have in common."""

    def __init__(
        self,
        sender: str,
        bounce_address: str,
        configuration_set: str | None,
        tracking: tuple[bytes, str] | None,
        has_html: bool,
    ):
        self.tracking = tracking
        self.bounce_address = bounce_address  # each message's return path adds its id to it
        self.domain = sender_domain(sender)
        self.boundary = f"=_sendout_{secrets.token_hex(12)}"  # "=_" never occurs in QP text
        head = [f"From: {address_header(sender)}", "MIME-Version: 1.0"]
        if has_html:
            head.append(f'Content-Type: multipart/alternative; boundary="{self.boundary}"')
        else:
            head += ['Content-Type: text/plain; charset="utf-8"',
                     "Content-Transfer-Encoding: quoted-printable"]  # fmt: skip
        if configuration_set:
            head.append(f"X-SES-CONFIGURATION-SET: {header_text(configuration_set)}")
        if tracking:
            head.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        self.head = "".join(line + "\r\n" for line in head).encode()

    def fill(self, message: Outgoing) -> bytes:
        """The whole message for one recipient, CRLF line ends, not yet dot-stuffed."""
        sent_at = int(time.time())
        html = message.html_body
        if self.tracking and html:
            html = add_tracking(html, *self.tracking, message.message_id, sent_at)
        headers = self._personal_headers(message, sent_at).encode()
        text = quoted_printable(message.text_body or "")
        if not message.html_body:
            return b"".join((self.head, headers, b"\r\n", text))
        mark = f"--{self.boundary}".encode()
        return b"".join(
            (self.head, headers, b"\r\n",
             mark, b"\r\n", TEXT_PART, b"\r\n", text, b"\r\n",
             mark, b"\r\n", HTML_PART, b"\r\n", quoted_printable(html), b"\r\n",
             mark, b"--\r\n")
        )  # fmt: skip

    def _personal_headers(self, message: Outgoing, sent_at: int) -> str:
        """The headers that name the recipient and carry our id for every provider."""
        message_id = message.message_id
        tag = json.dumps({"sendout_message_id": message_id})
        lines = (
            f"To: {header_text(message.recipient)}\r\n"
            f"Subject: {header_text(message.subject or '')}\r\n"
            f"Message-ID: <{message_id}@{self.domain}>\r\n"
            f"X-Sendout-Message-Id: {message_id}\r\n"
            f"X-SES-MESSAGE-TAGS: sendout_message_id={message_id}\r\n"
            f'X-SMTPAPI: {{"unique_args": {tag}}}\r\n'
            f"X-Mailgun-Variables: {tag}\r\n"
            f"X-PM-Metadata-sendout_message_id: {message_id}\r\n"
        )
        if self.tracking:
            url = unsubscribe_url(*self.tracking, message_id, sent_at)
            lines += f"List-Unsubscribe: <{url}>\r\n"
        return lines
