"""Open and click tracking for mail sent through our SMTP sender, and one-click unsubscribe: the
tokens and link rewriting that the senders write into messages and the webhook service reads
back (a home both import, so that neither imports the other).

A token carries (message id, link index, URL, time sent) and an HMAC, so nobody can forge an
event or use the service as an open redirect: an unknown or tampered token gets 404 and no
redirect. Fetches by machines are flagged: proxies and scanners by their user agent, link
scanners also by clicking within seconds of sending. What the service sees is landed as
Sendout's own records (`sendout_event`), ingested as provider `smtp`.
"""

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from html import unescape
from pathlib import Path

MACHINE_SIGNATURES = re.compile(
    r"GoogleImageProxy|YahooMailProxy|Yahoo! Slurp|bot|crawler|spider|scanner|Barracuda|"
    r"Mimecast|Proofpoint|ZScaler|Symantec|Trend Micro|Microsoft Office Protocol Discovery|"
    r"python-requests|curl/|Go-http-client",
    re.IGNORECASE,
)
# Apple Mail Privacy Protection fetches every image through a proxy that says only this
APPLE_PRIVACY_PROXY = "Mozilla/5.0"
HREF = re.compile(r"""(href\s*=\s*)(["'])(https?://[^"']+)\2""", re.IGNORECASE)
TRANSPARENT_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def tracking_secret(configured: str | None, data_folder: Path) -> bytes:
    """The signing secret: from configuration, else one made once and kept under data/."""
    if configured:
        return configured.encode()
    path = data_folder / "tracking.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Token:
    """What a tracking URL says, signed: which message, which of its links, and when it was sent."""

    message_id: str
    link: int = 0  # 0: the open pixel and the unsubscribe link; 1, 2, ...: the message's links
    url: str = ""
    sent_at: int = 0  # seconds since the epoch; 0 in mail sent before tokens carried it


def make_token(secret: bytes, token: Token) -> str:
    """The signed text of a token, safe in a URL path."""
    payload = json.dumps(
        [token.message_id, token.link, token.url, token.sent_at], separators=(",", ":")
    ).encode()
    signature = hmac.new(secret, payload, hashlib.sha256).digest()[:16]
    return f"{_b64(payload)}.{_b64(signature)}"


def read_token(secret: bytes, text: str) -> Token | None:
    """The token in an authentic tracking URL, else None."""
    try:
        payload_text, signature_text = text.split(".")
        payload = _unb64(payload_text)
        expected = hmac.new(secret, payload, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(expected, _unb64(signature_text)):
            return None
        # mail sent before tokens carried the send time has three fields: its links still work
        message_id, link, url, sent_at = [*json.loads(payload), 0][:4]
    except (ValueError, TypeError):
        return None
    fields = ((message_id, str), (link, int), (url, str), (sent_at, int))
    if not all(isinstance(value, kind) for value, kind in fields):
        return None
    return Token(message_id, link, url, sent_at)


def is_machine(user_agent: str | None) -> bool:
    """A fetch by a proxy or scanner rather than a person, by its user agent."""
    agent = (user_agent or "").strip()
    return agent == APPLE_PRIVACY_PROXY or not agent or bool(MACHINE_SIGNATURES.search(agent))


def is_scanner_click(token: Token, now: float, scanner_seconds: float) -> bool:
    """A click this soon after sending is a link scanner checking the mail on delivery: a
    person needs longer to receive the message, open it and click."""
    return now - token.sent_at < scanner_seconds


def add_tracking(html: str, secret: bytes, base_url: str, message_id: str, sent_at: int) -> str:
    """Links rewritten through /t/c/ and a 1x1 pixel through /t/o/ appended."""
    count = 0

    def rewrite(match: re.Match) -> str:
        nonlocal count
        count += 1
        url = unescape(match.group(3))  # the address the browser would follow
        token = make_token(secret, Token(message_id, count, url, sent_at))
        return f"{match.group(1)}{match.group(2)}{base_url}/t/c/{token}{match.group(2)}"

    tracked = HREF.sub(rewrite, html)
    pixel_token = make_token(secret, Token(message_id, sent_at=sent_at))
    pixel = (
        f'<img src="{base_url}/t/o/{pixel_token}" width="1" height="1" alt="" style="display:none">'
    )
    return tracked + pixel


def unsubscribe_url(secret: bytes, base_url: str, message_id: str, sent_at: int) -> str:
    return f"{base_url}/t/u/{make_token(secret, Token(message_id, sent_at=sent_at))}"
