"""What every endpoint of the webhook service shares: its settings, its landing writers (one
per provider, appended durably before a 2xx), its on-disk memory of what it has acted on, and
reading a body within the size limit and its JSON."""

import json
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request

from flows.settings import Settings
from flows.webhooks.landing import LandingWriter
from flows.webhooks.state import SeenStore

LANDINGS = ("sendgrid", "mailgun", "postmark", "twilio", "ses", "tracking")


class TooLarge(Exception):
    """A body over the service's size limit: answered 413, nothing landed."""


def json_body(body: bytes, keys_once: bool = True) -> object:
    """The body's JSON value, or ValueError when it is none a provider sends: not JSON, nested
    deeper than Python parses, or (`keys_once`) an object with a key twice. Where a signature
    is read from the body, a repeated key would let a signed message carry another: Python
    keeps its last value, which is what is verified, and DuckDB, reading the landed body, its
    first."""
    try:
        return json.loads(body, object_pairs_hook=_once_each if keys_once else None)
    except RecursionError as error:
        raise ValueError("JSON nested too deep") from error


def _once_each(pairs: list[tuple[str, object]]) -> dict[str, object]:
    found = dict(pairs)
    if len(found) < len(pairs):
        raise ValueError("a key appears twice in one JSON object")
    return found


@dataclass
class Service:
    config: Settings
    folder: Path
    writers: dict[str, LandingWriter]
    seen: SeenStore

    @classmethod
    def open(cls, config: Settings, folder: Path, seen: SeenStore) -> "Service":
        writers = {
            name: LandingWriter(
                folder,
                name,
                config.landing_file_max_bytes,
                config.landing_file_max_seconds,
                config.landing_file_quiet_seconds,
            )
            for name in LANDINGS
        }
        return cls(config, folder, writers, seen)

    async def body(self, request: Request) -> bytes:
        """The request's body, or TooLarge as soon as it is over the limit."""
        limit = self.config.webhook_max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise TooLarge
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise TooLarge
        return body

    async def land(self, name: str, lines: list[bytes]) -> None:
        """Append the lines to `name`'s landing file, durably (then the caller answers 2xx)."""
        await self.writers[name].land(lines)
