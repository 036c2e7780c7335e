"""Public events of a project's billing: its invoices and the payments received.

Published on the ``billing`` aggregate type: one stream per project, started by its first
invoice (the aggregate id is the billing stream's id, not the project id).
"""

from __future__ import annotations

from pydantic import Field

from schemas.events.base import Day, Id, Money, PublicPayload


class ProjectInvoiceIssuedV1(PublicPayload):
    """An invoice was issued for the project."""

    project_id: Id
    number: str = Field(description="The invoice number.")
    amount: Money
    due_date: Day | None = Field(
        description="The day the invoice is due; null for an invoice carried from the won "
        "deal (a deal's invoice names no due date)."
    )
    issued_on: Day
    deal_id: Id | None = Field(
        default=None,
        description="The won deal the invoice was carried from; null (or absent, in events "
        "recorded before deals' invoices were carried) for one issued on the project.",
    )
    organisation: str | None = Field(
        default=None,
        description="The issuing organisation: a deal's invoice's, or the one an invoice "
        "issued on the project names; null when it names none.",
    )
    prepayment: bool = Field(
        default=False, description="A deal's prepayment invoice (false when not from a deal)."
    )


class ProjectPaymentRecordedV1(PublicPayload):
    """A payment was received against one of the project's invoices."""

    project_id: Id
    invoice_number: str
    amount: Money = Field(description="The amount paid.")
    paid_on: Day
    invoice_remaining: Money = Field(description="What is left of the invoice after this payment.")


class ProjectInvoiceActedV1(PublicPayload):
    """An act of completed work was recorded on one of the project's invoices."""

    project_id: Id
    invoice_number: str
    act_number: str
    amount: Money = Field(description="The act's amount.")
    act_date: Day
    invoice_acted: Money = Field(description="The invoice's acted amount after this act.")


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "billing": (ProjectInvoiceIssuedV1, ProjectPaymentRecordedV1, ProjectInvoiceActedV1),
}
"""The models of this module by aggregate type, every version of every event type."""
