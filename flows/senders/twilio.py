"""SMS through Twilio's REST API (the Messages resource), with httpx.

Each message is a form POST; the StatusCallback URL carries our message id so that Twilio's
callbacks join back. Twilio's synchronous errors are outcomes at once: 21211 and 21614 a bad
number, 21610 a recipient who replied STOP to Twilio (skipped), any other a failure. 429 and 5xx
answers and network errors are retried with backoff; if they persist, dispatch stops and resumes
later.
"""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx

from flows.senders import RateLimit, SenderUnavailable
from flows.settings import Settings
from warehouse.dispatch_state import Outcome, Outgoing
from warehouse.vocabulary import EventType, Provider

RETRIES = 4
RETRY_PAUSE = 0.5
ERROR_OUTCOMES = {
    21211: EventType.BAD_NUMBER,  # invalid 'To' number
    21614: EventType.BAD_NUMBER,  # 'To' is not a mobile number
    21610: EventType.SKIPPED,  # the recipient replied STOP to Twilio
}


class TwilioSender:
    """Sends SMS batches through Twilio's Messages API, a few requests at a time."""

    def __init__(self, config: Settings):
        if not (config.twilio_account_sid and config.twilio_auth_token and config.twilio_from):
            raise SenderUnavailable(
                "Twilio needs SENDOUT_TWILIO_ACCOUNT_SID, SENDOUT_TWILIO_AUTH_TOKEN and "
                "SENDOUT_TWILIO_FROM"
            )
        self.config = config
        self.path = f"/2010-04-01/Accounts/{config.twilio_account_sid}/Messages.json"
        self.client = httpx.Client(
            base_url=config.twilio_api_base,
            auth=(config.twilio_account_sid, config.twilio_auth_token.get_secret_value()),
            timeout=30,
        )
        self.rate = RateLimit(config.sms_rate)
        self.pool = ThreadPoolExecutor(max_workers=max(1, config.sms_connections))
        self.on_outcome: Callable[[Outcome], None] | None = None  # told of each at once
        self.on_start: Callable[[str], None] | None = None  # told of each as it goes out

    def send(self, batch: list[Outgoing]) -> list[Outcome]:
        """One outcome per message, in order; `on_outcome` hears of each as it comes."""
        return list(self.pool.map(self._send_and_tell, batch))

    def _send_and_tell(self, message: Outgoing) -> Outcome:
        if self.on_start:
            self.on_start(message.message_id)
        outcome = self._send_one(message)
        if self.on_outcome:
            self.on_outcome(outcome)
        return outcome

    def _form(self, message: Outgoing) -> dict[str, str]:
        form = {
            "To": message.recipient,
            "From": self.config.twilio_from,
            "Body": message.sms_text or "",
        }
        if self.config.twilio_status_callback:
            query = urlencode({"sendout_message_id": message.message_id})
            form["StatusCallback"] = f"{self.config.twilio_status_callback}?{query}"
        return form

    def _send_one(self, message: Outgoing) -> Outcome:
        pause = RETRY_PAUSE
        problem = "no answer"
        for _ in range(RETRIES):
            self.rate.wait()
            try:
                response = self.client.post(self.path, data=self._form(message))
            except httpx.TransportError as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 300:
                    return self._accepted(message, response.json())
                if response.status_code != 429 and response.status_code < 500:
                    return self._refused(message, response)
                problem = f"HTTP {response.status_code}"
                pause = max(pause, float(response.headers.get("Retry-After", 0) or 0))
            time.sleep(pause)
            pause *= 2
        raise SenderUnavailable(f"Twilio's API at {self.config.twilio_api_base} failed: {problem}")

    def _accepted(self, message: Outgoing, answer: dict) -> Outcome:
        return Outcome(
            message.message_id,
            EventType.QUEUED,
            Provider.TWILIO,
            datetime.now(UTC),
            provider_message_id=answer.get("sid"),
        )

    def _refused(self, message: Outgoing, response: httpx.Response) -> Outcome:
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        code = answer.get("code")
        if response.status_code in (401, 403):
            raise SenderUnavailable(f"Twilio refused our credentials (HTTP {response.status_code})")
        return Outcome(
            message.message_id,
            ERROR_OUTCOMES.get(code, EventType.FAILED),
            Provider.TWILIO,
            datetime.now(UTC),
            status_code=str(code) if code else str(response.status_code),
            reason=answer.get("message") or response.text[:200],
        )

    def close(self) -> None:
        """Finish the requests in flight and close the connections."""
        self.pool.shutdown(wait=True)
        self.client.close()
