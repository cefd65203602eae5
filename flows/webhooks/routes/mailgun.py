"""Mailgun's webhooks: HMAC of timestamp and token; a token is accepted once (kept on disk)."""

import asyncio

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from flows.webhooks.service import Service, json_body
from flows.webhooks.signatures import SeenTokens, verify_mailgun


def routes(service: Service) -> list[Route]:
    key = service.config.mailgun_signing_key
    seen_tokens = SeenTokens(service.seen)

    async def event(request: Request) -> Response:
        body = await service.body(request)
        try:
            signed = json_body(body)["signature"]
            stamp, token, signature = signed["timestamp"], signed["token"], signed["signature"]
        except (ValueError, KeyError, TypeError):
            return PlainTextResponse("no signature", status_code=401)
        verified = key and await asyncio.to_thread(  # a first use is remembered on disk
            verify_mailgun,
            key.get_secret_value(),
            str(stamp),
            str(token),
            str(signature),
            seen_tokens,
        )
        if not verified:
            return PlainTextResponse("signature does not verify", status_code=403)
        await service.land("mailgun", [body])
        return PlainTextResponse("ok")

    return [Route("/webhooks/mailgun", event, methods=["POST"])]
