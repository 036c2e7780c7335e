"""Prepayment invoices need approval (seed 002: «согласования предоплатных счетов»).

A prepayment invoice is issued pending; the deal manager's head or a configured approver
approves or declines it (with a reason), anyone else is refused (403
``prepayment_approver``). Only a counted invoice (not a prepayment, or an approved one)
books revenue (on approval, not on issue), makes the deal winnable, is in the deal's
invoiced total and reaches the project's billing; a payment naming a declined one is
refused (409 ``invoice_not_approved``). The approver is alerted.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregates import deal, limits
from aggregates.deal import (
    CloseDeal,
    DealInvoiceApproved,
    DealInvoiceDeclined,
    DealInvoiceIssued,
    DecideInvoiceApproval,
    IssueInvoice,
)
from aggregates.errors import InvalidValue, NotPermitted, RuleViolation
from event_store import EventStore
from leadledger.wiring import Platform, event_codec
from tests.conftest import bearer
from tests.deal_helpers import SELLER, new_deal, ok
from tests.gwt_deals import DEAL, RULES, meta
from tests.test_deal_rules import CONTRACT, PROPOSAL
from tests.test_deal_rules import deal as deal_events
from tests.test_organisation_services import project_of

HEAD = RULES.head_of("boris")
"""The head of the GWT deals' manager (the configured default head)."""
APPROVER = "finance.director"
"""A configured prepayment approver (rules.toml [prepayment_invoices])."""
PREPAYMENT = IssueInvoice("PP-1", Decimal("1000.00"), "main", prepayment=True)
INVOICE = IssueInvoice("INV-1", Decimal("2000.00"), "main")


def pending() -> tuple[Any, ...]:
    return deal_events(PROPOSAL, CONTRACT, PREPAYMENT)


# --- the decider -------------------------------------------------------------------------


def test_a_prepayment_invoice_is_issued_pending_and_asks_the_managers_head() -> None:
    accepted = (
        DEAL.given(*deal_events(PROPOSAL, CONTRACT))
        .when(PREPAYMENT)
        .then(DealInvoiceIssued, prepayment=True, approval="pending", approver=HEAD)
    )
    invoice = accepted.state.invoices[0]
    assert (invoice.approval, invoice.counted) == ("pending", False)


def test_an_invoice_that_is_no_prepayment_needs_no_approval() -> None:
    accepted = (
        DEAL.given(*deal_events(PROPOSAL, CONTRACT))
        .when(INVOICE)
        .then(DealInvoiceIssued, approval="not_required", approver=None)
    )
    assert accepted.state.invoices[0].counted


@pytest.mark.parametrize("approver", [HEAD, APPROVER])
def test_the_head_or_a_configured_approver_approves(approver: str) -> None:
    accepted = (
        DEAL.given(*pending())
        .when(DecideInvoiceApproval("PP-1", True, "agreed"), actor=approver)
        .then(
            DealInvoiceApproved,
            number="PP-1",
            amount=Decimal("1000.00"),
            organisation="main",
            comment="agreed",
        )
    )
    invoice = accepted.state.invoices[0]
    assert (invoice.approval, invoice.decided_by, invoice.counted) == ("approved", approver, True)


def test_anyone_else_may_not_decide_naming_the_rule() -> None:
    refusal = (
        DEAL.given(*pending())
        .when(DecideInvoiceApproval("PP-1", True), actor="boris")
        .then_rejected(NotPermitted, rule="prepayment_approver")
    )
    assert HEAD in refusal.message


def test_a_decline_needs_a_reason_and_keeps_it() -> None:
    DEAL.given(*pending()).when(DecideInvoiceApproval("PP-1", False), actor=HEAD).then_invalid(
        field="reason"
    )
    accepted = (
        DEAL.given(*pending())
        .when(DecideInvoiceApproval("PP-1", False, "too early"), actor=HEAD)
        .then(DealInvoiceDeclined, number="PP-1", reason="too early")
    )
    invoice = accepted.state.invoices[0]
    assert (invoice.approval, invoice.decline_reason, invoice.counted) == (
        "declined",
        "too early",
        False,
    )


