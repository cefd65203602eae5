"""Amazon SNS asks for each subscription to be confirmed: the webhook service lands the request,
ingest keeps it, and the CLI and dashboard show the link until the subscription works or the
link expires."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from flows.cli import cli
from flows.settings import Settings, settings
from tests.events import ses, write_ndjson
from tests.smtp_sink import free_port
from tests.sns import signed_sns
from tests.test_webhook_service import Service
from warehouse.ingest import ingest_paths

TOPIC = "arn:aws:sns:eu-west-1:123456789012:sendout-events"
CONFIRM_URL = (
    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC}&Token=2336412f37fb687f5d51e6e2425"
)
AMAZON_CERTIFICATE = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
def deliver(tmp_path: Path, db_path: Path, sns_signer):
    """POST signed SNS messages to the running service, then ingest what it landed."""
    key, certificate = sns_signer
    pinned = tmp_path / "sns.pem"
    pinned.write_bytes(certificate)
    config = Settings(
        landing=tmp_path / "landing", webhook_port=free_port(), sns_certificate_file=str(pinned)
    )

    def post(*messages: dict) -> None:
        running = Service(config)
        try:
            for fields in messages:
                signed = signed_sns(key, "1", SigningCertURL=AMAZON_CERTIFICATE, **fields)
                assert httpx.post(f"{running.url}/webhooks/ses", json=signed).status_code == 200
        finally:
            running.stop()
        ingest_paths(db_path, [Path(config.landing)])

    return post


def confirmation(sent: datetime, topic: str = TOPIC) -> dict:
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": f"confirm-{topic}-{sent.timestamp()}",
        "TopicArn": topic,
        "Token": "2336412f37fb687f5d51e6e2425",
        "Message": f"You have chosen to subscribe to the topic {topic}.",
        "SubscribeURL": CONFIRM_URL.replace(TOPIC, topic),
        "Timestamp": iso(sent),
    }


def sns_confirmations(db_path: Path) -> list[dict]:
    result = CliRunner().invoke(cli, ["--db", str(db_path), "sns-confirmations", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_confirmation_request_is_shown_until_a_notification_of_its_topic_arrives(
    deliver, db_path
):
    asked = datetime.now(UTC) - timedelta(hours=1)

    deliver(confirmation(asked))
    waiting = sns_confirmations(db_path)
    plain = CliRunner().invoke(cli, ["--db", str(db_path), "sns-confirmations"])
    delivery = ses("Delivery", at=iso(datetime.now(UTC)))
    deliver({"MessageId": "n-1", "TopicArn": TOPIC, "Message": json.dumps(delivery)})

    assert [(w["topic_arn"], w["subscribe_url"]) for w in waiting] == [(TOPIC, CONFIRM_URL)]
    assert CONFIRM_URL in plain.output
    assert sns_confirmations(db_path) == []


def test_a_notification_from_another_topic_or_published_before_the_request_confirms_nothing(
    deliver, db_path
):
    asked = datetime.now(UTC) - timedelta(minutes=30)
    delivery = json.dumps(ses("Delivery", at=iso(datetime.now(UTC))))

    deliver(
        confirmation(asked),
        {
            "MessageId": "n-old",
            "TopicArn": TOPIC,
            "Message": delivery,
            "Timestamp": iso(asked - timedelta(minutes=10)),
        },  # an old subscription's retry
        {"MessageId": "n-other", "TopicArn": "arn:aws:sns:x:1:other", "Message": delivery},
    )

    assert [w["topic_arn"] for w in sns_confirmations(db_path)] == [TOPIC]


def test_a_link_that_is_not_amazons_is_never_shown(db_path, tmp_path):
    forged = {**confirmation(datetime.now(UTC)), "SubscribeURL": "https://evil.example/?x=1"}
    ingest_paths(db_path, [write_ndjson(tmp_path / "ses.ndjson", [forged])])

    assert sns_confirmations(db_path) == []


def test_only_the_newest_link_of_a_topic_is_shown_and_expired_ones_not_at_all(
    deliver, db_path, tmp_path
):
    now = datetime.now(UTC)
    stale_topic = "arn:aws:sns:eu-west-1:123456789012:long-ago"
    landed_long_ago = write_ndjson(
        tmp_path / "ses-old.ndjson", [confirmation(now - timedelta(days=4), stale_topic)]
    )

    deliver(confirmation(now - timedelta(minutes=50)), confirmation(now - timedelta(minutes=10)))
    ingest_paths(db_path, [landed_long_ago])
    [waiting] = sns_confirmations(db_path)

    assert waiting["topic_arn"] == TOPIC
    requested = datetime.fromisoformat(waiting["requested_at"])
    assert requested == (now - timedelta(minutes=10)).replace(microsecond=0)
    assert datetime.fromisoformat(waiting["expires_at"]) - requested == timedelta(days=3)


def test_the_dashboard_shows_the_link_to_open(deliver, db_path, monkeypatch):
    monkeypatch.setenv("SENDOUT_DB", str(db_path))
    settings.cache_clear()
    deliver(confirmation(datetime.now(UTC) - timedelta(minutes=5)))

    at = AppTest.from_file("../dashboards/app.py", default_timeout=60).run()
    settings.cache_clear()

    assert not at.exception
    [warning] = at.warning
    assert TOPIC in warning.value and f"]({CONFIRM_URL})" in warning.value


def test_without_requests_the_cli_says_so(db_path):
    result = CliRunner().invoke(cli, ["--db", str(db_path), "sns-confirmations"])

    assert result.exit_code == 0
    assert result.output == "No SNS subscription is waiting to be confirmed.\n"
