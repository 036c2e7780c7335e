"""Records that must agree (issue 12, part 3), through the handlers, the process managers
and HTTP: a won deal and its project link each other and the deal's invoice is the
project's; a project's history shows its billing; invoices and payments are conditional
on a version the client can read; a closing deal ends its hand-off requests."""

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
from tests.deal_helpers import LOGISTICIAN, SELLER, contracted_deal, new_deal, ok

DEAL_INVOICE = {
    "number": "S-17",
    "amount": "17500.25",
    "organisation": "main",
    "prepayment": True,
}


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        yield client


def won_deal(api: TestClient, invoice: dict[str, Any] | None = None) -> str:
    deal_id = contracted_deal(api)
    body = invoice or DEAL_INVOICE
    ok(api.post(f"/deals/{deal_id}/invoice", json=body, headers=SELLER))
    if body.get("prepayment"):  # a prepayment invoice counts (and wins) once approved
        approval = f"/deals/{deal_id}/invoices/{body['number']}/approval"
        ok(api.post(approval, json={"decision": "approve"}, headers=bearer("head.of.sales")))
    ok(api.post(f"/deals/{deal_id}/close", json={"outcome": "won"}, headers=SELLER))
    return deal_id


def topics(platform: Platform) -> Counter[str]:
    return Counter(row[3] for row in platform.store.read_rows(0, 1_000_000))


def wait(platform: Platform) -> dict[str, int]:
    return {"min_position": platform.store.last_position()}


# --- deal ↔ project, and the deal's invoice in the project's billing --------------------


def test_a_won_deal_becomes_a_project_with_its_invoice_once_even_on_redelivery(
    api: TestClient, platform: Platform
) -> None:
    deal_id = won_deal(api)
    project_id = project_id_for_deal(UUID(deal_id))
    platform.processes.run_once()
    # every position forgotten, then a second runner as if another worker had started
    for manager in platform.processes.managers:
        platform.processes.state.advance(manager.name, 0, DeadlineChanges())
    platform.processes.run_once()
    other = CommandSide(
        platform.settings, platform.funnels, platform.rules, platform.store, platform.clock
    )
    process_runner(other).run_once()
    counted = topics(platform)
    assert (
        counted["ProjectCreated"],
        counted["DealProjectStarted"],
        counted["ProjectInvoiceIssued"],
    ) == (1, 1, 1)

    project = ok(api.get(f"/projects/{project_id}"))
    deal = ok(api.get(f"/deals/{deal_id}"))
    assert (project["deal_id"], project["lead_id"]) == (deal_id, deal["lead_id"])
    assert deal["project_id"] == str(project_id)
    payments = project["payments"]
    assert (payments["status"], payments["invoiced"], payments["paid"]) == (
        "not_paid",
        "17500.25",
        "0.00",
    )
    # what is left is measured against the project's amount (the deal's); what was
    # invoiced and not paid yet is beside it
    assert (payments["remaining"], payments["invoiced_unpaid"]) == (project["amount"], "17500.25")
    [invoice] = payments["invoices"]
    assert {k: invoice[k] for k in ("number", "amount", "organisation", "prepayment")} == {
        "number": "S-17",
        "amount": "17500.25",
        "organisation": "main",
        "prepayment": True,
    }
    assert (invoice["deal_id"], invoice["due_date"], invoice["overdue"]) == (deal_id, None, False)
    assert invoice["issued_on"] == deal["invoices"][0]["issued_on"]
    assert project["billing_version"] == 1

    # payments are recorded against the deal's invoice number
    pay = {"amount": "7500.25", "paid_on": "2026-01-12"}
    ok(api.post(f"/projects/{project_id}/invoices/S-17/payments", json=pay), 201)
    payments = ok(api.get(f"/projects/{project_id}"))["payments"]
    # the project's amount (the deal's) is paid in full; 10000.00 of the invoice is not
    assert float(payments["amount"]) < 7500.25
    assert (payments["status"], payments["remaining"], payments["invoiced_unpaid"]) == (
        "paid",
        "0.00",
        "10000.00",
    )


