"""Dates a command carries are bounded to what the business can mean: never before 2000,
never more than five years after the command's day, and never more than 90 days before
the record they belong to (the deal, the project) was created. One Given/When/
Then per rule, and the 422 naming the field over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from aggregates import billing, values
from aggregates.deal import IssueInvoice, RecordContract, RecordProposal, ServiceLine
from aggregates.errors import InvalidValue
from aggregates.lead import UpdateLeadCard
from aggregates.project import AddTask, LogHours, UpdateProjectCard, UpdateTask
from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import ACTOR
from tests.deal_helpers import SELLER, contracted_deal, new_deal, ok
from tests.gwt import new_lead
from tests.gwt_deals import DEAL, LEAD, T0, meta
from tests.test_deal_rules import new_deal as deal_command
from tests.test_project_rules import ENTRY, PROJECT, new_project, story

TODAY = T0.date()
"""2026-01-05: every record of these stories is created that day."""
TOO_EARLY = TODAY - timedelta(days=values.BACKDATING_DAYS + 1)
EARLIEST_OK = TODAY - timedelta(days=values.BACKDATING_DAYS)
LATEST_OK = TODAY + timedelta(days=values.FUTURE_DAYS)
TOO_LATE = LATEST_OK + timedelta(days=1)


def test_the_shared_bound_names_the_field_and_why() -> None:
    with pytest.raises(InvalidValue) as caught:
        values.sensible_day("day", date(1, 1, 1), T0)
    assert caught.value.field == "day"
    assert "2000-01-01" in caught.value.message
    with pytest.raises(InvalidValue) as caught:
        values.sensible_day("due", date(9999, 12, 31), T0)
    assert "five years" in caught.value.message
    with pytest.raises(InvalidValue) as caught:
        values.sensible_day("day", TOO_EARLY, T0, since=T0, record="project")
    assert f"{values.BACKDATING_DAYS} days before the project was created" in caught.value.message
    for fine in (EARLIEST_OK, TODAY, LATEST_OK):
        assert values.sensible_day("day", fine, T0, since=T0) == fine
    assert values.sensible_day("day", None, T0) is None


# --- projects -------------------------------------------------------------------------


@pytest.mark.parametrize("day", [date(1, 1, 1), date(1999, 12, 31), TOO_EARLY])
def test_hours_are_not_logged_long_before_the_project_existed(day: date) -> None:
    PROJECT.given(*story()).when(LogHours(ENTRY, "ivan", day, Decimal(1))).then_invalid(field="day")


def test_hours_may_be_logged_a_quarter_before_the_project_was_created() -> None:
    PROJECT.given(*story()).when(LogHours(ENTRY, "ivan", EARLIEST_OK, Decimal(1))).then(
        day=EARLIEST_OK
    )


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (AddTask("t1", "Survey", start=TOO_EARLY), "start"),
        (AddTask("t1", "Survey", due=TOO_LATE), "due"),
        (AddTask("t1", "Survey", due=date(9999, 12, 31)), "due"),
        (UpdateProjectCard({"planned_end": TOO_LATE}), "planned_end"),
        (UpdateProjectCard({"planned_start": date(1, 1, 1)}), "planned_start"),
    ],
)
def test_plans_stay_within_the_projects_time(command: object, field: str) -> None:
    PROJECT.given(*story()).when(command).then_invalid(field=field)


def test_a_task_is_moved_within_the_projects_time_only() -> None:
    given = PROJECT.given(*story(AddTask("t1", "Survey", due=TODAY)))
    given.when(UpdateTask("t1", {"due": TOO_LATE})).then_invalid(field="due")
    given.when(UpdateTask("t1", {"due": LATEST_OK})).then()


def test_a_project_is_not_created_with_senseless_plans() -> None:
    created = PROJECT.given()
    created.when(new_project(planned_start=TOO_EARLY)).then_invalid(field="planned_start")
    created.when(new_project(planned_end=TOO_LATE)).then_invalid(field="planned_end")


PROJECT_ID = UUID("00000000-0000-4000-8000-00000000c001")


def _billing_refuses(
    state: billing.Billing, command: billing.IssueProjectInvoice | billing.RecordPayment
) -> str:
    with pytest.raises(InvalidValue) as caught:
        billing.decide(state, command, meta(), opened=T0)
    return caught.value.field


def test_invoices_and_payments_stay_within_the_projects_time() -> None:
    empty = billing.empty_billing(PROJECT_ID, T0)
    late = billing.IssueProjectInvoice("INV-1", Decimal(10), date(9999, 12, 31), TODAY)
    assert _billing_refuses(empty, late) == "due_date"
    early = billing.IssueProjectInvoice("INV-1", Decimal(10), TODAY, TOO_EARLY)
    assert _billing_refuses(empty, early) == "issued_on"
    fine = billing.IssueProjectInvoice("INV-1", Decimal(10), TODAY, EARLIEST_OK)
    issued = billing.evolve(empty, billing.decide(empty, fine, meta(), opened=T0))
    paid_early = billing.RecordPayment("INV-1", Decimal(1), TOO_EARLY)
    assert _billing_refuses(issued, paid_early) == "paid_on"
    paid = billing.decide(issued, billing.RecordPayment("INV-1", Decimal(1), TODAY), meta())
    assert isinstance(paid, billing.ProjectPaymentRecorded)


# --- deals and leads ------------------------------------------------------------------

PROPOSAL = RecordProposal((ServiceLine("design", Decimal("10.00")),))


def test_a_contract_is_not_signed_long_before_the_deal_or_far_ahead() -> None:
    given = DEAL.given(*DEAL.history(deal_command(), PROPOSAL))
    given.when(RecordContract("C-1", TOO_EARLY)).then_invalid(field="signed_on")
    given.when(RecordContract("C-1", TOO_LATE)).then_invalid(field="signed_on")
    given.when(RecordContract("C-1", EARLIEST_OK)).then(signed_on=EARLIEST_OK)


def test_a_deals_invoice_is_not_issued_in_9999() -> None:
    given = DEAL.given(*DEAL.history(deal_command(), PROPOSAL, RecordContract("C-1", TODAY)))
    late = IssueInvoice("INV-1", Decimal("10.00"), "main", issued_on=date(9999, 12, 31))
    given.when(late).then_invalid(field="issued_on")


def test_a_leads_answer_date_makes_sense() -> None:
    LEAD.given().when(new_lead(answer_due=date(1, 1, 1))).then_invalid(field="answer_due")
    given = LEAD.given(*LEAD.history(new_lead()))
    given.when(UpdateLeadCard({"answer_due": TOO_LATE})).then_invalid(field="answer_due")
    given.when(UpdateLeadCard({"answer_due": TODAY + timedelta(days=3)})).then()
    # the client's date may have passed before the lead was recorded: no record bound
    given.when(UpdateLeadCard({"answer_due": TOO_EARLY})).then()


# --- over HTTP ------------------------------------------------------------------------


@pytest.fixture
def api(make_platform: object) -> Iterator[TestClient]:
    platform: Platform = make_platform(process_managers=False)  # type: ignore[operator]
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        yield client


def _refused(response: object, field: str) -> None:
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert (body["code"], body["field"]) == ("invalid_value", field), body


def test_senseless_dates_are_422_naming_the_field(api: TestClient) -> None:
    body = {"title": "Mounting", "company_name": "Agro", "pm": "olga.pm"}
    project_id = ok(api.post("/projects", json=body, headers=SELLER), 201)["project_id"]
    hours = {"person": "ivan", "day": "0001-01-01", "hours": "1"}
    _refused(api.post(f"/projects/{project_id}/hours", json=hours), "day")
    invoice = {"number": "P-1", "amount": "10.00", "due_date": "9999-12-31"}
    _refused(api.post(f"/projects/{project_id}/invoices", json=invoice), "due_date")
    invoice = {**invoice, "due_date": "2026-02-01", "issued_on": "9999-12-31"}
    _refused(api.post(f"/projects/{project_id}/invoices", json=invoice), "issued_on")
    task = {"task_id": "t", "title": "T", "start": "1970-01-01"}
    _refused(api.post(f"/projects/{project_id}/tasks", json=task), "start")
    _refused(
        api.post(f"/projects/{project_id}/card", json={"planned_end": "2100-01-01"}), "planned_end"
    )
    ok(api.post(f"/projects/{project_id}/hours", json={**hours, "day": "2026-01-05"}), 201)

    deal_id = new_deal(api, funnel="upsell")
    proposal = {"services": [{"name": "transport", "price": "100.00"}]}
    ok(api.post(f"/deals/{deal_id}/proposal", json=proposal))
    _refused(
        api.post(f"/deals/{deal_id}/contract", json={"number": "C", "signed_on": "0001-01-01"}),
        "signed_on",
    )
    contracted = contracted_deal(api)
    late = {"number": "S-1", "amount": "1.00", "organisation": "main", "issued_on": "9999-12-31"}
    _refused(api.post(f"/deals/{contracted}/invoice", json=late), "issued_on")
