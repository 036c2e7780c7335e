"""The deal pages and the department queue in a real browser (the system's Chromium)
against a real server on the embedded store with the demo's people and deals: a
logistician takes a hand-off request and estimates it with a contractor from the
directory; the deal's manager sees the estimate on the deal card. Screenshots of the
kanban, the deal card, the queue and the request page go to tests/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from leadledger.demo import load_demo_deals, load_demo_users
from leadledger.wiring import Platform
from tests.conftest import (
    FakeClock,
    bearer,
    browser,
    browser_page,
    caught_up,
    screenshot,
    served_site,
)

pytestmark = pytest.mark.browser

FIXTURES = (browser,)  # conftest's, for this module's tests
LOGISTICIAN = "lev.logistics"
DIRECTOR = "tech.director"
TOP = bearer("tech.director")


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A served platform with the demo's people and a few demo deals, and one open deal
    whose manager has just asked logistics for an estimate."""
    clock = FakeClock()

    def demo(platform: Platform) -> None:
        load_demo_users(platform.store, clock())
        load_demo_deals(platform.store, platform.funnels, platform.rules, clock(), deals=10)

    with served_site(tmp_path_factory.mktemp("deals"), clock, demo) as (platform, base):
        with httpx.Client(base_url=base) as api:
            caught_up(api)
            listed = api.get("/deals?status=open&funnel=transport", headers=TOP).json()
            chosen = listed["items"][0]
            asked = api.post(
                f"/deals/{chosen['deal_id']}/requests",
                json={"department": "logistics", "notes": "A 40 t press to Kazan"},
                headers=bearer(chosen["manager"], "manager", "sales"),
            )
            assert asked.status_code == 201, asked.text
            caught_up(api)
        passwords = {
            LOGISTICIAN: "lev-password",
            chosen["manager"]: "manager-password",
            DIRECTOR: "director-password",
        }
        for user, password in passwords.items():
            platform.credentials.set_password(user, password, set_by="test")
        yield {
            "base": base,
            "deal": chosen,
            "request_id": asked.json()["request_id"],
            "passwords": passwords,
        }


def _page(browser: Any, base: str) -> Any:
    return browser_page(browser, base)


shot = screenshot


def sign_in(page: Any, user: str, password: str) -> None:
    page.goto("/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("#sign-in button[type=submit]")
    assert page.locator(".user").inner_text().startswith(user)


def test_a_logistician_estimates_a_request_and_the_manager_sees_it_on_the_deal(
    browser: Any, demo_site: dict[str, Any]
) -> None:
    deal, request_id = demo_site["deal"], demo_site["request_id"]
    worker = _page(browser, demo_site["base"])
    sign_in(worker, LOGISTICIAN, demo_site["passwords"][LOGISTICIAN])
    worker.click("header nav a[href='/workspace/queue']")
    row = worker.locator(f"#queue tr[data-request='{request_id}']")
    assert deal["title"] in row.inner_text()
    shot(worker, "logistics-queue")
    row.locator("a").click()
    worker.click("#form-take button[type=submit]")
    assert worker.locator("#assignee").inner_text() == LOGISTICIAN
    contractors = worker.locator("#form-estimate select[name=contractor_id] option")
    assert contractors.count() >= 4  # own equipment and the directory's three
    contractor = contractors.nth(1)
    name = contractor.inner_text().split(" · ")[0]
    worker.select_option(
        "#form-estimate select[name=contractor_id]", contractor.get_attribute("value")
    )
    worker.fill("#form-estimate input[name=service]", "heavy haulage")
    worker.fill("#form-estimate input[name=cost]", "48500")
    worker.fill("#form-estimate input[name=lead_time_days]", "6")
    worker.fill("#form-estimate input[name=rating]", "4")
    shot(worker, "logistics-request-estimate-form")
    worker.click("#form-estimate button[type=submit]")
    outcome = worker.locator("#outcome").inner_text()
    assert name in outcome
    assert "RUB48,500.00" in outcome
    worker.select_option("#form-stage select[name=stage]", "approval")
    worker.click("#form-stage button[type=submit]")
    assert "ready" in worker.locator("h1 .status").inner_text()
    shot(worker, "logistics-request")
    worker.context.close()

    manager = _page(browser, demo_site["base"])
    sign_in(manager, deal["manager"], demo_site["passwords"][deal["manager"]])
    manager.click("header nav a[href='/workspace/deals']")
    manager.select_option("select[name=funnel]", "transport")
    manager.click("form.filters button[type=submit]")
    card = manager.locator(f".deal-card[data-deal='{deal['deal_id']}']")
    assert card.count() == 1
    shot(manager, "manager-deals-kanban")
    card.locator("a.title").click()
    request_row = manager.locator(f"#requests tr[data-request='{request_id}']")
    text = request_row.inner_text()
    assert "ready" in text
    assert name in text
    assert "RUB48,500.00" in text
    assert LOGISTICIAN in text
    shot(manager, "manager-deal-card")
    manager.context.close()


def test_top_management_sees_every_deal_on_the_kanban(
    browser: Any, demo_site: dict[str, Any]
) -> None:
    top = _page(browser, demo_site["base"])
    sign_in(top, DIRECTOR, demo_site["passwords"][DIRECTOR])
    top.goto("/workspace/deals?funnel=transport")
    assert top.locator(f".deal-card[data-deal='{demo_site['deal']['deal_id']}']").count() == 1
    assert top.locator(".deal-card").count() >= 2
    shot(top, "top-deals-kanban")
    top.click("button[name=language][value=ru]")
    assert top.locator("h1").inner_text().startswith("Сделки")
    top.goto(f"/workspace/deals/{demo_site['deal']['deal_id']}")
    assert top.locator("#requests").count() == 1
    assert "Запросы в отделы" in top.locator("main").inner_text()
    shot(top, "top-deal-card-ru")
    top.context.close()
