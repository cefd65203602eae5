"""Twilio's status callbacks and inbound SMS: signed with the auth token over the public URL.
An inbound SMS may be forwarded and answered (flows/inbound_sms.py), once per MessageSid."""

import asyncio
import json
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from flows.inbound_sms import handle_inbound
from flows.webhooks.service import Service
from flows.webhooks.signatures import verify_twilio
from warehouse.own_records import received_callback


def routes(service: Service) -> list[Route]:
    config = service.config

    async def callback(request: Request) -> Response:
        body = await service.body(request)
        form = dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
        base = (config.public_base_url or str(request.base_url)).rstrip("/")
        url = base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        token = config.twilio_auth_token
        signature = request.headers.get("X-Twilio-Signature", "")
        if not (token and verify_twilio(token.get_secret_value(), url, form, signature)):
            return PlainTextResponse("signature does not verify", status_code=403)
        # our message id rides in the callback URL's query; the time is when we received it
        record = received_callback({**form, **dict(request.query_params)})
        if not request.url.path.endswith("/inbound"):
            await service.land("twilio", [json.dumps(record).encode()])
            return PlainTextResponse("ok")
        # it may call Twilio; a replayed MessageSid is landed again but acted on no more
        done, answer = await asyncio.to_thread(handle_inbound, config, service.seen, form)
        await service.land("twilio", [json.dumps(line).encode() for line in [record, *done]])
        return Response(answer, media_type="text/xml")

    return [
        Route("/webhooks/twilio/status", callback, methods=["POST"]),
        Route("/webhooks/twilio/inbound", callback, methods=["POST"]),
    ]
