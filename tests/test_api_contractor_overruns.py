"""Contractor quality rated on the work done, through HTTP (issue 13, §2): the delivery
of a contracted job (``POST /handoffs/{id}/delivery``), the directory's delivered figures
apart from the quote-time rating, and ``GET /reports/contractor-overruns`` filtered by the
parent deal's manager, funnel and sale period, scoped like its neighbours."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock
from tests.deal_helpers import ENGINEER, LOGISTICIAN, SELLER, new_deal, ok, register_contractor
from tests.test_access import USERS, _directory, settle

START = date(2026, 1, 5)
"""The fake clock's first day: every deal below is won on it."""


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        _directory(client)
        yield client


def sold_job(
    api: TestClient,
    contractor_id: str | None,
    *,
    manager: str = "mia.manager",
    funnel: str = "upsell",
    lead_time_days: int = 3,
    rating: int = 4,
    won: bool = True,
) -> tuple[str, str]:
    """A deal whose logistics request priced the job (a contractor, or own equipment when
    None), at approval; won (its open requests are cancelled with it) unless told not."""
    deal_id = new_deal(api, funnel=funnel, manager=manager)
    created = api.post(f"/deals/{deal_id}/requests", json={"department": "logistics"})
    request_id: str = ok(created, 201)["request_id"]
    ok(api.post(f"/handoffs/{request_id}/take", headers=LOGISTICIAN))
    estimate: dict[str, Any] = {
        "service": "heavy haulage",
        "cost": "900.00",
        "lead_time_days": lead_time_days,
    }
    if contractor_id is None:
        estimate["own_equipment"] = True
    else:
        estimate.update(contractor_id=contractor_id, rating=rating)
    ok(api.post(f"/handoffs/{request_id}/estimate", json=estimate, headers=LOGISTICIAN))
    ok(api.post(f"/handoffs/{request_id}/stage", json={"stage": "approval"}, headers=LOGISTICIAN))
    if won:
        proposal = {"services": [{"name": "transport", "price": "1000.00"}]}
        ok(api.post(f"/deals/{deal_id}/proposal", json=proposal, headers=SELLER))
        contract = {"number": "C-1", "signed_on": "2026-01-05"}
        ok(api.post(f"/deals/{deal_id}/contract", json=contract, headers=SELLER))
        invoice = {"number": "INV-1", "amount": "1000.00", "organisation": "main"}
        ok(api.post(f"/deals/{deal_id}/invoice", json=invoice, headers=SELLER))
        ok(api.post(f"/deals/{deal_id}/close", json={"outcome": "won"}, headers=SELLER))
    return deal_id, request_id


def deliver(
    api: TestClient,
    request_id: str,
    completed_on: date,
    rating: int = 4,
    headers: dict[str, str] = LOGISTICIAN,
) -> Any:
    body = {"completed_on": completed_on.isoformat(), "rating": rating, "notes": "by road"}
    return api.post(f"/handoffs/{request_id}/delivery", json=body, headers=headers)


