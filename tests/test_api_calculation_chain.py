"""Request for calculation → proposal → launch → act through HTTP (seed 002: «Запросы на
расчет экспертам … КП на базе рассчитанных услуг … Запускать в работу услуги … Закрывать
выполненные работы»), with the process managers driven step by step, the refusals of each
rule, and the read models (incremental in any page size equal to a rebuild)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from commands.projects import project_id_for_deal
from leadledger.wiring import Platform, read_model_projections
from projections.database import ReadModelDatabase
from projections.projector import Projector, rebuild
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory, bearer
from tests.deal_helpers import SELLER, new_deal, ok

EXPERT = bearer("erik.expert", "department", "experts")
LOGISTICIAN = bearer("lev.logistics", "department", "logistics")
PM = bearer("olga.pm", "pm")
MANAGER = bearer("mila.manager", "manager")

CALCULATION = {
    "services": [
        {
            "name": "Financial audit",
            "quantity": "10",
            "unit": "day",
            "price": "1500",
            "hours": "80",
        },
        {"name": "Audit report", "price": "20000.00", "hours": "16"},
    ],
    "notes": "two weeks on site",
}


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        yield client


def refused(response: Any, status: int, **expected: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    for key, value in expected.items():
        assert body[key] == value, body
    return body


def calculated_deal(api: TestClient, platform: Platform, clock: FakeClock) -> tuple[str, str]:
    """A deal of the expert-services funnel whose calculation is ready (the deal moved on
    to ``calculated`` by itself); its id and the request's."""
    deal_id = new_deal(api, funnel="expert_services", title="Financial audit 2026")
    ok(api.post(f"/deals/{deal_id}/stage", json={"stage": "calculation"}, headers=SELLER))
    platform.processes.run_once()  # the estimate hand-off asks the experts
    [view] = ok(api.get(f"/deals/{deal_id}"))["handoffs"]
    assert (view["department"], view["status"]) == ("experts", "open")
    request_id: str = view["request_id"]
    clock.advance(minutes=30)
    ok(api.post(f"/handoffs/{request_id}/take", headers=EXPERT))
    clock.advance(hours=2)
    ok(api.post(f"/handoffs/{request_id}/calculation", json=CALCULATION, headers=EXPERT))
    # not ready yet: the proposal waits for it
    early = api.post(f"/deals/{deal_id}/proposal", json={"calculation": request_id}, headers=SELLER)
    refused(early, 409, rule="calculation_not_ready")
    ok(api.post(f"/handoffs/{request_id}/stage", json={"stage": "approval"}, headers=EXPERT))
    platform.processes.run_once()  # the round is complete: the deal moves on
    return deal_id, request_id


