"""One real browser (Debian's Chromium, headless, driven by Playwright) against the real
`streamlit run` server: open Messages, open a send-out and see its doughnut and rates, then add
and remove an unsubscribe; and follow a send-out started from the dashboard on the Messages
page, which moves from Sending... to Sent to Delivered by itself."""

import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from flows.dispatch import run_dispatch
from flows.senders.sandbox import release_due
from flows.settings import Settings
from flows.up import dashboard_command
from tests.smtp_sink import free_port
from tests.warehouse_builders import (
    add_long_unsubscribe_list,
    add_people,
    create_sendout,
    run_refresh,
)
from warehouse.ingest import ingest_paths

CHROMIUM = "/usr/bin/chromium"  # Debian's package; .ci/run installs it
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking"]  # fmt: skip


def serve(tmp_path: Path, **settings: str) -> subprocess.Popen:
    db, landing = tmp_path / "warehouse.duckdb", tmp_path / "landing"
    add_people(db, 30)
    sendout_id = create_sendout(db, channels=("email", "sms"))
    run_dispatch(db, sendout_id, Settings(landing=landing))
    release_due(landing, now=datetime.now(UTC) + timedelta(days=1))  # a day later
    ingest_paths(db, [landing])
    run_refresh(db)
    port = free_port()
    env = {**os.environ, "SENDOUT_DB": str(db), "SENDOUT_LANDING": str(landing), **settings}
    process = subprocess.Popen(
        dashboard_command(port),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                break
        except httpx.TransportError:
            time.sleep(0.2)
    return process, url, sendout_id, env


@pytest.fixture
def server(tmp_path: Path):
    process, url, sendout_id, _ = serve(tmp_path)
    yield url, sendout_id
    process.terminate()
    process.wait(timeout=20)


def test_a_person_reads_a_send_out_and_manages_the_unsubscribes_list(server, tmp_path):
    url, sendout_id = server
    assert Path(CHROMIUM).exists(), "install Debian's chromium package (apt-get install chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})

        page.goto(url)
        expect(page.get_by_role("heading", name="Messages")).to_be_visible(timeout=30_000)
        expect(page.get_by_test_id("stDataFrame")).to_be_visible()
        # the grid draws on a canvas; its cells are in the page for assistive technology
        expect(page.locator("td[role=gridcell]", has_text="Delivered").first).to_be_attached()

        page.goto(f"{url}/sendout?id={sendout_id}")
        expect(page.get_by_role("heading", name="News")).to_be_visible(timeout=30_000)
        expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
        expect(page.get_by_text("Open rate", exact=True)).to_be_visible()
        expect(page.get_by_text("Click-to-open", exact=True)).to_be_visible()
        page.screenshot(path=str(tmp_path / "sendout.png"))

        page.goto(f"{url}/unsubscribes")
        expect(page.get_by_role("heading", name="Unsubscribes")).to_be_visible(timeout=30_000)
        caption = page.get_by_text(re.compile(r"^\d+ of \d+ entries$"))
        before = int(caption.inner_text().split()[0])
        page.get_by_label("Email address or phone number").fill("walk-in@example.com")
        page.get_by_label("Why", exact=True).fill("asked at the desk")
        page.get_by_role("button", name="Add").click()
        expect(caption).to_have_text(f"{before + 1} of {before + 1} entries", timeout=30_000)

        page.get_by_label("Entry").click()
        page.get_by_role("option", name="Email: walk-in@example.com").click()
        page.get_by_label("Why (kept in the history)").fill("a mistake")
        page.get_by_label("Why (kept in the history)").press("Tab")
        page.get_by_text("Yes, messages may go to this address again").click()
        page.get_by_role("button", name="Remove").click()
        expect(caption).to_have_text(f"{before} of {before} entries", timeout=30_000)
        page.screenshot(path=str(tmp_path / "unsubscribes.png"))
        browser.close()


@pytest.fixture
def live_server(tmp_path: Path):
    # the sandbox keeps a rate of 2 messages a second, in batches of 10: a send-out of 30
    # people takes about 15 seconds (as one of thousands would take minutes), and nothing
    # is sent in its first 5, while the person goes to the Messages page
    process, url, _, env = serve(tmp_path, SENDOUT_EMAIL_RATE="2", SENDOUT_BATCH_SIZE="10")
    yield url, env
    process.terminate()
    process.wait(timeout=20)


def status_cell(page, name: str):
    """The Status cell of the send-out's row on the Messages page."""
    row = page.locator("tr", has=page.locator("td[role=gridcell]", has_text=name))
    return row.locator("td[role=gridcell]").nth(1)


def test_a_send_out_started_from_the_dashboard_moves_on_the_messages_page(live_server, tmp_path):
    url, env = live_server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        page.goto(f"{url}/new_sendout")
        expect(page.get_by_role("heading", name="New send-out")).to_be_visible(timeout=30_000)
        page.get_by_label("Name", exact=True).fill("Live test")
        page.get_by_label("Subject ({first_name} and friends are filled in)", exact=True).fill("Hi")
        page.get_by_label("Text body").fill("Hello")
        page.get_by_label("Text body").press("Tab")
        page.get_by_role("button", name="Send now").click()
        page.get_by_role("button", name="Yes, send it").click()
        expect(page.get_by_role("heading", name="Live test")).to_be_visible(timeout=30_000)
        page.get_by_role("link", name="Messages").click()  # in the app: no page load

        status = status_cell(page, "Live test")
        expect(status).to_have_text("Sending...", timeout=30_000)
        expect(status).to_have_text("Sent", timeout=60_000)
        page.screenshot(path=str(tmp_path / "messages-sent.png"))
        # the deliveries come as the sandbox reports them, through the continuous ingester
        ingester = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "ingester", "--poll", "0.2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            expect(status).to_have_text("Delivered", timeout=60_000)
        finally:
            os.killpg(ingester.pid, signal.SIGTERM)
            ingester.wait(timeout=30)
        page.screenshot(path=str(tmp_path / "messages-delivered.png"))
        browser.close()


def browser_page(playwright, timezone: str = "Europe/Paris"):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    context = browser.new_context(viewport={"width": 1400, "height": 2400}, timezone_id=timezone)
    return browser, context.new_page()


def test_the_pages_read_like_a_product(server, tmp_path):
    url, _ = server
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright)
        page.goto(url)
        expect(page.get_by_role("heading", name="Messages")).to_be_visible(timeout=30_000)
        cells = page.locator("td[role=gridcell]")
        expect(cells.filter(has_text="Marketing").first).to_be_attached()
        expect(cells.filter(has_text="Email + SMS").first).to_be_attached()
        expect(page.get_by_text("Times in Europe/Paris;")).to_be_attached()
        assert page.get_by_role("button", name="Deploy").count() == 0
        assert cells.filter(has_text="+00:00").count() == 0

        page.goto(f"{url}/unsubscribes")
        expect(page.get_by_role("heading", name="Unsubscribes")).to_be_visible(timeout=30_000)
        expect(page.locator("td[role=gridcell]").first).to_be_attached()
        reasons = page.locator("td[role=gridcell]").all_inner_texts()
        assert not {"bad_email", "bad_number", "stop_reply", "all"} & set(reasons)
        page.screenshot(path=str(tmp_path / "unsubscribes.png"))
        browser.close()


