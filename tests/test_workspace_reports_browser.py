"""The reports in a real browser: top management sets a period on the funnel report,
downloads its Excel and the workbook's numbers equal the JSON report's; a head's cabinet
has a row per person; a screenshot of each report page goes to tests/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from tests.conftest import bearer, browser, caught_up, new_lead_body, served_site
from tests.conftest import screenshot as shot
from workspace.reports import REPORTS

FIXTURES = (browser,)  # conftest's, for this module's tests

pytestmark = pytest.mark.browser

USERS = {
    "mia.manager": ("manager", "sales", "mia-password"),
    "boris": ("manager", "sales", "boris-password"),
    "hana.head": ("head", "sales", "hana-password"),
    "tess.top": ("top", None, "tess-password"),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with served_site(tmp_path_factory.mktemp("reports")) as (platform, base):
        with httpx.Client(base_url=base) as api:
            for user, (role, department, password) in USERS.items():
                body = {"username": user, "name": user.title(), "role": role}
                if department:
                    body["department"] = department
                made = api.post("/users", json=body, headers=bearer("adam.admin", "admin"))
                assert made.status_code == 201
                platform.credentials.set_password(user, password, set_by="test")
            for manager, count in (("mia.manager", 3), ("boris", 2)):
                for n in range(count):
                    lead = new_lead_body(
                        manager=manager, title=f"{manager} lead {n}", amount=f"{n + 1}50000.25"
                    )
                    made = api.post("/leads", json=lead, headers=bearer("anna.sales"))
                    assert made.status_code == 201, made.text
            caught_up(api)
        yield {"base": base}


@pytest.fixture
def page(browser: Any, site: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(base_url=site["base"], locale="en-US", accept_downloads=True)
    yield context.new_page()
    context.close()


def sign_in(page: Any, user: str) -> None:
    page.goto("/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", USERS[user][2])
    page.click("#sign-in button[type=submit]")


def test_top_sets_a_period_downloads_the_funnel_excel_and_it_equals_the_json(
    page: Any, site: dict[str, Any], tmp_path: Path
) -> None:
    sign_in(page, "tess.top")
    page.click("header nav a[href='/workspace/reports']")
    page.click("a[href='/workspace/reports/funnel']")
    page.select_option("select[name=funnel]", "out_of_court")
    page.fill("input[name=from]", "2020-01-01")
    page.fill("input[name=to]", "2030-12-31")
    page.click("#report-filters button[type=submit]")
    assert "from=2020-01-01" in page.url
    page.wait_for_selector("#report-charts[data-ready=true] svg")
    shot(page, "report-funnel-period")
    with page.expect_download() as info:
        page.click("#download-excel")
    saved = tmp_path / "funnel.xlsx"
    info.value.save_as(saved)
    query = {"funnel": "out_of_court", "from": "2020-01-01", "to": "2030-12-31"}
    report = httpx.get(
        site["base"] + "/reports/funnel", params=query, headers=bearer("tess.top", "top")
    ).json()
    assert report["totals"]["count"] == 5
    cells = list(openpyxl.load_workbook(saved).worksheets[0].iter_rows(values_only=True))
    header = next(i for i, row in enumerate(cells) if "name" in row and "count" in row)
    names = list(cells[header])
    stages = cells[header + 1 : header + 1 + len(report["stages"])]
    for stage, row in zip(report["stages"], stages, strict=True):
        assert row[names.index("count")] == stage["count"]
        assert round(float(str(row[names.index("amount")])), 2) == float(stage["amount"])
    total = cells[header + 1 + len(report["stages"])]
    assert total[names.index("count")] == report["totals"]["count"]
    assert round(float(str(total[names.index("amount")])), 2) == float(report["totals"]["amount"])


def test_a_heads_cabinet_shows_a_row_per_person(page: Any) -> None:
    sign_in(page, "hana.head")
    rows = page.locator("#per-person tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).inner_text().startswith("boris")
    assert rows.nth(1).inner_text().startswith("mia.manager")
    shot(page, "head-home")


def test_each_report_page_for_top_management(page: Any) -> None:
    sign_in(page, "tess.top")
    shot(page, "top-home")
    for report in REPORTS:
        response = page.goto(f"/workspace/reports/{report.slug}")
        assert response.status == 200, report.slug
        shot(page, f"report-{report.slug}")


def test_the_reports_speak_russian(page: Any) -> None:
    sign_in(page, "tess.top")
    page.goto("/workspace/reports/funnel")
    page.click("button[name=language][value=ru]")
    page.wait_for_selector("#download-excel")
    assert page.locator("#download-excel").inner_text() == "Скачать Excel"
    assert page.locator("h1").inner_text() == "Воронка"
    shot(page, "report-funnel-ru")