def test_a_calculation_becomes_the_proposal_the_project_tasks_and_closing_acts(
    api: TestClient, platform: Platform, clock: FakeClock, tmp_path: Path
) -> None:
    deal_id, request_id = calculated_deal(api, platform, clock)
    request = ok(api.get(f"/handoffs/{request_id}"))
    assert request["status"] == "ready"
    assert request["calculation"]["total"] == "35000.00"
    assert [(s["name"], s["quantity"], s["unit"], s["amount"], s["hours"]) for s in
            request["calculation"]["services"]] == [
        ("Financial audit", "10.00", "day", "15000.00", "80.00"),
        ("Audit report", None, None, "20000.00", "16.00"),
    ]  # fmt: skip
    deal = ok(api.get(f"/deals/{deal_id}"))
    assert deal["stage"] == "calculated"
    assert Decimal(deal["estimate_result"]["price"]) == Decimal("35000")

    # the proposal is built from the calculated services, not retyped
    proposal = {"calculation": request_id}
    ok(api.post(f"/deals/{deal_id}/proposal", json=proposal, headers=SELLER))
    deal = ok(api.get(f"/deals/{deal_id}"))
    assert deal["proposal"] == {
        "services": [
            {"name": "Financial audit", "price": "15000.00"},
            {"name": "Audit report", "price": "20000.00"},
        ],
        "total": "35000.00",
        "calculation_id": request_id,
        "organisation": None,
    }
    assert deal["amount"] == "35000.00"
    history = ok(api.get(f"/deals/{deal_id}/history"))["events"]
    [recorded] = [e for e in history if e["type"] == "DealProposalRecorded"]
    assert recorded["data"]["calculation_id"] == request_id

    # the experts close their request (a won deal would cancel it while at approval)
    ok(api.post(f"/handoffs/{request_id}/stage", json={"stage": "done"}, headers=EXPERT))
    ok(api.post(f"/deals/{deal_id}/contract", json={"number": "C-7", "signed_on": "2026-01-05"}))
    invoice = {"number": "S-1", "amount": "35000", "organisation": "main"}
    ok(api.post(f"/deals/{deal_id}/invoice", json=invoice, headers=SELLER))
    ok(api.post(f"/deals/{deal_id}/close", json={"outcome": "won"}, headers=SELLER))
    platform.processes.run_once()  # the won deal's project
    project_id = str(project_id_for_deal(UUID(deal_id)))
    assert ok(api.get(f"/projects/{project_id}"))["department"] == "experts"

    # launching: the PM of the project, its department's head or top management
    launch_report = {"services": [{"name": "Audit report", "assignee": "erik.expert"}]}
    refused(api.post(f"/projects/{project_id}/launch", json=launch_report, headers=MANAGER), 403)
    refused(api.post(f"/projects/{project_id}/launch", json=launch_report, headers=PM), 404)
    ok(api.post(f"/projects/{project_id}/card", json={"pm": "olga.pm"}, headers=SELLER))
    ok(api.post(f"/projects/{project_id}/launch", json=launch_report, headers=PM))
    again = api.post(f"/projects/{project_id}/launch", json=launch_report, headers=PM)
    refused(again, 409, rule="service_launched")
    ok(api.post(f"/projects/{project_id}/launch", headers=PM))  # the rest
    refused(api.post(f"/projects/{project_id}/launch", headers=PM), 409, rule="nothing_to_launch")
    project = ok(api.get(f"/projects/{project_id}"))
    assert [(t["task_id"], t["title"], t["planned_hours"], t["assignee"]) for t in
            project["tasks"]] == [
        ("service-1", "Audit report", "16.00", "erik.expert"),
        ("service-2", "Financial audit", "80.00", None),
    ]  # fmt: skip
    assert [(s["service"], s["task_id"], s["price"]) for s in project["launched"]] == [
        ("Audit report", "service-1", "20000.00"),
        ("Financial audit", "service-2", "15000.00"),
    ]
    assert project["planned_hours"] == "96.00"

    # the report needs the audit first
    depends = {"depends_on": ["service-2"]}
    ok(api.post(f"/projects/{project_id}/tasks/service-1", json=depends, headers=PM))
    clock.advance(days=1)
    report_only = {"number": "A-1", "date": "2026-01-06", "amount": "20000", "services": [
        "Audit report"], "invoice_number": "S-1"}  # fmt: skip
    refused(
        api.post(f"/projects/{project_id}/acts", json=report_only, headers=PM),
        409,
        rule="dependency_not_done",
    )
    too_much = {**report_only, "services": ["Financial audit"], "amount": "35000.01"}
    refused(
        api.post(f"/projects/{project_id}/acts", json=too_much, headers=PM),
        409,
        rule="act_over_invoice",
    )
    unknown = {**report_only, "services": [], "task_ids": ["nope"]}
    refused(
        api.post(f"/projects/{project_id}/acts", json=unknown, headers=PM),
        422,
        field="task_ids[0]",
    )
    audit = {**report_only, "services": ["Financial audit"], "amount": "15000"}
    ok(api.post(f"/projects/{project_id}/acts", json=audit, headers=PM), 201)
    refused(
        api.post(f"/projects/{project_id}/acts", json=audit, headers=PM),
        409,
        rule="act_number_taken",
    )
    report = {**report_only, "number": "A-2", "services": [], "task_ids": ["service-1"]}
    ok(api.post(f"/projects/{project_id}/acts", json=report, headers=PM), 201)

    project = ok(api.get(f"/projects/{project_id}"))
    assert all(t["completed_at"] is not None for t in project["tasks"])
    assert [(a["number"], a["amount"], a["task_ids"], a["services"], a["invoice_number"])
            for a in project["acts"]] == [
        ("A-1", "15000.00", ["service-2"], ["Financial audit"], "S-1"),
        ("A-2", "20000.00", ["service-1"], ["Audit report"], "S-1"),
    ]  # fmt: skip
    [bill] = project["payments"]["invoices"]
    assert (bill["number"], bill["acted"], bill["acts"]) == ("S-1", "35000.00", ["A-1", "A-2"])
    types = [(e["stream"], e["type"]) for e in ok(api.get(f"/projects/{project_id}/history"))[
        "events"]]  # fmt: skip
    assert types.count(("project", "ProjectActRecorded")) == 2
    assert types.count(("billing", "ProjectInvoiceActed")) == 2
    assert types.count(("project", "ProjectServicesLaunched")) == 2

    # --- the read models ---
    assert platform.projector.wait_for(platform.store.last_position(), 10)
    cursor = platform.db.cursor()
    try:
        row = cursor.execute(
            "SELECT price, calculation_services, calculation_hours, status FROM handoffs "
            "WHERE request_id = ?",
            [request_id],
        ).fetchone()
        assert row == (Decimal("35000.00"), 2, Decimal("96.00"), "done")
        calculation_id = cursor.execute(
            "SELECT proposal_calculation_id FROM deals WHERE deal_id = ?", [deal_id]
        ).fetchone()
        assert calculation_id == (request_id,)
        acts = cursor.execute(
            "SELECT number, amount, task_ids, services, invoice_number FROM project_acts "
            "WHERE project_id = ? ORDER BY position",
            [project_id],
        ).fetchall()
        assert acts == [
            ("A-1", Decimal("15000.00"), ["service-2"], ["Financial audit"], "S-1"),
            ("A-2", Decimal("20000.00"), ["service-1"], ["Audit report"], "S-1"),
        ]
        invoice_row = cursor.execute(
            "SELECT acted, acts FROM project_invoices WHERE project_id = ?", [project_id]
        ).fetchone()
        assert invoice_row == (Decimal("35000.00"), ["A-1", "A-2"])
        tasks = cursor.execute(
            "SELECT tasks, tasks_done, version FROM projects WHERE project_id = ?", [project_id]
        ).fetchone()
        assert tasks == (2, 2, project["version"])
    finally:
        cursor.close()
    assert_rebuilt_equals_incremental(platform, tmp_path)


