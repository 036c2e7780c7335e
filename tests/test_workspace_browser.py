"""The workspace in a real browser: Playwright driving the system's Chromium against a real
server on the embedded store. Screenshots of each page go to tests/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aggregates.users import Role
from tests.conftest import (
    ARTIFACTS,
    CHROMIUM,
    bearer,
    browser,
    caught_up,
    new_lead_body,
    screenshot,
    served_site,
)

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

__all__ = ["ARTIFACTS", "CHROMIUM", "browser", "page", "shot", "sign_in", "site"]
USERS = {
    "mia.manager": ("manager", "mia-password"),
    "boris": ("manager", "boris-password"),
    "tess.top": ("top", "tess-password"),
    "lola.locked": ("manager", "lola-password"),
    "pia.pm": ("pm", "pia-password"),
    "lena.logistics": ("department", "lena-password"),
    "hana.head": ("head", "hana-password"),
    "eva.expert": ("expert", "eva-password"),
    "ada.analyst": ("analyst", "ada-password"),
    "otto.auditor": ("auditor", "otto-password"),
    "adm.admin": ("admin", "adm-password"),
    "asya.assistant": ("assistant", "asya-password"),
}
DEPARTMENTS = {"pia.pm": "projects", "lena.logistics": "logistics", "hana.head": "sales"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A served platform with two managers' leads, a top manager and passwords."""
    with served_site(tmp_path_factory.mktemp("workspace")) as (platform, base):
        leads: dict[str, list[str]] = {}
        with httpx.Client(base_url=base) as api:
            admin = bearer("adam.admin", "admin")
            for user, (role, password) in USERS.items():
                body = {"username": user, "name": user.title(), "role": role}
                if user in DEPARTMENTS:
                    body["department"] = DEPARTMENTS[user]
                assert api.post("/users", json=body, headers=admin).status_code == 201
                platform.credentials.set_password(user, password, set_by="test")
            for manager, count in (("mia.manager", 3), ("boris", 2)):
                for n in range(count):
                    lead = new_lead_body(
                        manager=manager, title=f"{manager} lead {n}", amount=f"{n + 1}50000"
                    )
                    made = api.post("/leads", json=lead, headers=bearer("anna.sales"))
                    assert made.status_code == 201, made.text
                    leads.setdefault(manager, []).append(made.json()["lead_id"])
            caught_up(api)
        yield {"base": base, "leads": leads}


@pytest.fixture
def page(browser: Any, site: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(base_url=site["base"], locale="en-US")
    yield context.new_page()
    context.close()


shot = screenshot


def sign_in(page: Any, user: str, password: str | None = None) -> None:
    page.goto("/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password or USERS[user][1])
    page.click("#sign-in button[type=submit]")


def test_a_manager_signs_in_to_their_cabinet_and_opens_their_lead(
    page: Any, site: dict[str, Any]
) -> None:
    page.goto("/")
    assert page.url.endswith("/workspace/sign-in?next=%2F")
    shot(page, "sign-in")
    sign_in(page, "mia.manager")
    assert page.url == site["base"] + "/"
    assert page.locator(".user").inner_text().startswith("mia.manager")
    assert page.get_by_text("mia.manager lead 0").count() == 1
    assert page.get_by_text("boris lead 0").count() == 0
    page.wait_for_selector("#pipeline-chart[data-ready=true] svg")  # ECharts drew it
    shot(page, "manager-home")
    with page.expect_navigation():  # the link loads a page: read it, not the last
        page.click("header nav a[href='/workspace/leads']")
    assert page.locator("table.list tbody tr").count() == 3
    shot(page, "manager-leads")
    with page.expect_navigation():  # the link loads a page: read it, not the last
        page.click("text=mia.manager lead 2")
    assert page.locator("h1").inner_text() == "mia.manager lead 2"
    assert "RUB350,000.00" in page.locator("dl.fields").inner_text()
    shot(page, "manager-lead-card")


def test_top_management_sees_the_company_and_reads_russian(page: Any, site: dict[str, Any]) -> None:
    sign_in(page, "tess.top")
    assert page.get_by_text("boris lead 1").count() == 1
    assert page.get_by_text("mia.manager lead 1").count() == 1
    page.click("button[name=language][value=ru]")
    assert page.locator("h1").inner_text() == "Сегодня"
    page.wait_for_selector("#pipeline-chart[data-ready=true] svg")
    shot(page, "top-home-ru")
    page.goto(f"/workspace/leads/{site['leads']['boris'][0]}")
    assert "150\xa0000,00\xa0₽" in page.locator("dl.fields").inner_text()


def test_a_manager_gets_a_404_page_for_another_managers_lead(
    page: Any, site: dict[str, Any]
) -> None:
    sign_in(page, "mia.manager")
    response = page.goto(f"/workspace/leads/{site['leads']['boris'][0]}")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Not found"
    shot(page, "manager-404")


def test_a_form_without_its_csrf_token_is_refused(page: Any) -> None:
    page.goto("/workspace/sign-in")
    page.eval_on_selector("#sign-in input[name=csrf_token]", "e => e.remove()")
    page.fill("input[name=username]", "mia.manager")
    page.fill("input[name=password]", "mia-password")
    with page.expect_response(lambda r: r.url.endswith("/workspace/sign-in")) as answer:
        page.click("#sign-in button[type=submit]")
    assert answer.value.status == 403
    assert page.locator("h1").inner_text() == "The form has expired"
    shot(page, "csrf-403")


def test_ten_bad_passwords_give_429(page: Any) -> None:
    page.goto("/workspace/sign-in")
    attempts = 0
    for password in ["not-the-password"] * 10 + [USERS["lola.locked"][1]]:
        attempts += 1
        # the answer to a failed sign-in is the form again, with a fresh CSRF token
        page.fill("input[name=username]", "lola.locked")
        page.fill("input[name=password]", password)
        page.click("#sign-in button[type=submit]")
        if page.locator(".error-page").count():
            break
        assert page.locator(".error").inner_text() == "Wrong username or password."
    # the eleventh attempt, with the right password, is refused for the window
    assert attempts == 11
    assert page.locator(".error-page").get_attribute("data-kind") == "throttled"
    assert page.locator("h1").inner_text() == "Too many attempts"
    shot(page, "sign-in-429")


@pytest.mark.parametrize("user", ["pia.pm", "lena.logistics"])
def test_other_roles_sign_in_to_a_home_of_their_own(page: Any, user: str) -> None:
    sign_in(page, user)
    role = USERS[user][0]
    assert page.locator(".user").get_attribute("data-role") == role
    assert page.locator("h1").inner_text() == "Today"
    shot(page, f"{role}-home")


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_every_role_signs_in_to_its_cabinet(page: Any, site: dict[str, Any], role: str) -> None:
    user = next(u for u, (r, _) in USERS.items() if r == role)
    sign_in(page, user)
    assert page.url == site["base"] + "/"
    who = page.locator(".user")
    assert who.get_attribute("data-role") == role
    assert who.inner_text().startswith(user)
    assert page.locator("header nav a").first.inner_text() == "Home"
    assert page.locator("h1").count() >= 1
    shot(page, f"home-{role}")
