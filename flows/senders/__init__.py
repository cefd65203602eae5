"""Channel senders behind one small interface: send a batch, get one outcome per message.

`senders_for(settings)` picks them from configuration: the sandbox (the embedded default, no
account or network), a real SMTP relay for email, Twilio's REST API for SMS.
"""

from typing import Protocol

from warehouse.dispatch import Outcome, Outgoing
from warehouse.settings import Settings
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


def senders_for(config: Settings) -> dict[str, Sender]:
    """The sender of each channel, as configured."""
    from flows.senders.sandbox import SandboxEmail, SandboxSms
    from flows.senders.smtp import SmtpSender
    from flows.senders.twilio import TwilioSender

    email: Sender = SmtpSender(config) if config.email_sender == "smtp" else SandboxEmail(config)
    sms: Sender = TwilioSender(config) if config.sms_sender == "twilio" else SandboxSms(config)
    return {str(Channel.EMAIL): email, str(Channel.SMS): sms}
