"""Ownership first: a record the actor may not act on, and may not even see, answers
exactly as a record that does not exist, whatever else is wrong with the request
(a stale If-Match, a converted lead, a closed deal, a bad body); its owner still hears
the 409s. A record the actor sees but may not act on stays a 403."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import ACTOR, bearer
from tests.deal_helpers import ENGINEER, SELLER, new_deal, ok, qualified_lead
from tests.test_access import USERS, _directory, settle

PETE = bearer("pete.pm", "pm")
PROD_HEAD = bearer("paul.head", "head", "production")


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        _directory(client)
        yield client


def _post(
    api: TestClient, path: str, who: dict[str, str], body: Any = None, **headers: str
) -> Response:
    response: Response = api.post(path, json=body, headers={**who, **headers})
    return response


def same_as_unknown(hidden: Response, record_id: str, unknown: Response, unknown_id: str) -> None:
    """Byte for byte the answer an unknown id gets, but for the id itself."""
    assert hidden.status_code == unknown.status_code, (hidden.text, unknown.text)
    assert hidden.content.replace(record_id.encode(), b"<id>") == unknown.content.replace(
        unknown_id.encode(), b"<id>"
    ), (hidden.text, unknown.text)


def check_hidden(
    api: TestClient, path: str, record_id: str, who: dict[str, str], body: Any, **headers: str
) -> Response:
    """``who`` gets for the record exactly what they get for an unknown id (404)."""
    unknown_id = str(uuid4())
    hidden = _post(api, path.format(id=record_id), who, body, **headers)
    unknown = _post(api, path.format(id=unknown_id), who, body, **headers)
    assert hidden.status_code == 404, hidden.text
    same_as_unknown(hidden, record_id, unknown, unknown_id)
    return hidden


def test_another_managers_lead_is_not_found_whatever_else_is_wrong(
    api: TestClient, platform: Platform
) -> None:
    lead_id = qualified_lead(api, manager="mia.manager")
    settle(platform)
    max_ = USERS["max"]
    stale = {"If-Match": '"99"'}
    for path, body in (
        ("/leads/{id}/stage", {"stage": "assessment"}),
        ("/leads/{id}/stage", {"stage": "no-such-stage"}),
        ("/leads/{id}/pause", {"reason": "x"}),
        ("/leads/{id}/card", {"amount": "-5"}),
        ("/leads/{id}/deal", {"funnel": "transport"}),
    ):
        check_hidden(api, path, lead_id, max_, body)
        check_hidden(api, path, lead_id, max_, body, **stale)
    # the owner hears of the stale version
    conflict = _post(api, f"/leads/{lead_id}/pause", USERS["mia"], {"reason": "x"}, **stale)
    assert conflict.status_code == 409
    assert conflict.json()["current_version"] == 3

    # converted: another manager learns nothing of the deal it became
    ok(_post(api, f"/leads/{lead_id}/deal", USERS["mia"], {"funnel": "transport"}), 201)
    settle(platform)
    hidden = check_hidden(api, "/leads/{id}/deal", lead_id, max_, {"funnel": "transport"})
    assert "deal" not in hidden.json()["detail"]
    again = _post(api, f"/leads/{lead_id}/deal", USERS["mia"], {"funnel": "transport"})
    assert (again.status_code, again.json()["rule"]) == (409, "lead_already_converted")


def test_another_managers_deal_is_not_found_whatever_else_is_wrong(
    api: TestClient, platform: Platform
) -> None:
    deal_id = new_deal(api, manager="mia.manager")
    settle(platform)
    stale = {"If-Match": '"42"'}
    for who in ("max", "oleg", "lara"):
        for path, body in (
            ("/deals/{id}/stage", {"stage": "estimate"}),
            ("/deals/{id}/stage", {"stage": "nowhere"}),
            ("/deals/{id}/close", {"outcome": "lost", "reason": "x"}),
            ("/deals/{id}/requests", {"department": "logistics"}),
        ):
            check_hidden(api, path, deal_id, USERS[who], body)
            check_hidden(api, path, deal_id, USERS[who], body, **stale)
    conflict = _post(api, f"/deals/{deal_id}/stage", USERS["mia"], {"stage": "estimate"}, **stale)
    assert conflict.status_code == 409
    assert "current_version" in conflict.json()
    # closed: the owner hears it is closed, another manager that it does not exist
    ok(_post(api, f"/deals/{deal_id}/close", USERS["mia"], {"outcome": "lost", "reason": "x"}))
    settle(platform)
    closed = _post(api, f"/deals/{deal_id}/requests", USERS["mia"], {"department": "logistics"})
    assert (closed.status_code, closed.json()["rule"]) == (409, "deal_closed")
    check_hidden(api, "/deals/{id}/requests", deal_id, USERS["max"], {"department": "logistics"})


def test_an_upsell_on_a_deal_the_actor_may_not_see_reads_as_on_an_unknown_deal(
    api: TestClient, platform: Platform
) -> None:
    earlier = new_deal(api, manager="max.manager")
    settle(platform)
    body = {"title": "Second tractor", "manager": "mia.manager"}
    unknown_id = str(uuid4())
    hidden = _post(api, "/deals", USERS["mia"], {**body, "previous_deal_id": earlier})
    unknown = _post(api, "/deals", USERS["mia"], {**body, "previous_deal_id": unknown_id})
    assert (hidden.status_code, hidden.json()["field"]) == (422, "previous_deal_id")
    same_as_unknown(hidden, earlier, unknown, unknown_id)


def test_a_request_outside_the_department_is_not_found_unless_the_actor_sees_it(
    api: TestClient, platform: Platform
) -> None:
    deal_id = new_deal(api, manager="mia.manager")
    created = _post(api, f"/deals/{deal_id}/requests", USERS["mia"], {"department": "logistics"})
    request_id: str = ok(created, 201)["request_id"]
    settle(platform)
    stale = {"If-Match": '"9"'}
    check_hidden(api, "/handoffs/{id}/take", request_id, ENGINEER, {})
    check_hidden(api, "/handoffs/{id}/take", request_id, ENGINEER, {}, **stale)
    check_hidden(api, "/handoffs/{id}/stage", request_id, ENGINEER, {"stage": "nowhere"})
    # the sales head sees the request (on their manager's deal) but may not take it: 403
    seen = _post(api, f"/handoffs/{request_id}/take", USERS["hana"], {}, **stale)
    assert (seen.status_code, seen.json()["rule"]) == (403, "not_your_department")
    # the logistics department hears of the stale version
    conflict = _post(api, f"/handoffs/{request_id}/take", USERS["lev"], {}, **stale)
    assert conflict.status_code == 409


def _project(api: TestClient, **card: Any) -> str:
    body = {"title": "Mounting", "company_name": "Agro", "department": "production", **card}
    project_id: str = ok(api.post("/projects", json=body, headers=SELLER), 201)["project_id"]
    return project_id


def test_another_pms_project_and_its_billing_are_not_found(
    api: TestClient, platform: Platform
) -> None:
    project_id = _project(api, pm="pia.pm")
    settle(platform)
    stale = {"If-Match": '"7"'}
    invoice = {"number": "P-1", "amount": "10.00", "due_date": "2026-02-01"}
    for path, body in (
        ("/projects/{id}/card", {"title": "Renamed"}),
        ("/projects/{id}/status", {"status": "nowhere"}),
        ("/projects/{id}/tasks", {"task_id": "t", "title": "T"}),
        ("/projects/{id}/invoices", invoice),
        ("/projects/{id}/invoices/P-1/payments", {"amount": "1.00", "paid_on": "2026-01-05"}),
    ):
        check_hidden(api, path, project_id, PETE, body)
        check_hidden(api, path, project_id, PETE, body, **stale)
    pia = USERS["pia"]
    conflict = _post(api, f"/projects/{project_id}/card", pia, {"title": "X"}, **stale)
    assert (conflict.status_code, conflict.json()["current_version"]) == (409, 1)
    ok(_post(api, f"/projects/{project_id}/invoices", pia, invoice), 201)


def test_a_project_without_a_pm_is_its_department_heads_and_top_managements(
    api: TestClient, platform: Platform
) -> None:
    project_id = _project(api)
    settle(platform)
    invoice = {"number": "P-1", "amount": "10.00", "due_date": "2026-02-01"}
    payment = {"amount": "1.00", "paid_on": "2026-01-05"}
    # a PM can neither read it nor act on it: exactly an unknown project
    assert api.get(f"/projects/{project_id}", headers=USERS["pia"]).status_code == 404
    for path, body in (
        ("/projects/{id}/card", {"pm": "pia.pm"}),
        ("/projects/{id}/invoices", invoice),
        ("/projects/{id}/invoices/P-1/payments", payment),
    ):
        check_hidden(api, path, project_id, USERS["pia"], body)
    # its department's head and top management act on it, and name its PM
    ok(_post(api, f"/projects/{project_id}/invoices", PROD_HEAD, invoice), 201)
    ok(_post(api, f"/projects/{project_id}/invoices/P-1/payments", USERS["top"], payment), 201)
    ok(_post(api, f"/projects/{project_id}/card", PROD_HEAD, {"pm": "pia.pm"}))
    settle(platform)
    ok(_post(api, f"/projects/{project_id}/card", USERS["pia"], {"title": "Now mine"}))


def test_an_expert_who_sees_a_lead_but_may_not_assess_it_hears_why(
    api: TestClient, platform: Platform
) -> None:
    lead_id = ok(
        api.post(
            "/leads",
            json={
                "funnel": "out_of_court",
                "title": "Crane",
                "company_name": "Agro",
                "source": "phone",
                "manager": "mia.manager",
                "expert": "eve.expert",
            },
            headers=USERS["mia"],
        ),
        201,
    )["lead_id"]
    assessment = {"expert": "eve.expert", "result": "feasible", "hours": "1"}
    ok(_post(api, f"/leads/{lead_id}/assessment", USERS["eve"], assessment))
    ok(_post(api, f"/leads/{lead_id}/card", USERS["mia"], {"expert": "erik.expert"}))
    settle(platform)
    # eve still sees the lead (she assessed it), so she hears why, stale If-Match or not
    for headers in ({}, {"If-Match": '"99"'}):
        refused = _post(api, f"/leads/{lead_id}/assessment", USERS["eve"], assessment, **headers)
        assert (refused.status_code, refused.json()["rule"]) == (403, "not_your_lead")
    # an expert who never had it does not learn it exists
    never = bearer("ed.expert", "expert", "engineering")
    check_hidden(api, "/leads/{id}/assessment", lead_id, never, assessment)


@pytest.mark.parametrize(
    ("path", "whose"),
    [
        ("/leads/{id}/pause", "the lead's"),
        ("/leads/{id}/deal", "the lead's"),
        ("/deals/{id}/stage", "the deal's"),
        ("/handoffs/{id}/take", "the hand-off request's"),
        ("/projects/{id}/card", "the project's"),
        ("/projects/{id}/invoices", "the project billing's"),
        ("/client-assignments/{id}/decision", "the client assignment's"),
        ("/contractors/{id}/card", "the record's"),
    ],
)
def test_a_malformed_if_match_names_the_record_whose_version_it_is(
    api: TestClient, path: str, whose: str
) -> None:
    response = _post(api, path.format(id=uuid4()), USERS["top"], {}, **{"If-Match": "abc"})
    assert response.status_code == 422
    assert response.json()["field"] == "If-Match"
    assert response.json()["detail"] == f"If-Match: must be {whose} version, a positive integer"


def test_ownership_comes_before_an_idempotent_replay(api: TestClient, platform: Platform) -> None:
    """A repeat of an Idempotency-Key on a lead that has since gone to another manager is
    not replayed to its former manager: the lead is no longer theirs to hear about."""
    lead_id = qualified_lead(api, manager="mia.manager")
    key = {"Idempotency-Key": "pause-once"}
    first = _post(api, f"/leads/{lead_id}/pause", USERS["mia"], {"reason": "x"}, **key)
    ok(first)
    again = _post(api, f"/leads/{lead_id}/pause", USERS["mia"], {"reason": "x"}, **key)
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (200, "true")
    ok(_post(api, f"/leads/{lead_id}/card", USERS["top"], {"manager": "max.manager"}))
    settle(platform)
    check_hidden(api, "/leads/{id}/pause", lead_id, USERS["mia"], {"reason": "x"}, **key)


def test_an_unseen_record_is_refused_as_fast_as_an_unknown_one(platform: Platform) -> None:
    """The 404 of a hidden record does not wait for the read models when they are behind
    (an unknown id's does not either): the latency must not tell the two apart."""
    app = create_app(platform, background=False, close_on_exit=False)
    with TestClient(app, headers=ACTOR) as api:
        _directory(api)
        platform.projector.catch_up()
        lead = _post(
            api,
            "/leads",
            USERS["mia"],
            {
                "funnel": "out_of_court",
                "title": "Crane hire",
                "company_name": "Kran",
                "source": "phone",
                "manager": "mia.manager",
            },
        )
        assert lead.status_code == 201, lead.text
        lead_id = lead.json()["lead_id"]
        # the lead is stored but not projected: the read models are behind the log's head
        assert platform.projector.position < platform.store.last_position()
        started = time.monotonic()
        check_hidden(api, "/leads/{id}/stage", lead_id, USERS["max"], {"stage": "assessment"})
        assert time.monotonic() - started < platform.settings.read_wait_seconds / 2
