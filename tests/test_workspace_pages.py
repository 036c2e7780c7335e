"""The workspace over the real app: sign-in, sessions, CSRF, throttle, scope, languages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import FakeClock, PlatformFactory, bearer, caught_up, new_lead_body
from workspace import i18n
from workspace.auth import Throttle

ADMIN = bearer("adam.admin", "admin")
TOP = bearer("anna.sales")
PASSWORDS = {"mia.manager": "mia-password", "boris": "boris-password", "tess.top": "tess-pw-123"}
WORKSPACE = Path(i18n.__file__).parent


@pytest.fixture
def ws(make_platform: PlatformFactory) -> Iterator[tuple[TestClient, Platform, dict[str, str]]]:
    """The app with three users (two managers, one top) and a lead for each manager."""
    platform = make_platform(signin_delay_seconds=0)
    with TestClient(create_app(platform, close_on_exit=False)) as api:
        for user, role in (("mia.manager", "manager"), ("boris", "manager"), ("tess.top", "top")):
            body = {"username": user, "name": user.title(), "role": role}
            assert api.post("/users", json=body, headers=ADMIN).status_code == 201
            platform.credentials.set_password(user, PASSWORDS[user], set_by="test")
        leads = {}
        for manager in ("mia.manager", "boris"):
            lead = new_lead_body(manager=manager, title=f"Lead of {manager}", amount="1234567.50")
            response = api.post("/leads", json=lead, headers=TOP)
            assert response.status_code == 201, response.text
            leads[manager] = response.json()["lead_id"]
        _caught_up(api)
        yield api, platform, leads


def _caught_up(api: TestClient) -> None:
    caught_up(api, 200)


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(api: TestClient, user: str, password: str | None = None) -> int:
    token = _token(api.get("/workspace/sign-in").text)
    response = api.post(
        "/workspace/sign-in",
        data={"username": user, "password": password or PASSWORDS[user], "csrf_token": token},
        follow_redirects=False,
    )
    status: int = response.status_code
    return status


def test_the_home_page_asks_to_sign_in_and_then_is_the_managers_cabinet(ws) -> None:
    api, _, leads = ws
    first = api.get("/", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/workspace/sign-in?next=%2F"
    assert sign_in(api, "mia.manager") == 303
    cookie = next(c for c in api.cookies.jar if c.name == "ll_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    home = api.get("/")
    assert home.status_code == 200
    assert "Lead of mia.manager" in home.text
    assert "Lead of boris" not in home.text  # another manager's lead is not in the cabinet
    assert "pipeline-chart" in home.text
    assert "/workspace/static/vendor/echarts.min.js" in home.text
    assert "Lead of mia.manager" in api.get("/workspace/").text
    listing = api.get("/workspace/leads")
    assert leads["mia.manager"] in listing.text
    assert leads["boris"] not in listing.text


def test_the_session_cookie_is_secure_over_https(ws) -> None:
    _, platform, _ = ws
    https = TestClient(create_app(platform, close_on_exit=False), base_url="https://testserver")
    token = _token(https.get("/workspace/sign-in").text)
    response = https.post(
        "/workspace/sign-in",
        data={"username": "mia.manager", "password": "mia-password", "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    set_cookie = response.headers["set-cookie"]
    assert "Secure" in set_cookie
    assert "HttpOnly" in set_cookie
    assert "samesite=lax" in set_cookie.lower()


def test_a_record_outside_the_scope_is_a_404_page_like_an_unknown_one(ws) -> None:
    api, _, leads = ws
    sign_in(api, "mia.manager")
    own = api.get(f"/workspace/leads/{leads['mia.manager']}")
    assert own.status_code == 200
    assert "1,234,567.50" in own.text
    for missing in (leads["boris"], "00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        page = api.get(f"/workspace/leads/{missing}")
        assert page.status_code == 404
        assert 'data-kind="missing"' in page.text
    api.cookies.clear()
    sign_in(api, "tess.top")
    assert api.get(f"/workspace/leads/{leads['boris']}").status_code == 200


def test_forms_without_their_csrf_token_are_refused(ws) -> None:
    api, _, _ = ws
    api.get("/workspace/sign-in")  # the CSRF cookie
    body = {"username": "mia.manager", "password": "mia-password"}
    for sent in (body, body | {"csrf_token": "0" * 64}):
        page = api.post("/workspace/sign-in", data=sent, follow_redirects=False)
        assert page.status_code == 403
        assert 'data-kind="csrf"' in page.text
    assert sign_in(api, "mia.manager") == 303
    assert api.post("/workspace/sign-out", data={}).status_code == 403
    assert api.get("/", follow_redirects=False).status_code == 200  # still signed in


def test_signing_out_ends_the_session_even_for_a_kept_cookie(ws) -> None:
    api, _, _ = ws
    sign_in(api, "mia.manager")
    kept = api.cookies.get("ll_session")
    token = _token(api.get("/").text)
    out = api.post("/workspace/sign-out", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert api.get("/", follow_redirects=False).status_code == 303
    api.cookies.set("ll_session", kept)
    assert api.get("/", follow_redirects=False).status_code == 303


def test_failed_sign_ins_never_tell_whether_the_user_exists_and_end_in_429(ws) -> None:
    api, _, _ = ws
    wrong = api.post("/workspace/sign-in", data={}, follow_redirects=False)
    assert wrong.status_code == 403
    token = _token(api.get("/workspace/sign-in").text)

    def attempt(user: str, password: str) -> tuple[int, str]:
        response = api.post(
            "/workspace/sign-in",
            data={"username": user, "password": password, "csrf_token": token},
            follow_redirects=False,
        )
        text = re.sub(r'value="[^"]*"', "", response.text)
        return response.status_code, text

    known = attempt("mia.manager", "not-her-password")
    unknown = attempt("nobody.here", "not-her-password")
    assert known[0] == unknown[0] == 401
    assert known[1] == unknown[1]
    assert "Wrong username or password." in known[1]
    for _ in range(9):  # ten bad passwords for mia in all
        assert attempt("mia.manager", "still-not-it")[0] == 401
    refused = api.post(
        "/workspace/sign-in",
        data={"username": "mia.manager", "password": "mia-password", "csrf_token": token},
        follow_redirects=False,
    )
    assert refused.status_code == 429  # even the right password, until the window passes
    assert int(refused.headers["Retry-After"]) > 0
    assert 'data-kind="throttled"' in refused.text
    assert sign_in(api, "boris") == 303  # another user from the same address still may


def test_language_follows_the_browser_then_the_viewers_choice(ws) -> None:
    api, _, leads = ws
    russian = api.get("/workspace/sign-in", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
    assert "Войти" in russian.text
    assert 'lang="ru"' in russian.text
    assert (
        "Sign in" in api.get("/workspace/sign-in", headers={"Accept-Language": "de, en;q=0.4"}).text
    )
    sign_in(api, "mia.manager")
    token = _token(api.get("/").text)
    api.post("/workspace/language", data={"language": "ru", "csrf_token": token, "next": "/"})
    card = api.get(f"/workspace/leads/{leads['mia.manager']}", headers={"Accept-Language": "en"})
    assert "Компания" in card.text
    assert "1\xa0234\xa0567,50" in card.text  # Russian thousands separators and decimal comma


def test_money_and_dates_take_the_locales_form() -> None:
    assert i18n.money(Decimal("1234567.5"), "en") == "RUB1,234,567.50"
    assert i18n.money(Decimal("1234567.5"), "ru") == "1\xa0234\xa0567,50\xa0₽"
    assert i18n.day(date(2026, 3, 5), "en") == "Mar 5, 2026"
    assert i18n.day(date(2026, 3, 5), "ru") == "5 мар. 2026\u202fг."  # noqa: RUF001
    assert i18n.accepted_languages("en;q=0.3, ru-RU, fr;q=0") == ["ru-ru", "en"]


def test_the_json_api_is_unchanged_and_a_session_is_no_bearer_token(ws) -> None:
    api, _, _ = ws
    assert api.get("/leads").status_code == 401
    assert api.get("/no-such-endpoint").json()["code"] == "not_found"
    sign_in(api, "mia.manager")
    session = api.cookies.get("ll_session")
    response = api.get("/me", headers={"Authorization": f"Bearer {session}"})
    assert response.status_code == 401
    assert "/workspace" not in str(api.get("/openapi.json").json()["paths"])


def test_the_compiled_catalogues_are_up_to_date_and_cover_every_message() -> None:
    extracted = {
        message
        for _, _, message, _, _ in extract_from_dir(
            str(WORKSPACE),
            method_map=[("**.py", "python"), ("**/templates/**.html", "jinja2")],
            options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        )
    }
    for language in i18n.LANGUAGES:
        folder = WORKSPACE / "locale" / language / "LC_MESSAGES"
        with (folder / "messages.po").open("rb") as po_file:
            po = read_po(po_file, locale=language)
        with (folder / "messages.mo").open("rb") as mo_file:
            mo = read_mo(BytesIO(mo_file.read()))
        source = {m.id: m.string for m in po if m.id}
        compiled = {m.id: m.string for m in mo if m.id}
        assert compiled == source, f"{language}: run pybabel compile -d workspace/locale"
        assert extracted <= set(source), f"{language}: missing {extracted - set(source)}"
        if language == "ru":
            assert all(source.values()), "every Russian message is translated"


def test_every_other_role_gets_a_home_with_the_parts_it_may_read(ws) -> None:
    api, platform, _ = ws
    for user, role, department, shows, hides in (
        ("pia.pm", "pm", "projects", ["Projects", "Alerts"], ["Open leads", "Department queue"]),
        ("lena.logistics", "department", "logistics", ["Department queue"], ["Open leads"]),
        ("alice.analyst", "analyst", None, ["Pipeline by stage"], ["Open leads"]),
        ("adam.admin", "admin", None, ["come in the next releases"], ["Alerts"]),
    ):
        body = {"username": user, "name": user.title(), "role": role}
        if department:
            body["department"] = department
        assert api.post("/users", json=body, headers=ADMIN).status_code == 201
        platform.credentials.set_password(user, "a-good-password", set_by="test")
        api.cookies.clear()
        assert sign_in(api, user, "a-good-password") == 303
        home = api.get("/")
        assert home.status_code == 200, user
        for part in shows:
            assert part in home.text, (user, part)
        for part in hides:
            assert part not in home.text, (user, part)
        leads = api.get("/workspace/leads")
        assert leads.status_code == (403 if role == "admin" else 200), user


def test_signing_in_renews_the_csrf_token(ws) -> None:
    api, _, _ = ws
    before = _token(api.get("/workspace/sign-in").text)
    assert sign_in(api, "mia.manager") == 303
    after = _token(api.get("/").text)
    assert after != before
    stale = api.post("/workspace/sign-out", data={"csrf_token": before})
    assert stale.status_code == 403


def test_the_throttle_slows_then_refuses_per_user_and_per_address_for_the_window(
    make_platform: PlatformFactory, clock: FakeClock
) -> None:
    platform = make_platform(
        signin_slow_after=2, signin_max_failures=3, signin_max_failures_per_address=5
    )
    throttle = Throttle(platform)
    here, there = "10.0.0.1", "10.0.0.2"
    assert throttle.verdict("ann", here) == "go"
    throttle.failed("ann", here)
    throttle.failed("ann", here)
    assert throttle.verdict("ann", here) == "slow"
    throttle.failed("ann", here)
    assert throttle.verdict("ann", there) == "refuse"  # the user, from anywhere
    assert throttle.verdict("bob", here) == "slow"  # the address has failed three times
    throttle.failed("bob", here)
    throttle.failed("cid", here)
    assert throttle.verdict("dan", here) == "refuse"  # five failures from this address
    assert throttle.verdict("dan", there) == "go"
    clock.advance(minutes=14)
    assert throttle.verdict("ann", there) == "refuse"
    clock.advance(minutes=1)
    assert throttle.verdict("ann", here) == "go"  # the window has passed
    throttle.failed("eve", there)
    throttle.succeeded("eve")
    assert throttle.verdict("eve", "10.0.0.3") == "go"
