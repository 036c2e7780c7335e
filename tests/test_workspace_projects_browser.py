"""The project pages in a real browser: a PM logs a week of hours through the timesheet,
records a payment on an invoice, and the card shows the new payment status and what is
left to pay. Screenshots of the portfolio, the card and the timesheet go to
tests/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, caught_up
from tests.test_workspace_browser import browser, page, shot, sign_in, site

pytestmark = pytest.mark.browser

FIXTURES = (browser, page, site)  # the browser test module's fixtures, reused
TOP = bearer("anna.sales")
LAST_WEEK = "2025-12-29"  # the demo clock stands on Monday 2026-01-05: a past week


@pytest.fixture(scope="module")
def mill(site: dict[str, Any]) -> Iterator[str]:
    """pia.pm's project: 100,000, two tasks (the report waits for the survey), an invoice
    of 40,000 not paid yet."""
    with httpx.Client(base_url=site["base"], headers=TOP) as api:
        body = {
            "title": "Valuation of a mill",
            "company_name": "Northwind LLC",
            "amount": "100000.00",
            "department": "projects",
            "pm": "pia.pm",
            "planned_start": "2025-12-22",
            "planned_end": "2026-01-30",
        }
        made = api.post("/projects", json=body)
        assert made.status_code == 201, made.text
        project_id: str = made.json()["project_id"]
        for task in (
            {
                "task_id": "survey",
                "title": "Site survey",
                "start": "2025-12-22",
                "due": "2026-01-09",
            },
            {"task_id": "report", "title": "Valuation report", "start": "2026-01-12"}
            | {"due": "2026-01-30", "depends_on": ["survey"], "planned_hours": "40"},
        ):
            task = {"assignee": "pia.pm", "planned_hours": "24", **task}
            assert api.post(f"/projects/{project_id}/tasks", json=task).status_code == 201
        progress = {"percent_done": 60}
        assert api.post(f"/projects/{project_id}/tasks/survey", json=progress).status_code == 200
        invoice = {"number": "P-1", "amount": "40000.00", "due_date": "2026-01-20"}
        assert api.post(f"/projects/{project_id}/invoices", json=invoice).status_code == 201
        caught_up(api)
        yield project_id


def test_a_pm_logs_a_week_and_records_a_payment_and_the_card_shows_it(page: Any, mill: str) -> None:
    sign_in(page, "pia.pm")
    page.click("header nav a[href='/workspace/projects']")
    page.wait_for_selector("#portfolio-health-chart[data-ready=true] svg")
    assert page.locator("#portfolio tbody tr").count() == 1
    shot(page, "pm-portfolio")

    with page.expect_navigation():
        page.click("text=Valuation of a mill")
    assert page.locator("h1").inner_text() == "Valuation of a mill"
    assert page.locator("#payment-status").inner_text() == "not paid"

    page.click("header nav a[href='/workspace/timesheet']")
    page.fill("input[name=week]", LAST_WEEK)
    with page.expect_navigation():
        page.click("#week-filters button[type=submit]")
    days = ["2025-12-29", "2025-12-30", "2025-12-31"]
    for day in days:
        page.fill(f"input[name='h|{mill}||{day}']", "6")
        page.fill(f"input[name='h|{mill}|survey|{day}']", "2")
    page.fill(f"input[name='h|{mill}|report|2025-12-29']", "17")  # 6 + 2 + 17 > 24
    with page.expect_navigation():
        page.click("#timesheet button[type=submit]")
    assert page.locator("input[aria-invalid=true]").count() == 1
    assert "over 24" in page.locator(".cell-error").inner_text()
    assert page.locator("#week-total").inner_text() == "24"
    shot(page, "pm-timesheet-refused-cell")
    page.fill(f"input[name='h|{mill}|report|2025-12-29']", "")
    page.fill(f"input[name='h|{mill}|report|2026-01-02']", "4")
    with page.expect_navigation():
        page.click("#timesheet button[type=submit]")
    assert page.locator("#saved").count() == 1
    assert page.locator("#week-total").inner_text() == "28"
    shot(page, "pm-timesheet")

    page.goto(f"/workspace/projects/{mill}")
    payment = page.locator("tr[data-invoice='P-1'] form")
    payment.locator("input[name=amount]").fill("40000")
    with page.expect_navigation():
        payment.locator("button[type=submit]").click()
    assert page.locator("#done").count() == 1
    assert page.locator("#payment-status").inner_text() == "partially paid"
    assert page.locator("#payment-remaining").inner_text() == "RUB60,000.00"
    assert page.locator("tr[data-invoice='P-1'] .pay").inner_text() == "paid"
    assert "28" in page.locator("#plan-actual tr.total").inner_text()
    shot(page, "pm-project-card")
    with page.expect_navigation():
        page.click("header button[value=ru]")
    assert page.locator("#payment-status").inner_text() == "оплачен частично"
    assert page.locator("#payment-remaining").inner_text() == "60\xa0000,00\xa0₽"
    shot(page, "pm-project-card-ru")
