"""Public events of a hand-off request: a request from a deal to another department
(e.g. logistics or engineering) for an estimate or plan.

Published on the ``handoff`` aggregate type; the aggregate id is the request id.
"""

from __future__ import annotations

from pydantic import Field

from schemas.events.base import Day, DecimalString, Hours, Id, Money, PublicPayload


class HandoffRequestedV1(PublicPayload):
    """A deal asked another department for work (an estimate or a plan)."""

    request_id: Id
    deal_id: Id = Field(description="The deal that asked.")
    department: str
    stage: str = Field(description="The request's first stage in its department's funnel.")
    round: int | None = Field(
        description="The deal's estimate round that asked for it; null for a request sent by hand."
    )
    notes: str | None


class HandoffTakenV1(PublicPayload):
    """Someone from the department took the request into work."""

    assignee: str
    from_stage: str
    to_stage: str


class HandoffLogisticsEstimatedV1(PublicPayload):
    """Logistics estimated the job: a contractor from the directory or the company's own
    equipment, the cost and the lead time."""

    contractor_id: Id | None = Field(
        description="The contractor from the directory; null when the company's own "
        "equipment does the job."
    )
    contractor_name: str | None
    service: str
    cost: Money
    lead_time_days: int = Field(description="Days the job takes.")
    notes: str | None
    rating: int | None = Field(description="The contractor's quality rating for the job, 1 to 5.")


class HandoffPlanRecordedV1(PublicPayload):
    """Engineering recorded its plan for the job."""

    hours: Hours = Field(description="Hours the plan needs.")
    notes: str | None


class CalculatedService(PublicPayload):
    """One service the experts priced."""

    name: str
    quantity: DecimalString | None = Field(description="How many units; null when not counted.")
    unit: str | None = Field(description="The unit of the quantity (hour, page, visit…).")
    price: Money = Field(description="The price per unit (of the service when not counted).")
    hours: Hours | None = Field(description="Hours the service needs; null when not planned.")
    amount: Money = Field(description="The price times the quantity (the price when not counted).")


class HandoffCalculatedV1(PublicPayload):
    """The experts priced the services of a request for calculation (a new calculation
    replaces the one before)."""

    services: tuple[CalculatedService, ...]
    total: Money = Field(description="The sum of the services' amounts.")
    notes: str | None


class HandoffStageChangedV1(PublicPayload):
    """The request moved to another stage of its department's funnel."""

    from_stage: str
    to_stage: str


class HandoffRejectedV1(PublicPayload):
    """The department rejected the request."""

    from_stage: str
    to_stage: str
    reason: str


class HandoffCancelledV1(PublicPayload):
    """The request lost its purpose (its deal closed or left the stage that asked for it)."""

    reason: str


class HandoffReminderSentV1(PublicPayload):
    """The request was not taken within the department's time limit: a reminder went to
    the department."""

    recipient: str


class HandoffEscalatedV1(PublicPayload):
    """The request was still not taken after the grace period: it was escalated to the
    department's head."""

    recipient: str


class HandoffDeliveryRecordedV1(PublicPayload):
    """The job a contractor's estimate priced was done (its deal won): planned vs actual
    completion and the rating of the work delivered."""

    contractor_id: Id = Field(description="The contractor of the estimate.")
    contractor_name: str | None
    service: str
    contracted_on: Day = Field(description="The day the deal was won: the job was ordered.")
    lead_time_days: int = Field(description="The estimate's lead time, in days.")
    planned_on: Day = Field(description="`contracted_on` plus the lead time.")
    completed_on: Day = Field(description="When the job was actually completed.")
    days_late: int = Field(description="Days after `planned_on`; 0 when on time.")
    rating: int = Field(description="The quality of the work delivered, 1 to 5.")
    notes: str | None


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "handoff": (
        HandoffRequestedV1,
        HandoffTakenV1,
        HandoffLogisticsEstimatedV1,
        HandoffPlanRecordedV1,
        HandoffCalculatedV1,
        HandoffStageChangedV1,
        HandoffRejectedV1,
        HandoffCancelledV1,
        HandoffReminderSentV1,
        HandoffEscalatedV1,
        HandoffDeliveryRecordedV1,
    ),
}
"""The models of this module by aggregate type, every version of every event type."""
