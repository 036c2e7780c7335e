"""The cabinets in a real browser: a head sets a manager's plan from the sales cabinet's
form; the manager sees it on their cabinet's plate and has no form to change it (and the
API refuses them, naming the rule); top management's sales cabinet rolls up region → city
→ manager with the plan bar drawn. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from leadledger.settings import Settings
from leadledger.wiring import Platform, build
from tests.conftest import TEST_AUTH_SECRET, FakeClock, bearer, new_lead_body, serving
from tests.test_workspace_browser import CHROMIUM, browser, shot  # noqa: F401 (fixture)

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

USERS = {
    "hana.head": ("head", "sales", None, None, "hana-password"),
    "mia.manager": ("manager", "sales", "Moscow region", "Moscow", "mia-password"),
    "kir.manager": ("manager", "sales", "Volga", "Kazan", "kir-password"),
    "tess.top": ("top", None, None, None, "tess-password"),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not CHROMIUM.exists():
        pytest.skip("no system Chromium at /usr/bin/chromium (apt-get install chromium)")
    folder = tmp_path_factory.mktemp("cabinets")
    settings = Settings(
        event_store_url=f"sqlite:///{folder}/events.sqlite",
        duckdb_path=folder / "read_models.duckdb",
        auth_secret=TEST_AUTH_SECRET,  # type: ignore[arg-type]
        signin_delay_seconds=0.05,
    )
    platform: Platform = build(settings, clock=FakeClock())
    try:
        with serving(platform) as port:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base) as api:
                for user, (role, department, region, city, password) in USERS.items():
                    body: dict[str, str | None] = {
                        "username": user,
                        "name": user.split(".")[0].title(),
                        "role": role,
                    }
                    body |= {"department": department, "region": region, "city": city}
                    made = api.post("/users", json=body, headers=bearer("adam.admin", "admin"))
                    assert made.status_code == 201, made.text
                    platform.credentials.set_password(user, password, set_by="test")
                for manager in ("mia.manager", "kir.manager"):
                    lead = new_lead_body(manager=manager, title=f"{manager} lead")
                    made = api.post("/leads", json=lead, headers=bearer("anna.sales"))
                    assert made.status_code == 201, made.text
                for _ in range(500):
                    if api.get("/health").json()["lag"] == 0:
                        break
                    time.sleep(0.02)
            yield {"base": base}
    finally:
        platform.close()


@pytest.fixture
def page(browser: Any, site: dict[str, Any]) -> Iterator[Any]:  # noqa: F811
    context = browser.new_context(base_url=site["base"], locale="en-US")
    yield context.new_page()
    context.close()


def sign_in(page: Any, user: str) -> None:
    page.goto("/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", USERS[user][4])
    page.click("#sign-in button[type=submit]")


def test_a_head_sets_a_plan_the_manager_sees_it_and_cannot_change_it(
    page: Any, site: dict[str, Any]
) -> None:
    sign_in(page, "hana.head")
    page.click("header nav a[href='/workspace/cabinets/sales']")
    page.fill("#plan-form input[name=manager]", "mia.manager")
    page.fill("#plan-form input[name=month]", "2026-01")
    page.fill("#plan-form input[name=amount]", "300000")
    page.fill("#plan-form input[name=deals]", "3")
    page.fill("#plan-form input[name=reason]", "January plan")
    page.click("#plan-form button[type=submit]")
    page.wait_for_selector("#sales-rollup tr[data-manager='mia.manager']")
    row = page.locator("#sales-rollup tr[data-manager='mia.manager']").inner_text()
    assert "300,000" in row, row
    shot(page, "cabinet-sales-head")

    # a refused plan (no reason) is shown beside the form, nothing applied
    page.fill("#plan-form input[name=manager]", "kir.manager")
    page.fill("#plan-form input[name=month]", "2026-01")
    page.fill("#plan-form input[name=amount]", "1")
    page.fill("#plan-form input[name=reason]", " ")
    page.click("#plan-form button[type=submit]")
    assert "reason" in page.locator("#plan-error").inner_text()

    page.context.clear_cookies()
    sign_in(page, "mia.manager")
    page.click("header nav a[href='/workspace/cabinets/manager']")
    assert "300,000" in page.locator("#plate-plan").inner_text()
    assert page.locator("#plan-form").count() == 0
    page.wait_for_selector("#report-charts[data-ready=true] svg")
    shot(page, "cabinet-manager")
    refused = httpx.put(
        site["base"] + "/sales-plans/mia.manager/2026-01",
        json={"amount": "1.00", "reason": "I would like less"},
        headers=bearer("mia.manager", "manager", "sales"),
    )
    assert refused.status_code == 403
    assert refused.json()["rule"] == "plan_set_by_management"
    posted = page.request.post(
        "/workspace/cabinets/plan",
        form={"manager": "mia.manager", "month": "2026-01", "amount": "1", "reason": "x"},
    )
    assert posted.status == 403  # no CSRF token from a form she was never shown


def test_the_sales_cabinet_rolls_up_region_city_manager(page: Any) -> None:
    sign_in(page, "tess.top")
    page.click("header nav a[href='/workspace/cabinets/sales']")
    regions = page.locator("#sales-rollup tr.region")
    assert [regions.nth(n).get_attribute("data-region") for n in range(regions.count())] == [
        "",
        "Moscow region",
        "Volga",
    ]
    rows = page.locator("#sales-rollup tbody tr")
    order = [
        rows.nth(n).get_attribute("data-region")
        or rows.nth(n).get_attribute("data-city")
        or rows.nth(n).get_attribute("data-manager")
        for n in range(rows.count())
    ]
    assert order.index("Volga") < order.index("Kazan") < order.index("kir.manager")
    page.wait_for_selector("#report-charts[data-ready=true] svg")
    shot(page, "cabinet-sales-top")
    page.click("#sales-rollup tr[data-manager='kir.manager'] a >> nth=0")
    assert "manager=kir.manager" in page.url
    assert page.locator("table[data-table='drill down · deals']").count() == 1


def test_the_home_links_to_the_cabinets(page: Any) -> None:
    sign_in(page, "hana.head")
    links = page.locator("#cabinet-links a")
    assert [links.nth(n).get_attribute("href") for n in range(links.count())] == [
        "/workspace/cabinets/manager",
        "/workspace/cabinets/sales",
    ]
