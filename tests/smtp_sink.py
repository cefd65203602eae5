"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), recording what it receives.

Recipients whose local part starts with `unknown` are refused with 550 5.1.1, `policy` with
550 5.7.1, and `busy` with 450 4.2.0 (a temporary failure). With `pipelining`, the server offers
RFC 2920 PIPELINING, as Postfix does (aiosmtpd reads grouped commands either way).
"""

import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message

from aiosmtpd.controller import Controller

REPLIES = {
    "unknown": "550 5.1.1 No such user here",
    "policy": "550 5.7.1 Rejected by policy",
    "busy": "450 4.2.0 Mailbox busy, try again later",
}


@dataclass
class Sink:
    """What the server received."""

    messages: list[Message] = field(default_factory=list)
    envelope_senders: list[str] = field(default_factory=list)
    connections: int = 0
    rcpt_refusals: int = 0
    pipelining: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return responses[:-1] + ["250-PIPELINING"] * self.pipelining + responses[-1:]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = REPLIES.get(address.split("@")[0].rstrip("0123456789"))
        if reply:
            with self.lock:
                self.rcpt_refusals += 1
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content))
            self.envelope_senders.append(envelope.mail_from)
            number = len(self.messages)
        return f"250 Ok: queued as Q{number}"

    def connection_made(self) -> None:
        with self.lock:
            self.connections += 1

    def message_ids(self) -> list[str]:
        with self.lock:
            return [m["X-Sendout-Message-Id"] for m in self.messages]


class CountingController(Controller):
    """An aiosmtpd controller that counts the connections it accepts."""

    def __init__(self, sink: Sink, **kwargs):
        self.sink = sink
        super().__init__(sink, **kwargs)

    def factory(self):
        self.sink.connection_made()
        return super().factory()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sink(pipelining: bool = False, **smtp_options) -> tuple[Sink, CountingController]:
    """Start a sink on a free port of 127.0.0.1 (stop it with controller.stop()); options go to
    aiosmtpd's SMTP (tls_context, require_starttls, authenticator, ...)."""
    sink = Sink(pipelining=pipelining)
    controller = CountingController(sink, hostname="127.0.0.1", port=free_port(), **smtp_options)
    controller.start()
    sink.connections = 0  # the controller's own start-up probe
    return sink, controller
