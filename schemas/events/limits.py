"""Public events of the limits that span aggregates, each kept in a stream of its own.

- ``revenue_ledger``: one stream per organisation and year books every invoice against
  the organisation's yearly revenue cap (simplified-tax regime);
- ``manager_month``: one stream per manager and month counts the new clients the manager
  took against the monthly cap;
- ``client_assignment``: one stream per client company and direction says which manager
  owns it (assignments, approval requests over the cap, declines).
"""

from __future__ import annotations

from pydantic import Field

from schemas.events.base import Id, Money, Month, PublicPayload


class RevenueBookedV1(PublicPayload):
    """An invoice was booked against its organisation's yearly revenue cap."""

    organisation: str = Field(description="The id of our legal entity that invoiced.")
    year: int
    deal_id: Id = Field(description="The deal the invoice belongs to.")
    invoice_number: str
    amount: Money = Field(description="The invoice's amount.")
    total: Money = Field(
        description="The organisation's invoiced total for the year, this invoice included."
    )
    cap: Money = Field(description="The organisation's yearly revenue cap.")


class ProjectRevenueBookedV1(PublicPayload):
    """An invoice issued on a project was booked against its organisation's yearly revenue
    cap, on the same ledger as deals' invoices (a deal's invoice carried into its
    project's billing is booked once, as ``RevenueBooked``)."""

    organisation: str = Field(description="The id of our legal entity that invoiced.")
    year: int = Field(description="The year of the invoice's day.")
    project_id: Id = Field(description="The project the invoice was issued on.")
    invoice_number: str
    amount: Money = Field(description="The invoice's amount.")
    total: Money = Field(
        description="The organisation's invoiced total for the year, this invoice included."
    )
    cap: Money = Field(description="The organisation's yearly revenue cap.")


class ManagerClientTakenV1(PublicPayload):
    """A manager took a new client (a client company and direction) this month."""

    manager: str
    month: Month
    assignment_id: Id = Field(description="The client assignment (client and direction).")
    company_id: str
    direction: str = Field(description="The line of business the client is assigned for.")
    count: int = Field(description="New clients the manager took this month, this one included.")
    cap: int = Field(description="The monthly cap of new clients per manager.")
    approved_by: str | None = Field(
        description="The head who approved it when it was over the cap; null otherwise."
    )


class ClientAssignedV1(PublicPayload):
    """A client company's direction was assigned to a manager."""

    assignment_id: Id
    company_id: str
    direction: str = Field(description="The line of business the client is assigned for.")
    manager: str = Field(description="The manager who owns the client from now on.")
    previous_manager: str | None = Field(description="Who owned it before, if anyone.")
    month: Month
    count: int = Field(description="New clients the manager took this month, this one included.")
    approved_by: str | None = Field(
        description="The head who approved it when it was over the cap; null otherwise."
    )
    comment: str | None


class ClientAssignmentApprovalRequestedV1(PublicPayload):
    """An assignment would take the manager over the monthly cap of new clients: it waits
    for a head's approval."""

    assignment_id: Id
    company_id: str
    direction: str = Field(description="The line of business the client is assigned for.")
    manager: str = Field(description="The manager the client would be assigned to.")
    month: Month
    count: int = Field(description="New clients the manager already took this month.")
    cap: int = Field(description="The monthly cap of new clients per manager.")
    approver: str = Field(description="The head who is asked to approve.")
    reason: str | None


class ClientAssignmentTakeoverRequestedV1(PublicPayload):
    """A manager asked for a client's direction another manager holds: it is never taken
    silently, it waits for the requester's head (or an approver); the holder keeps it
    until then, and loses it on approval (``ClientAssigned.previous_manager``)."""

    assignment_id: Id
    company_id: str
    direction: str = Field(description="The line of business the client is assigned for.")
    manager: str = Field(description="The manager who asks for the direction.")
    held_by: str = Field(description="The manager who holds it now.")
    approver: str = Field(description="The head who is asked to approve.")
    reason: str | None


class ClientAssignmentDeclinedV1(PublicPayload):
    """A head declined an assignment that waited for approval."""

    manager: str = Field(description="The manager the client would have been assigned to.")
    comment: str | None


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "revenue_ledger": (RevenueBookedV1, ProjectRevenueBookedV1),
    "manager_month": (ManagerClientTakenV1,),
    "client_assignment": (
        ClientAssignedV1,
        ClientAssignmentApprovalRequestedV1,
        ClientAssignmentDeclinedV1,
        ClientAssignmentTakeoverRequestedV1,
    ),
}
"""The models of this module by aggregate type, every version of every event type."""
