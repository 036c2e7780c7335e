"""Public events of imports (issue 18 §2): records brought in from an existing base, and
saved column mappings.

``LeadImported`` is published on the ``lead`` aggregate type and ``DealImported`` on
``deal``, beside their creations: a subscriber that builds leads or deals folds them as
records created at their ``created_at``, already at their ``stage`` and ``status``. The
envelope's ``cause`` names the file (its name and SHA-256) and the row.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.events.base import CurrencyCode, Day, Id, Instant, Money, PublicPayload
from schemas.events.deal import ServiceLine


class LeadImportedV1(PublicPayload):
    """A lead was brought in from an existing base, at its stage and status, with its
    original instants (the event's own time is when it was imported)."""

    lead_id: Id
    funnel: str
    stage: str = Field(description="The stage it is in (not necessarily the first).")
    status: Literal["open", "paused", "won", "lost", "non_quality"]
    title: str
    company_name: str
    company_id: str | None
    repeat: bool = Field(
        description="True when an earlier lead (in LeadLedger, or created earlier in the same "
        "file) named this company_id."
    )
    source: str
    manager: str
    expert: str | None
    need_maturity: str | None
    answer_due: Day | None
    description: str | None
    amount: Money
    currency: CurrencyCode
    contact: str | None
    assessment_required: bool | None
    quality: bool | None = Field(description="True: qualified as quality; None: not judged.")
    qualification_reason: str | None
    close_reason: str | None
    pause_reason: str | None
    created_at: Instant = Field(description="When it was created in the original system.")
    stage_entered_at: Instant
    qualified_at: Instant | None
    closed_at: Instant | None
    paused_since: Instant | None
    external_id: str | None = Field(description="Its id in the original system, if given.")


class DealImportedV1(PublicPayload):
    """A deal was brought in from an existing base, at its stage and status, with its
    original instants."""

    deal_id: Id
    funnel: str
    stage: str
    status: Literal["open", "won", "lost"]
    title: str
    company_name: str
    company_id: str | None
    source: str
    manager: str
    description: str | None
    amount: Money
    lead_id: Id | None = Field(description="The lead it came from (which records the deal).")
    close_reason: str | None
    created_at: Instant
    stage_entered_at: Instant
    closed_at: Instant | None
    external_id: str | None


class DealImportedV2(PublicPayload):
    """A deal was brought in from an existing base, at its stage and status, with its
    original instants, and with the money it was won with: its proposal, contract, one
    invoice and what was paid of it (version 1 deals had none: read as null), and the
    client's earlier deal when it is an upsell."""

    deal_id: Id
    funnel: str
    stage: str
    status: Literal["open", "won", "lost"]
    title: str
    company_name: str
    company_id: str | None
    source: str
    manager: str
    description: str | None
    amount: Money
    lead_id: Id | None = Field(
        description="The lead it came from (which records the deal unless it is an upsell)."
    )
    close_reason: str | None
    created_at: Instant
    stage_entered_at: Instant
    closed_at: Instant | None
    external_id: str | None
    previous_deal_id: Id | None = Field(
        default=None, description="An upsell's earlier deal of the same client."
    )
    proposal_services: tuple[ServiceLine, ...] = Field(
        default=(), description="The proposal's services (empty: no proposal)."
    )
    proposal_total: Money | None = Field(default=None, description="The proposal's total.")
    proposal_at: Instant | None = Field(default=None, description="When it was proposed.")
    contract_number: str | None = None
    contract_signed_on: Day | None = None
    invoice_number: str | None = Field(
        default=None, description="The invoice it was won with (counted, not a prepayment)."
    )
    invoice_amount: Money | None = None
    invoice_organisation: str | None = Field(
        default=None, description="The id of our legal entity that issued the invoice."
    )
    invoice_issued_on: Day | None = None
    paid: Money | None = Field(
        default=None, description="What the client paid of the invoice, as the file said."
    )
    paid_on: Day | None = None


class ImportMappingSavedV1(PublicPayload):
    """A column mapping for imports was saved under a name (replacing the one before)."""

    name: str
    kind: str = Field(description="The kind of record it maps: leads, deals, ...")
    columns: dict[str, str] = Field(
        description="The file's column header → the field it fills ('' leaves it out)."
    )


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "lead": (LeadImportedV1,),
    "deal": (DealImportedV1, DealImportedV2),
    "import_mapping": (ImportMappingSavedV1,),
}
"""The models of this module by aggregate type, every version of every event type."""
