"""Projects through HTTP: from a won deal to a paid project, with the process managers
driven step by step and a fake clock."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from commands.projects import project_id_for_deal
from leadledger.wiring import CommandSide, Platform, process_runner
from process_managers.state import DeadlineChanges
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory, bearer
from tests.deal_helpers import SELLER, contracted_deal, ok

PM = bearer("olga.pm", "pm")
FITTER = bearer("ivan.fitter", "top")


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        yield client


def won_deal(api: TestClient) -> str:
    deal_id = contracted_deal(api)
    invoice = {"number": "S-1", "amount": "100.00", "organisation": "main"}
    ok(api.post(f"/deals/{deal_id}/invoice", json=invoice, headers=SELLER))
    ok(api.post(f"/deals/{deal_id}/close", json={"outcome": "won"}, headers=SELLER))
    return deal_id


def project_of(api: TestClient, project_id: UUID | str) -> dict[str, Any]:
    return ok(api.get(f"/projects/{project_id}"))


def test_from_a_won_deal_to_a_paid_project(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    deal_id = won_deal(api)
    deal = ok(api.get(f"/deals/{deal_id}"))
    project_id = project_id_for_deal(UUID(deal_id))
    assert api.get(f"/projects/{project_id}").status_code == 404
    platform.processes.run_once()  # the project appears by itself
    project = project_of(api, project_id)
    assert (project["deal_id"], project["lead_id"], project["funnel"]) == (
        deal_id,
        deal["lead_id"],
        "upsell",
    )
    assert (project["company_name"], project["manager"], project["amount"]) == (
        deal["company_name"],
        deal["manager"],
        deal["amount"],
    )
    assert project["status"] == "planning"
    assert project["department"] == "production"
    assert project["empty_mandatory_fields"] == [
        "pm",
        "curator",
        "category",
        "planned_start",
        "planned_end",
    ]

    card = {
        "pm": "olga.pm",
        "curator": "tech.director",
        "category": "installation",
        "planned_start": "2026-01-05",
        "planned_end": "2026-02-27",
    }
    # a project with no PM is its department head's and top management's: they name one
    unassigned = api.post(f"/projects/{project_id}/card", json=card, headers=PM)
    assert unassigned.status_code == 404, unassigned.text
    ok(api.post(f"/projects/{project_id}/card", json=card, headers=SELLER))
    assert project_of(api, project_id)["empty_mandatory_fields"] == []

    # tasks, one depending on the other
    survey = {
        "task_id": "survey",
        "title": "Site survey",
        "planned_hours": "10",
        "due": "2026-01-07",
    }
    mount = {
        "task_id": "mount",
        "title": "Mounting",
        "planned_hours": "30",
        "depends_on": ["survey"],
    }
    ok(api.post(f"/projects/{project_id}/tasks", json=survey, headers=PM), 201)
    ok(api.post(f"/projects/{project_id}/tasks", json=mount, headers=PM), 201)
    early = api.post(f"/projects/{project_id}/tasks/mount/complete", headers=PM)
    assert early.status_code == 409
    assert early.json()["rule"] == "dependency_not_done"

    # hours: logged, corrected by a new event, capped at 24 a day across projects
    logged = ok(
        api.post(
            f"/projects/{project_id}/hours",
            json={"day": "2026-01-05", "hours": "7.5", "task_id": "survey"},
            headers=FITTER,
        ),
        201,
    )
    over = api.post(
        f"/projects/{project_id}/hours", json={"day": "2026-01-05", "hours": "17"}, headers=FITTER
    )
    assert over.status_code == 409
    assert (over.json()["rule"], over.json()["logged"]) == ("day_over_24_hours", "7.50")
    fix = {"hours": "6.5", "reason": "left early"}
    ok(
        api.post(
            f"/projects/{project_id}/hours/{logged['entry_id']}/correction",
            json=fix,
            headers=FITTER,
        )
    )
    ok(api.post(f"/projects/{project_id}/tasks/survey", json={"percent_done": 50}, headers=PM))
    project = project_of(api, project_id)
    assert Decimal(project["actual_hours"]) == Decimal("6.5")
    assert project["tasks"][0]["actual_hours"] == "6.50"
    assert project["percent_done"] == pytest.approx(50 * 10 / 40)
    platform.processes.run_once()
    assert project_of(api, project_id)["health"]["computed"] == "good"

    # planning is held past its 120 h limit and the survey passes its due date
    ok(api.post(f"/projects/{project_id}/status", json={"status": "in_production"}, headers=PM))
    ok(api.post(f"/projects/{project_id}/status", json={"status": "planning"}, headers=PM))
    clock.advance(hours=72)  # Jan 8, 09:00: the survey (due Jan 7) is overdue
    platform.processes.run_once()
    health = project_of(api, project_id)["health"]
    assert health["computed"] == "some_difficulties"
    assert health["computed_reasons"] == ["1 overdue task(s): survey"]
    clock.advance(hours=48, microseconds=1)  # planning entered Jan 5 09:00 → over 120 h
    platform.processes.run_once()
    health = project_of(api, project_id)["health"]
    assert health["computed_reasons"] == [
        "1 overdue task(s): survey",
        "'planning' for longer than its 120 h limit",
    ]
    # the PM overrides it by hand, then clears the override
    ok(
        api.post(
            f"/projects/{project_id}/health",
            json={"level": "good", "comment": "agreed"},
            headers=PM,
        )
    )
    assert project_of(api, project_id)["health"]["effective"] == "good"
    ok(api.post(f"/projects/{project_id}/health/clear", headers=PM))
    assert project_of(api, project_id)["health"]["effective"] == "some_difficulties"

    # the deal's invoice S-1 (100.00) came with the project; then invoices, a partial
    # payment, an overpayment refused, the full payments; the project's amount is 1500.00,
    # so the payment status and what is left are measured against it
    assert [i["number"] for i in project_of(api, project_id)["payments"]["invoices"]] == ["S-1"]
    ok(api.post(f"/projects/{project_id}/card", json={"amount": "1500.00"}, headers=PM))
    invoice = {"number": "P-1", "amount": "1000.00", "due_date": "2026-01-20"}
    ok(api.post(f"/projects/{project_id}/invoices", json=invoice, headers=PM), 201)
    pay = f"/projects/{project_id}/invoices/P-1/payments"
    ok(api.post(pay, json={"amount": "400.00", "paid_on": "2026-01-10"}, headers=PM), 201)
    payments = project_of(api, project_id)["payments"]
    assert (payments["status"], payments["remaining"], payments["invoiced_unpaid"]) == (
        "partially_paid",
        "1100.00",
        "700.00",
    )
    refused = api.post(pay, json={"amount": "600.01", "paid_on": "2026-01-11"}, headers=PM)
    assert refused.status_code == 409
    assert (refused.json()["rule"], refused.json()["remaining"]) == ("overpayment", "600.00")
    ok(api.post(pay, json={"amount": "600.00", "paid_on": "2026-01-11"}, headers=PM), 201)
    deal_pay = f"/projects/{project_id}/invoices/S-1/payments"
    ok(api.post(deal_pay, json={"amount": "100.00", "paid_on": "2026-01-11"}, headers=PM), 201)
    payments = project_of(api, project_id)["payments"]
    assert (payments["status"], payments["paid"], payments["remaining"]) == (
        "partially_paid",
        "1100.00",
        "400.00",
    )
    assert (payments["invoiced_unpaid"], payments["measured_against"]) == ("0.00", "amount")

    # --- every read model, against figures worked out here ---
    wait = {"min_position": platform.store.last_position()}
    [row] = ok(api.get("/projects", params={**wait, "pm": "olga.pm"}))["items"]
    assert row["project_id"] == str(project_id)
    assert (row["status"], row["health"], row["computed_health"]) == (
        "planning",
        "some_difficulties",
        "some_difficulties",
    )
    assert (Decimal(row["planned_hours"]), Decimal(row["actual_hours"])) == (
        Decimal(40),
        Decimal("6.5"),
    )
    assert row["percent_done"] == pytest.approx(12.5)
    assert (row["payment_status"], Decimal(row["remaining"])) == ("partially_paid", Decimal(400))
    assert Decimal(row["invoiced_unpaid"]) == 0
    assert row["empty_mandatory_fields"] == []

    # status-time: planning Jan 5 09:00 → 09:00 (in_production, no time passed), then
    # planning again from Jan 5 09:00 until now (Jan 10 09:00:00.000001), over its 120 h
    visits = sorted(
        ok(api.get("/reports/status-time", params={**wait, "kind": "project", "pm": "olga.pm"}))[
            "items"
        ],
        key=lambda v: v["visit_no"],
    )
    assert [(v["stage"], v["open"]) for v in visits] == [
        ("planning", False),
        ("in_production", False),
        ("planning", True),
    ]
    assert visits[-1]["seconds"] == pytest.approx(120 * 3600 + 1e-6)
    assert (visits[-1]["over_limit"], visits[-1]["over_limit_now"]) == (True, True)
    summary = ok(
        api.get("/reports/status-time/summary", params={**wait, "kind": "project", "pm": "olga.pm"})
    )
    planning = next(s for s in summary["stages"] if s["stage"] == "planning")
    assert planning["visits"] == 2
    assert planning["total_seconds"] == pytest.approx(
        sum(v["seconds"] for v in visits if v["stage"] == "planning")
    )
    assert planning["current_over_limit"] == 1

    # plan/fact for January: 40 h planned, 6.5 h logged (the corrected entry)
    plan_fact = ok(
        api.get(
            "/reports/plan-fact",
            params={**wait, "from": "2026-01-01", "to": "2026-01-31", "pm": "olga.pm"},
        )
    )
    [line] = plan_fact["items"]
    assert (Decimal(line["planned_hours"]), Decimal(line["period_hours"])) == (
        Decimal(40),
        Decimal("6.5"),
    )
    assert Decimal(line["deviation_hours"]) == Decimal("-33.5")
    # the fitter's load in the week of Jan 5 to 9: 6.5 h of the calendar's 32 h (Jan 7 is a
    # holiday in the packaged production calendar)
    load = ok(
        api.get(
            "/reports/resource-load",
            params={**wait, "from": "2026-01-05", "to": "2026-01-09", "person": "ivan.fitter"},
        )
    )
    [person] = load["items"]
    assert (Decimal(person["logged_hours"]), Decimal(person["calendar_hours"])) == (
        Decimal("6.5"),
        Decimal(32),
    )
    deviations = ok(
        api.get("/reports/deviations", params={**wait, "from": "2026-01-05", "to": "2026-01-09"})
    )
    fitter = next(p for p in deviations["people"]["items"] if p["person"] == "ivan.fitter")
    assert Decimal(fitter["missing_hours"]) == Decimal("25.5")
    payments = ok(
        api.get("/reports/payments", params={**wait, "from": "2026-01-01", "to": "2026-01-31"})
    )
    [billed] = [i for i in payments["items"] if i["project_id"] == str(project_id)]
    assert (
        Decimal(billed["invoiced"]),
        Decimal(billed["paid"]),
        Decimal(billed["outstanding"]),
    ) == (
        Decimal(1100),
        Decimal(1100),
        Decimal(0),
    )

    # the whole story is in the project's history, computed health included
    types = [e["type"] for e in ok(api.get(f"/projects/{project_id}/history"))["events"]]
    assert types[0] == "ProjectCreated"
    assert types.count("ProjectHealthComputed") == 2
    assert "HoursCorrected" in types


def test_redelivery_and_restart_of_project_creation_create_one_project(
    api: TestClient, platform: Platform
) -> None:
    deals = [won_deal(api) for _ in range(3)]
    platform.processes.run_once()
    # every position forgotten, then a second runner as if another worker had started
    for manager in platform.processes.managers:
        platform.processes.state.advance(manager.name, 0, DeadlineChanges())
    platform.processes.run_once()
    other = CommandSide(
        platform.settings, platform.funnels, platform.rules, platform.store, platform.clock
    )
    process_runner(other).run_once()
    created = Counter(
        row[3] for row in platform.store.read_rows(0, 1_000_000) if row[3] == "ProjectCreated"
    )
    assert created["ProjectCreated"] == len(deals)
    for deal_id in deals:
        assert project_of(api, project_id_for_deal(UUID(deal_id)))["deal_id"] == deal_id


def test_a_lost_deal_gets_no_project_and_projects_start_directly_too(
    api: TestClient, platform: Platform
) -> None:
    deal_id = contracted_deal(api)
    lost = {"outcome": "lost", "reason": "budget cut"}
    ok(api.post(f"/deals/{deal_id}/close", json=lost, headers=SELLER))
    platform.processes.run_once()
    assert api.get(f"/projects/{project_id_for_deal(UUID(deal_id))}").status_code == 404
    body = {"title": "Internal tooling", "company_name": "LeadLedger", "pm": "olga.pm"}
    created = ok(api.post("/projects", json=body, headers=PM), 201)
    project = project_of(api, created["project_id"])
    assert (project["deal_id"], project["pm"], project["status"]) == (None, "olga.pm", "planning")
