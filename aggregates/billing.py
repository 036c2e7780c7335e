"""A project's billing: its invoices (number, amount, due date) and the payments received.

The payment status is derived: ``not_paid`` (nothing received), ``partially_paid`` (some
left), ``paid`` (nothing left). An invoice's is measured against its amount; the
project's against the project's amount (:func:`project_payment`), with what was invoiced
and not paid yet beside it.
A payment above what is left of its invoice is refused, naming what is left.
One stream per project, started by its first invoice.

A won deal's invoices are carried into its project's billing when the project is created
(:class:`CarryDealInvoice`): the same number, amount, day, organisation and prepayment,
and the deal they came from. A deal's invoice names no due date, so the carried one has
none either: it is owed, never overdue. Only the deal's counted invoices are carried (not
prepayments, or approved ones): a declined prepayment invoice stays on the deal, and a
payment naming it is refused (409 ``invoice_not_approved``).

An invoice issued on the project may name its organisation: it is then held to the
organisation's services (those of the won deal's proposal) and, on the simplified-tax
regime, booked on its revenue ledger in the same atomic write (:mod:`aggregates.limits`).

An act of completed work on the project is recorded on the invoice it names
(:class:`RecordActOnInvoice`, in the act's own write): the invoice lists its acts and the
amount acted; acts above the invoice's amount are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from aggregates import values
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, RuleViolation
from aggregates.rules import Rules

BILLING_NAMESPACE = UUID("8b1d5e3f-2c4a-4f6b-9e7d-1a0c3b5d7f92")
ZERO = Decimal("0.00")


def billing_stream_id(project_id: UUID) -> UUID:
    return uuid5(BILLING_NAMESPACE, f"billing:{project_id}")


def payment_status(invoiced: Decimal, paid: Decimal) -> str:
    if paid <= 0:
        return "not_paid"
    return "paid" if paid >= invoiced else "partially_paid"


@dataclass(frozen=True)
class ProjectPayment:
    """A project's payment measured against its amount (what the client owes for it), not
    against what was invoiced so far: ``remaining`` = amount - paid (never below 0);
    ``invoiced_unpaid`` = invoiced - paid is shown beside it. A project whose amount is
    not filled in (0) has nothing else to measure against: it is measured against what
    was invoiced, and its ``measured_against`` says so."""

    status: str
    remaining: Decimal
    invoiced_unpaid: Decimal
    measured_against: str
    """``amount``, or ``invoiced`` while the project's amount is 0."""


def project_payment(amount: Decimal, invoiced: Decimal, paid: Decimal) -> ProjectPayment:
    """The project's payment status: not paid (nothing received), partially paid (some of
    its amount left), paid (nothing left)."""
    base, against = (amount, "amount") if amount > 0 else (invoiced, "invoiced")
    return ProjectPayment(
        status=payment_status(base, paid),
        remaining=max(base - paid, ZERO),
        invoiced_unpaid=max(invoiced - paid, ZERO),
        measured_against=against,
    )


@dataclass(frozen=True)
class ProjectInvoice:
    number: str
    amount: Decimal
    due_date: date | None
    """None for an invoice carried from the deal (a deal's invoice names no due date)."""
    issued_on: date
    paid: Decimal
    deal_id: UUID | None = None
    """The deal whose invoice this is, when it was carried from the won deal."""
    organisation: str | None = None
    prepayment: bool = False
    acted: Decimal = ZERO
    """The amount of the acts of completed work recorded on it."""
    acts: tuple[str, ...] = ()
    """The numbers of those acts."""

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.paid

    @property
    def status(self) -> str:
        return payment_status(self.amount, self.paid)

    def overdue(self, today: date) -> bool:
        return self.remaining > 0 and self.due_date is not None and self.due_date < today


@dataclass(frozen=True)
class Billing:
    project_id: UUID
    version: int
    invoices: tuple[ProjectInvoice, ...]
    payments: int
    updated_at: datetime

    @property
    def invoiced(self) -> Decimal:
        return sum((i.amount for i in self.invoices), ZERO)

    @property
    def paid(self) -> Decimal:
        return sum((i.paid for i in self.invoices), ZERO)

    @property
    def remaining(self) -> Decimal:
        return self.invoiced - self.paid

    @property
    def status(self) -> str:
        return payment_status(self.invoiced, self.paid)

    def invoice(self, number: str) -> ProjectInvoice | None:
        return next((i for i in self.invoices if i.number == number), None)


