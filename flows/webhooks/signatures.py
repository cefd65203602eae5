"""Authenticating what providers push to us, one function per scheme, with real cryptography.

Each function answers True only for an authentic request; comparisons are constant-time. A
request that fails gets 401/403 and nothing is written (the service's job).
"""

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from datetime import datetime
from functools import cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from flows.webhooks.state import SeenStore

# How old a signed request may be. Older ones are refused as replays, so each limit is the
# longest a provider keeps retrying one delivery; a replay inside it lands again, and ingest
# stores its events once (by event id).
MAILGUN_MAX_AGE = 300  # Mailgun signs every attempt anew
SENDGRID_MAX_AGE = 25 * 3600  # SendGrid retries a failed POST for up to 24 hours
SNS_MAX_AGE = 3600 + 300  # SNS retries an HTTP/S delivery for at most 3,600 s after publishing
CLOCK_SKEW = 60  # seconds a provider's clock may run ahead of ours


def _is_fresh(signed_at: float, now: float | None, max_age: float) -> bool:
    age = (now if now is not None else time.time()) - signed_at
    return -CLOCK_SKEW <= age <= max_age


class SeenTokens:
    """The Mailgun tokens accepted lately, kept in a SeenStore (on disk under the landing folder,
    so a restart does not forget them). A token is forgotten once its timestamp is too old to
    pass anyway, so the store stays bounded however long the service runs."""

    KIND = "mailgun_token"

    def __init__(self, store: SeenStore | None = None, max_age: float = MAILGUN_MAX_AGE):
        self.store = store or SeenStore()
        self.max_age = max_age

    def first_use(self, token: str, signed_at: float, now: float) -> bool:
        return self.store.first_sighting(self.KIND, token, signed_at, now - self.max_age)

    def __len__(self) -> int:
        return self.store.count(self.KIND)


def verify_mailgun(
    signing_key: str,
    timestamp: str,
    token: str,
    signature: str,
    seen: SeenTokens,
    now: float | None = None,
) -> bool:
    """Mailgun: HMAC-SHA256 of timestamp + token with the signing key; stale timestamps and
    replayed tokens are refused. Writes to `seen`'s store: call it off the event loop."""
    now = now if now is not None else time.time()
    try:
        signed_at = float(timestamp)
    except ValueError:
        return False
    expected = hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    return (
        hmac.compare_digest(expected.hexdigest(), signature)
        and _is_fresh(signed_at, now, seen.max_age)
        and seen.first_use(token, signed_at, now)
    )


@cache
def _public_key(der_base64: str) -> PublicKeyTypes:
    """A configured public key, parsed once (not on every request)."""
    return serialization.load_der_public_key(base64.b64decode(der_base64))


def verify_sendgrid(
    public_key: str,
    signature: str,
    timestamp: str,
    body: bytes,
    now: float | None = None,
    max_age: float = SENDGRID_MAX_AGE,
) -> bool:
    """SendGrid's signed Event Webhook: ECDSA P-256 with SHA-256 over timestamp + raw body; the
    key is the base64 DER public key from SendGrid's settings. Stale timestamps are refused."""
    try:
        key = _public_key(public_key)
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        key.verify(
            base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
        return _is_fresh(float(timestamp), now, max_age)
    except (InvalidSignature, ValueError, TypeError):
        return False


def verify_twilio(auth_token: str, url: str, params: Mapping[str, str], signature: str) -> bool:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 of the public URL followed by every form
    parameter (name then value) sorted by name."""
    payload = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    expected = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(base64.b64encode(expected).decode(), signature)


def verify_basic(authorization: str | None, user: str, password: str) -> bool:
    """HTTP Basic credentials (Postmark signs nothing; its webhooks carry user and password)."""
    if not authorization or not authorization.startswith("Basic "):
        return False
    try:
        given = base64.b64decode(authorization[6:], validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return False
    return hmac.compare_digest(given, f"{user}:{password}")


SNS_NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SNS_SUBSCRIPTION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)


SNS_CERTIFICATE_URL = re.compile(
    r"https://sns\.[a-z]{2}(-[a-z]+)+-\d\.amazonaws\.com/[\w./-]+\.pem"
)


def sns_certificate_url_is_amazons(url: str) -> bool:
    """The signing certificate must come from sns.<region>.amazonaws.com over HTTPS, as a plain
    path (no port, query or fragment to make one certificate look like many)."""
    return SNS_CERTIFICATE_URL.fullmatch(url) is not None


def sns_string_to_sign(message: Mapping[str, str]) -> bytes:
    """What SNS signs: each present field's name and value, each on its own line, in order."""
    fields = (
        SNS_NOTIFICATION_FIELDS
        if message.get("Type") == "Notification"
        else (SNS_SUBSCRIPTION_FIELDS)
    )
    return "".join(f"{f}\n{message[f]}\n" for f in fields if f in message).encode()


def verify_sns(
    message: Mapping[str, str],
    certificate_pem: bytes,
    now: float | None = None,
    max_age: float = SNS_MAX_AGE,
) -> bool:
    """An SNS message signed with SignatureVersion 1 (SHA1) or 2 (SHA256) by the certificate
    (fetched from the SigningCertURL after `sns_certificate_url_is_amazons`, or pinned), and
    published no longer ago than SNS keeps retrying."""
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(message.get("SignatureVersion"))
    if algorithm is None or "Signature" not in message:
        return False
    try:
        key = x509.load_pem_x509_certificate(certificate_pem).public_key()
        key.verify(
            base64.b64decode(message["Signature"]),
            sns_string_to_sign(message),
            padding.PKCS1v15(),
            algorithm,
        )
        published = datetime.fromisoformat(message["Timestamp"])
        if published.tzinfo is None:  # SNS always says UTC; a time without a zone is not SNS's
            return False
    except (InvalidSignature, ValueError, TypeError, AttributeError, KeyError):
        return False
    return _is_fresh(published.timestamp(), now, max_age)