def refused(response: Any, status: int, **expected: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    for key, value in expected.items():
        assert body.get(key) == value, body
    return body


# --- the delivery ------------------------------------------------------------------------


def test_the_logistician_records_the_delivery_of_a_sold_job(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    contractor_id = register_contractor(api)
    deal_id, request_id = sold_job(api, contractor_id, lead_time_days=3)
    clock.advance(days=10)
    accepted = ok(deliver(api, request_id, START + timedelta(days=5), rating=2))
    assert accepted["request_id"] == request_id
    detail = ok(api.get(f"/handoffs/{request_id}"))
    assert detail["delivery"] == {
        "contracted_on": "2026-01-05",
        "planned_on": "2026-01-08",
        "completed_on": "2026-01-10",
        "days_late": 2,
        "rating": 2,
        "notes": "by road",
        "recorded_at": detail["delivery"]["recorded_at"],
        "recorded_by": "lev.logistics",
    }
    history = ok(api.get(f"/contractors/{contractor_id}/history"))["events"]
    assert [e["type"] for e in history][-1] == "ContractorDeliveryRecorded"
    settle(platform)
    card = ok(api.get(f"/contractors/{contractor_id}"))
    [row] = card["deliveries"]
    assert (row["request_id"], row["deal_id"], row["days_late"], row["overrun"]) == (
        request_id,
        deal_id,
        2,
        True,
    )


def test_the_delivery_is_the_logistics_departments_its_heads_or_tops(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    contractor_id = register_contractor(api)
    _, request_id = sold_job(api, contractor_id)
    clock.advance(days=4)
    settle(platform)
    refused(deliver(api, request_id, START, headers=USERS["mia"]), 403, rule="role_not_allowed")
    # the sales head sees the request (her manager's deal) but works in another department
    hana = deliver(api, request_id, START, headers=USERS["hana"])
    refused(hana, 403, rule="not_your_department")
    # an engineer does not even see it
    refused(deliver(api, request_id, START, headers=ENGINEER), 404, code="not_found")
    ok(deliver(api, request_id, START, headers=USERS["lara"]))
    # once per job
    body = refused(deliver(api, request_id, START, headers=ACTOR), 409, rule="already_delivered")
    assert "2026-01-05" in body["detail"]


def test_own_equipment_an_open_deal_and_bad_values_are_refused_writing_nothing(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    contractor_id = register_contractor(api)
    _, own = sold_job(api, None)
    _, not_won = sold_job(api, contractor_id, won=False)
    _, sold = sold_job(api, contractor_id)
    clock.advance(days=2)
    refused(deliver(api, own, START), 409, rule="no_contractor")
    refused(deliver(api, not_won, START), 409, rule="deal_not_won")
    refused(deliver(api, sold, START - timedelta(days=1)), 422, field="completed_on")
    refused(deliver(api, sold, START + timedelta(days=3)), 422, field="completed_on")
    refused(deliver(api, sold, START, rating=6), 422, field="rating")
    response = api.post(f"/handoffs/{sold}/delivery", json={"completed_on": "2026-01-05"})
    assert response.status_code == 422, response.text
    topics = {row[3] for row in platform.store.read_rows(0, 1_000_000)}
    assert not topics & {"HandoffDeliveryRecorded", "ContractorDeliveryRecorded"}


# --- the directory: quote-time vs delivered ---------------------------------------------


def test_the_directory_shows_the_quote_time_and_the_delivered_rating_apart(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    contractor_id = register_contractor(api)
    jobs = [sold_job(api, contractor_id, lead_time_days=4, rating=5) for _ in range(3)]
    clock.advance(days=20)
    # on time (day 3 of 4), 2 days late, 6 days late
    for (_, request_id), (after, rating) in zip(jobs, ((3, 4), (6, 2), (10, 1)), strict=True):
        ok(deliver(api, request_id, START + timedelta(days=after), rating=rating))
    settle(platform)
    expected = {
        "jobs": 3,
        "rating": "2.33",
        "average_planned_days": "4.00",
        "average_actual_days": "6.33",
        "on_time": 1,
        "overruns": 2,
        "overrun_share": "0.67",
        "average_days_late": "4.00",
    }
    card = ok(api.get(f"/contractors/{contractor_id}"))
    assert (card["average_rating"], card["quotes"]) == ("5.00", 3)
    assert card["delivered"] == expected
    listed = ok(api.get("/contractors"))["items"]
    [entry] = [i for i in listed if i["contractor_id"] == contractor_id]
    assert entry["delivered"] == expected
    # a contractor with no delivery yet
    other = register_contractor(api, "Idle Cranes")
    settle(platform)
    assert ok(api.get(f"/contractors/{other}"))["delivered"] == {
        "jobs": 0,
        "rating": None,
        "average_planned_days": None,
        "average_actual_days": None,
        "on_time": 0,
        "overruns": 0,
        "overrun_share": None,
        "average_days_late": None,
    }


# --- the overruns report ----------------------------------------------------------------


@pytest.fixture
def delivered(api: TestClient, platform: Platform, clock: FakeClock) -> dict[str, tuple[str, str]]:
    """Four delivered jobs of two contractors: mia's (upsell, on time; transport, late) and
    oleg's (upsell, late, won a week later), and one of max's deals, late."""
    volga = register_contractor(api, "Volga Trucks")
    kama = register_contractor(api, "Kama Cranes")
    jobs = {
        "mia_on_time": sold_job(api, volga, manager="mia.manager"),
        "mia_late": sold_job(api, kama, manager="mia.manager", funnel="transport"),
    }
    clock.advance(days=7)
    jobs["oleg_late"] = sold_job(api, volga, manager="oleg.other")
    jobs["max_late"] = sold_job(api, kama, manager="max.manager")
    clock.advance(days=30)
    week = START + timedelta(days=7)
    for name, completed in (
        ("mia_on_time", START + timedelta(days=3)),
        ("mia_late", START + timedelta(days=8)),
        ("oleg_late", week + timedelta(days=4)),
        ("max_late", week + timedelta(days=13)),
    ):
        ok(deliver(api, jobs[name][1], completed))
    settle(platform)
    return {**jobs, "volga": (volga, ""), "kama": (kama, "")}


def report(api: TestClient, headers: dict[str, str] = ACTOR, **query: Any) -> dict[str, Any]:
    return ok(api.get("/reports/contractor-overruns", params=query, headers=headers))


def requests_of(body: dict[str, Any]) -> set[str]:
    return {row["request_id"] for row in body["items"]}


def test_one_row_per_delivered_job_with_its_parent_deal_and_totals(
    api: TestClient, delivered: dict[str, tuple[str, str]]
) -> None:
    body = report(api)
    assert body["total"] == 4
    rows = {row["request_id"]: row for row in body["items"]}
    late = rows[delivered["mia_late"][1]]
    assert {k: late[k] for k in ("contractor_name", "service", "deal_id", "manager", "funnel")} == {
        "contractor_name": "Kama Cranes",
        "service": "heavy haulage",
        "deal_id": delivered["mia_late"][0],
        "manager": "mia.manager",
        "funnel": "transport",
    }
    assert (late["planned_on"], late["completed_on"], late["days_late"]) == (
        "2026-01-08",
        "2026-01-13",
        5,
    )
    assert late["won_at"].startswith("2026-01-05")
    # latest completion first
    assert [row["completed_on"] for row in body["items"]] == sorted(
        (row["completed_on"] for row in body["items"]), reverse=True
    )
    assert body["totals"] == {
        "jobs": 4,
        "rating": "4.00",
        "average_planned_days": "3.00",
        "average_actual_days": "7.00",
        "on_time": 1,
        "overruns": 3,
        "overrun_share": "0.75",
        "average_days_late": "5.33",
        "days_late": 16,
    }


def test_the_report_filters_by_contractor_overrun_and_the_parent_deals_manager_funnel_and_sale(
    api: TestClient, delivered: dict[str, tuple[str, str]]
) -> None:
    volga = delivered["volga"][0]
    assert requests_of(report(api, contractor_id=volga)) == {
        delivered["mia_on_time"][1],
        delivered["oleg_late"][1],
    }
    overruns = report(api, overrun="true")
    assert mia_on_time_absent(overruns, delivered)
    assert overruns["totals"]["on_time"] == 0
    assert requests_of(report(api, manager="mia.manager")) == {
        delivered["mia_on_time"][1],
        delivered["mia_late"][1],
    }
    assert requests_of(report(api, funnel="transport")) == {delivered["mia_late"][1]}
    # the sale period: deals won in the second week
    second_week = report(api, won_from="2026-01-12", won_to="2026-01-12")
    assert requests_of(second_week) == {delivered["oleg_late"][1], delivered["max_late"][1]}
    combined = report(api, contractor_id=volga, overrun="true", won_from="2026-01-10")
    assert requests_of(combined) == {delivered["oleg_late"][1]}
    assert combined["totals"]["days_late"] == 1
    # paging keeps the totals of everything matched
    page = report(api, limit=1, offset=1)
    assert (len(page["items"]), page["total"], page["totals"]["jobs"]) == (1, 4, 4)


def mia_on_time_absent(body: dict[str, Any], delivered: dict[str, tuple[str, str]]) -> bool:
    return delivered["mia_on_time"][1] not in requests_of(body) and body["total"] == 3


def test_bad_report_filters_are_named(api: TestClient) -> None:
    refused(api.get("/reports/contractor-overruns?funnel=nope"), 422, field="funnel")
    refused(api.get("/reports/contractor-overruns?won_from=soon"), 422, field="won_from")
    refused(
        api.get("/reports/contractor-overruns?won_from=2026-02-01&won_to=2026-01-01"),
        422,
        field="won_from",
    )
    response = api.get("/reports/contractor-overruns?contractor_id=nope")
    assert response.status_code == 422, response.text


def test_the_report_and_the_delivered_figures_are_the_viewers(
    api: TestClient, delivered: dict[str, tuple[str, str]]
) -> None:
    every = {delivered[k][1] for k in ("mia_on_time", "mia_late", "oleg_late", "max_late")}
    seen = {who: requests_of(report(api, USERS[who])) for who in USERS if who != "adm"}
    assert seen["top"] == seen["ana"] == seen["aud"] == every
    assert seen["lev"] == seen["lara"] == every  # the logistics department: its own jobs
    assert seen["mia"] == {delivered["mia_on_time"][1], delivered["mia_late"][1]}
    assert seen["hana"] == {delivered[k][1] for k in ("mia_on_time", "mia_late", "max_late")}
    assert seen["oleg"] == {delivered["oleg_late"][1]}
    assert seen["eve"] == seen["pia"] == set()
    refused(api.get("/reports/contractor-overruns", headers=USERS["adm"]), 403)
    # the directory's delivered figures count the same jobs
    volga = delivered["volga"][0]
    mia_card = ok(api.get(f"/contractors/{volga}", headers=USERS["mia"]))
    assert (mia_card["delivered"]["jobs"], mia_card["delivered"]["overruns"]) == (1, 0)
    assert [d["request_id"] for d in mia_card["deliveries"]] == [delivered["mia_on_time"][1]]
    assert ok(api.get(f"/contractors/{volga}", headers=USERS["eve"]))["delivered"]["jobs"] == 0
    assert ok(api.get(f"/contractors/{volga}", headers=USERS["lev"]))["delivered"]["jobs"] == 2
    # and so does the export of the deliveries
    export = api.get("/exports/contractor_deliveries?format=csv", headers=USERS["oleg"])
    assert export.status_code == 200, export.text
    assert delivered["oleg_late"][1] in export.text
    assert delivered["mia_late"][1] not in export.text
