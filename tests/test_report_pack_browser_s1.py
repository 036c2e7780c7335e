"""The sales pack in a real browser, in Russian: top management opens the conversion
cohorts (figure tiles and a chart) and leads for a period by department (a chart),
downloads the latter's Excel and the workbook's totals equal the JSON report's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from leadledger.settings import Settings
from leadledger.wiring import Platform, build
from tests.conftest import TEST_AUTH_SECRET, FakeClock, bearer, new_lead_body, serving
from tests.test_workspace_browser import CHROMIUM, browser, shot  # noqa: F401 (fixture)

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

TOP = ("tess.top", "tess-password")
TOP_API = bearer("tess.top", "top")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not CHROMIUM.exists():
        pytest.skip("no system Chromium at /usr/bin/chromium (apt-get install chromium)")
    folder = tmp_path_factory.mktemp("sales-pack")
    settings = Settings(
        event_store_url=f"sqlite:///{folder}/events.sqlite",
        duckdb_path=folder / "read_models.duckdb",
        auth_secret=TEST_AUTH_SECRET,  # type: ignore[arg-type]
        signin_delay_seconds=0.05,
    )
    platform: Platform = build(settings, clock=FakeClock())
    admin = bearer("adam.admin", "admin")
    try:
        with serving(platform) as port:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base) as api:
                people = (("tess.top", "top", None), ("mia", "manager", "sales"))
                for user, role, department in people:
                    body = {"username": user, "name": user.title(), "role": role}
                    if department:
                        body["department"] = department
                    assert api.post("/users", json=body, headers=admin).status_code == 201
                platform.credentials.set_password(TOP[0], TOP[1], set_by="test")
                for n, manager in enumerate(("mia", "mia", "boris")):
                    lead = new_lead_body(manager=manager, amount=f"{n + 1}000.00")
                    made = api.post("/leads", json=lead, headers=TOP_API)
                    assert made.status_code == 201, made.text
                    if n == 0:
                        lead_id = made.json()["lead_id"]
                        answer = api.post(
                            f"/leads/{lead_id}/qualification",
                            json={"quality": True},
                            headers=TOP_API,
                        )
                        assert answer.status_code == 200, answer.text
                for _ in range(500):
                    if api.get("/health").json()["lag"] == 0:
                        break
                    time.sleep(0.02)
            yield {"base": base}
    finally:
        platform.close()


@pytest.fixture
def page(browser: Any, site: dict[str, Any]) -> Iterator[Any]:  # noqa: F811
    context = browser.new_context(base_url=site["base"], locale="ru-RU", accept_downloads=True)
    yield context.new_page()
    context.close()


def sign_in(page: Any) -> None:
    page.goto("/")
    page.fill("input[name=username]", TOP[0])
    page.fill("input[name=password]", TOP[1])
    page.click("#sign-in button[type=submit]")


def test_the_cohorts_and_the_leads_by_department_in_russian_with_their_excel(
    page: Any, site: dict[str, Any], tmp_path: Path
) -> None:
    sign_in(page)
    page.goto("/workspace/reports/conversion-cohorts")
    if page.locator("h1").inner_text() != "Когорты конверсии":
        page.click("button[name=language][value=ru]")
    assert page.locator("h1").inner_text() == "Когорты конверсии"
    tiles = page.locator("#report-tiles .tile")
    assert tiles.count() == 5
    assert "итого лиды" in tiles.nth(0).inner_text()
    assert tiles.nth(0).locator(".tile-value").inner_text() == "3"
    page.wait_for_selector("#report-charts[data-ready=true] svg")
    shot(page, "report-conversion-cohorts-ru")

    page.goto("/workspace/reports/leads-period")
    page.select_option("select[name=split]", "department")
    page.click("#report-filters button[type=submit]")
    assert "split=department" in page.url
    assert page.locator("h1").inner_text() == "Лиды и продажи за период"
    assert page.locator("#download-excel").inner_text() == "Скачать Excel"
    page.wait_for_selector("#report-charts[data-ready=true] svg")
    shot(page, "report-leads-period-ru")
    # the split and the statuses by their Russian names; the list of leads in work takes
    # no total from the report's figures of the same name (its repeat flag showed "да")
    assert page.locator("select[name=split] option:checked").inner_text() == "отдел"
    work = page.locator("table.report[data-table*='work']")
    assert "открыт" in work.inner_text()
    assert "да" not in work.locator("tr.total td").all_inner_texts()
    with page.expect_download() as info:
        page.click("#download-excel")
    saved = tmp_path / "leads-period.xlsx"
    info.value.save_as(saved)

    report = httpx.get(
        site["base"] + "/reports/leads-period", params={"split": "department"}, headers=TOP_API
    ).json()
    assert report["totals"]["leads"] == {"count": 3, "amount": "6000.00"}
    assert {r["key"]: r["leads"]["count"] for r in report["rows"]} == {"sales": 2, None: 1}
    cells = list(openpyxl.load_workbook(saved).worksheets[0].iter_rows(values_only=True))
    header = next(i for i, row in enumerate(cells) if row and row[0] == "key")
    names = list(cells[header])
    total = next(row for row in cells[header + 1 :] if row[0] == "Total")
    assert total[names.index("leads count")] == 3
    assert float(str(total[names.index("leads amount")])) == 6000.0
    assert total[names.index("in work count")] == report["totals"]["in_work"]["count"]
