"""Running the webhook service: uvicorn (httptools, uvloop) with a deadline for each request.

uvicorn has no limit on how long a client may take to send its request: its keep-alive timer
is only armed between requests and is reset by every byte, so a client that opens connections
and sends a header now and then holds them for ever (slowloris). Each connection here must
deliver a complete request (headers and body) within `webhook_request_timeout_seconds` of
connecting, or of starting its next request, or it is closed. The deadline stops once the
request is in, so a slow answer (a Twilio forward, a certificate fetch) is never cut short.
"""

import asyncio
import gc

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from flows.settings import Settings


class RequestDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose request does not come in time."""

    request_timeout_seconds = 10.0
    deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_deadline()  # the next request on a kept-alive connection

    def on_message_complete(self) -> None:
        self._disarm_deadline()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_deadline()
        super().connection_lost(exc)

    def _arm_deadline(self) -> None:
        if self.deadline is None:
            self.deadline = self.loop.call_later(self.request_timeout_seconds, self._too_slow)

    def _disarm_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _too_slow(self) -> None:
        self.deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def protocol_with_deadline(seconds: float) -> type[RequestDeadlineProtocol]:
    """The protocol class for uvicorn, with this deadline (uvicorn builds one per connection)."""
    return type(
        "RequestDeadlineProtocol", (RequestDeadlineProtocol,), {"request_timeout_seconds": seconds}
    )


def uvicorn_options(config: Settings) -> dict:
    """How uvicorn serves the service: `config`'s address, and the request deadline."""
    return {
        "host": config.webhook_host,
        "port": config.webhook_port,
        "http": protocol_with_deadline(config.webhook_request_timeout_seconds),
    }


def serve(app: Starlette, config: Settings, access_log: bool) -> None:
    """Serve until Ctrl-C or SIGTERM (uvicorn uses uvloop when it is installed)."""
    # what startup made lives as long as the service: keep it out of the collector's full passes,
    # which otherwise take ~40 ms here and stall every request in flight
    gc.freeze()
    uvicorn.run(app, **uvicorn_options(config), log_level="info", access_log=access_log)
