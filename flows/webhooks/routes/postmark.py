"""Postmark's webhooks: HTTP basic authentication with the user and password we gave it."""

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from flows.webhooks.service import Service
from flows.webhooks.signatures import verify_basic


def routes(service: Service) -> list[Route]:
    user, password = service.config.postmark_user, service.config.postmark_password

    async def event(request: Request) -> Response:
        authorization = request.headers.get("Authorization")
        if not (
            user and password and verify_basic(authorization, user, password.get_secret_value())
        ):
            return PlainTextResponse(
                "credentials needed",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="sendout"'},
            )
        await service.land("postmark", [await service.body(request)])
        return PlainTextResponse("ok")

    return [Route("/webhooks/postmark", event, methods=["POST"])]