def test_only_a_pending_invoice_is_decided() -> None:
    approved = DEAL.given(*pending()).when(DecideInvoiceApproval("PP-1", True), actor=HEAD).then()
    approved.given.when(DecideInvoiceApproval("PP-1", False, "no"), actor=HEAD).then_violates(
        "invoice_not_pending"
    )
    DEAL.given(*deal_events(PROPOSAL, CONTRACT, INVOICE)).when(
        DecideInvoiceApproval("INV-1", True), actor=HEAD
    ).then_violates("invoice_not_pending")
    DEAL.given(*pending()).when(DecideInvoiceApproval("NOPE", True), actor=HEAD).then_invalid(
        field="number"
    )


def test_a_deal_with_only_a_pending_or_declined_invoice_is_not_won() -> None:
    DEAL.given(*pending()).when(CloseDeal("won")).then_violates("invoice_approval_pending")
    declined = (
        DEAL.given(*pending()).when(DecideInvoiceApproval("PP-1", False, "no"), actor=HEAD).then()
    )
    declined.given.when(CloseDeal("won")).then_violates("invoice_required")


def test_a_deal_with_an_approved_prepayment_is_won() -> None:
    approved = DEAL.given(*pending()).when(DecideInvoiceApproval("PP-1", True), actor=HEAD).then()
    approved.given.when(CloseDeal("won")).then(outcome="won")


def test_a_pending_invoice_blocks_winning_even_beside_a_counted_one() -> None:
    DEAL.given(*deal_events(PROPOSAL, CONTRACT, INVOICE, PREPAYMENT)).when(
        CloseDeal("won")
    ).then_violates("invoice_approval_pending")


def test_invoices_issued_before_approvals_read_as_counted() -> None:
    """A stored version-1 invoice (no approval) is upcast to 'not_required': a prepayment
    issued then counted at once, as it did."""
    codec = event_codec()
    issued = DEAL.given(*deal_events(PROPOSAL, CONTRACT)).when(PREPAYMENT).then().event
    stored = orjson.loads(codec.encode(issued))
    for key in ("approval", "approver"):
        stored.pop(key)
    stored["schema_version"] = 1
    old = codec.decode("DealInvoiceIssued", orjson.dumps(stored))
    assert isinstance(old, DealInvoiceIssued)
    assert (old.prepayment, old.approval, old.approver) == (True, "not_required", None)
    state = deal.evolve(deal.fold(list(deal_events(PROPOSAL, CONTRACT))), old)
    assert state.invoices[0].counted


# --- handlers: revenue on approval, carried to billing, payable ------------------------


def _simplified_deal(platform: Platform, client: TestClient) -> str:
    deal_id = new_deal(client, funnel="upsell")
    proposal = {"services": [{"name": "survey", "price": "100.00"}]}
    ok(client.post(f"/deals/{deal_id}/proposal", json=proposal, headers=SELLER))
    contract = {"number": "C-1", "signed_on": "2026-01-05"}
    ok(client.post(f"/deals/{deal_id}/contract", json=contract, headers=SELLER))
    return deal_id


def _ledger(store: EventStore, year: int = 2026) -> list[Any]:
    return [r.event for r in store.load(limits.revenue_stream_id("simplified", year))]


HEAD_AUTH = bearer(RULES.head_of("anna.sales"), "head", "sales")


def test_a_prepayment_is_booked_on_approval_not_on_issue(
    platform: Platform, client: TestClient
) -> None:
    deal_id = _simplified_deal(platform, client)
    body = {"number": "PP-1", "amount": "500.00", "organisation": "simplified", "prepayment": True}
    ok(client.post(f"/deals/{deal_id}/invoice", json=body, headers=SELLER))
    assert _ledger(platform.store) == []
    decision = {"decision": "approve", "reason": "agreed"}
    answer = ok(
        client.post(f"/deals/{deal_id}/invoices/PP-1/approval", json=decision, headers=HEAD_AUTH)
    )
    booked = _ledger(platform.store)
    assert [(b.invoice_number, b.amount, b.total) for b in booked] == [
        ("PP-1", Decimal("500.00"), Decimal("500.00"))
    ]
    detail = ok(client.get(f"/deals/{deal_id}", headers=SELLER))
    assert detail["invoices"][0]["approval"] == "approved"
    assert detail["version"] == answer["version"]


