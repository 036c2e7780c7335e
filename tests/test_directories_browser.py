"""Contacts and the shared directories in a real browser (Playwright on the system's
Chromium against a real server): a manager adds a contact (its phone normalised), opens
two leads for the private person from the contact's card (the first new, the second a
repeat), is refused a second contact with the same phone, adds a court and links it to
the lead from the court's card, and reads the directory in Russian."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_workspace_browser import browser, page, shot, sign_in, site

__all__ = ["browser", "page", "site"]

pytestmark = pytest.mark.browser


def _lead_from_contact(page: Any, title: str) -> str:
    form = page.locator("#form-contact-lead")
    form.locator("select[name=funnel]").select_option("out_of_court")
    form.locator("input[name=title]").fill(title)
    form.locator("input[name=source]").fill("phone call")
    form.locator("button[type=submit]").click()
    assert page.locator("h1").inner_text() == title
    lead_id: str = page.url.rstrip("/").split("/")[-1].split("?")[0]
    return lead_id


def test_a_manager_keeps_a_private_persons_contact_and_links_a_court_to_the_lead(
    page: Any, site: dict[str, Any]
) -> None:
    sign_in(page, "mia.manager")
    page.click("header nav a[href='/workspace/contacts']")
    form = page.locator("#form-new-contact")
    form.locator("input[name=name]").fill("Anna Petrova")
    form.locator("input[name=phones]").fill("8 912 345-67-89")
    form.locator("input[name=emails]").fill(" Anna@Mail.RU ")
    form.locator("button[type=submit]").click()
    assert page.locator("h1").inner_text() == "Anna Petrova"
    assert page.locator("#contact-phones").inner_text() == "+79123456789"
    assert page.locator("#contact-emails").inner_text() == "anna@mail.ru"
    contact_url = page.url
    first = _lead_from_contact(page, "Flat flooding appraisal")
    page.goto(contact_url)
    _lead_from_contact(page, "Second flat appraisal")
    page.goto(contact_url)
    second = page.locator("#contact-leads tbody tr", has_text="Second flat appraisal")
    assert second.locator("td.repeat").inner_text() == "Repeat"
    first_row = page.locator("#contact-leads tbody tr", has_text="Flat flooding appraisal")
    assert first_row.locator("td.repeat").inner_text() == "New"
    shot(page, "contact-card")

    page.goto("/workspace/contacts")
    form = page.locator("#form-new-contact")
    form.locator("input[name=name]").fill("A. Petrova")
    form.locator("input[name=phones]").fill("+7 912 345 67 89")
    form.locator("button[type=submit]").click()
    assert "likely the same person" in page.locator("#new-contact p.error").inner_text()

    page.click("header nav a[href='/workspace/directories']")
    assert page.locator("h1").inner_text().startswith("Courts")
    form = page.locator("#form-new-entry")
    form.locator("input[name=field_name]").fill("Moscow arbitration court")
    form.locator("input[name=field_region]").fill("Moscow")
    form.locator("button[type=submit]").click()
    assert page.locator("h1").inner_text().startswith("Moscow arbitration court")
    link = page.locator("#form-link-entry")
    link.locator("select[name=target]").select_option("lead")
    link.locator("input[name=target_id]").fill(first)
    link.locator("select[name=role]").select_option("sender")
    link.locator("button[type=submit]").click()
    row = page.locator("#entry-links tbody tr", has_text="Flat flooding appraisal")
    assert row.count() == 1
    shot(page, "court-card")
    page.click("a[href='/workspace/directories/court']")  # back to the list, by its tabs
    page.click("#directory-kinds a[href='/workspace/directories/signatory']")
    assert page.locator("h1").inner_text().startswith("Signatories")
    with page.expect_navigation():  # the link loads a page: read it, not the last
        page.click("#directory-kinds a[href='/workspace/directories/court']")
    assert page.locator("#entries tbody tr", has_text="Moscow arbitration court").count() == 1
    page.click("button[name=language][value=ru]")
    assert page.locator("h1").inner_text().startswith("Суды")
    assert "Регион" in page.locator("#entries thead").inner_text()
    shot(page, "courts-ru")
