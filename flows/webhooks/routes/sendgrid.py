"""SendGrid's Event Webhook: a JSON array, signed with ECDSA (the key SendGrid shows)."""

import json

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from flows.webhooks.service import Service, json_body
from flows.webhooks.signatures import verify_sendgrid


def routes(service: Service) -> list[Route]:
    key = service.config.sendgrid_public_key

    async def events(request: Request) -> Response:
        body = await service.body(request)
        signature = request.headers.get("X-Twilio-Email-Event-Webhook-Signature", "")
        stamp = request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", "")
        if not (key and verify_sendgrid(key, signature, stamp, body)):
            return PlainTextResponse("signature does not verify", status_code=403)
        await service.land("sendgrid", _lines(body))
        return PlainTextResponse("ok")

    return [Route("/webhooks/sendgrid", events, methods=["POST"])]


def _lines(body: bytes) -> list[bytes]:
    """One line per event; a body that is not an array is landed as it is (for quarantine)."""
    try:
        events = json_body(body, keys_once=False)  # signed as bytes; each event re-encoded
    except ValueError:
        return [body]
    return [json.dumps(e).encode() for e in events] if isinstance(events, list) else [body]
