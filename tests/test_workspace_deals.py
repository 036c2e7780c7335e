"""The deal pages and the department queue over the real app: the kanban, the deal card
with its forms, the queue and the request page with theirs; scope, roles, errors that
re-render the form, stale forms and double submits."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import PlatformFactory, bearer
from tests.deal_helpers import SELLER, new_deal, ok, register_contractor

ADMIN = bearer("adam.admin", "admin")
USERS = {
    "mia.manager": ("manager", "sales", "mia-password"),
    "boris": ("manager", "sales", "boris-password"),
    "lev.logistics": ("department", "logistics", "lev-password"),
    "egor.engineering": ("department", "engineering", "egor-password"),
}


@pytest.fixture
def desk(make_platform: PlatformFactory) -> Iterator[tuple[TestClient, Platform, dict[str, str]]]:
    """Two managers with a transport deal each, two department workers, a contractor."""
    platform = make_platform(signin_delay_seconds=0)
    with TestClient(create_app(platform, close_on_exit=False)) as api:
        for user, (role, department, password) in USERS.items():
            body = {"username": user, "name": user.title(), "role": role, "department": department}
            assert api.post("/users", json=body, headers=ADMIN).status_code == 201
            platform.credentials.set_password(user, password, set_by="test")
        deals = {
            manager: new_deal(api, title=f"Haulage for {manager}", manager=manager, amount="5000")
            for manager in ("mia.manager", "boris")
        }
        deals["contractor"] = register_contractor(api, "HeavyHaul LLC")
        _caught_up(api)
        yield api, platform, deals


def _caught_up(api: TestClient) -> None:
    for _ in range(300):
        if api.get("/health").json()["lag"] == 0:
            return
        time.sleep(0.02)
    raise AssertionError("the read models did not catch up")


def sign_in(api: TestClient, user: str) -> None:
    api.cookies.clear()
    token = _field(api.get("/workspace/sign-in").text, "csrf_token")
    response = api.post(
        "/workspace/sign-in",
        data={"username": user, "password": USERS[user][2], "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def _field(html: str, name: str, form: str | None = None) -> str:
    if form is not None:
        start = html.index(f'id="{form}"')
        html = html[start : html.index("</form>", start)]
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, html
    return found.group(1)


def submit(
    api: TestClient, page: str, form: str, action: str, **fields: Any
) -> tuple[int, str, dict[str, str]]:
    """Post a form of ``page`` as the browser would: its hidden fields, then ``fields``."""
    html = api.get(page).text
    assert f'id="{form}"' in html, f"no {form} on {page}"
    hidden = {n: _field(html, n, form) for n in ("csrf_token", "version", "key")}
    response = api.post(action, data={**hidden, **fields}, follow_redirects=False)
    return response.status_code, response.text, hidden


def test_the_kanban_shows_the_viewers_open_deals_by_stage(desk) -> None:
    api, _, deals = desk
    sign_in(api, "mia.manager")
    board = api.get("/workspace/deals?funnel=transport")
    assert board.status_code == 200
    assert "Haulage for mia.manager" in board.text
    assert "Haulage for boris" not in board.text  # another manager's deal: not in scope
    column = board.text.split('data-stage="new"')[1].split("</section>")[0]
    assert deals["mia.manager"] in column
    assert "RUB5,000.00" in column
    assert 'href="/workspace/deals"' in api.get("/").text  # in the navigation


def test_the_deal_card_shows_the_forms_the_manager_may_use_now(desk) -> None:
    api, _, deals = desk
    sign_in(api, "mia.manager")
    card = api.get(f"/workspace/deals/{deals['mia.manager']}")
    assert card.status_code == 200
    for form in ("form-stage", "form-proposal", "form-requests", "form-close"):
        assert f'id="{form}"' in card.text
    # a contract needs a proposal, an invoice a contract: not offered yet
    assert 'id="form-contract"' not in card.text
    assert 'id="form-invoice"' not in card.text
    assert "DealCreated" in card.text  # the history timeline


def test_a_deal_outside_the_scope_is_a_404_page_like_an_unknown_one(desk) -> None:
    api, _, deals = desk
    sign_in(api, "mia.manager")
    for missing in (deals["boris"], "00000000-0000-0000-0000-000000000000", "nope"):
        page = api.get(f"/workspace/deals/{missing}")
        assert page.status_code == 404
        assert 'data-kind="missing"' in page.text
    # and a command on it is a 404 too, nothing applied
    token = _field(api.get(f"/workspace/deals/{deals['mia.manager']}").text, "csrf_token")
    refused = api.post(
        f"/workspace/deals/{deals['boris']}/stage",
        data={"csrf_token": token, "stage": "proposal"},
    )
    assert refused.status_code == 404
    assert ok(api.get(f"/deals/{deals['boris']}", headers=SELLER))["stage"] == "new"


def test_asking_a_department_applies_once_even_when_the_form_is_sent_twice(desk) -> None:
    api, _, deals = desk
    sign_in(api, "mia.manager")
    page = f"/workspace/deals/{deals['mia.manager']}"
    status, _, hidden = submit(
        api, page, "form-requests", f"{page}/requests", department="logistics"
    )
    assert status == 303
    again = api.post(
        f"{page}/requests", data={**hidden, "department": "logistics"}, follow_redirects=False
    )
    assert again.status_code == 303  # the same key: the first answer, nothing appended
    deal = ok(api.get(f"/deals/{deals['mia.manager']}", headers=SELLER))
    assert len(deal["handoffs"]) == 1
    assert "Logistics" in api.get(page).text


def test_a_stale_form_says_the_deal_changed_and_applies_nothing(desk) -> None:
    api, _, deals = desk
    sign_in(api, "mia.manager")
    page = f"/workspace/deals/{deals['mia.manager']}"
    stale = api.get(page).text
    hidden = {n: _field(stale, n, "form-close") for n in ("csrf_token", "version", "key")}
    ok(api.post(f"/deals/{deals['mia.manager']}/stage", json={"stage": "proposal"}, headers=SELLER))
    answer = api.post(f"{page}/close", data={**hidden, "outcome": "lost", "reason": "too dear"})
    assert answer.status_code == 409
    assert 'data-code="version_conflict"' in answer.text
    assert "The record changed while the form was open." in answer.text
    assert "Proposal" in answer.text.split('id="deal-stage"')[1][:80]  # the current state
    assert ok(api.get(f"/deals/{deals['mia.manager']}", headers=SELLER))["status"] == "open"


def test_a_refused_command_re_renders_the_form_with_the_rule_and_the_values(desk) -> None:
    api, _, deals = desk
    sign_in(api, "mia.manager")
    page = f"/workspace/deals/{deals['mia.manager']}"
    status, html, _ = submit(api, page, "form-close", f"{page}/close", outcome="won")
    assert status == 409  # won needs an invoice
    assert 'data-code="rule_violation"' in html
    assert 'id="form-close"' in html
    status, html, _ = submit(
        api, page, "form-proposal", f"{page}/proposal", name_0="Transport", price_0="-5"
    )
    assert status == 422
    assert "price" in html.split('class="form-error"')[1][:400]
    assert 'value="Transport"' in html  # what was typed is kept
    assert ok(api.get(f"/deals/{deals['mia.manager']}", headers=SELLER))["proposal"] is None


def test_a_proposal_contract_and_invoice_through_the_forms(desk) -> None:
    api, _, deals = desk
    sign_in(api, "mia.manager")
    page = f"/workspace/deals/{deals['mia.manager']}"
    fields = {"name_0": "Transport", "price_0": "4000", "name_1": "Crane", "price_1": "1000.50"}
    assert submit(api, page, "form-proposal", f"{page}/proposal", **fields)[0] == 303
    contract = {"number": "C-7", "signed_on": "2026-01-10"}
    assert submit(api, page, "form-contract", f"{page}/contract", **contract)[0] == 303
    invoice = {"number": "I-1", "amount": "5000.50", "organisation": "main"}
    assert submit(api, page, "form-invoice", f"{page}/invoice", **invoice)[0] == 303
    deal = ok(api.get(f"/deals/{deals['mia.manager']}", headers=SELLER))
    assert deal["proposal"]["total"] == "5000.50"
    assert deal["contract"]["number"] == "C-7"
    assert [i["number"] for i in deal["invoices"]] == ["I-1"]
    assert "№ I-1" in api.get(page).text


def test_roles_outside_the_endpoint_table_get_no_forms_and_a_403(desk) -> None:
    api, _, deals = desk
    sign_in(api, "mia.manager")
    page = f"/workspace/deals/{deals['mia.manager']}"
    submit(api, page, "form-requests", f"{page}/requests", department="logistics")
    request_id = ok(api.get(f"/deals/{deals['mia.manager']}", headers=SELLER))["handoffs"][0][
        "request_id"
    ]
    _caught_up(api)
    token = _field(api.get(page).text, "csrf_token")
    take = api.post(f"/workspace/handoffs/{request_id}/take", data={"csrf_token": token})
    assert take.status_code == 403  # a manager does not work a department's requests
    sign_in(api, "lev.logistics")
    card = api.get(page)
    assert card.status_code == 200  # the deal of a request of theirs is in their scope
    assert 'id="form-stage"' not in card.text
    token = _field(card.text, "csrf_token")
    move = api.post(f"{page}/stage", data={"csrf_token": token, "stage": "proposal"})
    assert move.status_code == 403
    sign_in(api, "egor.engineering")  # another department: the request is not theirs
    assert api.get(f"/workspace/handoffs/{request_id}").status_code == 404


def test_a_logistician_takes_and_estimates_and_the_manager_sees_it(desk) -> None:
    api, _, deals = desk
    sign_in(api, "mia.manager")
    page = f"/workspace/deals/{deals['mia.manager']}"
    submit(api, page, "form-requests", f"{page}/requests", department="logistics", notes="50 t")
    _caught_up(api)
    sign_in(api, "lev.logistics")
    queue = api.get("/workspace/queue")
    assert queue.status_code == 200
    assert "Haulage for mia.manager" in queue.text
    assert "Haulage for boris" not in queue.text
    request_id = re.search(r'data-request="([^"]+)"', queue.text).group(1)  # type: ignore[union-attr]
    request_page = f"/workspace/handoffs/{request_id}"
    assert 'id="form-estimate"' not in api.get(request_page).text  # take it first
    assert submit(api, request_page, "form-take", f"{request_page}/take")[0] == 303
    html = api.get(request_page).text
    assert 'id="form-take"' not in html
    assert f'value="{deals["contractor"]}"' in html  # the directory in the select
    estimate = {
        "contractor_id": deals["contractor"],
        "service": "heavy haulage",
        "cost": "3200",
        "lead_time_days": "4",
        "rating": "5",
    }
    status, _, _ = submit(
        api, request_page, "form-estimate", f"{request_page}/estimate", **estimate
    )
    assert status == 303
    shown = api.get(request_page).text.split('id="outcome"')[1]
    assert "HeavyHaul LLC" in shown
    assert "RUB3,200.00" in shown
    bad = {**estimate, "cost": "lots"}
    status, html, _ = submit(api, request_page, "form-stage", f"{request_page}/estimate", **bad)
    assert status in (409, 422)  # ready or not, never applied
    sign_in(api, "mia.manager")
    row = api.get(page).text.split(f'data-request="{request_id}"')[1].split("</tr>")[0]
    assert "in_work" in row or "ready" in row
    assert "HeavyHaul LLC" in row
    assert "RUB3,200.00" in row


def test_the_queue_is_for_departments_only(desk) -> None:
    api, _, _ = desk
    sign_in(api, "mia.manager")
    assert api.get("/workspace/queue").status_code == 403
    assert 'href="/workspace/queue"' not in api.get("/").text
    sign_in(api, "lev.logistics")
    assert 'href="/workspace/queue"' in api.get("/").text


def test_the_pages_speak_russian(desk) -> None:
    api, _, deals = desk
    sign_in(api, "mia.manager")
    api.cookies.set("ll_lang", "ru")
    card = api.get(f"/workspace/deals/{deals['mia.manager']}")
    assert "Запрос в отдел" in card.text
    assert "Сделки" in card.text  # the navigation
    assert "5\xa0000,00\xa0₽" in card.text