def test_a_long_unsubscribes_list_with_a_note_far_down_opens_and_adding_says_why_not(
    server, tmp_path
):
    url, _ = server
    add_long_unsubscribe_list(tmp_path / "warehouse.duckdb")
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright)
        page.goto(f"{url}/unsubscribes")
        expect(page.get_by_role("heading", name="Unsubscribes")).to_be_visible(timeout=30_000)
        expect(page.get_by_text(re.compile(r"^\d+ of \d+ entries$"))).to_be_visible()
        assert page.get_by_test_id("stException").count() == 0

        page.get_by_label("Email address or phone number").fill("not an address")
        page.get_by_label("Why", exact=True).fill("asked at the desk")
        page.get_by_role("button", name="Add").click()
        refused = page.get_by_text("'not an address' is not a valid email address")
        expect(refused).to_be_visible(timeout=30_000)
        page.wait_for_timeout(3_000)  # it stays until read, and the text stays to be mended
        expect(refused).to_be_visible()
        expect(page.get_by_label("Email address or phone number")).to_have_value("not an address")
        page.screenshot(path=str(tmp_path / "refused.png"))
        browser.close()


def test_a_resend_says_how_many_it_reaches_asks_first_and_stays_on_the_send_out(server, tmp_path):
    url, sendout_id = server
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright)
        page.goto(f"{url}/sendout?id={sendout_id}")
        expect(page.get_by_role("heading", name="News")).to_be_visible(timeout=30_000)
        page.get_by_role("button", name=re.compile(r"^Resend to non-openers \(\d+\)$")).click()
        expect(page.get_by_text(re.compile(r"again to \d+ (people|person)"))).to_be_visible(
            timeout=30_000
        )
        page.get_by_role("button", name="Yes, send it").click()
        expect(
            page.get_by_text(re.compile(r"^Sent again to \d+ (people|person), as a new send-out"))
        ).to_be_visible(timeout=30_000)
        expect(page.get_by_role("heading", name="News")).to_be_visible()  # still this one
        page.screenshot(path=str(tmp_path / "resent.png"))
        browser.close()


def test_a_recipients_csv_is_read_when_chosen_and_its_bad_lines_are_listed(server, tmp_path):
    url, _ = server
    people = tmp_path / "people.csv"
    people.write_text(
        "first_name,last_name,email,mobile\n"
        + "".join(f"P{i},L{i},p{i}@example.org,\n" for i in range(25_000))
        + "Bad,Row,bob@,\n"
        + '"Open,Quote,oq@example.org,\n'
        + "Land,Line,land@example.org,020 7946 0000\n"
    )
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright)
        page.goto(f"{url}/new_sendout")
        expect(page.get_by_role("heading", name="New send-out")).to_be_visible(timeout=30_000)
        page.get_by_text("Upload a CSV").click()
        page.locator("input[type=file]").set_input_files(str(people))

        expect(page.get_by_text("25,001 people in the file")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("2 rows cannot be used and are left out")).to_be_visible()
        expect(page.get_by_text("line 25002: 'bob@' is not a valid email address")).to_be_visible()
        expect(
            page.get_by_text("line 25003: a quote opened on this line is never closed")
        ).to_be_visible()
        expect(page.get_by_text("1 of them has a landline, which gets no SMS.")).to_be_visible()
        page.screenshot(path=str(tmp_path / "compose-csv.png"), full_page=True)
        browser.close()