TABLES = {
    "handoffs": "request_id",
    "deals": "deal_id",
    "projects": "project_id",
    "project_tasks": "project_id, task_id",
    "project_invoices": "project_id, number",
    "project_acts": "project_id, number",
}


def tables(db: ReadModelDatabase) -> dict[str, list[tuple[Any, ...]]]:
    cursor = db.cursor()
    try:
        return {
            table: cursor.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
            for table, key in TABLES.items()
        }
    finally:
        cursor.close()


def assert_rebuilt_equals_incremental(platform: Platform, tmp_path: Path) -> None:
    projections = read_model_projections(platform.funnels, platform.rules)
    rebuilt_db = ReadModelDatabase(tmp_path / "rebuilt.duckdb")
    paged_db = ReadModelDatabase(tmp_path / "paged.duckdb")
    try:
        rebuild(platform.store, rebuilt_db, projections)
        for size in (1, 2, 3, 7):
            Projector(platform.store, paged_db, projections, page_size=size).run_once()
        Projector(platform.store, paged_db, projections, page_size=5).catch_up()
        expected = tables(rebuilt_db)
        assert tables(platform.db) == expected
        assert tables(paged_db) == expected
        assert expected["project_acts"]
    finally:
        rebuilt_db.close()
        paged_db.close()


def test_the_proposal_takes_only_a_calculated_request_of_its_deal(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    deal_id, request_id = calculated_deal(api, platform, clock)
    other = new_deal(api, funnel="expert_services", title="Tax advice")
    refused(
        api.post(f"/deals/{other}/proposal", json={"calculation": request_id}, headers=SELLER),
        409,
        rule="calculation_not_of_deal",
    )
    both = {"calculation": request_id, "services": [{"name": "Audit", "price": "1"}]}
    refused(
        api.post(f"/deals/{deal_id}/proposal", json=both, headers=SELLER), 422, field="services"
    )
    refused(api.post(f"/deals/{deal_id}/proposal", json={}, headers=SELLER), 422, field="services")
    # a logistics request carries no calculation
    asked = ok(
        api.post(f"/deals/{deal_id}/requests", json={"department": "logistics"}, headers=SELLER),
        201,
    )
    refused(
        api.post(
            f"/deals/{deal_id}/proposal",
            json={"calculation": asked["request_id"]},
            headers=SELLER,
        ),
        409,
        rule="calculation_required",
    )
    ok(api.post(f"/handoffs/{asked['request_id']}/take", headers=LOGISTICIAN))
    wrong = api.post(
        f"/handoffs/{asked['request_id']}/calculation", json=CALCULATION, headers=LOGISTICIAN
    )
    refused(wrong, 409, rule="wrong_outcome")


def test_the_calculation_endpoint_checks_the_department_and_the_body(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    deal_id = new_deal(api, funnel="expert_services")
    asked = ok(
        api.post(f"/deals/{deal_id}/requests", json={"department": "experts"}, headers=SELLER),
        201,
    )
    request_id = asked["request_id"]
    # logistics may not price the experts' request (it does not even see it)
    refused(api.post(f"/handoffs/{request_id}/take", headers=LOGISTICIAN), 404)
    refused(api.post(f"/handoffs/{request_id}/calculation", json=CALCULATION, headers=EXPERT),
            409, rule="not_taken")  # fmt: skip
    ok(api.post(f"/handoffs/{request_id}/take", headers=EXPERT))
    twice = {"services": [{"name": "Audit", "price": "1"}, {"name": "Audit", "price": "2"}]}
    refused(
        api.post(f"/handoffs/{request_id}/calculation", json=twice, headers=EXPERT),
        422,
        field="services[1].name",
    )
    refused(
        api.post(f"/handoffs/{request_id}/calculation", json={"services": []}, headers=EXPERT),
        422,
    )
    refused(
        api.post(f"/handoffs/{request_id}/stage", json={"stage": "approval"}, headers=EXPERT),
        409,
        rule="outcome_required",
    )
    ok(api.post(f"/handoffs/{request_id}/calculation", json=CALCULATION, headers=EXPERT))
    assert ok(api.get(f"/deals/{deal_id}"))["handoffs"][0]["price"] == "35000.00"


def test_a_project_without_a_proposal_has_nothing_to_launch(api: TestClient) -> None:
    body = {"title": "Internal audit", "company_name": "Sercons", "pm": "olga.pm"}
    created = ok(api.post("/projects", json=body, headers=SELLER), 201)
    refused(
        api.post(f"/projects/{created['project_id']}/launch", headers=PM),
        409,
        rule="proposal_required",
    )
    unknown = api.post(f"/projects/{uuid4()}/launch", headers=SELLER)
    refused(unknown, 404)
