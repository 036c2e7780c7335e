"""The lead pages in a real browser (Playwright driving the system's Chromium against a
real server): a manager creates a lead through the form, moves and pauses it and sees it
in the funnel chart; a stale form; another manager's lead is a 404 page. Screenshots of
the list and of each tab of the card go to tests/artifacts/."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.test_workspace_browser import browser, page, shot, sign_in, site

__all__ = ["browser", "page", "site"]

pytestmark = pytest.mark.browser


def _create(page: Any, title: str) -> str:
    page.goto("/workspace/leads")
    form = page.locator("#form-new-lead")
    form.locator("select[name=funnel]").select_option("out_of_court")
    form.locator("input[name=title]").fill(title)
    form.locator("input[name=company_name]").fill("Harbour Cranes LLC")
    form.locator("input[name=source]").fill("exhibition")
    form.locator("input[name=amount]").fill("480000")
    form.locator("button[type=submit]").click()
    assert page.locator("h1").inner_text() == title
    url: str = page.url
    return url


def test_a_manager_creates_moves_and_pauses_a_lead_and_sees_it_in_the_funnel_chart(
    page: Any, site: dict[str, Any]
) -> None:
    sign_in(page, "mia.manager")
    page.click("header nav a[href='/workspace/leads']")
    before = json.loads(page.locator("#pipeline-data").text_content())
    card = _create(page, "Crane inspection")
    page.locator("#form-stage select[name=stage]").select_option("assessment")
    page.locator("#form-stage button[type=submit]").click()
    assert page.locator("dd.stage").inner_text() == "Assessment"
    page.locator("#form-pause input[name=reason]").fill("Waiting for the client's drawings")
    page.locator("#form-pause button[type=submit]").click()
    assert page.locator("dd.pause-reason").inner_text() == "Waiting for the client's drawings"
    assert page.locator("#form-resume").count() == 1
    shot(page, "lead-card")
    for tab in ("cost", "sensitive", "history", "status-time"):
        with page.expect_navigation():  # the link loads a page: read it, not the last
            page.click(f"nav.tabs a[data-tab='{tab}']")
        assert page.locator(f"#tab-{tab}").count() == 1
        shot(page, f"lead-card-{tab}")
    history = page.locator("#tab-status-time").inner_text()
    assert "Assessment" in history
    page.goto(card + "?tab=history")
    assert "Waiting for the client's drawings" in page.locator("ol.timeline").inner_text()
    page.goto("/workspace/leads?status=paused")
    row = page.locator("table.list tbody tr", has_text="Crane inspection")
    assert "Waiting for the client's drawings" in row.inner_text()
    page.goto("/workspace/leads")
    page.wait_for_selector("#pipeline-chart[data-ready=true] svg")  # ECharts drew it
    after = json.loads(page.locator("#pipeline-data").text_content())
    stages = after[0]["stages"]
    assessment = stages.index("Assessment")
    counted = before[0]["counts"][assessment] if before else 0
    assert after[0]["counts"][assessment] == counted + 1
    shot(page, "leads-list")
    page.goto(card)
    page.click("button[name=language][value=ru]")
    assert page.locator("#form-resume button").inner_text() == "Возобновить"
    assert "480\xa0000,00\xa0₽" in page.locator("dl.fields").inner_text()
    shot(page, "lead-card-ru")


def test_a_stale_form_says_so_and_shows_the_current_state(
    browser: Any, site: dict[str, Any]
) -> None:
    context = browser.new_context(base_url=site["base"], locale="en-US")
    first = context.new_page()
    sign_in(first, "mia.manager")
    card = _create(first, "Two tabs")
    second = context.new_page()
    second.goto(card)
    first.locator("#form-stage select[name=stage]").select_option("assessment")
    first.locator("#form-stage button[type=submit]").click()
    second.locator("#form-pause input[name=reason]").fill("late")
    with second.expect_response(lambda r: r.url.endswith("/pause")) as answer:
        second.locator("#form-pause button[type=submit]").click()
    assert answer.value.status == 409
    assert "changed while you had this form open" in second.locator("p.stale").inner_text()
    assert second.locator("dd.stage").inner_text() == "Assessment"
    assert second.locator("dd.status").inner_text() == "open"
    shot(second, "lead-stale-form")
    context.close()


def test_a_manager_gets_the_404_page_for_another_managers_lead(
    page: Any, site: dict[str, Any]
) -> None:
    sign_in(page, "mia.manager")
    response = page.goto(f"/workspace/leads/{site['leads']['boris'][1]}?tab=history")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Not found"
