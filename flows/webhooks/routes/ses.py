"""Amazon SES through SNS: each message signed with a certificate Amazon serves (fetched once
per URL, or pinned by configuration); 503 when it cannot be fetched, so SNS tries again."""

import asyncio
from pathlib import Path

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from flows.webhooks.service import Service, json_body
from flows.webhooks.signatures import sns_certificate_url_is_amazons, verify_sns

KEPT_CERTIFICATES = 16  # Amazon rotates them now and then; the newest are kept


class Certificates:
    """Amazon's signing certificates by URL, fetched once; requests arriving together share
    one fetch."""

    def __init__(self) -> None:
        self.known: dict[str, bytes] = {}
        self.fetching = asyncio.Lock()

    async def get(self, url: str) -> bytes:
        async with self.fetching:
            if url not in self.known:
                async with httpx.AsyncClient(timeout=10) as client:
                    response = await client.get(url)
                    response.raise_for_status()
                if len(self.known) >= KEPT_CERTIFICATES:
                    self.known.pop(next(iter(self.known)))
                self.known[url] = response.content
        return self.known[url]


def routes(service: Service) -> list[Route]:
    pinned_file = service.config.sns_certificate_file
    pinned = Path(pinned_file).read_bytes() if pinned_file else None
    certificates = Certificates()

    async def notification(request: Request) -> Response:
        body = await service.body(request)
        try:
            message = json_body(body)
            certificate_url = message["SigningCertURL"]
        except (ValueError, KeyError, TypeError):
            return PlainTextResponse("not an SNS message", status_code=401)
        if not (pinned or sns_certificate_url_is_amazons(certificate_url)):
            return PlainTextResponse("certificate not from Amazon SNS", status_code=403)
        try:
            certificate = pinned or await certificates.get(certificate_url)
        except httpx.HTTPError:  # SNS tries again later: nothing is lost
            return PlainTextResponse("cannot fetch the signing certificate", status_code=503)
        if not verify_sns(message, certificate):
            return PlainTextResponse("signature does not verify", status_code=403)
        await service.land("ses", [body])  # confirmations too: ingest shows their SubscribeURL
        return PlainTextResponse("ok")

    return [Route("/webhooks/ses", notification, methods=["POST"])]
