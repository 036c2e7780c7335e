"""The workspace's finishing touches in a real browser (the system's Chromium): a manager
drags a deal card to another stage's column on the kanban and the deal moves; a refused
drop puts the card back and shows why; the deal card "as of" an earlier instant; a report
paged through its rows; all in Russian, with screenshots in tests/artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import (
    FakeClock,
    bearer,
    browser_page,
    browser_sign_in,
    caught_up,
    new_lead_body,
    screenshot,
    served_site,
)
from tests.deal_helpers import new_deal

pytestmark = pytest.mark.browser

ADMIN = bearer("adam.admin", "admin")
USERS = {
    "mia.manager": ("manager", "sales", "mia-password"),
    "tess.top": ("top", None, "tess-password"),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A served platform with a manager's transport deal (created two hours ago) and 60
    more leads, so the status-time report has more than one page."""
    clock = FakeClock()
    with served_site(tmp_path_factory.mktemp("polish"), clock) as (platform, base):
        with httpx.Client(base_url=base) as api:
            for user, (role, department, password) in USERS.items():
                body = {"username": user, "name": user.title(), "role": role}
                if department:
                    body["department"] = department
                assert api.post("/users", json=body, headers=ADMIN).status_code == 201
                platform.credentials.set_password(user, password, set_by="test")
            created = clock()
            deal_id = new_deal(api, title="Press to Kazan", manager="mia.manager", amount="48500")  # type: ignore[arg-type]
            for n in range(60):
                lead = new_lead_body(manager="mia.manager", title=f"Lead {n:02d}", amount="1000")
                assert (
                    api.post("/leads", json=lead, headers=bearer("anna.sales")).status_code == 201
                )
            clock.advance(hours=2)
            caught_up(api)
        yield {"base": base, "deal_id": deal_id, "created": created}


def _russian(page: Any) -> None:
    page.click("button[name=language][value=ru]")


def _column_of(page: Any, deal_id: str) -> str:
    card = page.locator(f".deal-card[data-deal='{deal_id}']")
    stage: str = card.get_attribute("data-stage")
    return stage


def test_a_manager_drags_a_deal_to_another_stage_and_a_refused_drop_says_why(
    browser: Any, site: dict[str, Any]
) -> None:
    deal_id = site["deal_id"]
    page = browser_page(browser, site["base"], width=1600)
    browser_sign_in(page, "mia.manager", USERS["mia.manager"][2])
    _russian(page)
    page.goto("/workspace/deals?funnel=transport")
    assert page.locator("h1").inner_text().startswith("Сделки")
    assert "Просчёт готов" in page.locator("#kanban").inner_text()
    assert _column_of(page, deal_id) == "new"
    card = page.locator(f".deal-card[data-deal='{deal_id}']")
    with page.expect_navigation():
        card.drag_to(page.locator(".column[data-stage='estimate']"))
    assert _column_of(page, deal_id) == "estimate"
    column = page.locator(".column[data-stage='estimate']")
    assert column.locator(f".deal-card[data-deal='{deal_id}']").count() == 1
    screenshot(page, "polish-kanban-ru")
    # onwards the deal waits for the logistics estimate: the move is refused, the card
    # goes back and the page says why (in Russian)
    page.locator(f".deal-card[data-deal='{deal_id}']").drag_to(
        page.locator(".column[data-stage='proposal']")
    )
    message = page.locator("#kanban-error")
    message.wait_for(state="visible")
    assert "Не все просчёты раунда готовы" in message.inner_text()  # noqa: RUF001
    assert _column_of(page, deal_id) == "estimate"
    assert page.locator(".column[data-stage='proposal'] .deal-card").count() == 0
    screenshot(page, "polish-kanban-refused-ru")
    page.context.close()


def test_the_deal_card_as_of_an_earlier_instant_in_russian(
    browser: Any, site: dict[str, Any]
) -> None:
    deal_id = site["deal_id"]
    page = browser_page(browser, site["base"])
    browser_sign_in(page, "mia.manager", USERS["mia.manager"][2])
    _russian(page)
    page.goto(f"/workspace/deals/{deal_id}")
    assert page.locator("#form-stage").count() == 1
    moment = site["created"].replace(minute=30).strftime("%Y-%m-%dT%H:%M")
    page.fill("#as-of input[name=as_of]", moment)
    page.click("#as-of button[type=submit]")
    assert "Сделка на момент" in page.locator("#as-of-note").inner_text()
    assert page.locator("#deal-stage").inner_text() == "Новый"
    assert page.locator("#form-stage").count() == 0
    assert page.locator("main form[method=post]").count() == 0
    screenshot(page, "polish-deal-card-as-of-ru")
    with page.expect_navigation():  # the link loads a page: read it, not the last
        page.click("#as-of-now")
    assert page.locator("#as-of-note").count() == 0
    assert page.locator("#form-stage").count() == 1
    page.context.close()


def test_a_report_is_paged_through_its_rows_with_its_filters_kept(
    browser: Any, site: dict[str, Any]
) -> None:
    page = browser_page(browser, site["base"])
    browser_sign_in(page, "tess.top", USERS["tess.top"][2])
    _russian(page)
    page.goto("/workspace/reports/status-time?kind=lead&manager=mia.manager")
    pager = page.locator("#pager")
    assert re.search("1\u201350 из \\d+", pager.inner_text())
    pager.locator("a[rel=next]").click()
    assert "offset=50" in page.url
    assert "manager=mia.manager" in page.url
    assert page.locator("#report-filters input[name=manager]").input_value() == "mia.manager"
    assert re.search("51\u2013\\d+ из \\d+", page.locator("#pager").inner_text())
    assert page.locator("#pager a[rel=prev]").count() == 1
    screenshot(page, "polish-report-page-2-ru")
    page.context.close()
