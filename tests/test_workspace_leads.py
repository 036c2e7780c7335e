"""The workspace's lead pages over the real app: the list with its filters and "New lead"
form, the card's tabs and "as of", and the lead's commands as forms with the API's roles,
guards, stale-form and double-submit rules."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates.users import Principal, Role
from tests.conftest import FakeClock, bearer
from tests.test_workspace_pages import _caught_up, _token, sign_in, ws
from workspace.leads import offered

__all__ = ["ws"]

TOP = bearer("anna.sales")


def _form(page: str, form_id: str) -> dict[str, str]:
    """The hidden fields of one form of a page (CSRF token, version, key, tab)."""
    found = re.search(rf'<form[^>]*id="{form_id}".*?</form>', page, re.S)
    assert found, f"no form {form_id}"
    fields = dict(
        re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', found.group(0))
    )
    return fields


def _card(api: TestClient, lead_id: str, tab: str = "card") -> str:
    page = api.get(f"/workspace/leads/{lead_id}?tab={tab}")
    assert page.status_code == 200, page.text
    text: str = page.text
    return text


def _lead(api: TestClient, lead_id: str) -> dict[str, Any]:
    _caught_up(api)
    body: dict[str, Any] = api.get(f"/leads/{lead_id}", headers=TOP).json()
    return body


def _post(api: TestClient, lead_id: str, action: str, hidden: dict[str, str], **data: str) -> Any:
    return api.post(
        f"/workspace/leads/{lead_id}/{action}", data={**hidden, **data}, follow_redirects=False
    )


def test_a_manager_creates_a_lead_through_the_form_once_even_when_sent_twice(ws) -> None:
    api, _, _ = ws
    sign_in(api, "mia.manager")
    page = api.get("/workspace/leads").text
    assert 'id="new-lead"' in page
    assert '<option value="mia.manager"' in page
    assert "boris</option>" not in page
    fields = _form(page, "form-new-lead")
    data = {
        **fields,
        "funnel": "out_of_court",
        "title": "Valuation of a fleet",
        "company_name": "Fleet LLC",
        "source": "call",
        "manager": "mia.manager",
        "amount": "250000",
    }
    first = api.post("/workspace/leads", data=data, follow_redirects=False)
    assert first.status_code == 303
    again = api.post("/workspace/leads", data=data, follow_redirects=False)
    assert again.headers["location"] == first.headers["location"]  # the same lead, once
    lead_id = first.headers["location"].rsplit("/", 1)[1]
    assert _lead(api, lead_id)["manager"] == "mia.manager"
    listing = api.get("/workspace/leads?status=open").text
    assert listing.count("Valuation of a fleet") == 1
    assert '"counts":[2' in listing  # the funnel chart counts it in the first stage


def test_the_new_lead_form_applies_post_leads_guard_and_validation(ws) -> None:
    api, _, _ = ws
    sign_in(api, "mia.manager")
    fields = _form(api.get("/workspace/leads").text, "form-new-lead")
    base = {"funnel": "out_of_court", "title": "T", "company_name": "C", "source": "s"}
    other = api.post("/workspace/leads", data={**fields, **base, "manager": "boris"})
    assert other.status_code == 403
    assert "may name only themselves as manager" in other.text
    assert 'value="T"' in other.text  # the form comes back filled in
    bad = api.post(
        "/workspace/leads", data={**fields, **base, "manager": "mia.manager", "amount": "x"}
    )
    assert bad.status_code == 422
    assert "amount" in bad.text
    _caught_up(api)
    assert api.get("/leads?manager=mia.manager", headers=TOP).json()["total"] == 1


def test_move_and_pause_with_a_reason_then_the_list_and_card_show_it(ws) -> None:
    api, _, leads = ws
    lead_id = leads["mia.manager"]
    sign_in(api, "mia.manager")
    page = _card(api, lead_id)
    assert 'id="form-assessment"' not in page  # an expert's, a head's or top's
    moved = _post(api, lead_id, "stage", _form(page, "form-stage"), stage="assessment")
    assert moved.status_code == 303
    assert _lead(api, lead_id)["stage"] == "assessment"
    page = _card(api, lead_id)
    paused = _post(api, lead_id, "pause", _form(page, "form-pause"), reason="Client on holiday")
    assert paused.status_code == 303
    page = _card(api, lead_id)
    assert "Client on holiday" in page
    assert 'id="form-resume"' in page
    assert 'id="form-stage"' not in page
    assert "Client on holiday" in api.get("/workspace/leads?status=paused").text
    history = _card(api, lead_id, "history")
    assert "LeadPaused" in history
    assert "mia.manager" in history
    status_time = _card(api, lead_id, "status-time")
    assert "Assessment" in status_time or "assessment" in status_time


def test_a_domain_refusal_re_renders_the_form_with_its_message_and_applies_nothing(ws) -> None:
    api, _, leads = ws
    lead_id = leads["mia.manager"]
    sign_in(api, "mia.manager")
    page = _card(api, lead_id)
    empty = _post(api, lead_id, "pause", _form(page, "form-pause"), reason="  ")
    assert empty.status_code == 422
    assert 'data-action="pause"' in empty.text
    assert "reason" in empty.text
    lost = _post(api, lead_id, "close", _form(page, "form-close"), outcome="lost")
    assert lost.status_code == 422
    assert 'data-action="close"' in lost.text
    assert _lead(api, lead_id)["version"] == 1


def test_a_stale_form_says_so_and_shows_the_current_state(ws) -> None:
    api, _, leads = ws
    lead_id = leads["mia.manager"]
    sign_in(api, "mia.manager")
    page = _card(api, lead_id)
    stage_form, pause_form = _form(page, "form-stage"), _form(page, "form-pause")
    assert _post(api, lead_id, "stage", stage_form, stage="assessment").status_code == 303
    stale = _post(api, lead_id, "pause", pause_form, reason="late")
    assert stale.status_code == 409
    assert "The lead changed while you had this form open" in stale.text
    assert 'value="late"' in stale.text  # what was typed is kept
    assert '<dd class="version">2</dd>' in stale.text  # the current state
    assert _lead(api, lead_id)["status"] == "open"


def test_a_double_submit_applies_once(ws) -> None:
    api, _, leads = ws
    lead_id = leads["mia.manager"]
    sign_in(api, "mia.manager")
    fields = _form(_card(api, lead_id), "form-pause")
    assert _post(api, lead_id, "pause", fields, reason="twice").status_code == 303
    assert _post(api, lead_id, "pause", fields, reason="twice").status_code == 303
    lead = _lead(api, lead_id)
    assert (lead["version"], lead["status"]) == (2, "paused")


def test_another_managers_lead_is_a_404_page_for_reads_and_forms(ws) -> None:
    api, _, leads = ws
    sign_in(api, "mia.manager")
    fields = _form(_card(api, leads["mia.manager"]), "form-pause")
    other = leads["boris"]
    for tab in ("card", "history", "status-time", "sensitive"):
        assert api.get(f"/workspace/leads/{other}?tab={tab}").status_code == 404
    refused = _post(api, other, "pause", fields, reason="not mine")
    assert refused.status_code == 404
    assert 'data-kind="missing"' in refused.text
    assert _lead(api, other)["status"] == "open"


def test_the_card_as_of_shows_the_lead_as_it_was(ws, clock: FakeClock) -> None:
    api, _, leads = ws
    lead_id = leads["mia.manager"]
    sign_in(api, "mia.manager")
    before = clock().strftime("%Y-%m-%dT%H:%M")
    clock.advance(minutes=5)
    _post(api, lead_id, "stage", _form(_card(api, lead_id), "form-stage"), stage="assessment")
    then = api.get(f"/workspace/leads/{lead_id}?as_of={before}").text
    assert 'id="as-of-note"' in then
    assert '<dd class="stage">New</dd>' in then or '<dd class="stage">new</dd>' in then
    assert 'id="commands"' not in then  # no commands on the past
    past = api.get(f"/workspace/leads/{lead_id}?tab=status-time&as_of={before}")
    assert past.status_code == 200
    assert "Assessment" not in past.text.split('id="tab-status-time"')[1]
    now = _card(api, lead_id)
    assert '<dd class="stage">New</dd>' not in now


def test_top_management_qualifies_then_makes_a_deal_and_sets_the_cost_and_sensitive_info(
    ws,
) -> None:
    api, _, leads = ws
    lead_id = leads["boris"]
    sign_in(api, "tess.top")
    page = _card(api, lead_id)
    assert 'id="form-deal"' not in page  # not qualified yet
    fields = _form(page, "form-assessment")
    done = _post(api, lead_id, "assessment", fields, expert="tess.top", result="ok", hours="2")
    assert done.status_code == 303
    qualified = _post(
        api,
        lead_id,
        "qualification",
        _form(_card(api, lead_id), "form-qualification"),
        quality="true",
    )
    assert qualified.status_code == 303, qualified.text
    page = _card(api, lead_id)
    assert 'id="form-deal"' in page
    assert _post(api, lead_id, "deal", _form(page, "form-deal")).status_code == 303
    assert _lead(api, lead_id)["deal_id"]
    cost = _form(_card(api, lead_id, "cost"), "form-cost")
    data = {**cost, "component_name": ["Work", "Travel"], "component_amount": ["1000", "250.50"]}
    saved = api.post(f"/workspace/leads/{lead_id}/cost", data=data, follow_redirects=False)
    assert saved.status_code == 303
    assert _lead(api, lead_id)["amount"] == "1250.50"
    secret = _form(_card(api, lead_id, "sensitive"), "form-sensitive")
    sealed = _post(api, lead_id, "sensitive", secret, notes="Call after 6", fields="phone: 123")
    assert sealed.status_code == 303
    again = _card(api, lead_id, "sensitive")
    assert "Call after 6" in again
    assert "phone: 123" in again
    assert "Call after 6" not in _card(api, lead_id, "history")


def test_an_assistant_names_one_of_their_managers_and_moves_but_may_not_close(ws) -> None:
    api, platform, leads = ws
    admin = bearer("adam.admin", "admin")
    body = {"username": "amy.assistant", "name": "Amy", "role": "assistant"}
    assert api.post("/users", json=body, headers=admin).status_code == 201
    attach = api.post(
        "/users/amy.assistant/managers", json={"managers": ["mia.manager"]}, headers=admin
    )
    assert attach.status_code == 200, attach.text
    platform.credentials.set_password("amy.assistant", "amy-password", set_by="test")
    _caught_up(api)
    sign_in(api, "amy.assistant", "amy-password")
    page = api.get("/workspace/leads").text
    assert '<option value="mia.manager"' in page
    assert '<option value="boris"' not in page
    fields = _form(page, "form-new-lead")
    base = {"funnel": "out_of_court", "title": "For Mia", "company_name": "C", "source": "s"}
    refused = api.post("/workspace/leads", data={**fields, **base, "manager": "boris"})
    assert refused.status_code == 403
    assert "only a manager they work for" in refused.text
    made = api.post(
        "/workspace/leads",
        data={**fields, **base, "manager": "mia.manager"},
        follow_redirects=False,
    )
    assert made.status_code == 303
    card = _card(api, leads["mia.manager"])
    assert 'id="form-stage"' in card
    assert 'id="form-close"' not in card  # qualifying and closing stay the manager's
    assert 'data-tab="sensitive"' not in card
    closing = _post(api, leads["mia.manager"], "close", _form(card, "form-stage"), outcome="won")
    assert closing.status_code == 403


def test_the_list_filters_by_period_status_and_manager_and_pages(ws, clock: FakeClock) -> None:
    api, _, _ = ws
    sign_in(api, "tess.top")
    today = clock().date().isoformat()
    both = api.get(f"/workspace/leads?from={today}&to={today}").text
    assert "Lead of mia.manager" in both
    assert "Lead of boris" in both
    later = api.get("/workspace/leads?from=2030-01-01").text
    assert "Lead of boris" not in later
    assert 'value="2030-01-01"' in later
    mine = api.get("/workspace/leads?manager=boris&status=open").text
    assert "Lead of boris" in mine
    assert "Lead of mia.manager" not in mine
    beyond = api.get("/workspace/leads?page=2").text
    assert "Page 2 of 1" in beyond
    assert 'rel="prev"' in beyond


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    action=st.sampled_from(["stage", "transfer", "assessment", "close", "cost", "qualification"]),
    text=st.text(max_size=40),
)
def test_any_form_input_is_applied_or_refused_with_a_page_never_a_server_error(
    ws, action: str, text: str
) -> None:
    api, _, leads = ws
    lead_id = leads["boris"]
    if "ll_session" not in {c.name for c in api.cookies.jar}:
        sign_in(api, "tess.top")
    page = _card(api, lead_id)
    version = re.search(r'<dd class="version">(\d+)</dd>', page)
    assert version
    hidden = {"csrf_token": _token(page), "version": version.group(1)}
    data = {
        "stage": text,
        "funnel": text,
        "expert": text,
        "result": text,
        "hours": text,
        "outcome": text,
        "quality": text,
        "reason": text,
        "component_name": text,
        "component_amount": text,
    }
    answer = _post(api, lead_id, action, hidden, **data)
    assert answer.status_code in (303, 403, 404, 409, 422), answer.text
    if answer.status_code != 303:
        assert 'role="alert"' in answer.text


def test_the_card_offers_a_command_only_to_a_role_that_may_call_it_on_a_lead_it_fits() -> None:
    def shown(role: Role, status: str, **detail: Any) -> set[str]:
        return set(offered(Principal("u", role), {"status": status, **detail}))

    everything = {"stage", "pause", "transfer", "qualification", "close", "cost", "sensitive"}
    assert shown(Role.MANAGER, "open") == everything
    assert shown(Role.MANAGER, "paused") == {"resume", "close", "cost", "sensitive"}
    assert shown(Role.MANAGER, "open", quality=True) == everything | {"deal"}
    assert "deal" not in shown(Role.MANAGER, "open", quality=True, deal_id="d")
    assert shown(Role.ASSISTANT, "open") == {"stage", "pause", "cost"}
    assert shown(Role.EXPERT, "open") == {"assessment"}
    assert "assessment" in shown(Role.TOP, "open")
    for role in (Role.ANALYST, Role.AUDITOR, Role.PM, Role.DEPARTMENT):
        assert shown(role, "open") == set()
    for closed in ("won", "lost", "non_quality"):
        assert shown(Role.TOP, closed) == set()