def test_a_declined_prepayment_is_never_booked(platform: Platform, client: TestClient) -> None:
    deal_id = _simplified_deal(platform, client)
    body = {"number": "PP-1", "amount": "500.00", "organisation": "simplified", "prepayment": True}
    ok(client.post(f"/deals/{deal_id}/invoice", json=body, headers=SELLER))
    decision = {"decision": "decline", "reason": "not agreed"}
    ok(client.post(f"/deals/{deal_id}/invoices/PP-1/approval", json=decision, headers=HEAD_AUTH))
    assert _ledger(platform.store) == []


def test_over_http_others_are_403_and_a_decline_without_reason_422(client: TestClient) -> None:
    deal_id = new_deal(client, funnel="upsell")
    proposal = {"services": [{"name": "transport", "price": "100.00"}]}
    ok(client.post(f"/deals/{deal_id}/proposal", json=proposal, headers=SELLER))
    contract = {"number": "C-1", "signed_on": "2026-01-05"}
    ok(client.post(f"/deals/{deal_id}/contract", json=contract, headers=SELLER))
    body = {"number": "PP-1", "amount": "10.00", "organisation": "main", "prepayment": True}
    ok(client.post(f"/deals/{deal_id}/invoice", json=body, headers=SELLER))
    url = f"/deals/{deal_id}/invoices/PP-1/approval"
    refused = client.post(url, json={"decision": "approve"}, headers=SELLER)
    assert refused.status_code == 403, refused.text
    assert (refused.json()["code"], refused.json()["rule"]) == (
        "not_permitted",
        "prepayment_approver",
    )
    other_head = bearer("head.of.logistics", "head", "sales")
    # a head of no deal of anna's does not even see it: not found, as for any command
    assert client.post(url, json={"decision": "approve"}, headers=other_head).status_code == 404
    invalid = client.post(url, json={"decision": "decline"}, headers=HEAD_AUTH)
    assert invalid.status_code == 422, invalid.text
    assert invalid.json()["field"] == "reason"
    closing = client.post(f"/deals/{deal_id}/close", json={"outcome": "won"}, headers=SELLER)
    assert closing.status_code == 409
    assert closing.json()["rule"] == "invoice_approval_pending"
    approver = bearer(APPROVER, "top")
    ok(client.post(url, json={"decision": "approve"}, headers=approver))
    again = client.post(url, json={"decision": "approve"}, headers=approver)
    assert (again.status_code, again.json()["rule"]) == (409, "invoice_not_pending")
    ok(client.post(f"/deals/{deal_id}/close", json={"outcome": "won"}, headers=SELLER))


def test_the_won_deal_carries_counted_invoices_and_a_declined_one_is_not_payable(
    platform: Platform, client: TestClient
) -> None:
    deal_id = new_deal(client, funnel="upsell")
    proposal = {"services": [{"name": "transport", "price": "100.00"}]}
    ok(client.post(f"/deals/{deal_id}/proposal", json=proposal, headers=SELLER))
    contract = {"number": "C-1", "signed_on": "2026-01-05"}
    ok(client.post(f"/deals/{deal_id}/contract", json=contract, headers=SELLER))
    for number, prepayment in (("PP-1", True), ("PP-2", True), ("INV-1", False)):
        body = {"number": number, "amount": "10.00", "organisation": "main"}
        ok(client.post(f"/deals/{deal_id}/invoice", json=body | {"prepayment": prepayment}))
    url = f"/deals/{deal_id}/invoices/{{}}/approval"
    ok(client.post(url.format("PP-1"), json={"decision": "approve"}, headers=HEAD_AUTH))
    decline = {"decision": "decline", "reason": "no"}
    ok(client.post(url.format("PP-2"), json=decline, headers=HEAD_AUTH))
    closed = ok(client.post(f"/deals/{deal_id}/close", json={"outcome": "won"}, headers=SELLER))

    project_id = str(project_of(client, deal_id))
    project = ok(client.get(f"/projects/{project_id}?min_position={closed['position']}"))
    carried = [(i["number"], i["prepayment"]) for i in project["payments"]["invoices"]]
    assert carried == [("PP-1", True), ("INV-1", False)]
    payment = {"amount": "5.00", "paid_on": "2026-01-05"}
    refused = client.post(f"/projects/{project_id}/invoices/PP-2/payments", json=payment)
    assert refused.status_code == 409, refused.text
    assert (refused.json()["rule"], refused.json()["approval"]) == (
        "invoice_not_approved",
        "declined",
    )
    ok(client.post(f"/projects/{project_id}/invoices/PP-1/payments", json=payment), 201)

    listed = ok(client.get(f"/deals?min_position={closed['position']}"))
    row = next(d for d in listed["items"] if d["deal_id"] == deal_id)
    assert (row["invoices"], row["invoiced_total"], row["invoices_pending"]) == (2, "20.00", 0)


