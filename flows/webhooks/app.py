"""`sendout webhooks`: the ASGI service providers push their events to (Starlette).

Each endpoint authenticates the request its provider's way; a request that fails gets 401 or 403
and nothing is written (503 when Amazon's SNS certificate cannot be fetched: SNS tries again
later). An accepted request is appended durably to the landing folder before the
2xx answer (flows/webhooks/landing.py); ingest reads those files like any provider file. Bodies
over the size limit get 413; an authenticated body that is not what we expect is landed as it is,
so ingest keeps it in quarantine rather than it being lost.
"""

import asyncio
import contextlib
import json
import logging
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from flows.webhooks.inbound import handle_inbound
from flows.webhooks.landing import LandingWriter, received_at
from flows.webhooks.signatures import (
    SeenTokens,
    sns_certificate_url_is_amazons,
    verify_basic,
    verify_mailgun,
    verify_sendgrid,
    verify_sns,
    verify_twilio,
)
from flows.webhooks.state import claim_landing, seen_store
from flows.webhooks.tracking import (
    TRANSPARENT_GIF,
    Token,
    is_machine,
    is_scanner_click,
    read_token,
    tracking_secret,
)
from warehouse.settings import Settings

log = logging.getLogger(__name__)
HAND_OVER_CHECK_SECONDS = 0.25  # how often open landing files are checked for hand-over


class TooLarge(Exception):
    pass


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge
    return body