def test_links_and_filters_in_the_read_models(api: TestClient, platform: Platform) -> None:
    first, second = won_deal(api), won_deal(api, {**DEAL_INVOICE, "number": "S-18"})
    open_deal = contracted_deal(api)
    platform.processes.run_once()
    deals = {d["deal_id"]: d for d in ok(api.get("/deals", params=wait(platform)))["items"]}
    assert deals[first]["project_id"] == str(project_id_for_deal(UUID(first)))
    assert deals[second]["project_id"] == str(project_id_for_deal(UUID(second)))
    assert deals[open_deal]["project_id"] is None

    rows = ok(api.get("/projects", params=wait(platform)))["items"]
    assert {(r["deal_id"], r["lead_id"]) for r in rows} == {
        (d, deals[d]["lead_id"]) for d in (first, second)
    }
    [row] = ok(api.get("/projects", params={**wait(platform), "deal_id": second}))["items"]
    assert row["project_id"] == str(project_id_for_deal(UUID(second)))
    assert (Decimal(row["invoiced"]), row["payment_status"], row["billing_version"]) == (
        Decimal("17500.25"),
        "not_paid",
        1,
    )
    lead_id = deals[first]["lead_id"]
    [row] = ok(api.get("/projects", params={**wait(platform), "lead_id": lead_id}))["items"]
    assert row["deal_id"] == first
    nothing = ok(api.get("/projects", params={"deal_id": open_deal}))
    assert nothing["total"] == 0
    for name in ("deal_id", "lead_id"):
        refused = api.get("/projects", params={name: "not-a-uuid"})
        assert refused.status_code == 422, refused.text
        assert name in refused.text