def empty_billing(project_id: UUID, at: datetime) -> Billing:
    return Billing(project_id, 0, (), 0, at)


@dataclass(frozen=True)
class IssueProjectInvoice:
    number: str
    amount: Decimal
    due_date: date
    issued_on: date | None = None
    organisation: str | None = None
    """The issuing organisation (rules.toml); None: not named."""


@dataclass(frozen=True)
class CarryDealInvoice:
    """Carry one of the won deal's invoices into its project's billing."""

    deal_id: UUID
    number: str
    amount: Decimal
    organisation: str
    prepayment: bool
    issued_on: date


@dataclass(frozen=True)
class RecordPayment:
    invoice_number: str
    amount: Decimal
    paid_on: date


@dataclass(frozen=True)
class RecordActOnInvoice:
    """Record an act of completed work of the project on one of its invoices."""

    invoice_number: str
    act_number: str
    amount: Decimal
    act_date: date


@dataclass(frozen=True, kw_only=True)
class ProjectInvoiceIssued(DomainEvent):
    """Issued on the project, or carried from its won deal (then ``deal_id``,
    ``organisation`` and ``prepayment`` say so and ``due_date`` is None). Events recorded
    before deals' invoices were carried have neither: they read as issued on the project,
    which is what they were."""

    project_id: UUID
    number: str
    amount: Decimal
    due_date: date | None
    issued_on: date
    deal_id: UUID | None = None
    organisation: str | None = None
    prepayment: bool = False


@dataclass(frozen=True, kw_only=True)
class ProjectPaymentRecorded(DomainEvent):
    project_id: UUID
    invoice_number: str
    amount: Decimal
    paid_on: date
    invoice_remaining: Decimal
    """What is left of the invoice after this payment."""


@dataclass(frozen=True, kw_only=True)
class ProjectInvoiceActed(DomainEvent):
    """An act of completed work was recorded on the invoice."""

    project_id: UUID
    invoice_number: str
    act_number: str
    amount: Decimal
    act_date: date
    invoice_acted: Decimal
    """The invoice's acted amount after this act."""


BILLING_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    ProjectInvoiceIssued,
    ProjectPaymentRecorded,
    ProjectInvoiceActed,
)


BillingCommand = IssueProjectInvoice | CarryDealInvoice | RecordPayment | RecordActOnInvoice


