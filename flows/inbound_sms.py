"""What Sendout does with an inbound SMS the webhook service received: forward it and answer
it, once per MessageSid (through the Twilio sender: the service itself sends nothing).

Twilio signs no time into its requests, so a signed inbound request can be sent again at any
time, by Twilio's own retry or by anyone who saw it. Each one is landed (ingest stores its event
once), but only the first of a MessageSid forwards the SMS and gets the auto-reply: the
MessageSid is remembered on disk before either happens, so a replay after a restart or a
kill -9 acts no more than the first did. A crash between remembering and acting loses that
forward or reply rather than sending it twice.
"""

import logging
import time

from flows.senders import SenderUnavailable
from flows.senders.twilio import TwilioSender
from flows.settings import Settings
from flows.webhooks.state import SeenStore
from warehouse.dispatch_state import Outgoing
from warehouse.own_records import handled_sms
from warehouse.vocabulary import Channel, CommunicationType, EventType

log = logging.getLogger(__name__)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
HANDLED_KIND = "twilio_inbound"
# How long a handled MessageSid is remembered. Twilio's signatures carry no time, so this is
# not a limit a real request could outlive: it only bounds the file (one row per inbound SMS).
HANDLED_KEEP_SECONDS = 366 * 86400


def twiml(text: str | None) -> str:
    """Twilio's answer: the auto-reply as a <Message>, or nothing to send."""
    if not text:
        return EMPTY_TWIML
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{escaped}</Message></Response>'
    )


def first_time_handled(store: SeenStore, sid: str) -> bool:
    """True the first time a MessageSid comes in; it is on disk when this returns."""
    now = time.time()
    return store.first_sighting(HANDLED_KIND, sid, now, now - HANDLED_KEEP_SECONDS)


def handle_inbound(config: Settings, store: SeenStore, form: dict[str, str]) -> tuple[list, str]:
    """Forward the SMS and reply to it, the first time its MessageSid comes in; return the
    records of what was done (for ingest) and the TwiML answer. Blocking: run it in a thread."""
    sid, sender = form.get("MessageSid", ""), form.get("From", "")
    if not first_time_handled(store, sid):
        return [], EMPTY_TWIML
    done = []
    if config.forward_to and config.twilio_account_sid:
        forwarded = forward(config, sid, sender, form.get("Body", ""))
        if forwarded:
            done.append(handled_sms(sid, EventType.FORWARDED, sender, forwarded))
    if config.auto_reply_text:
        done.append(handled_sms(sid, EventType.REPLIED, sender, config.auto_reply_text))
    return done, twiml(config.auto_reply_text)


def forward(config: Settings, sid: str, sender: str, body: str) -> str | None:
    """Send the SMS on to `config.forward_to` through Twilio's API; the text sent, or None."""
    text = f"From {sender}: {body}"
    message = Outgoing(
        message_id=f"fwd-{sid}",
        sendout_id="",
        channel=Channel.SMS,
        recipient=config.forward_to,
        communication_type=CommunicationType.NON_MARKETING,
        sender=None,
        subject=None,
        html_body=None,
        text_body=None,
        sms_text=text,
        is_possible_duplicate=False,
        is_tracked=False,
    )
    try:
        twilio_api = TwilioSender(config)
        try:
            outcome = twilio_api.send([message])[0]
        finally:
            twilio_api.close()
    except SenderUnavailable as error:  # the SMS itself still lands; a retry would not forward
        log.error("cannot forward inbound SMS %s: %s", sid, error)
        return None
    return text if outcome.event_type == EventType.QUEUED else None
