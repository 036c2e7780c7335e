"""A project's payment status is measured against the project's amount (seed 000: the
system "compares the sum in the invoice with the sum in the project"): not paid, partially
paid, paid, and what is left = amount - paid (never below 0), with what was invoiced and
not paid yet beside it. A project whose amount is 0 (not filled in) is measured against
what was invoiced. An invoice's own status stays measured against that invoice.

The rule (:func:`aggregates.billing.project_payment`), a property of it, then through
HTTP: the card, the project list and its filter, the portfolio and the payments report,
and a change of the amount after the payments.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from aggregates.billing import ZERO, payment_status, project_payment
from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import ACTOR, PlatformFactory


def D(value: str | int) -> Decimal:
    return Decimal(value).quantize(Decimal("0.01"))


# --- the rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "invoiced", "paid", "status", "remaining", "invoiced_unpaid", "against"),
    [
        # given an amount of 1000: nothing received, part of it, all of it
        ("1000", "0", "0", "not_paid", "1000", "0", "amount"),
        ("1000", "400", "0", "not_paid", "1000", "400", "amount"),
        ("1000", "400", "400", "partially_paid", "600", "0", "amount"),
        ("1000", "1000", "700", "partially_paid", "300", "300", "amount"),
        ("1000", "1000", "1000", "paid", "0", "0", "amount"),
        # invoiced (and paid) beyond the amount: paid, nothing left, never negative
        ("1000", "1200", "1200", "paid", "0", "0", "amount"),
        ("1000", "1200", "1100", "paid", "0", "100", "amount"),
        # an amount of 0 (not filled in): measured against what was invoiced
        ("0", "0", "0", "not_paid", "0", "0", "invoiced"),
        ("0", "500", "200", "partially_paid", "300", "300", "invoiced"),
        ("0", "500", "500", "paid", "0", "0", "invoiced"),
    ],
)
def test_the_project_payment_is_measured_against_its_amount(
    amount: str,
    invoiced: str,
    paid: str,
    status: str,
    remaining: str,
    invoiced_unpaid: str,
    against: str,
) -> None:
    owed = project_payment(D(amount), D(invoiced), D(paid))
    assert (owed.status, owed.remaining, owed.invoiced_unpaid, owed.measured_against) == (
        status,
        D(remaining),
        D(invoiced_unpaid),
        against,
    )


money = st.integers(min_value=0, max_value=10**9).map(lambda c: Decimal(c) / 100)


@given(amount=money, invoiced=money, share=st.fractions(min_value=0, max_value=1))
def test_what_is_left_is_never_negative_and_paid_means_nothing_left(
    amount: Decimal, invoiced: Decimal, share: Any
) -> None:
    paid = (invoiced * share.numerator / share.denominator).quantize(Decimal("0.01"))
    paid = min(paid, invoiced)
    owed = project_payment(amount, invoiced, paid)
    assert owed.remaining >= 0
    assert owed.invoiced_unpaid == invoiced - paid
    assert (owed.status == "paid") == (paid > 0 and owed.remaining == 0)
    assert (owed.status == "not_paid") == (paid == 0)
    if amount > 0:
        assert owed.remaining == max(amount - paid, ZERO)
    else:
        assert (owed.remaining, owed.status) == (invoiced - paid, payment_status(invoiced, paid))


# --- through HTTP -----------------------------------------------------------------------


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        yield client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def wait(platform: Platform, **params: Any) -> dict[str, Any]:
    return {**params, "min_position": platform.store.last_position()}


def test_card_list_filter_portfolio_and_payments_report_measure_against_the_amount(
    api: TestClient, platform: Platform
) -> None:
    created = ok(
        api.post(
            "/projects", json={"title": "Fit-out", "company_name": "Acme", "amount": "1000.00"}
        ),
        201,
    )
    project_id = created["project_id"]
    other = ok(api.post("/projects", json={"title": "Survey", "company_name": "Acme"}), 201)
    invoice = {"number": "A-1", "amount": "400.00", "due_date": "2026-02-20"}
    ok(api.post(f"/projects/{project_id}/invoices", json=invoice), 201)
    pay = {"amount": "400.00", "paid_on": "2026-01-05"}
    ok(api.post(f"/projects/{project_id}/invoices/A-1/payments", json=pay), 201)

    # the invoice is paid in full, the project is not: 600 of its 1000 left
    card = ok(api.get(f"/projects/{project_id}"))["payments"]
    assert card["invoices"][0]["status"] == "paid"
    assert (card["status"], card["amount"], card["paid"]) == ("partially_paid", "1000.00", "400.00")
    assert (card["remaining"], card["invoiced_unpaid"], card["measured_against"]) == (
        "600.00",
        "0.00",
        "amount",
    )

    rows = ok(api.get("/projects", params=wait(platform)))["items"]
    row = next(r for r in rows if r["project_id"] == project_id)
    assert (row["payment_status"], D(row["remaining"]), D(row["invoiced_unpaid"])) == (
        "partially_paid",
        D(600),
        ZERO,
    )
    partial = ok(api.get("/projects", params=wait(platform, payment_status="partially_paid")))
    assert [r["project_id"] for r in partial["items"]] == [project_id]
    assert ok(api.get("/projects", params={"payment_status": "paid"}))["items"] == []

    report = ok(api.get("/reports/portfolio", params=wait(platform)))["payments"]
    assert (D(report["amount"]), D(report["paid"]), D(report["remaining"])) == (
        D(1000),
        D(400),
        D(600),
    )
    assert report["by_status"] == [
        {"payment_status": "not_paid", "projects": 1},
        {"payment_status": "partially_paid", "projects": 1},
        {"payment_status": "paid", "projects": 0},
    ]

    payments = ok(api.get("/reports/payments", params=wait(platform)))
    [item] = payments["items"]
    assert (item["status"], item["payment_status"], D(item["amount"]), D(item["remaining"])) == (
        "paid",
        "partially_paid",
        D(1000),
        D(600),
    )
    assert D(payments["totals"]["remaining"]) == D(600)
    assert ok(api.get("/reports/payments", params={"payment_status": "paid"}))["items"] == []

    # the amount is lowered to what was paid: the project is paid, in every read model
    ok(api.post(f"/projects/{project_id}/card", json={"amount": "400.00"}))
    assert ok(api.get(f"/projects/{project_id}"))["payments"]["status"] == "paid"
    paid = ok(api.get("/projects", params=wait(platform, payment_status="paid")))
    assert [(r["project_id"], D(r["remaining"])) for r in paid["items"]] == [(project_id, ZERO)]
    # the project without an amount is measured against its (no) invoices: not paid
    not_paid = ok(api.get("/projects", params={"payment_status": "not_paid"}))["items"]
    assert [(r["project_id"], r["payment_measured_against"]) for r in not_paid] == [
        (other["project_id"], "invoiced")
    ]
