"""Deals and hand-offs through HTTP, with the process managers driven step by step.

The tractor scenario of the hand-off pilot end to end, then each endpoint's refusals.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory
from tests.deal_helpers import (
    ENGINEER,
    LOGISTICIAN,
    SELLER,
    contracted_deal,
    new_deal,
    ok,
    qualified_lead,
    register_contractor,
)


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    """The process managers do not run in the background: each test runs them itself."""
    return make_platform(process_managers=False)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        yield client


def deal_of(api: TestClient, deal_id: str) -> dict[str, Any]:
    return ok(api.get(f"/deals/{deal_id}"))


def test_the_tractor_is_estimated_handed_off_proposed_contracted_invoiced_and_won(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    contractor_id = register_contractor(api)
    deal_id = new_deal(api, funnel="transport", description="John Deere 8R, 300 km")
    deal = deal_of(api, deal_id)
    assert (deal["stage"], deal["status"], deal["handoffs"]) == ("new", "open", [])
    assert deal["company_name"] == "Agro Holding"
    assert deal["lead_id"] is not None

    # the seller moves the deal to Estimate: a logistics request appears by itself
    clock.advance(hours=1)
    entered = clock.now
    ok(api.post(f"/deals/{deal_id}/stage", json={"stage": "estimate"}, headers=SELLER))
    assert deal_of(api, deal_id)["handoffs"] == []
    platform.processes.run_once()
    deal = deal_of(api, deal_id)
    assert deal["stage"] == "estimate"
    [view] = deal["handoffs"]
    assert (view["department"], view["stage"], view["status"]) == ("logistics", "new", "open")
    request_id = view["request_id"]
    request = ok(api.get(f"/handoffs/{request_id}"))
    assert request["deal_id"] == deal_id
    assert request["notes"] == "Transport of a tractor\n\nJohn Deere 8R, 300 km"
    assert request["created_by"] == "leadledger.estimate-handoff"

    # a logistician takes it and prices it with a contractor from the directory
    clock.advance(minutes=30)
    taken_at = clock.now
    ok(api.post(f"/handoffs/{request_id}/take", headers=LOGISTICIAN))
    clock.advance(hours=2)
    estimate = {
        "service": "heavy haulage",
        "cost": "1850.00",
        "lead_time_days": 3,
        "contractor_id": contractor_id,
        "rating": 4,
        "notes": "low-loader needed",
    }
    ok(api.post(f"/handoffs/{request_id}/estimate", json=estimate, headers=LOGISTICIAN))
    assert deal_of(api, deal_id)["handoffs"][0]["status"] == "in_work"
    clock.advance(minutes=15)
    approved_at = clock.now
    ok(api.post(f"/handoffs/{request_id}/stage", json={"stage": "approval"}, headers=LOGISTICIAN))

    # … and the parent moves to Estimate ready with the price, who and how long
    platform.processes.run_once()
    deal = deal_of(api, deal_id)
    assert deal["stage"] == "estimate_ready"
    assert deal["estimate"] is None
    result = deal["estimate_result"]
    assert Decimal(result["price"]) == Decimal("1850.00")
    assert result["estimated_by"] == ["lev.logistics"]
    assert result["took_seconds"] == (approved_at - entered).total_seconds()
    request = ok(api.get(f"/handoffs/{request_id}"))
    assert request["assignee"] == "lev.logistics"
    assert request["taken_at"] == taken_at.isoformat().replace("+00:00", "Z")
    assert request["logistics"]["contractor_name"] == "HeavyHaul LLC"
    assert request["status"] == "ready"

    # the contractor's history gained the quote and its rating
    quotes = [
        e
        for e in ok(api.get(f"/contractors/{contractor_id}/history"))["events"]
        if e["type"] == "ContractorQuoteRecorded"
    ]
    assert [(q["data"]["service"], q["data"]["price"], q["data"]["rating"]) for q in quotes] == [
        ("heavy haulage", "1850.00", 4)
    ]

    # engineering is asked the same way, by hand, and records its plan
    asked = ok(
        api.post(
            f"/deals/{deal_id}/requests",
            json={"department": "engineering", "notes": "mounting on site"},
            headers=SELLER,
        ),
        201,
    )
    engineering_id = asked["request_id"]
    ok(api.post(f"/handoffs/{engineering_id}/take", headers=ENGINEER))
    plan = {"hours": "16", "notes": "two fitters, one day"}
    ok(api.post(f"/handoffs/{engineering_id}/plan", json=plan, headers=ENGINEER))
    ok(api.post(f"/handoffs/{engineering_id}/stage", json={"stage": "done"}, headers=ENGINEER))
    platform.processes.run_once()
    deal = deal_of(api, deal_id)
    assert deal["stage"] == "estimate_ready"  # a request sent by hand moves no stage
    assert {(h["department"], h["status"], h["assignee"]) for h in deal["handoffs"]} == {
        ("logistics", "ready", "lev.logistics"),
        ("engineering", "done", "egor.engineering"),
    }
    assert ok(api.get(f"/handoffs/{engineering_id}"))["engineering"] == {
        "hours": "16.00",
        "notes": "two fitters, one day",
    }

    # proposal → contract → invoice → won
    ok(api.post(f"/deals/{deal_id}/stage", json={"stage": "proposal"}, headers=SELLER))
    services = [{"name": "transport", "price": "2400.00"}, {"name": "mounting", "price": "900"}]
    ok(api.post(f"/deals/{deal_id}/proposal", json={"services": services}, headers=SELLER))
    ok(api.post(f"/deals/{deal_id}/stage", json={"stage": "contract"}, headers=SELLER))
    contract = {"number": "TR-2026-014", "signed_on": "2026-01-06"}
    ok(api.post(f"/deals/{deal_id}/contract", json=contract, headers=SELLER))
    ok(api.post(f"/deals/{deal_id}/stage", json={"stage": "invoice"}, headers=SELLER))
    invoice = {"number": "INV-77", "amount": "3300.00", "organisation": "main"}
    ok(api.post(f"/deals/{deal_id}/invoice", json=invoice, headers=SELLER))
    won = ok(api.post(f"/deals/{deal_id}/close", json={"outcome": "won"}, headers=SELLER))
    deal = deal_of(api, deal_id)
    assert (deal["status"], deal["version"]) == ("won", won["version"])
    assert Decimal(deal["amount"]) == Decimal("3300.00")
    assert deal["proposal"]["total"] == "3300.00"
    assert deal["contract"] == contract
    assert [i["number"] for i in deal["invoices"]] == ["INV-77"]

    # the history tells the whole story, hand-offs included
    types = [e["type"] for e in ok(api.get(f"/deals/{deal_id}/history"))["events"]]
    assert types[0] == "DealCreated"
    # the close cancelled the logistics request still at approval, in the same write
    assert types[-2:] == ["DealClosed", "DealHandoffNoted"]
    assert {(h["department"], h["status"]) for h in deal["handoffs"]} == {
        ("logistics", "cancelled"),
        ("engineering", "done"),
    }
    assert "DealEstimateReady" in types
    assert types.count("DealHandoffNoted") == 9
    lead = ok(api.get(f"/leads/{deal['lead_id']}/history"))
    assert lead["events"][-1]["type"] == "LeadConvertedToDeal"


def test_a_rejected_logistics_request_returns_the_deal_with_the_reason(
    api: TestClient, platform: Platform
) -> None:
    deal_id = new_deal(api, funnel="turnkey")
    ok(api.post(f"/deals/{deal_id}/stage", json={"stage": "estimate"}, headers=SELLER))
    platform.processes.run_once()
    [view] = deal_of(api, deal_id)["handoffs"]
    reason = {"reason": "no low-loader available in January"}
    ok(api.post(f"/handoffs/{view['request_id']}/reject", json=reason, headers=LOGISTICIAN))
    platform.processes.run_once()
    deal = deal_of(api, deal_id)
    assert deal["stage"] == "new"
    assert deal["estimate_rejection"] == (
        "logistics rejected the request: no low-loader available in January"
    )
    assert deal["handoffs"][0]["status"] == "rejected"
    # entering the estimate again starts a new round with a new request
    ok(api.post(f"/deals/{deal_id}/stage", json={"stage": "estimate"}, headers=SELLER))
    platform.processes.run_once()
    handoffs = deal_of(api, deal_id)["handoffs"]
    assert [(h["department"], h["status"]) for h in handoffs] == [
        ("logistics", "rejected"),
        ("logistics", "open"),
    ]
    assert handoffs[0]["round"] < handoffs[1]["round"]


def test_turnkey_estimates_ask_logistics_then_engineering_and_sum_their_prices(
    api: TestClient, platform: Platform
) -> None:
    deal_id = new_deal(api, funnel="turnkey")
    ok(api.post(f"/deals/{deal_id}/stage", json={"stage": "estimate"}, headers=SELLER))
    platform.processes.run_once()
    [logistics] = deal_of(api, deal_id)["handoffs"]
    refused = api.post(f"/deals/{deal_id}/stage", json={"stage": "proposal"}, headers=SELLER)
    assert refused.status_code == 409
    assert refused.json()["rule"] == "estimates_pending"
    rid = logistics["request_id"]
    ok(api.post(f"/handoffs/{rid}/take", headers=LOGISTICIAN))
    own = {"service": "delivery", "cost": "500.00", "lead_time_days": 2, "own_equipment": True}
    ok(api.post(f"/handoffs/{rid}/estimate", json=own, headers=LOGISTICIAN))
    ok(api.post(f"/handoffs/{rid}/stage", json={"stage": "done"}, headers=LOGISTICIAN))
    platform.processes.run_once()
    deal = deal_of(api, deal_id)
    assert deal["stage"] == "estimate"
    engineering = [h for h in deal["handoffs"] if h["department"] == "engineering"]
    assert len(engineering) == 1
    assert engineering[0]["status"] == "open"
    eid = engineering[0]["request_id"]
    ok(api.post(f"/handoffs/{eid}/take", json={"assignee": "egor.engineering"}, headers=SELLER))
    ok(api.post(f"/handoffs/{eid}/plan", json={"hours": "40"}, headers=ENGINEER))
    ok(api.post(f"/handoffs/{eid}/stage", json={"stage": "approval"}, headers=ENGINEER))
    platform.processes.run_once()
    deal = deal_of(api, deal_id)
    assert deal["stage"] == "estimate_ready"
    assert deal["estimate_result"]["price"] == "500.00"
    assert deal["estimate_result"]["estimated_by"] == ["lev.logistics", "egor.engineering"]


def test_auto_conversion_turns_a_quality_lead_into_its_deal_once(
    make_platform: PlatformFactory, tmp_path: Any
) -> None:
    funnels = tmp_path / "funnels.toml"
    from leadledger.settings import DEFAULT_FUNNELS_FILE

    funnels.write_text(
        DEFAULT_FUNNELS_FILE.read_text().replace("auto_convert = false", "auto_convert = true")
    )
    platform = make_platform(process_managers=False, funnels_file=funnels)
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as api:
        lead_id = qualified_lead(api)
        platform.processes.run_once()
        lead = ok(api.get(f"/leads/{lead_id}/history"))
        assert lead["events"][-1]["type"] == "LeadConvertedToDeal"
        deal_id = lead["events"][-1]["data"]["deal_id"]
        deal = deal_of(api, deal_id)
        assert (deal["funnel"], deal["lead_id"], deal["title"]) == (
            "turnkey",
            lead_id,
            "Transport of a tractor",
        )
        again = api.post(f"/leads/{lead_id}/deal", json={}, headers=SELLER)
        assert again.status_code == 409
        assert again.json()["rule"] == "lead_already_converted"
        platform.processes.run_once()
        converted = [
            e
            for e in ok(api.get(f"/leads/{lead_id}/history"))["events"]
            if e["type"] == "LeadConvertedToDeal"
        ]
        assert len(converted) == 1


def test_a_lead_becomes_a_deal_only_when_open_and_qualified_as_quality(api: TestClient) -> None:
    body = {
        "funnel": "out_of_court",
        "title": "Crane hire",
        "company_name": "Build Co",
        "source": "web",
        "manager": "anna.sales",
    }
    lead_id = ok(api.post("/leads", json=body, headers=SELLER), 201)["lead_id"]
    refused = api.post(f"/leads/{lead_id}/deal", headers=SELLER)
    assert refused.status_code == 409
    assert refused.json()["rule"] == "lead_not_qualified"
    unknown = api.post("/leads/00000000-0000-4000-8000-000000000000/deal", headers=SELLER)
    assert unknown.status_code == 404
    lead_id = qualified_lead(api)
    bad_funnel = api.post(f"/leads/{lead_id}/deal", json={"funnel": "nowhere"}, headers=SELLER)
    assert bad_funnel.status_code == 422
    assert bad_funnel.json()["field"] == "funnel"
    stale = api.post(f"/leads/{lead_id}/deal", headers={**SELLER, "If-Match": '"1"'})
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 3
    first = api.post(f"/leads/{lead_id}/deal", headers={**SELLER, "Idempotency-Key": "k1"})
    replay = api.post(f"/leads/{lead_id}/deal", headers={**SELLER, "Idempotency-Key": "k1"})
    assert first.status_code == 201
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert first.json() == replay.json()
    lead = ok(api.get(f"/leads/{lead_id}", params={"min_position": first.json()["position"]}))
    assert lead["deal_id"] == first.json()["deal_id"]


def test_an_upsell_is_a_deal_for_the_same_client_linked_to_the_earlier_one(
    api: TestClient,
) -> None:
    earlier = new_deal(api)
    body = {"previous_deal_id": earlier, "title": "Second tractor", "manager": "boris"}
    created = ok(api.post("/deals", json=body, headers=SELLER), 201)
    deal = deal_of(api, created["deal_id"])
    assert (deal["funnel"], deal["previous_deal_id"], deal["company_id"]) == (
        "upsell",
        earlier,
        "agro-holding",
    )
    missing = api.post(
        "/deals",
        json={**body, "previous_deal_id": "00000000-0000-4000-8000-000000000000"},
        headers=SELLER,
    )
    assert missing.status_code == 422
    assert missing.json()["field"] == "previous_deal_id"
    blank = api.post("/deals", json={**body, "title": "  "}, headers=SELLER)
    assert blank.status_code == 422
    assert blank.json()["field"] == "title"


@pytest.mark.parametrize(
    ("path", "body", "status", "key", "value"),
    [
        ("stage", {"stage": "nowhere"}, 422, "field", "stage"),
        ("stage", {"stage": "new"}, 409, "rule", "same_stage"),
        ("proposal", {"services": []}, 422, "field", "services"),
        (
            "proposal",
            {"services": [{"name": "a", "price": "-1"}]},
            422,
            "field",
            "services[0].price",
        ),
        (
            "contract",
            {"number": "C-1", "signed_on": "2026-01-06"},
            409,
            "rule",
            "proposal_required",
        ),
        ("contract", {"number": "C-1"}, 422, "field", "signed_on"),
        (
            "invoice",
            {"number": "1", "amount": "10", "organisation": "main"},
            409,
            "rule",
            "contract_required",
        ),
        ("invoice", {"number": "1", "amount": "0", "organisation": "main"}, 422, "field", "amount"),
        (
            "invoice",
            {"number": "1", "amount": "1", "organisation": "acme"},
            422,
            "field",
            "organisation",
        ),
        ("close", {"outcome": "won"}, 409, "rule", "invoice_required"),
        ("close", {"outcome": "lost"}, 422, "field", "reason"),
        ("close", {"outcome": "draw"}, 422, "field", "outcome"),
        ("requests", {"department": "finance"}, 422, "field", "department"),
        ("stage", {"stage": "new", "extra": 1}, 422, "field", "extra"),
    ],
)
def test_deal_commands_refuse_bad_input_naming_the_field_or_rule(
    api: TestClient, path: str, body: dict[str, Any], status: int, key: str, value: str
) -> None:
    deal_id = new_deal(api)
    before = deal_of(api, deal_id)["version"]
    response = api.post(f"/deals/{deal_id}/{path}", json=body, headers=SELLER)
    assert response.status_code == status, response.text
    assert response.json()[key] == value
    assert deal_of(api, deal_id)["version"] == before  # nothing half-written


def test_deal_commands_answer_404_for_unknown_ids_and_409_for_stale_versions(
    api: TestClient,
) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    assert (
        api.post(f"/deals/{unknown}/stage", json={"stage": "x"}, headers=SELLER).status_code == 404
    )
    assert api.get(f"/deals/{unknown}").status_code == 404
    assert api.get(f"/deals/{unknown}/history").status_code == 404
    assert api.get(f"/handoffs/{unknown}").status_code == 404
    assert api.post(f"/handoffs/{unknown}/take", headers=SELLER).status_code == 404
    deal_id = new_deal(api)
    stale = api.post(
        f"/deals/{deal_id}/stage", json={"stage": "estimate"}, headers={**SELLER, "If-Match": "7"}
    )
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 1
    lead_id = deal_of(api, deal_id)["lead_id"]
    assert api.get(f"/deals/{lead_id}").status_code == 404  # a lead's id is no deal's


def test_a_closed_deal_refuses_commands_and_as_of_shows_it_before(
    api: TestClient, clock: FakeClock
) -> None:
    deal_id = contracted_deal(api)
    clock.advance(days=1)
    open_then = clock.now
    clock.advance(days=1)
    ok(
        api.post(
            f"/deals/{deal_id}/close", json={"outcome": "lost", "reason": "price"}, headers=SELLER
        )
    )
    refused = api.post(f"/deals/{deal_id}/stage", json={"stage": "contract"}, headers=SELLER)
    assert refused.status_code == 409
    assert refused.json()["rule"] == "deal_closed"
    before = ok(api.get(f"/deals/{deal_id}", params={"as_of": open_then.isoformat()}))
    assert (before["status"], before["contract"]["number"]) == ("open", "C-1")
    assert deal_of(api, deal_id)["status"] == "lost"


def test_hand_off_requests_refuse_out_of_order_work(api: TestClient, platform: Platform) -> None:
    deal_id = new_deal(api)
    ok(api.post(f"/deals/{deal_id}/stage", json={"stage": "estimate"}, headers=SELLER))
    platform.processes.run_once()
    rid = deal_of(api, deal_id)["handoffs"][0]["request_id"]

    def rule(path: str, body: dict[str, Any] | None = None) -> Any:
        response = api.post(f"/handoffs/{rid}/{path}", json=body, headers=LOGISTICIAN)
        assert response.status_code in (409, 422), response.text
        return response.json().get("rule") or response.json().get("field")

    estimate = {
        "service": "heavy haulage",
        "cost": "10",
        "lead_time_days": 1,
        "own_equipment": True,
    }
    assert rule("estimate", estimate) == "not_taken"
    assert rule("stage", {"stage": "approval"}) == "not_taken"
    ok(api.post(f"/handoffs/{rid}/take", headers=LOGISTICIAN))
    assert rule("take") == "already_taken"
    assert rule("plan", {"hours": "3"}) == "wrong_outcome"
    assert rule("stage", {"stage": "approval"}) == "outcome_required"
    assert rule("stage", {"stage": "rejected"}) == "reject_with_reason"
    assert rule("stage", {"stage": "new"}) == "cannot_return_to_new"
    assert rule("estimate", {**estimate, "rating": 3}) == "rating"
    assert rule("estimate", {**estimate, "own_equipment": False}) == "contractor_id"
    assert rule("estimate", {**estimate, "lead_time_days": -1}) == "lead_time_days"
    unknown = {**estimate, "own_equipment": False, "contractor_id": deal_id, "rating": 3}
    assert rule("estimate", unknown) == "contractor_id"
    contractor_id = register_contractor(api)
    other_service = {**unknown, "contractor_id": contractor_id, "service": "storage"}
    assert rule("estimate", other_service) == "service"
    assert rule("reject", {"reason": " "}) == "reason"
    history = ok(api.get(f"/handoffs/{rid}/history"))["events"]
    assert [e["type"] for e in history] == ["HandoffRequested", "HandoffTaken"]


def test_requests_nobody_needs_any_more_are_cancelled(api: TestClient, platform: Platform) -> None:
    # the seller moves the deal back out of the estimate: the round's open request stops
    deal_id = new_deal(api)
    ok(api.post(f"/deals/{deal_id}/stage", json={"stage": "estimate"}, headers=SELLER))
    platform.processes.run_once()
    [first] = deal_of(api, deal_id)["handoffs"]
    ok(api.post(f"/handoffs/{first['request_id']}/take", headers=LOGISTICIAN))
    ok(api.post(f"/deals/{deal_id}/stage", json={"stage": "new"}, headers=SELLER))
    manual = ok(
        api.post(f"/deals/{deal_id}/requests", json={"department": "engineering"}, headers=SELLER),
        201,
    )["request_id"]
    platform.processes.run_once()
    request = ok(api.get(f"/handoffs/{first['request_id']}"))
    assert request["status"] == "cancelled"
    assert request["cancellation_reason"] == "the deal left the stage that asked for this estimate"
    refused = api.post(
        f"/handoffs/{first['request_id']}/reject", json={"reason": "x"}, headers=LOGISTICIAN
    )
    assert refused.status_code == 409
    assert refused.json()["rule"] == "request_closed"
    assert ok(api.get(f"/handoffs/{manual}"))["status"] == "open"  # still wanted

    # the deal is lost: every open request of it stops, the department's load drops
    lost = {"outcome": "lost", "reason": "the client bought a used tractor"}
    ok(api.post(f"/deals/{deal_id}/close", json=lost, headers=SELLER))
    platform.processes.run_once()
    deal = deal_of(api, deal_id)
    assert [h["status"] for h in deal["handoffs"]] == ["cancelled", "cancelled"]
    assert ok(api.get(f"/handoffs/{manual}"))["cancellation_reason"] == "the deal was lost"
    load = ok(
        api.get(
            "/reports/department-load",
            params={"min_position": platform.store.last_position()},
        )
    )
    assert "lev.logistics" not in str(load)  # the taken, cancelled request is no load
    handoffs = ok(api.get("/handoffs", params={"deal_id": deal_id, "status": "cancelled"}))
    assert handoffs["total"] == 2