def create_app(config: Settings) -> Starlette:
    """The service, landing into `config.landing/webhooks/`, which it owns from here until its
    shutdown: raises LandingOwned, having changed no file, while another service owns it."""
    folder = Path(config.landing) / "webhooks"
    ownership = claim_landing(folder, f"{config.webhook_host}:{config.webhook_port}")
    seen = seen_store(folder)
    writers = {
        name: LandingWriter(
            folder,
            name,
            config.landing_file_max_bytes,
            config.landing_file_max_seconds,
            config.landing_file_quiet_seconds,
        )
        for name in ("sendgrid", "mailgun", "postmark", "twilio", "ses", "tracking")
    }
    seen_mailgun_tokens = SeenTokens(seen)
    limit = config.webhook_max_body_bytes

    async def sendgrid(request: Request) -> Response:
        body = await _body(request, limit)
        signature = request.headers.get("X-Twilio-Email-Event-Webhook-Signature", "")
        stamp = request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", "")
        if not (
            config.sendgrid_public_key
            and verify_sendgrid(config.sendgrid_public_key, signature, stamp, body)
        ):
            return PlainTextResponse("signature does not verify", status_code=403)
        try:
            events = json.loads(body)
            lines = [json.dumps(e).encode() for e in events] if isinstance(events, list) else [body]
        except ValueError:
            lines = [body]
        await writers["sendgrid"].land(lines)
        return PlainTextResponse("ok")

    async def mailgun(request: Request) -> Response:
        body = await _body(request, limit)
        try:
            signed = json.loads(body)["signature"]
            stamp, token, signature = signed["timestamp"], signed["token"], signed["signature"]
        except (ValueError, KeyError, TypeError):
            return PlainTextResponse("no signature", status_code=401)
        key = config.mailgun_signing_key
        if not (
            key
            and await asyncio.to_thread(  # a first use is remembered on disk
                verify_mailgun,
                key.get_secret_value(),
                str(stamp),
                str(token),
                str(signature),
                seen_mailgun_tokens,
            )
        ):
            return PlainTextResponse("signature does not verify", status_code=403)
        await writers["mailgun"].land([body])
        return PlainTextResponse("ok")

    async def postmark(request: Request) -> Response:
        password = config.postmark_password
        if not (
            config.postmark_user
            and password
            and verify_basic(
                request.headers.get("Authorization"),
                config.postmark_user,
                password.get_secret_value(),
            )
        ):
            return PlainTextResponse(
                "credentials needed",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="sendout"'},
            )
        await writers["postmark"].land([await _body(request, limit)])
        return PlainTextResponse("ok")

    async def twilio(request: Request) -> Response:
        body = await _body(request, limit)
        form = dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
        base = (config.public_base_url or str(request.base_url)).rstrip("/")
        url = base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        token = config.twilio_auth_token
        signature = request.headers.get("X-Twilio-Signature", "")
        if not (token and verify_twilio(token.get_secret_value(), url, form, signature)):
            return PlainTextResponse("signature does not verify", status_code=403)
        # our message id rides in the callback URL's query; the time is when we received it
        record = {**form, **dict(request.query_params), "sendout_received_at": received_at()}
        if not request.url.path.endswith("/inbound"):
            await writers["twilio"].land([json.dumps(record).encode()])
            return PlainTextResponse("ok")
        # it may call Twilio; a replayed MessageSid is landed again but acted on no more
        done, answer = await asyncio.to_thread(handle_inbound, config, seen, form)
        await writers["twilio"].land([json.dumps(line).encode() for line in [record, *done]])
        return Response(answer, media_type="text/xml")

    pinned_certificate = (
        Path(config.sns_certificate_file).read_bytes() if config.sns_certificate_file else None
    )
    certificates: dict[str, bytes] = {}  # Amazon's signing certificates by URL, fetched once
    fetching = asyncio.Lock()  # one fetch at a time: requests arriving together share it

    async def sns_certificate(url: str) -> bytes:
        async with fetching:
            if url not in certificates:
                async with httpx.AsyncClient(timeout=10) as client:
                    response = await client.get(url)
                    response.raise_for_status()
                if len(certificates) >= 16:  # Amazon rotates them now and then; keep the newest
                    certificates.pop(next(iter(certificates)))
                certificates[url] = response.content
        return certificates[url]

    async def ses(request: Request) -> Response:
        body = await _body(request, limit)
        try:
            message = json.loads(body)
            certificate_url = message["SigningCertURL"]
        except (ValueError, KeyError, TypeError):
            return PlainTextResponse("not an SNS message", status_code=401)
        if not (pinned_certificate or sns_certificate_url_is_amazons(certificate_url)):
            return PlainTextResponse("certificate not from Amazon SNS", status_code=403)
        try:
            certificate = pinned_certificate or await sns_certificate(certificate_url)
        except httpx.HTTPError:  # SNS tries again later: nothing is lost
            return PlainTextResponse("cannot fetch the signing certificate", status_code=503)
        if not verify_sns(message, certificate):
            return PlainTextResponse("signature does not verify", status_code=403)
        await writers["ses"].land([body])  # confirmations too: ingest shows their SubscribeURL
        return PlainTextResponse("ok")

    secret_value = config.tracking_secret.get_secret_value() if config.tracking_secret else None
    secret = tracking_secret(secret_value, Path(config.db).parent)

    async def track(request: Request, event: str, token: Token, scanner: bool = False) -> None:
        agent = request.headers.get("user-agent")
        record = {
            "sendout_event": event,
            "id": uuid.uuid4().hex,
            "sendout_message_id": token.message_id,
            "at": received_at(),
            "url": token.url or None,
            "user_agent": agent,
            # a HEAD request checks a URL without reading it: scanners do that
            "is_machine_open": scanner or request.method == "HEAD" or is_machine(agent),
        }
        await writers["tracking"].land([json.dumps(record).encode()])

    def token_of(request: Request) -> Token | None:
        return read_token(secret, request.path_params["token"])

    async def opened(request: Request) -> Response:
        token = token_of(request)
        if token is None or token.link != 0:
            return PlainTextResponse("not found", status_code=404)
        await track(request, "opened", token)
        return Response(
            TRANSPARENT_GIF,
            media_type="image/gif",
            headers={"Cache-Control": "no-store, max-age=0"},
        )

    async def clicked(request: Request) -> Response:
        token = token_of(request)
        if token is None or token.link == 0 or not token.url.startswith(("http://", "https://")):
            return PlainTextResponse("not found", status_code=404)
        scanner = is_scanner_click(token, time.time(), config.scanner_click_seconds)
        await track(request, "clicked", token, scanner)
        return RedirectResponse(token.url, status_code=302)

    async def unsubscribe(request: Request) -> Response:
        token = token_of(request)
        if token is None or token.link != 0:
            return PlainTextResponse("not found", status_code=404)
        if request.method != "POST":  # a page first: link scanners must not unsubscribe anyone
            return HTMLResponse(
                "<!doctype html><title>Unsubscribe</title><form method=post>"
                "<p>Stop receiving these emails?</p><button>Unsubscribe</button></form>"
            )
        await track(request, "unsubscribed", token)  # RFC 8058 one-click, or the page's button
        return HTMLResponse(
            "<!doctype html><title>Unsubscribed</title>"
            "<p>You are unsubscribed. You will not get these emails again.</p>"
        )

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def hand_over_old_files() -> None:
        while True:
            await asyncio.sleep(HAND_OVER_CHECK_SECONDS)
            for writer in writers.values():
                if writer.handle is None:
                    continue
                try:
                    await asyncio.to_thread(writer.hand_over_if_due)
                except OSError as error:  # try again in a second; requests still land
                    log.error("cannot hand %s to ingest: %s", writer.path, error)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        for writer in writers.values():  # what a crash left behind was answered 2xx: ingest it
            writer.hand_over_leftovers()
        handing_over = asyncio.create_task(hand_over_old_files())
        yield
        handing_over.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await handing_over
        for writer in writers.values():  # hand the open files to ingest
            writer.close()
        seen.close()
        ownership.release()  # last: the files are handed over

    app = Starlette(
        routes=[
            Route("/webhooks/sendgrid", sendgrid, methods=["POST"]),
            Route("/webhooks/mailgun", mailgun, methods=["POST"]),
            Route("/webhooks/postmark", postmark, methods=["POST"]),
            Route("/webhooks/twilio/status", twilio, methods=["POST"]),
            Route("/webhooks/twilio/inbound", twilio, methods=["POST"]),
            Route("/webhooks/ses", ses, methods=["POST"]),
            Route("/t/o/{token}", opened),
            Route("/t/c/{token}", clicked),
            Route("/t/u/{token}", unsubscribe, methods=["GET", "POST"]),
            Route("/health", health),
        ],
        lifespan=lifespan,
    )
    app.add_exception_handler(
        TooLarge, lambda request, exc: PlainTextResponse("body too large", status_code=413)
    )
    # a client gone before its body came in (or closed for being too slow): no one to answer,
    # and nothing to log for each of a slowloris's connections
    app.add_exception_handler(
        ClientDisconnect, lambda request, exc: PlainTextResponse("gone", status_code=400)
    )
    return app
