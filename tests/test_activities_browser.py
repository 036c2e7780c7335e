"""«Мои Дела» in a real browser: a manager opens Activities from the navigation, plans a
call through the form, marks it done with its result (the week's table counts it), sees
an activity whose time passed undone marked overdue, and fills next week's personal plan.
Screenshots go to tests/artifacts/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import FakeClock, bearer, iso
from tests.test_workspace_browser import browser, page, shot, sign_in, site

pytestmark = pytest.mark.browser

FIXTURES = (browser, page, site)  # the browser test module's fixtures, reused
BORIS = bearer("boris", "manager")
NOW = FakeClock().now  # the site's clock: Monday 2026-01-05 09:00 UTC


@pytest.fixture(scope="module")
def late_call(site: dict[str, Any]) -> Iterator[str]:
    """A call boris planned for 07:00 that nobody made: overdue at 09:00."""
    with httpx.Client(base_url=site["base"], headers=BORIS) as api:
        body = {
            "type": "call_out_potential",
            "company_id": "initech",
            "planned_at": iso(NOW - timedelta(hours=2)),
            "notes": "ask about the second warehouse",
        }
        made = api.post("/activities", json=body)
        assert made.status_code == 201, made.text
        for _ in range(500):
            if api.get("/health").json()["lag"] == 0:
                break
            time.sleep(0.02)
        yield str(made.json()["activity_id"])


def test_a_manager_plans_a_call_marks_it_done_and_sees_the_overdue_one(
    page: Any, late_call: str
) -> None:
    sign_in(page, "boris")
    with page.expect_navigation():
        page.click("header nav a[href='/workspace/activities']")
    overdue = page.locator(f"#overdue-table tr[data-activity='{late_call}']")
    assert overdue.get_attribute("data-state") == "overdue"
    assert "overdue" in overdue.locator("td.state").inner_text()

    page.select_option("#form-new-activity select[name=type]", "call_out_cold")
    page.fill("#form-new-activity input[name=company_id]", "northwind")
    page.fill("#form-new-activity input[name=planned_at]", "2026-01-05T11:00")
    page.fill("#form-new-activity input[name=notes]", "offer the audit")
    with page.expect_navigation():
        page.click("#plan-activity")
    assert page.locator("#accepted").is_visible()
    planned = page.locator("#today-table tr[data-state=planned]")
    assert planned.count() == 1
    assert "offer the audit" in planned.inner_text()
    shot(page, "activities-planned")

    planned.locator("input[name=result]").fill("agreed on a meeting")
    with page.expect_navigation():
        planned.locator("button[name=mark-done]").click()
    done = page.locator("#today-table tr[data-state=done]")
    assert done.count() == 1
    assert "agreed on a meeting" in done.inner_text()
    # the week's table: Monday holds the done call and the overdue one
    monday = page.locator("#weekly-table tbody tr[data-day='2026-01-05']")
    assert monday.locator("td").last.inner_text() == "2 / 1"
    assert page.locator("#weekly-table .overdue-mark").count() == 1
    shot(page, "activities-done-and-overdue")

    # next week's personal plan
    with page.expect_navigation():
        page.click("text=Weekly plan")
    page.fill("input[name='n|2026-01-12|call_out_cold']", "12")
    page.fill("input[name='n|2026-01-13|meeting_cold']", "2")
    with page.expect_navigation():
        page.click("#save-plan")
    assert page.locator("#saved").is_visible()
    assert page.input_value("input[name='n|2026-01-12|call_out_cold']") == "12"
    shot(page, "activities-weekly-plan")