def test_a_deal_as_of_before_its_project_names_none(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    deal_id = won_deal(api)
    before = clock()
    clock.advance(hours=1)
    platform.processes.run_once()
    assert (
        ok(api.get(f"/deals/{deal_id}", params={"as_of": before.isoformat()}))["project_id"] is None
    )
    types = [e["type"] for e in ok(api.get(f"/deals/{deal_id}/history"))["events"]]
    assert types[-1] == "DealProjectStarted"


# --- the project's history with its billing; If-Match on the billing's version ----------


def test_the_history_merges_the_billing_in_log_order_with_actor_and_command(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    deal_id = won_deal(api)
    project_id = project_id_for_deal(UUID(deal_id))
    platform.processes.run_once()
    clock.advance(hours=1)
    ok(api.post(f"/projects/{project_id}/status", json={"status": "in_production"}))
    invoice = {"number": "P-1", "amount": "1000.00", "due_date": "2026-02-20"}
    ok(api.post(f"/projects/{project_id}/invoices", json=invoice), 201)
    middle = clock()
    clock.advance(hours=1)
    pay = {"amount": "1000.00", "paid_on": "2026-01-12"}
    ok(api.post(f"/projects/{project_id}/invoices/P-1/payments", json=pay), 201)

    events = ok(api.get(f"/projects/{project_id}/history"))["events"]
    assert [(e["type"], e["stream"], e["version"]) for e in events] == [
        ("ProjectCreated", "project", 1),
        ("ProjectInvoiceIssued", "billing", 1),
        ("ProjectStatusChanged", "project", 2),
        ("ProjectInvoiceIssued", "billing", 2),
        ("ProjectPaymentRecorded", "billing", 3),
    ]
    assert [e["position"] for e in events] == sorted(e["position"] for e in events)
    carried, issued, paid = events[1], events[3], events[4]
    assert (carried["actor"], carried["actor_role"], carried["command"]) == (
        "leadledger.project-creation",
        "process",
        "project-creation",
    )
    assert carried["data"]["deal_id"] == deal_id
    assert (issued["actor"], issued["actor_role"], issued["command"]) == (
        ACTOR_USER,
        "top",
        "issue_invoice",
    )
    assert (paid["actor"], paid["command"]) == (ACTOR_USER, "record_payment")
    assert paid["changes"]["paid"] == {"old": "0.00", "new": "1000.00"}
    assert paid["changes"]["remaining"]["new"] == "17500.25"

    # as_of: only what was recorded until then
    then = ok(api.get(f"/projects/{project_id}/history", params={"as_of": middle.isoformat()}))
    assert [e["type"] for e in then["events"]][-1] == "ProjectInvoiceIssued"
    assert len(then["events"]) == 4


ACTOR_USER = "anna.sales"


def test_payments_are_conditional_on_the_billing_version_shown_on_the_card(
    api: TestClient, platform: Platform
) -> None:
    deal_id = won_deal(api)
    project_id = project_id_for_deal(UUID(deal_id))
    platform.processes.run_once()
    card = api.get(f"/projects/{project_id}")
    version = ok(card)["billing_version"]
    assert version == 1
    pay_url = f"/projects/{project_id}/invoices/S-17/payments"
    pay = {"amount": "500.00", "paid_on": "2026-01-12"}
    accepted = api.post(pay_url, json=pay, headers={"If-Match": f'"{version}"'})
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["billing_version"] == 2
    assert accepted.headers["ETag"] == '"2"'
    stale = api.post(pay_url, json=pay, headers={"If-Match": f'"{version}"'})
    assert stale.status_code == 409, stale.text
    assert (stale.json()["code"], stale.json()["current_version"]) == ("version_conflict", 2)
    assert ok(api.get(f"/projects/{project_id}"))["billing_version"] == 2
    # the next invoice, conditional on the version the payment answered
    invoice = {"number": "P-2", "amount": "10.00", "due_date": "2026-03-01"}
    issued = api.post(f"/projects/{project_id}/invoices", json=invoice, headers={"If-Match": "2"})
    assert issued.status_code == 201, issued.text


# --- a closing deal ends its hand-off requests ------------------------------------------


def _request_at_approval(api: TestClient, deal_id: str) -> str:
    asked = {"department": "logistics", "notes": "a crane for the day"}
    request_id: str = ok(api.post(f"/deals/{deal_id}/requests", json=asked, headers=SELLER), 201)[
        "request_id"
    ]
    ok(api.post(f"/handoffs/{request_id}/take", headers=LOGISTICIAN))
    estimate = {
        "service": "crane",
        "cost": "250.00",
        "lead_time_days": 1,
        "own_equipment": True,
    }
    ok(api.post(f"/handoffs/{request_id}/estimate", json=estimate, headers=LOGISTICIAN))
    ok(api.post(f"/handoffs/{request_id}/stage", json={"stage": "approval"}, headers=LOGISTICIAN))
    return request_id


def _logistics_load(api: TestClient, platform: Platform) -> dict[str, Any]:
    report = ok(api.get("/reports/department-load", params=wait(platform)))
    by_department: dict[str, dict[str, Any]] = {d["department"]: d for d in report["departments"]}
    return by_department["logistics"]


@pytest.mark.parametrize("outcome", ["won", "lost"])
def test_closing_a_deal_cancels_its_requests_at_approval_in_the_same_write(
    api: TestClient, platform: Platform, outcome: str
) -> None:
    deal_id = contracted_deal(api)
    at_approval = _request_at_approval(api, deal_id)
    asked = {"department": "engineering", "notes": "drawings"}
    not_taken = ok(api.post(f"/deals/{deal_id}/requests", json=asked, headers=SELLER), 201)[
        "request_id"
    ]
    load = _logistics_load(api, platform)
    assert (load["open_requests"], load["by_status"]["ready"]) == (1, 1)

    if outcome == "won":
        ok(api.post(f"/deals/{deal_id}/invoice", json=DEAL_INVOICE | {"prepayment": False}))
        close = {"outcome": "won"}
    else:
        close = {"outcome": "lost", "reason": "no budget"}
    closed = ok(api.post(f"/deals/{deal_id}/close", json=close, headers=SELLER))
    # no process manager has run: the close itself cancelled them
    deal = ok(api.get(f"/deals/{deal_id}"))
    assert closed["version"] == deal["version"]
    assert {h["request_id"]: h["status"] for h in deal["handoffs"]} == {
        at_approval: "cancelled",
        not_taken: "cancelled",
    }
    for request_id in (at_approval, not_taken):
        request = ok(api.get(f"/handoffs/{request_id}"))
        assert (request["status"], request["cancellation_reason"]) == (
            "cancelled",
            f"the deal was {outcome}",
        )
    history = ok(api.get(f"/handoffs/{at_approval}/history"))["events"]
    assert (history[-1]["type"], history[-1]["actor"], history[-1]["command"]) == (
        "HandoffCancelled",
        "anna.sales",
        "close_deal",
    )
    load = _logistics_load(api, platform)
    assert (load["open_requests"], load["by_status"], load["people"]) == (
        0,
        {"open": 0, "in_work": 0, "ready": 0},
        [],
    )
    [row] = [
        d for d in ok(api.get("/deals", params=wait(platform)))["items"] if d["deal_id"] == deal_id
    ]
    assert row["open_requests"] == 0
    # the process managers find nothing left to cancel
    before = topics(platform)["HandoffCancelled"]
    platform.processes.run_once()
    assert topics(platform)["HandoffCancelled"] == before == 2


def test_a_cancelled_request_raises_no_alert_when_its_time_to_take_it_passes(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    deal_id = new_deal(api)
    asked = {"department": "logistics", "notes": "a truck"}
    ok(api.post(f"/deals/{deal_id}/requests", json=asked, headers=SELLER), 201)
    platform.processes.run_once()
    ok(api.post(f"/deals/{deal_id}/close", json={"outcome": "lost", "reason": "x"}, headers=SELLER))
    clock.advance(days=30)
    platform.processes.run_once()
    alerts = ok(api.get("/alerts", params=wait(platform)))
    assert alerts["total"] == 0
    assert topics(platform)["HandoffReminderSent"] == 0
