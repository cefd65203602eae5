"""`sendout webhooks`: the ASGI service providers push their events to (Starlette).

Each endpoint (flows/webhooks/routes/, a module per provider) authenticates the request its
provider's way; a request that fails gets 401 or 403 and nothing is written (503 when Amazon's
SNS certificate cannot be fetched: SNS tries again later). An accepted request is appended
durably to the landing folder before the 2xx answer (flows/webhooks/landing.py); ingest reads
those files like any provider file. Bodies over the size limit get 413; an authenticated body
that is not what we expect is landed as it is, so ingest keeps it in quarantine rather than it
being lost.
"""

import asyncio
import contextlib
import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from flows.settings import Settings
from flows.webhooks.routes import mailgun, postmark, sendgrid, ses, tracking, twilio
from flows.webhooks.service import Service, TooLarge
from flows.webhooks.state import claim_landing, seen_store

log = logging.getLogger(__name__)
HAND_OVER_CHECK_SECONDS = 0.25  # how often open landing files are checked for hand-over
PROVIDERS = (sendgrid, mailgun, postmark, twilio, ses, tracking)


def create_app(config: Settings) -> Starlette:
    """The service, landing into `config.landing/webhooks/`, which it owns from here until its
    shutdown: raises LandingOwned, having changed no file, while another service owns it."""
    folder = Path(config.landing) / "webhooks"
    ownership = claim_landing(folder, f"{config.webhook_host}:{config.webhook_port}")
    service = Service.open(config, folder, seen_store(folder))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        for writer in service.writers.values():  # what a crash left was answered 2xx: ingest it
            writer.hand_over_leftovers()
        handing_over = asyncio.create_task(_hand_over_old_files(service))
        yield
        handing_over.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await handing_over
        for writer in service.writers.values():  # hand the open files to ingest
            writer.close()
        service.seen.close()
        ownership.release()  # last: the files are handed over

    routes = [route for provider in PROVIDERS for route in provider.routes(service)]
    app = Starlette(routes=[*routes, Route("/health", _health)], lifespan=lifespan)
    app.add_exception_handler(
        TooLarge, lambda request, exc: PlainTextResponse("body too large", status_code=413)
    )
    # a client gone before its body came in (or closed for being too slow): no one to answer,
    # and nothing to log for each of a slowloris's connections
    app.add_exception_handler(
        ClientDisconnect, lambda request, exc: PlainTextResponse("gone", status_code=400)
    )
    return app


async def _health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _hand_over_old_files(service: Service) -> None:
    """Hand each open landing file to ingest once it is quiet, old or full enough."""
    while True:
        await asyncio.sleep(HAND_OVER_CHECK_SECONDS)
        for writer in service.writers.values():
            if writer.handle is None:
                continue
            try:
                await asyncio.to_thread(writer.hand_over_if_due)
            except OSError as error:  # try again in a second; requests still land
                log.error("cannot hand %s to ingest: %s", writer.path, error)
