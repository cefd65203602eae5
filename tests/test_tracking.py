"""Open and click tracking and one-click unsubscribe: signed tokens, no open redirect, machine
opens flagged, and what the service sees ends up in statuses and the Unsubscribes list."""

from pathlib import Path

import httpx
import pytest

from flows.senders.smtp import SmtpSender
from flows.webhooks.tracking import add_tracking, is_machine, make_token, read_token
from tests.smtp_sink import free_port, start_sink
from tests.test_webhook_service import Service
from tests.warehouse_builders import add_message, add_sendout, run_refresh
from warehouse.db import connect
from warehouse.dispatch import Outgoing
from warehouse.ingest import ingest_paths
from warehouse.settings import Settings

SECRET = "tracking-secret"


def test_a_token_says_which_message_and_link_and_a_changed_one_says_nothing():
    token = make_token(SECRET.encode(), "m1", 2, "https://example.org/news")

    assert read_token(SECRET.encode(), token) == ("m1", 2, "https://example.org/news")
    assert read_token(b"another secret", token) is None
    payload, signature = token.split(".")
    forged = make_token(b"attacker", "m1", 2, "https://evil.example").split(".")[0]
    assert read_token(SECRET.encode(), f"{forged}.{signature}") is None
    assert read_token(SECRET.encode(), "garbage") is None
    assert read_token(SECRET.encode(), f"{payload}.") is None


@pytest.mark.parametrize(
    ("agent", "machine"),
    [
        ("Mozilla/5.0", True),  # Apple Mail Privacy Protection's proxy
        ("Mozilla/5.0 (Windows NT 5.1) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", True),
        ("Barracuda Sentinel (EE)", True),
        (None, True),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15", False),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0", False),
    ],
)
def test_machine_opens_are_told_apart_by_their_user_agent(agent, machine):
    assert is_machine(agent) is machine


def test_links_are_rewritten_and_a_pixel_added():
    html = "<p><a href=\"https://example.org/a\">A</a> <a href='http://example.org/b'>B</a></p>"

    tracked = add_tracking(html, SECRET.encode(), "https://hooks.example.org", "m1")

    assert tracked.count("https://hooks.example.org/t/c/") == 2
    assert "https://example.org/a" not in tracked
    assert '<img src="https://hooks.example.org/t/o/' in tracked


@pytest.fixture
def service(tmp_path: Path, db_path: Path):
    config = Settings(
        db=db_path, landing=tmp_path / "landing", webhook_port=free_port(), tracking_secret=SECRET
    )
    running = Service(config)
    yield running, config
    running.stop()


def test_open_click_and_one_click_unsubscribe_land_and_reach_status_and_list(service, db_path):
    running, config = service
    add_sendout(db_path, "s1")
    add_message(db_path, "m1", "s1", "ada@example.com")
    secret = SECRET.encode()
    human = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)"}

    pixel = httpx.get(f"{running.url}/t/o/{make_token(secret, 'm1')}", headers=human)
    by_proxy = httpx.get(
        f"{running.url}/t/o/{make_token(secret, 'm1')}", headers={"User-Agent": "Mozilla/5.0"}
    )
    click = httpx.get(
        f"{running.url}/t/c/{make_token(secret, 'm1', 1, 'https://example.org/x')}", headers=human
    )
    forged = httpx.get(f"{running.url}/t/c/{make_token(b'x', 'm1', 1, 'https://evil.example')}")
    page = httpx.get(f"{running.url}/t/u/{make_token(secret, 'm1')}")
    one_click = httpx.post(
        f"{running.url}/t/u/{make_token(secret, 'm1')}", data={"List-Unsubscribe": "One-Click"}
    )
    running.stop()
    summary = ingest_paths(db_path, [Path(config.landing)])
    run_refresh(db_path)

    assert (pixel.status_code, pixel.headers["content-type"]) == (200, "image/gif")
    assert by_proxy.status_code == 200
    assert (click.status_code, click.headers["location"]) == (302, "https://example.org/x")
    assert forged.status_code == 404 and "location" not in forged.headers
    assert page.status_code == 200 and "<form method=post>" in page.text
    assert one_click.status_code == 200
    assert (summary.events_new, summary.quarantined) == (4, 0)  # the page view is no event
    with connect(db_path, read_only=True) as con:
        [(status, opens, machine_only, unsubscribed)] = con.sql(
            "SELECT status, open_count, is_machine_open_only, has_unsubscribed FROM message_status"
        ).fetchall()
        listed = con.sql("SELECT reason, scope FROM unsubscribes").fetchall()
    assert (status, opens, machine_only, unsubscribed) == ("Clicked", 2, False, True)
    assert listed == [("unsubscribed", "marketing")]


def test_marketing_mail_from_the_smtp_sender_carries_tracking_and_one_click_unsubscribe(tmp_path):
    received, controller = start_sink()
    config = Settings(
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        smtp_connections=1,
        tracking_base_url="https://hooks.example.org",
        tracking_secret=SECRET,
        db=tmp_path / "w.duckdb",
    )
    message = Outgoing(
        message_id="m1",
        sendout_id="s1",
        channel="email",
        recipient="ada@example.com",
        communication_type="marketing",
        sender=None,
        subject="News",
        html_body='<a href="https://example.org/news">News</a>',
        text_body="News",
        sms_text=None,
        is_possible_duplicate=False,
    )
    reminder = Outgoing(
        **{**vars(message), "message_id": "m2", "communication_type": "non_marketing"}
    )
    try:
        smtp = SmtpSender(config)
        outcomes = smtp.send([message, reminder])
        smtp.close()
    finally:
        controller.stop()

    assert [o.event_type for o in outcomes] == ["sent", "sent"]
    tracked, plain = received.messages
    html = tracked.get_payload()[1].get_payload(decode=True).decode()
    assert "https://hooks.example.org/t/c/" in html and "/t/o/" in html
    assert tracked["List-Unsubscribe"].startswith("<https://hooks.example.org/t/u/")
    assert tracked["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert plain["List-Unsubscribe"] is None  # non-marketing mail is not tracked
