"""Channel senders behind one small interface: send a batch, get one outcome per message.

`senders_for(settings)` picks them from configuration: the sandbox (the embedded default, no
account or network), a real SMTP relay for email, Twilio's REST API for SMS.
"""

import threading
import time
from typing import Protocol

from flows.settings import Settings
from warehouse.dispatch_state import Outcome, Outgoing
from warehouse.vocabulary import Channel


class SenderUnavailable(RuntimeError):
    """The provider could not be reached or kept refusing: nothing more can be sent now. The
    messages of the batch keep no outcome and are sent when dispatch runs again."""


class Sender(Protocol):
    """Sends messages of one channel."""

    def send(self, batch: list[Outgoing]) -> list[Outcome]:
        """Send every message of the batch; return exactly one outcome per message."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class RateLimit:
    """At most `per_second` messages per second over all threads (0: no limit)."""

    def __init__(self, per_second: float):
        self.interval = 1 / per_second if per_second > 0 else 0.0
        self.next_at = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + self.interval
        time.sleep(max(0.0, start - now))


def senders_for(config: Settings) -> dict[str, Sender]:
    """The sender of each channel, as configured."""
    from flows.senders.sandbox import SandboxEmail, SandboxSms
    from flows.senders.smtp import SmtpSender
    from flows.senders.twilio import TwilioSender

    email: Sender = SmtpSender(config) if config.email_sender == "smtp" else SandboxEmail(config)
    sms: Sender = TwilioSender(config) if config.sms_sender == "twilio" else SandboxSms(config)
    return {str(Channel.EMAIL): email, str(Channel.SMS): sms}
