"""Open and click tracking and one-click unsubscribe: signed tokens, no open redirect, machine
opens and link scanners' clicks flagged, tracking chosen per send-out, and what the service sees
ends up in statuses and the Unsubscribes list."""

import base64
import hashlib
import hmac
import re
import time
from pathlib import Path

import httpx
import pytest

from flows.dispatch import run_dispatch
from flows.senders.smtp import SmtpSender
from flows.settings import Settings
from flows.tracking import Token, add_tracking, is_machine, make_token, read_token
from tests.smtp_sink import free_port, start_sink
from tests.test_webhook_service import Service
from tests.warehouse_builders import (
    add_message,
    add_people,
    add_sendout,
    create_sendout,
    run_refresh,
)
from warehouse.db import connect
from warehouse.dispatch_state import Outgoing
from warehouse.ingest import ingest_paths

SECRET = "tracking-secret"
SENT_LONG_AGO = int(time.time()) - 3600
HUMAN = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(message_id: str = "m1", link: int = 0, url: str = "", secret: bytes = b"") -> str:
    return make_token(secret or SECRET.encode(), Token(message_id, link, url, SENT_LONG_AGO))


def test_a_token_says_which_message_and_link_and_a_changed_one_says_nothing():
    news = Token("m1", 2, "https://example.org/news", SENT_LONG_AGO)
    text = make_token(SECRET.encode(), news)

    assert read_token(SECRET.encode(), text) == news
    assert read_token(b"another secret", text) is None
    payload, signature = text.split(".")
    forged = token("m1", 2, "https://evil.example", b"attacker").split(".")[0]
    assert read_token(SECRET.encode(), f"{forged}.{signature}") is None
    assert read_token(SECRET.encode(), "garbage") is None
    assert read_token(SECRET.encode(), f"{payload}.") is None
    assert read_token(SECRET.encode(), f"{text}.{signature}") is None


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


def test_a_token_from_mail_sent_before_tokens_carried_the_send_time_still_works():
    three_fields = b'["m1",1,"https://example.org/news"]'
    signature = hmac.new(SECRET.encode(), three_fields, hashlib.sha256).digest()[:16]
    old = f"{b64(three_fields)}.{b64(signature)}"

    assert read_token(SECRET.encode(), old) == Token("m1", 1, "https://example.org/news", 0)


def test_links_are_rewritten_and_a_pixel_added():
    html = (
        '<p><a href="https://example.org/a?x=1&amp;y=2">A</a> '
        "<a href='http://example.org/b'>B</a></p>"
    )

    tracked = add_tracking(html, SECRET.encode(), "https://hooks.example.org", "m1", SENT_LONG_AGO)
    tokens = re.findall(r"/t/c/([\w.-]+)", tracked)

    assert [read_token(SECRET.encode(), t).url for t in tokens] == [
        "https://example.org/a?x=1&y=2",  # where the browser would have gone
        "http://example.org/b",
    ]
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

    pixel = httpx.get(f"{running.url}/t/o/{token()}", headers=HUMAN)
    by_proxy = httpx.get(f"{running.url}/t/o/{token()}", headers={"User-Agent": "Mozilla/5.0"})
    click = httpx.get(f"{running.url}/t/c/{token('m1', 1, 'https://example.org/x')}", headers=HUMAN)
    forged = httpx.get(f"{running.url}/t/c/{token('m1', 1, 'https://evil.example', b'x')}")
    page = httpx.get(f"{running.url}/t/u/{token()}")
    checked = httpx.head(f"{running.url}/t/u/{token()}")  # a scanner must not unsubscribe
    one_click = httpx.post(f"{running.url}/t/u/{token()}", data={"List-Unsubscribe": "One-Click"})
    running.stop()
    summary = ingest_paths(db_path, [Path(config.landing)])
    run_refresh(db_path)

    assert (pixel.status_code, pixel.headers["content-type"]) == (200, "image/gif")
    assert by_proxy.status_code == 200
    assert (click.status_code, click.headers["location"]) == (302, "https://example.org/x")
    assert forged.status_code == 404 and "location" not in forged.headers
    assert page.status_code == 200 and "<form method=post>" in page.text
    assert checked.status_code == 200
    assert one_click.status_code == 200
    assert (summary.events_new, summary.quarantined) == (4, 0)  # the page view is no event
    with connect(db_path, read_only=True) as con:
        [(status, opens, machine_only, unsubscribed)] = con.sql(
            "SELECT status, open_count, is_machine_open_only, has_unsubscribed FROM message_status"
        ).fetchall()
        listed = con.sql("SELECT reason, scope FROM unsubscribes").fetchall()
    assert (status, opens, machine_only, unsubscribed) == ("Clicked", 2, False, True)
    assert listed == [("unsubscribed", "marketing")]


