"""Our own tracking links: the open pixel, click redirects and the unsubscribe page, each
landed as a record for ingest (parsers/smtp.sql). A link scanner's click is marked, and the
unsubscribe page asks before it acts (RFC 8058's one-click POST acts at once)."""

import json
import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from flows.tracking import (
    TRANSPARENT_GIF,
    Token,
    is_machine,
    is_scanner_click,
    read_token,
    tracking_secret,
)
from flows.webhooks.service import Service
from warehouse.own_records import tracking_event
from warehouse.vocabulary import EventType


def not_found() -> Response:
    return PlainTextResponse("not found", status_code=404)


ASK = (
    "<!doctype html><title>Unsubscribe</title><form method=post>"
    "<p>Stop receiving these emails?</p><button>Unsubscribe</button></form>"
)
DONE = (
    "<!doctype html><title>Unsubscribed</title>"
    "<p>You are unsubscribed. You will not get these emails again.</p>"
)


def routes(service: Service) -> list[Route]:
    config = service.config
    configured = config.tracking_secret.get_secret_value() if config.tracking_secret else None
    secret = tracking_secret(configured, Path(config.db).parent)

    def token_of(request: Request) -> Token | None:
        return read_token(secret, request.path_params["token"])

    async def track(
        request: Request, event: EventType, token: Token, scanner: bool = False
    ) -> None:
        agent = request.headers.get("user-agent")
        # a HEAD request checks a URL without reading it: scanners do that
        machine = scanner or request.method == "HEAD" or is_machine(agent)
        record = tracking_event(event, token.message_id, token.url, agent, machine)
        await service.land("tracking", [json.dumps(record).encode()])

    async def opened(request: Request) -> Response:
        token = token_of(request)
        if token is None or token.link != 0:
            return not_found()
        await track(request, EventType.OPENED, token)
        headers = {"Cache-Control": "no-store, max-age=0"}
        return Response(TRANSPARENT_GIF, media_type="image/gif", headers=headers)

    async def clicked(request: Request) -> Response:
        token = token_of(request)
        if token is None or token.link == 0 or not token.url.startswith(("http://", "https://")):
            return not_found()
        scanner = is_scanner_click(token, time.time(), config.scanner_click_seconds)
        await track(request, EventType.CLICKED, token, scanner)
        return RedirectResponse(token.url, status_code=302)

    async def unsubscribe(request: Request) -> Response:
        token = token_of(request)
        if token is None or token.link != 0:
            return not_found()
        if request.method != "POST":  # a page first: link scanners must not unsubscribe anyone
            return HTMLResponse(ASK)
        # RFC 8058's one-click POST, or the page's button
        await track(request, EventType.UNSUBSCRIBED, token)
        return HTMLResponse(DONE)

    return [
        Route("/t/o/{token}", opened),
        Route("/t/c/{token}", clicked),
        Route("/t/u/{token}", unsubscribe, methods=["GET", "POST"]),
    ]
