"""Every way providers authenticate what they push, with real cryptography: valid, tampered,
wrong key, stale and replayed requests."""

import base64
import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from flows.webhooks.signatures import (
    SeenTokens,
    sns_certificate_url_is_amazons,
    verify_basic,
    verify_mailgun,
    verify_sendgrid,
    verify_sns,
    verify_twilio,
)
from tests.sns import signed_sns

# Twilio's published example (its request-validation documentation and SDK tests)
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}


def test_twilios_published_example_verifies():
    assert verify_twilio("12345", TWILIO_URL, TWILIO_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


@pytest.mark.parametrize(
    ("token", "url", "params"),
    [
        ("54321", TWILIO_URL, TWILIO_PARAMS),
        ("12345", TWILIO_URL.replace("bar=2", "bar=3"), TWILIO_PARAMS),
        ("12345", TWILIO_URL, {**TWILIO_PARAMS, "Digits": "9999"}),
    ],
    ids=["wrong token", "another URL", "tampered parameter"],
)
def test_a_twilio_request_that_was_changed_is_refused(token, url, params):
    assert not verify_twilio(token, url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def mailgun_signature(key: str, timestamp: str, token: str) -> str:
    return hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


def test_mailgun_signatures_are_checked_for_key_age_and_replay():
    now = 1_800_000_000.0
    stamp, token = str(int(now) - 10), "a1b2c3"
    good = mailgun_signature("key-1", stamp, token)
    seen = SeenTokens()

    assert verify_mailgun("key-1", stamp, token, good, seen, now=now)
    assert not verify_mailgun("key-1", stamp, token, good, seen, now=now)  # replayed
    assert not verify_mailgun(
        "key-2", stamp, "fresh", mailgun_signature("key-1", stamp, "fresh"), SeenTokens(), now=now
    )  # wrong key
    old = str(int(now) - 3600)
    assert not verify_mailgun(
        "key-1", old, "t2", mailgun_signature("key-1", old, "t2"), SeenTokens(), now=now
    )  # stale
    assert not verify_mailgun("key-1", stamp, "t3", "0" * 64, SeenTokens(), now=now)  # tampered
    assert not verify_mailgun("key-1", "yesterday", "t4", good, SeenTokens(), now=now)


def test_mailgun_tokens_are_remembered_only_while_they_could_still_pass():
    seen = SeenTokens(max_age=300)
    start = 1_800_000_000.0

    for second in range(0, 3600, 2):  # an hour of webhooks, one every two seconds
        stamp, token = str(int(start) + second), f"token-{second}"
        signature = mailgun_signature("key-1", stamp, token)
        assert verify_mailgun("key-1", stamp, token, signature, seen, now=start + second)

    assert len(seen) <= 151  # the last five minutes' worth, not the whole hour
    last = str(int(start) + 3598)
    replay = mailgun_signature("key-1", last, "token-3598")
    assert not verify_mailgun("key-1", last, "token-3598", replay, seen, now=start + 3600)
    first = mailgun_signature("key-1", str(int(start)), "token-0")  # forgotten, and stale
    assert not verify_mailgun("key-1", str(int(start)), "token-0", first, seen, now=start + 3600)


def test_sendgrid_signed_events_verify_and_tampered_ones_do_not():
    private = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    other = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    body, stamp, now = b'[{"event":"open","email":"ada@example.com"}]', "1800000000", 1.8e9

    def signed(stamp: str) -> str:
        return base64.b64encode(
            private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        ).decode()

    signature = signed(stamp)
    a_day_later, two_days_later = now + 24 * 3600, now + 48 * 3600

    assert verify_sendgrid(public, signature, stamp, body, now=now)
    assert verify_sendgrid(public, signature, stamp, body, now=a_day_later)  # SendGrid's retry
    assert not verify_sendgrid(public, signature, stamp, body, now=two_days_later)  # stale
    assert not verify_sendgrid(public, signed("1800001000"), "1800001000", body, now=now)  # future
    assert not verify_sendgrid(public, signature, stamp, body.replace(b"open", b"click"), now=now)
    assert not verify_sendgrid(public, signature, "1800000001", body, now=now)
    assert not verify_sendgrid(base64.b64encode(other).decode(), signature, stamp, body, now=now)
    assert not verify_sendgrid(public, "not base64!", stamp, body, now=now)
    assert not verify_sendgrid("not a key", signature, stamp, body, now=now)
    assert not verify_sendgrid(public, signed("soon"), "soon", body, now=now)


def test_postmark_basic_credentials():
    good = "Basic " + base64.b64encode(b"postmark:s3cret").decode()

    assert verify_basic(good, "postmark", "s3cret")
    assert not verify_basic(good, "postmark", "other")
    assert not verify_basic(None, "postmark", "s3cret")
    assert not verify_basic("Basic %%%", "postmark", "s3cret")
    assert not verify_basic("Bearer abc", "postmark", "s3cret")


@pytest.mark.parametrize("version", ["1", "2"])
def test_sns_messages_verify_with_either_signature_version(sns_signer, version):
    key, certificate = sns_signer
    message = signed_sns(key, version)

    assert verify_sns(message, certificate)
    assert not verify_sns({**message, "Message": '{"eventType":"Bounce"}'}, certificate)
    assert not verify_sns({**message, "SignatureVersion": "3"}, certificate)


def test_an_sns_message_older_than_snss_retries_is_refused(sns_signer):
    key, certificate = sns_signer
    message = signed_sns(key, "2", Timestamp="2026-11-27T10:00:00.000Z")
    published = 1_795_773_600.0  # 2026-11-27T10:00:00Z

    assert verify_sns(message, certificate, now=published + 3500)  # SNS still retrying
    assert not verify_sns(message, certificate, now=published + 2 * 3600)  # stale
    assert not verify_sns(message, certificate, now=published - 600)  # from the future
    undated = signed_sns(key, "2", Timestamp="sometime")
    assert not verify_sns(undated, certificate, now=published)
    zoneless = signed_sns(key, "2", Timestamp="2026-11-27T10:00:00.000")
    assert not verify_sns(zoneless, certificate, now=published)


def test_an_sns_subscription_confirmation_is_signed_over_its_own_fields(sns_signer):
    key, certificate = sns_signer
    message = signed_sns(
        key,
        "2",
        Type="SubscriptionConfirmation",
        Token="tok",
        SubscribeURL="https://sns.eu-west-1.amazonaws.com/?Action=Confirm",
    )

    assert verify_sns(message, certificate)
    assert not verify_sns({**message, "SubscribeURL": "https://evil.example/"}, certificate)


@pytest.mark.parametrize(
    ("url", "trusted"),
    [
        ("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem", True),
        ("http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem", False),
        ("https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem", False),
        ("https://evil.example/sns.eu-west-1.amazonaws.com/cert.pem", False),
        ("https://sns.eu-west-1.amazonaws.com/cert.txt", False),
        ("https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem", True),
        ("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem?n=1", False),
        ("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem#n", False),
        ("https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-abc.pem", False),
        ("https://sns.anything.amazonaws.com/SimpleNotificationService-abc.pem", False),
    ],
)
def test_only_amazons_sns_hosts_may_serve_the_signing_certificate(url, trusted):
    assert sns_certificate_url_is_amazons(url) is trusted
