"""Public events of the contractor directory: contractors and their price quotes.

Published on the ``contractor`` aggregate type; the aggregate id is the contractor id.
"""

from __future__ import annotations

from pydantic import Field

from schemas.events.base import Id, Money, PublicPayload


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


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "contractor": (
        ContractorRegisteredV1,
        ContractorUpdatedV1,
        ContractorQuoteRecordedV1,
    ),
}
"""The models of this module by aggregate type, every version of every event type."""
