"""Public events of the contractor directory: contractors, their price quotes and the
deliveries of the jobs they quoted.

Published on the ``contractor`` aggregate type; the aggregate id is the contractor id.
"""

from __future__ import annotations

from pydantic import Field

from schemas.events.base import Day, Id, Money, PublicPayload


class ContractorRegisteredV1(PublicPayload):
    """A contractor was added to the directory."""

    contractor_id: Id
    name: str
    services: tuple[str, ...] = Field(description="The services the contractor offers.")
    contacts: str | None
    notes: str | None


class ContractorUpdatedV1(PublicPayload):
    """A contractor's directory entry was edited (the full entry after the edit)."""

    name: str
    services: tuple[str, ...] = Field(description="The services the contractor offers.")
    contacts: str | None
    notes: str | None


class ContractorQuoteRecordedV1(PublicPayload):
    """A logistics estimate used the contractor: its price quote and quality rating."""

    request_id: Id = Field(description="The hand-off request the estimate answered.")
    deal_id: Id = Field(description="The deal of that request.")
    service: str
    price: Money
    rating: int = Field(description="The contractor's quality rating for the job, 1 to 5.")
    notes: str | None


class ContractorDeliveryRecordedV1(PublicPayload):
    """A job the contractor quoted was done: planned vs actual completion and the rating
    of the work delivered (written with the hand-off request's delivery)."""

    request_id: Id = Field(description="The hand-off request whose estimate priced the job.")
    deal_id: Id = Field(description="The deal of that request (won).")
    service: str
    contracted_on: Day = Field(description="The day the deal was won: the job was ordered.")
    lead_time_days: int = Field(description="The estimate's lead time, in days.")
    planned_on: Day = Field(description="`contracted_on` plus the lead time.")
    completed_on: Day = Field(description="When the job was actually completed.")
    days_late: int = Field(description="Days after `planned_on`; 0 when on time.")
    rating: int = Field(description="The quality of the work delivered, 1 to 5.")
    notes: str | None


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "contractor": (
        ContractorRegisteredV1,
        ContractorUpdatedV1,
        ContractorQuoteRecordedV1,
        ContractorDeliveryRecordedV1,
    ),
}
"""The models of this module by aggregate type, every version of every event type."""
