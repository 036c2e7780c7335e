"""The projects' billing folded set-based (``projections.projects``): random invoices
(issued and carried from a deal), payments, acts on invoices and changes of the project's
amount, through the handlers, projected in random page sizes (a project's creation, its
invoices and their payments and acts often in one page), give each invoice's row, each
payment's row and each project's billing figures the billing aggregate decided, and the
rows one rebuild gives."""

from __future__ import annotations

import random
import tempfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates import billing, project
from aggregates.errors import DomainError
from commands.projects import load_billing, load_billing_records, load_project, record_act
from event_store import EventStore, open_event_store
from leadledger.wiring import event_codec
from projections.database import ReadModelDatabase
from projections.projector import Projector, rebuild
from projections.projects import project_projections
from tests.conftest import FakeClock
from tests.test_portfolio import RULES, D, Delivery

INVOICE_ROW = (
    "SELECT number, amount, due_date, issued_on, deal_id, prepayment, paid, remaining, "
    "status, payments, last_paid_on, acted, acts FROM project_invoices "
    "WHERE project_id = ? ORDER BY position"
)
BILLING_TABLES = ("projects", "project_invoices", "project_payments", "project_acts")


def history(
    store: EventStore, clock: FakeClock, rng: random.Random, db: ReadModelDatabase
) -> list[UUID]:
    """Random billing of three projects; now and then a page of a random size."""
    d = Delivery(store, RULES, clock)
    projects: list[UUID] = []
    invoices: dict[UUID, list[str]] = {}
    acts: dict[UUID, int] = {}
    for step in range(60):
        clock.advance(minutes=rng.randint(1, 600))
        today = clock.now.date()
        pick = rng.random()
        try:
            if len(projects) < 3 and (not projects or pick < 0.1):
                worth = rng.choice([D(0), D(500), D(5000)])
                project_id = d.create(f"Project {step}", "Acme", amount=worth)
                projects.append(project_id)
                invoices[project_id], acts[project_id] = [], 0
                continue
            project_id = rng.choice(projects)
            numbers = invoices[project_id]
            amount = str(Decimal(rng.randint(1, 90_000)) / 100)
            if pick < 0.35 or not numbers:
                number = f"I-{len(numbers) + 1}"
                if rng.random() < 0.3:
                    d.carry(project_id, number, amount, today)
                else:
                    d.invoice(project_id, number, amount, today, today + timedelta(days=30))
                numbers.append(number)
            elif pick < 0.75:
                paid_on = today - timedelta(days=rng.randint(0, 3))
                d.pay(project_id, rng.choice(numbers), amount, paid_on)
            elif pick < 0.9:
                acts[project_id] += 1
                task_id = f"t{acts[project_id]}"
                d.task(project_id, task_id, "8")
                command = project.RecordAct(
                    f"A-{acts[project_id]}",
                    today,
                    D(amount),
                    task_ids=(task_id,),
                    invoice_number=rng.choice(numbers),
                )
                record_act(store, RULES, project_id, command, d.ctx())
            else:
                new = D(rng.choice([0, 300, 2000, 9000]))
                d.do(project_id, project.UpdateProjectCard({"amount": new}))
        except DomainError:
            pass  # refused by the rules (an overpayment, an act over the invoice): nothing
        if rng.random() < 0.3:
            Projector(
                store, db, project_projections(RULES), page_size=rng.randint(1, 20)
            ).run_once()
    return projects


def rows(db: ReadModelDatabase) -> dict[str, list[tuple[Any, ...]]]:
    cursor = db.cursor()
    try:
        return {
            t: cursor.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in BILLING_TABLES
        }
    finally:
        cursor.close()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), final=st.integers(1, 200))
def test_billing_rows_are_what_the_billing_decided_in_any_page_sizes(seed: int, final: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        db = ReadModelDatabase(f"{tmp}/incremental.duckdb")
        rebuilt = ReadModelDatabase(f"{tmp}/rebuilt.duckdb")
        try:
            clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
            projects = history(store, clock, random.Random(seed), db)
            Projector(store, db, project_projections(RULES), page_size=final).catch_up()
            rebuild(store, rebuilt, project_projections(RULES))
            assert rows(db) == rows(rebuilt)
            cursor = db.cursor()
            try:
                for project_id in projects:
                    assert_billing(store, cursor, project_id)
            finally:
                cursor.close()
        finally:
            db.close()
            rebuilt.close()
            store.close()


def assert_billing(store: EventStore, cursor: Any, project_id: UUID) -> None:
    key = [str(project_id)]
    state = load_billing(store, project_id) or billing.empty_billing(project_id, datetime.now(UTC))
    records = load_billing_records(store, project_id)
    payments = [r.event for r in records if isinstance(r.event, billing.ProjectPaymentRecorded)]
    last_paid: dict[str, date] = {}
    for p in payments:
        last_paid[p.invoice_number] = max(last_paid.get(p.invoice_number, p.paid_on), p.paid_on)
    assert cursor.execute(INVOICE_ROW, key).fetchall() == [
        (
            i.number,
            i.amount,
            i.due_date,
            i.issued_on,
            None if i.deal_id is None else str(i.deal_id),
            i.prepayment,
            i.paid,
            i.remaining,
            i.status,
            sum(1 for p in payments if p.invoice_number == i.number),
            last_paid.get(i.number),
            i.acted,
            list(i.acts),
        )
        for i in state.invoices
    ]
    assert cursor.execute(
        "SELECT invoice_number, amount, paid_on, invoice_remaining FROM project_payments "
        "WHERE project_id = ? ORDER BY position",
        key,
    ).fetchall() == [(p.invoice_number, p.amount, p.paid_on, p.invoice_remaining) for p in payments]
    row = cursor.execute(
        "SELECT amount, invoiced, paid, invoices, payments, remaining, payment_status, "
        "invoiced_unpaid, payment_measured_against, billing_version FROM projects "
        "WHERE project_id = ?",
        key,
    ).fetchone()
    assert row is not None
    amount = load_project(store, project_id).amount
    owed = billing.project_payment(amount, state.invoiced, state.paid)
    assert row == (
        amount,
        state.invoiced,
        state.paid,
        len(state.invoices),
        state.payments,
        owed.remaining,
        owed.status,
        owed.invoiced_unpaid,
        owed.measured_against,
        state.version,
    )