def test_a_click_within_seconds_of_sending_or_by_head_is_a_link_scanners(service, db_path):
    running, config = service
    add_sendout(db_path, "s1")
    for message_id, address in [("m1", "ada"), ("m2", "bob"), ("m3", "cy")]:
        add_message(db_path, message_id, "s1", f"{address}@example.com")
    just_sent = Token("m1", 1, "https://example.org/x", int(time.time()))
    read_later = Token("m2", 1, "https://example.org/x", SENT_LONG_AGO)
    checked = Token("m3", 1, "https://example.org/x", SENT_LONG_AGO)

    for method, clicked in [("GET", just_sent), ("GET", read_later), ("HEAD", checked)]:
        url = f"{running.url}/t/c/{make_token(SECRET.encode(), clicked)}"
        assert httpx.request(method, url, headers=HUMAN).status_code == 302
    running.stop()
    ingest_paths(db_path, [Path(config.landing)])
    run_refresh(db_path)

    with connect(db_path, read_only=True) as con:
        statuses = con.sql(
            "SELECT message_id, status, click_count, is_machine_open_only FROM message_status "
            "ORDER BY message_id"
        ).fetchall()
    assert statuses == [
        ("m1", "Opened", 0, True),
        ("m2", "Clicked", 1, False),
        ("m3", "Opened", 0, True),
    ]


def test_the_smtp_sender_tracks_the_messages_of_tracked_send_outs_only(tmp_path):
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
        communication_type="non_marketing",
        sender=None,
        subject="News",
        html_body='<a href="https://example.org/news">News</a>',
        text_body="News",
        sms_text=None,
        is_possible_duplicate=False,
        is_tracked=True,
    )
    untracked = Outgoing(
        **{
            **vars(message),
            "message_id": "m2",
            "communication_type": "marketing",
            "is_tracked": False,
        }
    )
    try:
        smtp = SmtpSender(config)
        outcomes = smtp.send([message, untracked])
        smtp.close()
    finally:
        controller.stop()

    assert [o.event_type for o in outcomes] == ["sent", "sent"]
    tracked, plain = received.messages
    html = tracked.get_payload()[1].get_payload(decode=True).decode()
    assert "https://hooks.example.org/t/c/" in html and "/t/o/" in html
    [link] = re.findall(r"/t/c/([\w.-]+)", html)
    assert abs(read_token(SECRET.encode(), link).sent_at - time.time()) < 60  # when it was sent
    assert tracked["List-Unsubscribe"].startswith("<https://hooks.example.org/t/u/")
    assert tracked["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert plain["List-Unsubscribe"] is None
    assert "/t/" not in plain.get_payload()[1].get_payload(decode=True).decode()


def test_dispatch_tracks_marketing_email_by_default_and_as_each_send_out_chose(db_path, tmp_path):
    add_people(db_path, 1)
    default_marketing = create_sendout(db_path, html_body="<p>News</p>")
    default_other = create_sendout(db_path, ("email",), "non_marketing", html_body="<p>Bill</p>")
    opted_out = create_sendout(db_path, html_body="<p>Quiet news</p>", tracking=False)
    received, controller = start_sink()
    config = Settings(
        email_sender="smtp",
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        tracking_base_url="https://hooks.example.org",
        tracking_secret=SECRET,
        landing=tmp_path / "landing",
    )
    try:
        for sendout_id in (default_marketing, default_other, opted_out):
            run_dispatch(db_path, sendout_id, config)
    finally:
        controller.stop()

    htmls = [
        email.get_payload()[1].get_payload(decode=True).decode() for email in received.messages
    ]
    tracked = {html.split("<img")[0]: "/t/o/" in html for html in htmls}
    assert tracked == {"<p>News</p>": True, "<p>Bill</p>": False, "<p>Quiet news</p>": False}
