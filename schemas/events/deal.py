"""Public events of a deal: a sale from its creation (from a qualified lead, or as an
upsell to an existing client) through estimates, proposal, contract and invoice to won or
lost.

Published on the ``deal`` aggregate type; the aggregate id is the deal id.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.events.base import Day, Id, Instant, Money, Outcome, PublicPayload

HandoffStatus = Literal["open", "in_work", "ready", "done", "rejected", "cancelled"]
"""Where a hand-off request stands: not taken yet, in work, its outcome ready, done,
rejected by the department, or cancelled."""


class DealCreatedV1(PublicPayload):
    """A new deal was opened, from a converted lead or as an upsell to an existing client."""

    deal_id: Id
    funnel: str = Field(description="The deal funnel the deal follows.")
    stage: str = Field(description="The funnel stage the deal starts in.")
    title: str
    company_name: str
    company_id: str | None = Field(
        description="The client's id in the company registry; null when not known."
    )
    source: str = Field(description="Where the deal came from (channel).")
    manager: str = Field(description="The sales manager who owns the deal.")
    description: str | None
    amount: Money = Field(description="The deal's expected value.")
    lead_id: Id | None = Field(description="The lead the deal was converted from, if any.")
    previous_deal_id: Id | None = Field(
        description="The client's earlier deal this one is an upsell of, if any."
    )


class DealStageChangedV1(PublicPayload):
    """The deal moved to another stage of its funnel; entering a stage that needs
    estimates from other departments starts an estimate round."""

    funnel: str
    from_stage: str
    to_stage: str
    needs: tuple[str, ...] = Field(
        default=(),
        description="Departments whose estimates the new stage asks for, in order (empty: "
        "none). Absent from events recorded before estimates existed.",
    )
    ready_stage: str | None = Field(
        default=None,
        description="The stage the deal moves to once every estimate is ready; null when the "
        "stage needs none. Absent from events recorded before estimates existed.",
    )


class ServiceLine(PublicPayload):
    """One service of a proposal with its price."""

    name: str
    price: Money


class DealProposalRecordedV1(PublicPayload):
    """A commercial proposal was recorded for the deal."""

    services: tuple[ServiceLine, ...]
    total: Money = Field(description="The proposal's total price.")


class DealProposalRecordedV2(PublicPayload):
    """A commercial proposal was recorded for the deal, typed by hand or built from a
    request for calculation's calculated services, naming the selling organisation when
    known (version 1 events were typed and named none: read as null)."""

    services: tuple[ServiceLine, ...]
    total: Money = Field(description="The proposal's total price.")
    calculation_id: Id | None = Field(
        default=None,
        description="The request for calculation whose services the proposal was built "
        "from; null when typed by hand (version 1 proposals read as typed).",
    )
    organisation: str | None = Field(
        default=None,
        description="Our legal entity selling the services (each one it sells); null when "
        "not named (version 1 proposals named none).",
    )


class DealContractRecordedV1(PublicPayload):
    """The contract for the deal was signed."""

    number: str = Field(description="The contract number.")
    signed_on: Day


class DealInvoiceIssuedV1(PublicPayload):
    """An invoice was issued to the client for the deal."""

    number: str = Field(description="The invoice number, unique within the deal.")
    amount: Money
    prepayment: bool = Field(description="True for a prepayment invoice.")
    organisation: str = Field(description="The id of our legal entity that issued it.")
    issued_on: Day


class DealInvoiceIssuedV2(PublicPayload):
    """An invoice was issued to the client for the deal; a prepayment invoice is issued
    pending approval (version 1 invoices counted at once: read as 'not_required')."""

    number: str = Field(description="The invoice number, unique within the deal.")
    amount: Money
    prepayment: bool = Field(description="True for a prepayment invoice.")
    organisation: str = Field(description="The id of our legal entity that issued it.")
    issued_on: Day
    approval: str = Field(
        description="'pending' for a prepayment invoice (counted once approved), else "
        "'not_required'."
    )
    approver: str | None = Field(
        description="Who is asked to approve a pending invoice (the manager's head); null "
        "when none is needed."
    )


class DealInvoiceApprovedV1(PublicPayload):
    """A pending prepayment invoice was approved: it counts and is payable from now on
    (and is booked on its organisation's revenue ledger)."""

    number: str
    amount: Money
    organisation: str = Field(description="The id of our legal entity that issued it.")
    issued_on: Day
    comment: str | None


class DealInvoiceDeclinedV1(PublicPayload):
    """A pending prepayment invoice was declined: it never counts nor is payable."""

    number: str
    reason: str


class DealHandoffNotedV1(PublicPayload):
    """The deal's view of one of its hand-off requests to another department changed (it
    was sent, taken, estimated, moved, rejected or cancelled)."""

    request_id: Id = Field(description="The hand-off request.")
    department: str
    stage: str = Field(description="The request's stage in its department's funnel.")
    status: HandoffStatus
    assignee: str | None = Field(description="Who in the department took it; null until taken.")
    price: Money | None = Field(description="The estimated cost, once a department gave one.")
    round: int | None = Field(
        description="The deal's estimate round that asked for the request; null for a request "
        "sent by hand."
    )
    ready_at: Instant | None = Field(description="When the request's outcome became ready.")


class DealEstimateReadyV1(PublicPayload):
    """Every estimate of an estimate round is ready: the deal moved on to the ready stage."""

    round: int = Field(description="The estimate round (the deal version that opened it).")
    from_stage: str
    to_stage: str
    price: Money = Field(description="The sum of the round's estimated prices.")
    estimated_by: tuple[str, ...] = Field(description="Who made the estimates.")
    took_seconds: float = Field(description="Seconds from the round's start to ready.")


class DealEstimateRejectedV1(PublicPayload):
    """A department rejected an estimate request: the deal went back to the return stage."""

    round: int = Field(description="The estimate round (the deal version that opened it).")
    request_id: Id = Field(description="The rejected hand-off request.")
    department: str
    from_stage: str
    to_stage: str
    reason: str


class DealClosedV1(PublicPayload):
    """The deal was closed as won or lost."""

    outcome: Outcome
    reason: str | None = Field(description="Why; always given when the deal was lost.")


class DealProjectStartedV1(PublicPayload):
    """The won deal's project was created; its id links the deal to the project (whose
    ``ProjectCreated`` names the deal and lead)."""

    project_id: Id = Field(description="The project the won deal became.")


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "deal": (
        DealCreatedV1,
        DealStageChangedV1,
        DealProposalRecordedV1,
        DealProposalRecordedV2,
        DealContractRecordedV1,
        DealInvoiceIssuedV1,
        DealHandoffNotedV1,
        DealEstimateReadyV1,
        DealEstimateRejectedV1,
        DealClosedV1,
        DealProjectStartedV1,
        DealInvoiceIssuedV2,
        DealInvoiceApprovedV1,
        DealInvoiceDeclinedV1,
    ),
}
"""The models of this module by aggregate type, every version of every event type."""
