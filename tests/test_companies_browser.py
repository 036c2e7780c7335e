"""The company directory in a real browser: a manager registers a company, registering it
again is refused as a likely duplicate with a link to the existing record, and the client
card opens from the company's card (screenshots in tests/artifacts/)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aggregates.company import with_check_digits
from tests.conftest import bearer, browser, browser_page, browser_sign_in, served_site
from tests.conftest import screenshot as shot

FIXTURES = (browser,)  # conftest's, for this module's tests

pytestmark = pytest.mark.browser

INN = with_check_digits("770708389")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served_site(tmp_path_factory.mktemp("companies")) as (platform, base):
        with httpx.Client(base_url=base) as api:
            body = {"username": "boris", "name": "Boris", "role": "manager", "department": "sales"}
            made = api.post("/users", json=body, headers=bearer("adam.admin", "admin"))
            assert made.status_code == 201, made.text
            platform.credentials.set_password("boris", "boris-password", set_by="test")
        yield base


def register(page: Any, name: str, tax_id: str, city: str) -> None:
    form = page.locator("#form-new-company")
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=tax_id]").fill(tax_id)
    form.locator("input[name=city]").fill(city)
    form.locator("button[type=submit]").click()


def test_register_see_the_duplicate_refusal_and_open_the_client_card(
    browser: Any, site: str
) -> None:
    page = browser_page(browser, site)
    browser_sign_in(page, "boris", "boris-password")
    page.click("header nav a[href='/workspace/companies']")
    register(page, "Northwind LLC", INN, "Tver")
    page.wait_for_selector("#company-name")
    assert page.inner_text("#company-name") == "Northwind LLC"
    company_url = page.url
    assert INN in page.inner_text("#company-fields")

    page.goto("/workspace/companies")
    assert "Northwind LLC" in page.inner_text("#companies")
    register(page, "Northwind", INN, "Moscow")
    refusal = page.locator("#refusal")
    assert refusal.get_attribute("data-rule") == "likely_duplicate"
    assert "likely a duplicate" in refusal.inner_text()
    shot(page, "companies-duplicate-refused")
    page.click("#existing-company")
    assert page.url == company_url

    page.click("#client-card-link")
    page.wait_for_selector("#client-totals")
    assert "Client card" in page.inner_text("h1")
    assert page.inner_text("#open-deals").startswith("0")
    shot(page, "companies-client-card")
    page.context.close()
