"""The pipeline queries over HTTP: deals, hand-off requests, contractors, alerts, client
assignments and the pipeline reports.

One pipeline is built through the command handlers with the platform's fake clock (the
process managers do not run, so every request is opened here by hand); every figure the
tests expect is worked out by hand from it. Queries pass ``min_position`` so that they
read the read models with every command in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from leadledger.wiring import Platform
from tests.conftest import FakeClock, PlatformFactory, iso
from tests.test_deal_projections import PipelineDriver


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    """The process managers stay off: the requests here are opened by hand."""
    return make_platform(process_managers=False)


@dataclass
class Pipeline:
    driver: PipelineDriver
    ids: dict[str, UUID]
    times: dict[str, datetime]
    lead_id: UUID


@pytest.fixture
def pipeline(platform: Platform, clock: FakeClock) -> Pipeline:
    """Six deals, five hand-off requests, three contractors, seven client assignments and
    four alerts; the comments give the figures the tests expect."""
    d = PipelineDriver(platform.store, clock, rules=platform.rules)
    ids: dict[str, UUID] = {}
    times: dict[str, datetime] = {}
    ids["fast"] = d.contractor("Fast Trucks", "truck", "crane")
    ids["rail"] = d.contractor("Rail Partners", "rail", "truck")
    ids["cranes"] = d.contractor("Crane Co", "crane")

    # a: transport, vera, estimated by lena (taken in 2 h, ready in 4 h) at 800 → estimate_ready
    clock.advance(minutes=1)
    times["a"] = clock.now
    ids["a"] = d.deal_from_lead(
        "transport", manager="vera", company_id="acme", amount=Decimal(100), title="Move a press"
    )
    clock.advance(hours=1)
    round_a = d.open_estimate(ids["a"])
    ids["req_a"] = d.request(ids["a"], "logistics", round_a)
    times["req_a"] = clock.now
    clock.advance(hours=2)
    d.take(ids["req_a"], "lena")
    clock.advance(hours=1)
    d.estimate(ids["req_a"], "800.00", ids["fast"], service="truck", rating=4)
    clock.advance(hours=1)
    d.move_request(ids["req_a"], "approval")
    d.complete_estimate(ids["a"], round_a)

    # b: transport, boris, 250; oleg takes it in 30 min, 600 by Fast Trucks, done; the
    # deal stays in estimate
    clock.advance(minutes=1)
    times["b"] = clock.now
    ids["b"] = d.deal_from_lead(
        "transport", manager="boris", company_id="globex", amount=Decimal(250)
    )
    ids["req_b"] = d.request(ids["b"], "logistics", d.open_estimate(ids["b"]))
    clock.advance(minutes=30)
    d.take(ids["req_b"], "oleg")
    d.estimate(ids["req_b"], "600.00", ids["fast"], service="truck", rating=5)
    d.move_request(ids["req_b"], "approval")
    d.move_request(ids["req_b"], "done")
    times["fast_last_used"] = times["req_b_estimated"] = clock.now

    # c: transport, boris, 400; lena takes it at once, 1000 by rail, then rejects it: the
    # deal returns to new
    clock.advance(minutes=1)
    times["c"] = clock.now
    ids["c"] = d.deal_from_lead(
        "transport", manager="boris", company_id="initech", amount=Decimal(400)
    )
    round_c = d.open_estimate(ids["c"])
    ids["req_c"] = d.request(ids["c"], "logistics", round_c)
    d.take(ids["req_c"], "lena")
    d.estimate(ids["req_c"], "1000.00", ids["rail"], service="rail", rating=3)
    clock.advance(hours=1)
    d.reject(ids["req_c"], "the line is closed")
    d.return_from_estimate(ids["c"], round_c, ids["req_c"], "the line is closed")

    # d: turnkey, vera, 0; its logistics request is not taken: a reminder, an escalation
    clock.advance(minutes=1)
    times["d"] = clock.now
    ids["d"] = d.deal_from_lead("turnkey", manager="vera", company_id="acme")
    ids["req_d"] = d.request(ids["d"], "logistics", d.open_estimate(ids["d"]))
    clock.advance(hours=5)
    times["reminded"] = clock.now
    d.remind_request(ids["req_d"], "logistics")
    clock.advance(hours=24)
    times["escalated"] = clock.now
    d.escalate_request(ids["req_d"], "logistics.head")

    # e: transport, boris: proposal 1234.56, contract, invoice, won
    clock.advance(minutes=1)
    times["e"] = clock.now
    ids["e"] = d.deal_from_lead(
        "transport", manager="boris", company_id="umbrella", amount=Decimal(50)
    )
    d.proposal(ids["e"], ("transport", "1000.00"), ("loading", "234.56"))
    d.contract(ids["e"], "K-1")
    d.invoice(ids["e"], "I-1", "1234.56")
    d.close(ids["e"], "won")

    # f: transport, vera, 70: lost
    clock.advance(minutes=1)
    times["f"] = clock.now
    ids["f"] = d.deal_from_lead("transport", manager="vera", company_id="hooli", amount=Decimal(70))
    d.close(ids["f"], "lost", "price")

    # a hand-off to engineering sent by hand on deal a, taken by igor
    clock.advance(minutes=1)
    ids["req_g"] = d.request(ids["a"], "engineering", notes="check the floor")
    d.take(ids["req_g"], "igor")

    # client assignments: five for boris, a sixth over his cap waits for approval; acme
    # to vera
    for n in range(1, 6):
        clock.advance(minutes=1)
        d.assign(f"client-{n}", "transport", "boris")
    clock.advance(minutes=1)
    times["approval"] = clock.now
    d.assign("client-6", "transport", "boris")
    clock.advance(minutes=1)
    d.assign("acme", "turnkey", "vera")

    # a lead whose answer was due yesterday: a reminder to its manager
    clock.advance(minutes=1)
    times["lead_reminder"] = clock.now
    lead_id = d.lead(answer_due=date(2026, 1, 4), manager="boris")
    d.remind_lead(lead_id, date(2026, 1, 4), "boris")
    return Pipeline(d, ids, times, lead_id)


def get(client: TestClient, platform: Platform, path: str, **params: Any) -> dict[str, Any]:
    """GET with every command in the read models; the 200 answer."""
    query = {"min_position": platform.store.last_position(), **params}
    response = client.get(path, params=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(client: TestClient, path: str, **params: Any) -> str:
    """The field a 422 answer names."""
    response = client.get(path, params=params)
    assert response.status_code == 422, response.text
    field: str = response.json()["field"]
    return field


def ids_of(body: dict[str, Any], key: str) -> list[str]:
    return [item[key] for item in body["items"]]


# --- deals ------------------------------------------------------------------------------


def test_deals_newest_first_with_filters_and_pages(
    client: TestClient, platform: Platform, pipeline: Pipeline
) -> None:
    ids = {k: str(v) for k, v in pipeline.ids.items()}
    body = get(client, platform, "/deals")
    assert body["total"] == 6
    assert ids_of(body, "deal_id") == [ids[k] for k in "fedcba"]

    page = get(client, platform, "/deals", limit=2, offset=2)
    assert (page["total"], page["limit"], page["offset"]) == (6, 2, 2)
    assert ids_of(page, "deal_id") == [ids["d"], ids["c"]]
    assert ids_of(get(client, platform, "/deals", limit=4, offset=4), "deal_id") == [
        ids["b"],
        ids["a"],
    ]
    assert get(client, platform, "/deals", offset=10)["items"] == []

    def matching(**filters: Any) -> list[str]:
        found = get(client, platform, "/deals", **filters)
        assert found["total"] == len(found["items"])
        return sorted(ids_of(found, "deal_id"))

    def deals(*keys: str) -> list[str]:
        return sorted(ids[k] for k in keys)

    assert matching(status="open") == deals("a", "b", "c", "d")
    assert matching(status="won") == deals("e")
    assert matching(funnel="turnkey") == deals("d")
    assert matching(funnel="transport", stage="estimate") == deals("b")
    assert matching(stage="estimate") == deals("b", "d")
    assert matching(manager="vera") == deals("a", "d", "f")
    assert matching(company_id="acme") == deals("a", "d")
    assert matching(manager="boris", status="open") == deals("b", "c")
    assert matching(**{"from": iso(pipeline.times["d"])}) == deals("d", "e", "f")
    assert matching(**{"to": iso(pipeline.times["b"])}) == deals("a", "b")
    a = next(i for i in body["items"] if i["deal_id"] == ids["a"])
    assert matching(lead_id=a["lead_id"]) == deals("a")
    assert (a["stage"], a["status"], a["amount"], a["estimate_price"]) == (
        "estimate_ready",
        "open",
        "100.00",
        "800.00",
    )
    assert (a["estimated_by"], a["estimate_seconds"]) == (["lena"], 4 * 3600)
    assert (a["requests"], a["open_requests"]) == (2, 2)
    e = next(i for i in body["items"] if i["deal_id"] == ids["e"])
    assert (e["amount"], e["proposal_total"], e["invoiced_total"], e["invoices"]) == (
        "1234.56",
        "1234.56",
        "1234.56",
        1,
    )
    assert e["contract_number"] == "K-1"
    c = next(i for i in body["items"] if i["deal_id"] == ids["c"])
    assert (c["stage"], c["open_requests"]) == ("new", 0)
    assert c["estimate_rejection"] == "logistics rejected the request: the line is closed"


def test_deal_filters_refuse_bad_values_naming_the_field(client: TestClient) -> None:
    assert refused(client, "/deals", status="pending") == "status"
    assert refused(client, "/deals", funnel="court") == "funnel"  # a lead funnel
    assert refused(client, "/deals", funnel="upsell", stage="estimate") == "stage"
    assert refused(client, "/deals", stage="nowhere") == "stage"
    assert refused(client, "/deals", lead_id="not-a-uuid") == "lead_id"
    assert refused(client, "/deals", limit=0) == "limit"
    assert refused(client, "/deals", limit=501) == "limit"
    assert refused(client, "/deals", offset=-1) == "offset"
    assert refused(client, "/deals", **{"from": "yesterday"}) == "from"
    assert refused(client, "/deals", min_position=-1) == "min_position"


# --- hand-off requests ------------------------------------------------------------------


def test_handoffs_with_filters(client: TestClient, platform: Platform, pipeline: Pipeline) -> None:
    ids = {k: str(v) for k, v in pipeline.ids.items()}
    body = get(client, platform, "/handoffs")
    assert body["total"] == 5
    assert ids_of(body, "request_id") == [ids[k] for k in ("req_g", "req_d", "req_c", "req_b")] + [
        ids["req_a"]
    ]

    def matching(**filters: Any) -> list[str]:
        found = get(client, platform, "/handoffs", **filters)
        assert found["total"] == len(found["items"])
        return sorted(ids_of(found, "request_id"))

    def requests(*keys: str) -> list[str]:
        return sorted(ids[f"req_{k}"] for k in keys)

    assert matching(department="logistics") == requests("a", "b", "c", "d")
    assert matching(department="engineering") == requests("g")
    assert matching(status="open") == requests("d")
    assert matching(status="in_work") == requests("g")
    assert matching(status="ready") == requests("a")
    assert matching(status="done") == requests("b")
    assert matching(status="rejected") == requests("c")
    assert matching(assignee="lena") == requests("a", "c")
    assert matching(deal_id=ids["a"]) == requests("a", "g")
    assert matching(department="logistics", stage="approval") == requests("a")
    assert matching(**{"to": iso(pipeline.times["req_a"])}) == requests("a")

    page = get(client, platform, "/handoffs", limit=2, offset=1)
    assert (page["total"], ids_of(page, "request_id")) == (5, [ids["req_d"], ids["req_c"]])

    a = next(i for i in body["items"] if i["request_id"] == ids["req_a"])
    assert (a["assignee"], a["take_seconds"], a["estimate_seconds"]) == ("lena", 7200, 14400)
    assert (a["price"], a["contractor_id"], a["contractor_name"]) == (
        "800.00",
        ids["fast"],
        "Fast Trucks",
    )
    assert (a["own_equipment"], a["service"], a["round"]) == (False, "truck", 2)
    d = next(i for i in body["items"] if i["request_id"] == ids["req_d"])
    assert (d["reminded"], d["escalated"], d["assignee"], d["taken_at"]) == (
        True,
        True,
        None,
        None,
    )
    c = next(i for i in body["items"] if i["request_id"] == ids["req_c"])
    assert c["rejection_reason"] == "the line is closed"


def test_handoff_filters_refuse_bad_values(client: TestClient) -> None:
    assert refused(client, "/handoffs", status="waiting") == "status"
    assert refused(client, "/handoffs", department="legal") == "department"
    assert refused(client, "/handoffs", department="logistics", stage="nowhere") == "stage"
    assert refused(client, "/handoffs", deal_id="42") == "deal_id"


def test_min_position_reads_a_write_at_once(
    client: TestClient, platform: Platform, pipeline: Pipeline
) -> None:
    result = pipeline.driver.take(pipeline.ids["req_d"], "oleg")
    response = client.get(
        "/handoffs",
        params={"assignee": "oleg", "status": "in_work", "min_position": result.position},
    )
    assert response.status_code == 200, response.text
    assert ids_of(response.json(), "request_id") == [str(pipeline.ids["req_d"])]
    load = client.get("/reports/department-load", params={"min_position": result.position})
    logistics = next(d for d in load.json()["departments"] if d["department"] == "logistics")
    assert logistics["people"] == [
        {"assignee": "lena", "open_requests": 1},
        {"assignee": "oleg", "open_requests": 1},
    ]


# --- contractors ------------------------------------------------------------------------


def test_contractors_with_ratings_and_average_prices(
    client: TestClient, platform: Platform, pipeline: Pipeline
) -> None:
    ids = {k: str(v) for k, v in pipeline.ids.items()}
    body = get(client, platform, "/contractors")
    assert body["total"] == 3
    assert [i["name"] for i in body["items"]] == ["Crane Co", "Fast Trucks", "Rail Partners"]
    cranes, fast, rail = body["items"]
    assert (fast["quotes"], fast["average_rating"]) == (2, "4.50")
    assert fast["prices"] == [{"service": "truck", "quotes": 2, "average_price": "700.00"}]
    assert datetime.fromisoformat(fast["last_used_at"]) == pipeline.times["fast_last_used"]
    assert (rail["quotes"], rail["average_rating"]) == (1, "3.00")
    assert rail["prices"] == [{"service": "rail", "quotes": 1, "average_price": "1000.00"}]
    assert (cranes["quotes"], cranes["average_rating"], cranes["last_used_at"]) == (0, None, None)
    assert cranes["prices"] == []
    assert fast["services"] == ["truck", "crane"]

    crane = get(client, platform, "/contractors", service="crane")
    assert (crane["total"], ids_of(crane, "contractor_id")) == (2, [ids["cranes"], ids["fast"]])
    assert ids_of(get(client, platform, "/contractors", service="rail"), "contractor_id") == [
        ids["rail"]
    ]
    assert get(client, platform, "/contractors", service="boat")["total"] == 0
    page = get(client, platform, "/contractors", limit=1, offset=1)
    assert (page["total"], ids_of(page, "contractor_id")) == (3, [ids["fast"]])
    assert refused(client, "/contractors", limit=1000) == "limit"


def test_contractor_card_and_unknown_contractor(
    client: TestClient, platform: Platform, pipeline: Pipeline
) -> None:
    ids = {k: str(v) for k, v in pipeline.ids.items()}
    card = get(client, platform, f"/contractors/{ids['fast']}")
    assert (card["name"], card["contacts"], card["quotes"]) == ("Fast Trucks", "+1 555 0100", 2)
    assert (card["average_rating"], card["prices"][0]["average_price"]) == ("4.50", "700.00")
    # newest first: deal b's quote, then deal a's
    assert [(q["request_id"], q["deal_id"], q["price"], q["rating"]) for q in card["history"]] == [
        (ids["req_b"], ids["b"], "600.00", 5),
        (ids["req_a"], ids["a"], "800.00", 4),
    ]
    assert card["history"][0]["quoted_by"] == "anna.sales"
    older = get(client, platform, f"/contractors/{ids['fast']}", limit=1, offset=1)
    assert [q["request_id"] for q in older["history"]] == [ids["req_a"]]
    assert (older["history_limit"], older["history_offset"], older["quotes"]) == (1, 1, 2)

    unknown = client.get(f"/contractors/{uuid4()}")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "not_found"
    # a deal's id is no contractor's
    assert client.get(f"/contractors/{ids['a']}").status_code == 404
    assert refused(client, "/contractors/not-a-uuid") == "contractor_id"


# --- alerts -----------------------------------------------------------------------------


def test_alerts_newest_first_with_filters(
    client: TestClient, platform: Platform, pipeline: Pipeline
) -> None:
    ids = {k: str(v) for k, v in pipeline.ids.items()}
    body = get(client, platform, "/alerts")
    assert body["total"] == 4
    assert [(a["kind"], a["subject_type"], a["recipient"]) for a in body["items"]] == [
        ("reminder", "lead", "boris"),
        ("approval_request", "client_assignment", "head.of.sales"),
        ("escalation", "handoff", "logistics.head"),
        ("reminder", "handoff", "logistics"),
    ]
    lead_alert, approval, escalation, reminder = body["items"]
    assert lead_alert["subject_id"] == str(pipeline.lead_id)
    assert lead_alert["due"] == "2026-01-04"
    assert reminder["subject_id"] == escalation["subject_id"] == ids["req_d"]
    assert datetime.fromisoformat(reminder["raised_at"]) == pipeline.times["reminded"]
    assert "client-6" in approval["detail"]
    assert "boris" in approval["detail"]
    assert reminder["due"] is None

    def kinds(**filters: Any) -> list[tuple[str, str]]:
        found = get(client, platform, "/alerts", **filters)
        assert found["total"] == len(found["items"])
        return [(a["kind"], a["subject_type"]) for a in found["items"]]

    assert kinds(kind="reminder") == [("reminder", "lead"), ("reminder", "handoff")]
    assert kinds(subject_type="handoff") == [("escalation", "handoff"), ("reminder", "handoff")]
    assert kinds(recipient="head.of.sales") == [("approval_request", "client_assignment")]
    assert kinds(subject_id=ids["req_d"], kind="escalation") == [("escalation", "handoff")]
    start = pipeline.times["escalated"]
    assert kinds(**{"from": iso(start), "to": iso(pipeline.times["approval"])}) == [
        ("approval_request", "client_assignment"),
        ("escalation", "handoff"),
    ]
    assert kinds(**{"to": iso(start - timedelta(seconds=1))}) == [("reminder", "handoff")]
    page = get(client, platform, "/alerts", limit=2, offset=3)
    assert (page["total"], len(page["items"])) == (4, 1)
    assert page["items"][0]["alert_id"] == reminder["alert_id"]

    assert refused(client, "/alerts", kind="warning") == "kind"
    assert refused(client, "/alerts", subject_type="contract") == "subject_type"
    assert refused(client, "/alerts", subject_id="x") == "subject_id"
    assert refused(client, "/alerts", **{"from": "2026-02-01", "to": "2026-01-01"}) == "from"


# --- client assignments -----------------------------------------------------------------


def test_client_assignments_with_filters(
    client: TestClient, platform: Platform, pipeline: Pipeline
) -> None:
    body = get(client, platform, "/client-assignments")
    assert body["total"] == 7
    # the most recently changed first
    assert [(i["company_id"], i["status"]) for i in body["items"][:2]] == [
        ("acme", "assigned"),
        ("client-6", "pending_approval"),
    ]

    def companies(**filters: Any) -> list[str]:
        found = get(client, platform, "/client-assignments", **filters)
        assert found["total"] == len(found["items"])
        return sorted(i["company_id"] for i in found["items"])

    boris = [f"client-{n}" for n in range(1, 7)]
    assert companies(manager="boris") == boris  # owned, or asked for
    assert companies(manager="vera") == ["acme"]
    assert companies(status="pending_approval") == ["client-6"]
    assert companies(status="assigned", manager="boris") == boris[:5]
    assert companies(status="declined") == []
    assert companies(direction="turnkey") == ["acme"]
    assert companies(company_id="client-3") == ["client-3"]

    pending = next(i for i in body["items"] if i["company_id"] == "client-6")
    assert (pending["manager"], pending["requested_manager"], pending["approver"]) == (
        None,
        "boris",
        "head.of.sales",
    )
    assert pending["month"] == "2026-01"

    page = get(client, platform, "/client-assignments", limit=3, offset=6)
    assert (page["total"], len(page["items"])) == (7, 1)
    assert refused(client, "/client-assignments", status="approved") == "status"


# --- reports ----------------------------------------------------------------------------


def _stages(funnel: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [(s["stage"], s["count"], s["amount"]) for s in funnel["stages"]]


def test_deal_pipeline_report(client: TestClient, platform: Platform, pipeline: Pipeline) -> None:
    report = get(client, platform, "/reports/deal-pipeline")
    assert [f["funnel"] for f in report["funnels"]] == [
        "turnkey",
        "transport",
        "upsell",
        "expert_services",
    ]
    turnkey, transport, upsell, _ = report["funnels"]
    # open: a (estimate_ready, 100), b (estimate, 250), c (new, 400); e won, f lost
    assert _stages(transport) == [
        ("new", 1, "400.00"),
        ("estimate", 1, "250.00"),
        ("estimate_ready", 1, "100.00"),
        ("proposal", 0, "0.00"),
        ("contract", 0, "0.00"),
        ("invoice", 0, "0.00"),
    ]
    assert transport["open"] == {"count": 3, "amount": "750.00"}
    assert transport["won"] == {"count": 1, "amount": "1234.56"}
    assert transport["lost"] == {"count": 1, "amount": "70.00"}
    assert _stages(turnkey)[:2] == [("new", 0, "0.00"), ("estimate", 1, "0.00")]
    assert turnkey["open"] == {"count": 1, "amount": "0.00"}
    assert all(s["count"] == 0 for s in upsell["stages"])
    assert [s["stage"] for s in upsell["stages"]] == ["new", "proposal", "contract", "invoice"]

    boris = get(client, platform, "/reports/deal-pipeline", funnel="transport", manager="boris")
    assert boris["manager"] == "boris"
    [only] = boris["funnels"]
    assert _stages(only)[:3] == [
        ("new", 1, "400.00"),
        ("estimate", 1, "250.00"),
        ("estimate_ready", 0, "0.00"),
    ]
    assert (only["open"], only["won"], only["lost"]) == (
        {"count": 2, "amount": "650.00"},
        {"count": 1, "amount": "1234.56"},
        {"count": 0, "amount": "0.00"},
    )
    since_d = get(client, platform, "/reports/deal-pipeline", **{"from": iso(pipeline.times["d"])})
    assert since_d["funnels"][1]["open"] == {"count": 0, "amount": "0.00"}
    assert since_d["funnels"][0]["open"] == {"count": 1, "amount": "0.00"}
    assert refused(client, "/reports/deal-pipeline", funnel="nope") == "funnel"


def test_handoff_report(client: TestClient, platform: Platform, pipeline: Pipeline) -> None:
    ids = {k: str(v) for k, v in pipeline.ids.items()}
    report = get(client, platform, "/reports/handoffs", department="logistics")
    assert report["total"] == 4
    # taken: a in 7200 s, b in 1800 s, c at once; estimated: a in 14400 s, b in 1800 s
    assert report["summary"] == {
        "requests": 4,
        "taken": 3,
        "estimated": 2,
        "average_take_seconds": (7200 + 1800 + 0) / 3,
        "average_estimate_seconds": (14400 + 1800) / 2,
        "total_price": "2400.00",
    }
    rows = {r["request_id"]: r for r in report["items"]}
    a = rows[ids["req_a"]]
    assert (a["department"], a["deal_id"], a["deal_title"], a["assignee"]) == (
        "logistics",
        ids["a"],
        "Move a press",
        "lena",
    )
    assert (a["take_seconds"], a["estimate_seconds"], a["price"], a["status"]) == (
        7200,
        14400,
        "800.00",
        "ready",
    )
    d = rows[ids["req_d"]]
    assert (d["assignee"], d["take_seconds"], d["price"], d["status"]) == (None, None, None, "open")
    assert rows[ids["req_c"]]["status"] == "rejected"

    everything = get(client, platform, "/reports/handoffs")
    assert everything["total"] == everything["summary"]["requests"] == 5
    page = get(client, platform, "/reports/handoffs", limit=2, offset=4)
    assert [r["request_id"] for r in page["items"]] == [ids["req_a"]]
    assert page["summary"]["requests"] == 5  # the summary covers every page
    later = get(client, platform, "/reports/handoffs", **{"from": iso(pipeline.times["d"])})
    assert sorted(r["request_id"] for r in later["items"]) == sorted([ids["req_d"], ids["req_g"]])
    assert refused(client, "/reports/handoffs", department="sales") == "department"
    assert refused(client, "/reports/handoffs", limit=0) == "limit"


def test_department_load(client: TestClient, platform: Platform, pipeline: Pipeline) -> None:
    report = get(client, platform, "/reports/department-load")
    by_department = {d["department"]: d for d in report["departments"]}
    assert list(by_department) == list(platform.rules.departments)
    logistics = by_department["logistics"]
    # a (ready, lena) and d (not taken) are open; b is done and c rejected
    assert logistics["open_requests"] == 2
    assert logistics["by_status"] == {"open": 1, "in_work": 0, "ready": 1}
    assert logistics["people"] == [
        {"assignee": "lena", "open_requests": 1},
        {"assignee": "unassigned", "open_requests": 1},
    ]
    engineering = by_department["engineering"]
    assert (engineering["name"], engineering["open_requests"]) == ("Engineering", 1)
    assert engineering["people"] == [{"assignee": "igor", "open_requests": 1}]


def test_every_department_is_listed_with_nothing_open(client: TestClient) -> None:
    response = client.get("/reports/department-load")
    assert response.status_code == 200
    assert [
        (d["department"], d["open_requests"], d["people"]) for d in response.json()["departments"]
    ] == [("logistics", 0, []), ("engineering", 0, []), ("experts", 0, [])]
    assert client.get("/deals").json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
