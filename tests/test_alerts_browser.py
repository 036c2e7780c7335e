"""Alerts in a real browser (Playwright, the system's Chromium) on a served platform that
also e-mails them (a real aiosmtpd server): an alert comes in, the header's counter
shows 1 on every page, the alerts page lists it with a link to its subject, marking it
read brings the counter to 0; the mailer the server started sent it to the recipient."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aggregates import users
from commands.context import CommandContext
from commands.users import register_user
from leadledger.settings import Settings
from leadledger.wiring import Platform, build
from tests.conftest import TEST_AUTH_SECRET, FakeClock, serving
from tests.test_alert_mail import SmtpServer, mail_text
from tests.test_deal_projections import PipelineDriver

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
PASSWORD = "vera-password"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def site(tmp_path: Path, smtp: SmtpServer) -> Iterator[dict[str, Any]]:
    if not CHROMIUM.exists():
        pytest.skip("no system Chromium at /usr/bin/chromium (apt-get install chromium)")
    clock = FakeClock()
    settings = Settings(
        event_store_url=f"sqlite:///{tmp_path}/events.sqlite",
        duckdb_path=tmp_path / "read_models.duckdb",
        auth_secret=TEST_AUTH_SECRET,  # type: ignore[arg-type]
        signin_delay_seconds=0.05,
        process_managers=False,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        mail_poll_seconds=0.05,
    )
    platform: Platform = build(settings, clock=clock)
    ctx = CommandContext.new(actor="adam.admin", clock=clock, actor_role="admin")
    register = users.RegisterUser("vera", "Vera", "manager", "sales", None, None, "vera@x.test")
    register_user(platform.store, register, ctx)
    platform.credentials.set_password("vera", PASSWORD, set_by="test")
    try:
        with serving(platform) as port:
            yield {"base": f"http://127.0.0.1:{port}", "platform": platform, "clock": clock}
    finally:
        platform.close()


@pytest.fixture
def page(site: dict[str, Any]) -> Iterator[Any]:
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        context = browser.new_context(base_url=site["base"], locale="en-US")
        yield context.new_page()
        context.close()
        browser.close()


def wait_for(condition: Any, what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def counter(page: Any) -> str:
    text: str = page.locator("#alerts-counter .count").inner_text()
    return text.strip()


def test_an_alert_shows_in_the_counter_and_is_marked_read(
    page: Any, site: dict[str, Any], smtp: SmtpServer
) -> None:
    platform: Platform = site["platform"]
    page.goto("/")
    page.fill("input[name=username]", "vera")
    page.fill("input[name=password]", PASSWORD)
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("#alerts-counter")
    assert counter(page) == "0"

    driver = PipelineDriver(platform.store, site["clock"], rules=platform.rules)
    deal_id = driver.deal_from_lead("transport", manager="vera", company_id="acme")
    driver.open_estimate(deal_id)
    request_id = driver.request(deal_id, "logistics")
    alert = driver.remind_request(request_id, "vera").position
    wait_for(lambda: platform.projector.position >= alert, "the read models")

    page.reload()
    assert counter(page) == "1"
    # the home's card shows it as the alerts page does: its kind in words, its subject linked
    subject = f"a[href='/workspace/handoffs/{request_id}']"
    assert page.locator(f"main {subject}").count() == 1
    home_kind = page.locator("main tr", has=page.locator(subject)).locator("td").first.inner_text()
    assert home_kind
    assert "_" not in home_kind  # words, not the kind's code
    page.click("#alerts-counter")
    page.wait_for_url("**/workspace/alerts")
    row = page.locator(f"tr[data-alert='{alert}']")
    assert "unread" in (row.get_attribute("class") or "")
    assert row.locator("td").first.inner_text() == home_kind
    link = row.locator("a")
    assert link.get_attribute("href") == f"/workspace/handoffs/{request_id}"
    assert counter(page) == "1"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "alerts-unread.png"), full_page=True)

    row.locator("button[type=submit]").click()
    page.wait_for_url("**/workspace/alerts")
    wait_for(lambda: _read(platform, alert), "the read mark")
    page.reload()
    assert counter(page) == "0"
    assert "unread" not in (page.locator(f"tr[data-alert='{alert}']").get_attribute("class") or "")
    page.goto("/workspace/")
    assert counter(page) == "0"

    # the server's own mailer sent it
    wait_for(lambda: len(smtp.messages) == 1, "the alert's e-mail")
    (message,) = smtp.messages
    assert message["To"] == "vera@x.test"
    assert f"/workspace/handoffs/{request_id}" in mail_text(message)


def _read(platform: Platform, alert: int) -> bool:
    cursor = platform.db.cursor()
    try:
        row = cursor.execute(
            "SELECT count(*) FROM alert_reads WHERE alert_id = ?", [alert]
        ).fetchone()
        return row is not None and int(row[0]) == 1
    finally:
        cursor.close()