def test_a_pending_invoice_alerts_the_approver_and_counts_apart(client: TestClient) -> None:
    deal_id = new_deal(client, funnel="upsell")
    proposal = {"services": [{"name": "transport", "price": "100.00"}]}
    ok(client.post(f"/deals/{deal_id}/proposal", json=proposal, headers=SELLER))
    contract = {"number": "C-1", "signed_on": "2026-01-05"}
    ok(client.post(f"/deals/{deal_id}/contract", json=contract, headers=SELLER))
    body = {"number": "PP-1", "amount": "10.00", "organisation": "main", "prepayment": True}
    issued = ok(client.post(f"/deals/{deal_id}/invoice", json=body, headers=SELLER))
    head = RULES.head_of("anna.sales")
    alerts = ok(
        client.get(
            f"/alerts?kind=approval_request&recipient={head}&min_position={issued['position']}"
        )
    )
    mine = [a for a in alerts["items"] if a["subject_id"] == deal_id]
    assert len(mine) == 1
    assert mine[0]["subject_type"] == "deal"
    assert "PP-1" in mine[0]["detail"]
    listed = ok(client.get(f"/deals?min_position={issued['position']}"))
    row = next(d for d in listed["items"] if d["deal_id"] == deal_id)
    assert (row["invoices"], row["invoiced_total"], row["invoices_pending"]) == (0, "0.00", 1)


# --- a property: what counts is exactly what needs no approval or got it --------------

STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("issue"), st.integers(0, 3), st.booleans()),
        st.tuples(st.just("approve"), st.integers(0, 3), st.booleans()),
        st.tuples(st.just("decline"), st.integers(0, 3), st.booleans()),
        st.tuples(st.just("win"), st.just(0), st.just(False)),
    ),
    max_size=12,
)


@settings(max_examples=80, deadline=None)
@given(steps=STEPS)
def test_only_counted_invoices_count_and_a_won_deal_has_one_and_none_pending(
    steps: list[tuple[str, int, bool]],
) -> None:
    events = list(pending()[:-1])  # proposal and contract, no invoice yet
    for kind, n, prepayment in steps:
        state = DEAL.fold(events)
        assert state is not None
        if kind == "issue":
            command: Any = IssueInvoice(f"I-{n}", Decimal(n + 1), "main", prepayment=prepayment)
        elif kind == "win":
            command = CloseDeal("won")
        else:
            command = DecideInvoiceApproval(f"I-{n}", kind == "approve", "why")
        try:
            event = deal.decide(state, command, RULES, meta(actor=HEAD, at=state.updated_at))
        except (RuleViolation, NotPermitted, InvalidValue):
            continue
        events.append(event)
        after = deal.evolve(state, event)
        counted = {i.number for i in after.invoices if i.counted}
        assert counted == {
            i.number for i in after.invoices if i.approval in ("not_required", "approved")
        }
        assert all(i.prepayment or i.approval == "not_required" for i in after.invoices)
        if after.status is deal.DealStatus.WON:
            assert counted
            assert all(i.approval != "pending" for i in after.invoices)
