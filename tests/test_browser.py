"""One real browser (Debian's Chromium, headless, driven by Playwright) against the real
`streamlit run` server: open Messages, open a send-out and see its doughnut and rates, then add
and remove an unsubscribe."""

import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from flows.dispatch import run_dispatch
from flows.up import dashboard_command
from tests.smtp_sink import free_port
from tests.warehouse_builders import add_people, create_sendout, run_refresh
from warehouse.ingest import ingest_paths
from warehouse.settings import Settings

CHROMIUM = "/usr/bin/chromium"  # Debian's package; .ci/run installs it
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking"]  # fmt: skip


@pytest.fixture
def server(tmp_path: Path):
    db, landing = tmp_path / "warehouse.duckdb", tmp_path / "landing"
    add_people(db, 30)
    sendout_id = create_sendout(db, channels=("email", "sms"))
    run_dispatch(db, sendout_id, Settings(landing=landing))
    ingest_paths(db, [landing])
    run_refresh(db)
    port = free_port()
    env = {**os.environ, "SENDOUT_DB": str(db), "SENDOUT_LANDING": str(landing)}
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
        page.get_by_role("option", name="email walk-in@example.com").click()
        page.get_by_label("Why (kept in the history)").fill("a mistake")
        page.get_by_label("Why (kept in the history)").press("Tab")
        page.get_by_text("Yes, messages may go to this address again").click()
        page.get_by_role("button", name="Remove").click()
        expect(caption).to_have_text(f"{before} of {before} entries", timeout=30_000)
        page.screenshot(path=str(tmp_path / "unsubscribes.png"))
        browser.close()