def decide(
    billing: Billing,
    command: BillingCommand,
    meta: CommandMeta,
    *,
    opened: datetime | None = None,
    rules: Rules | None = None,
    services: tuple[str, ...] = (),
    unpayable: Mapping[str, str] | None = None,
) -> DomainEvent:
    """``opened``: when the project was created (its billing's dates are bounded by it).
    ``rules``: the organisations an invoice may name; ``services``: what the project sells
    (its won deal's proposal), held to the invoice's organisation; ``unpayable``: the won
    deal's invoices left behind as not approved (number → 'pending' or 'declined')."""
    match command:
        case IssueProjectInvoice():
            number = values.required_text("number", command.number)
            amount = values.amount("amount", command.amount, positive=True)
            due = values.day("due_date", command.due_date, required=True)
            issued = values.day("issued_on", command.issued_on, required=False) or (
                meta.at.astimezone(UTC).date()
            )
            assert due is not None
            for field, day in (("issued_on", issued), ("due_date", due)):
                values.sensible_day(field, day, meta.at, since=opened, record="project")
            if due < issued:
                raise InvalidValue("due_date", "'due_date' must not be before the invoice's day")
            if billing.invoice(number) is not None:
                raise RuleViolation("invoice_number_taken", f"the project has invoice '{number}'")
            organisation = _organisation_of(command, rules, services)
            return ProjectInvoiceIssued(
                **meta.event_fields(),
                project_id=billing.project_id,
                number=number,
                amount=amount,
                due_date=due,
                issued_on=issued,
                organisation=organisation,
            )
        case CarryDealInvoice():
            if billing.invoice(command.number) is not None:
                raise RuleViolation(
                    "invoice_number_taken", f"the project has invoice '{command.number}'"
                )
            return ProjectInvoiceIssued(
                **meta.event_fields(),
                project_id=billing.project_id,
                number=command.number,
                amount=command.amount,
                due_date=None,
                issued_on=command.issued_on,
                deal_id=command.deal_id,
                organisation=command.organisation,
                prepayment=command.prepayment,
            )
        case RecordPayment():
            number = values.required_text("invoice_number", command.invoice_number)
            amount = values.amount("amount", command.amount, positive=True)
            paid_on = values.day("paid_on", command.paid_on, required=True)
            assert paid_on is not None
            values.sensible_day("paid_on", paid_on, meta.at, since=opened, record="project")
            invoice = billing.invoice(number)
            if invoice is None and number in (unpayable or {}):
                approval = (unpayable or {})[number]
                raise RuleViolation(
                    "invoice_not_approved",
                    f"prepayment invoice '{number}' was not approved ({approval}): it is not "
                    "payable",
                    approval=approval,
                )
            if invoice is None:
                raise InvalidValue("invoice_number", f"the project has no invoice '{number}'")
            if amount > invoice.remaining:
                raise RuleViolation(
                    "overpayment",
                    f"invoice '{number}' has {invoice.remaining} left to pay: a payment of "
                    f"{amount} would overpay it",
                    remaining=str(invoice.remaining),
                    requested=str(amount),
                )
            return ProjectPaymentRecorded(
                **meta.event_fields(),
                project_id=billing.project_id,
                invoice_number=number,
                amount=amount,
                paid_on=paid_on,
                invoice_remaining=invoice.remaining - amount,
            )
        case RecordActOnInvoice():
            number = values.required_text("invoice_number", command.invoice_number)
            invoice = billing.invoice(number)
            if invoice is None:
                raise InvalidValue("invoice_number", f"the project has no invoice '{number}'")
            if invoice.acted + command.amount > invoice.amount:
                raise RuleViolation(
                    "act_over_invoice",
                    f"invoice '{number}' of {invoice.amount} has {invoice.acted} acted: an act "
                    f"of {command.amount} would exceed it",
                    invoice_amount=str(invoice.amount),
                    acted=str(invoice.acted),
                    requested=str(command.amount),
                )
            return ProjectInvoiceActed(
                **meta.event_fields(),
                project_id=billing.project_id,
                invoice_number=number,
                act_number=command.act_number,
                amount=command.amount,
                act_date=command.act_date,
                invoice_acted=invoice.acted + command.amount,
            )
    raise TypeError(f"not a billing command: {command!r}")  # pragma: no cover


def _organisation_of(
    command: IssueProjectInvoice, rules: Rules | None, services: tuple[str, ...]
) -> str | None:
    if command.organisation is None:
        return None
    if rules is None:  # pragma: no cover - the handler always passes the rules
        raise InvalidValue("organisation", "no organisations are configured")
    organisation = rules.require_organisation(command.organisation)
    organisation.require_sells(services)
    return organisation.id


def evolve(billing: Billing | None, event: DomainEvent) -> Billing:
    changes: dict[str, Any]
    match event:
        case ProjectInvoiceIssued():
            billing = billing or empty_billing(event.project_id, event.at)
            invoice = ProjectInvoice(
                event.number,
                event.amount,
                event.due_date,
                event.issued_on,
                ZERO,
                event.deal_id,
                event.organisation,
                event.prepayment,
            )
            changes = {"invoices": (*billing.invoices, invoice)}
        case ProjectPaymentRecorded(invoice_number=number, amount=amount):
            if billing is None:
                raise ValueError("a payment needs an invoice first")
            changes = {
                "invoices": tuple(
                    replace(i, paid=i.paid + amount) if i.number == number else i
                    for i in billing.invoices
                ),
                "payments": billing.payments + 1,
            }
        case ProjectInvoiceActed(invoice_number=number, amount=amount, act_number=act):
            if billing is None:
                raise ValueError("an act needs an invoice first")
            changes = {
                "invoices": tuple(
                    replace(i, acted=i.acted + amount, acts=(*i.acts, act))
                    if i.number == number
                    else i
                    for i in billing.invoices
                )
            }
        case _:
            raise ValueError(f"not a billing event: {event.type}")
    return replace(billing, version=billing.version + 1, updated_at=event.at, **changes)


def fold(events: list[DomainEvent]) -> Billing | None:
    billing: Billing | None = None
    for event in events:
        billing = evolve(billing, event)
    return billing
