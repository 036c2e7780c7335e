"""Request and response models of the lead endpoints."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.limits import MAX_COMPONENTS, Code, LongText, Name


class Strict(BaseModel):
    """Request bodies: unknown fields are refused, and text must be valid Unicode."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _encodable(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("text must be valid Unicode (no lone surrogates)") from None
        return value


class CreateLeadRequest(Strict):
    funnel: Code = Field(description="Funnel id (see GET /funnels)")
    title: Name
    company_name: Name
    company_id: Code | None = Field(
        default=None,
        description="Client company id; one used by an earlier lead makes this a repeat lead",
    )
    source: Name
    manager: Code
    expert: Code | None = None
    need_maturity: Name | None = None
    answer_due: date | None = Field(
        default=None, description="Date the client must get an answer by"
    )
    description: LongText | None = None
    amount: Decimal = Field(default=Decimal(0), description="Primary cost of work, ≥ 0, 2 decimals")
    currency: Code = Field(
        default="RUB", description="ISO 4217 code of the amount's currency", examples=["RUB"]
    )
    contact: Name | None = Field(default=None, description="The client's contact person")
    assessment_required: bool | None = Field(
        default=None,
        description="Whether an expert's assessment is required before the lead is qualified "
        "as quality; null: as its funnel is configured (GET /funnels)",
    )
    contact_id: UUID | None = Field(
        default=None,
        description="The contact (POST /contacts) the lead names. A lead with no company_id "
        "(a private person) is a repeat when an earlier lead named the same contact",
    )


class UpdateCardRequest(Strict):
    """Only the fields sent are changed; a field sent as null is cleared (optional ones)."""

    title: Name | None = None
    company_name: Name | None = None
    source: Name | None = None
    manager: Code | None = None
    expert: Code | None = None
    need_maturity: Name | None = None
    answer_due: date | None = None
    description: LongText | None = None
    amount: Decimal | None = None
    contact: Name | None = None
    assessment_required: bool | None = Field(
        default=None, description="true/false, or null for the funnel's setting"
    )


class CostComponentIn(Strict):
    name: Name
    amount: Decimal = Field(description="≥ 0, 2 decimals")


class CostBreakdownRequest(Strict):
    components: list[CostComponentIn] = Field(
        min_length=1,
        max_length=MAX_COMPONENTS,
        description=f"At least one, at most {MAX_COMPONENTS}; names unique",
    )


class StageRequest(Strict):
    stage: Code


class TransferRequest(Strict):
    funnel: Code
    stage: Code | None = Field(default=None, description="Defaults to the funnel's first stage")


class PauseRequest(Strict):
    reason: LongText


class ResumeRequest(Strict):
    pass


class AssessmentRequest(Strict):
    expert: Code
    result: LongText
    hours: Decimal = Field(description="> 0")


class QualificationRequest(Strict):
    quality: bool
    reason: LongText | None = Field(default=None, description="Required when quality is false")


class CloseRequest(Strict):
    outcome: Literal["won", "lost"]
    reason: LongText | None = Field(default=None, description="Required when the outcome is lost")


class CommandAccepted(BaseModel):
    lead_id: UUID
    version: int
    position: int = Field(
        description="Global position of the event; pass as min_position to read it back"
    )


class CostComponentOut(BaseModel):
    name: str
    amount: Decimal


class AssessmentOut(BaseModel):
    expert: str
    result: str
    hours: Decimal


class LeadDetail(BaseModel):
    lead_id: UUID
    funnel: str
    stage: str
    status: Literal["open", "paused", "won", "lost", "non_quality"]
    title: str
    company_name: str
    company_id: str | None
    repeat: bool
    source: str
    manager: str
    expert: str | None
    need_maturity: str | None
    answer_due: date | None
    description: str | None
    amount: Decimal
    currency: str = Field(description="ISO 4217 code of the amount's currency")
    cost_components: list[CostComponentOut]
    quality: bool | None
    qualification_reason: str | None
    assessment: AssessmentOut | None
    assessment_hours_total: Decimal
    pause_reason: str | None
    paused_since: datetime | None
    close_reason: str | None
    closed_at: datetime | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    stage_entered_at: datetime
    deal_id: UUID | None = Field(default=None, description="The deal the lead became")
    contact: str | None = Field(default=None, description="The client's contact person")
    assessment_required: bool = Field(
        default=True,
        description="Whether the lead needs an assessment before it is qualified as quality "
        "(its card's choice, else its funnel's)",
    )
    assessment_required_on_card: bool | None = Field(
        default=None, description="What the card asks; null: the funnel's setting applies"
    )
    project_id: UUID | None = Field(
        default=None, description="The project the lead became (funnels that deliver directly)"
    )
    version: int


class LeadSummary(BaseModel):
    lead_id: UUID
    funnel: str
    stage: str
    status: str
    title: str
    company_name: str
    repeat: bool
    manager: str
    amount: Decimal
    created_at: datetime
    updated_at: datetime
    pause_reason: str | None = Field(default=None, description="Why it is paused, if it is")
    paused_since: datetime | None = None
    version: int


class LeadPage(BaseModel):
    items: list[LeadSummary]
    total: int
    limit: int
    offset: int


class FieldChange(BaseModel):
    old: Any
    new: Any


class HistoryEntry(BaseModel):
    position: int
    version: int
    type: str
    actor: str = Field(description="The authenticated user (or leadledger.<process>)")
    actor_role: str | None = Field(
        description="Their role when they acted ('process' for a process manager; null "
        "for events recorded before roles existed)"
    )
    command: str | None = Field(description="The command (API operation or process step)")
    caused_by: str | None = Field(
        description="What a process manager reacted to, e.g. 'the estimate-handoff "
        "process, on DealStageChanged of deal <id> (position 12)'"
    )
    at: datetime
    command_id: UUID
    correlation_id: UUID | None
    changes: dict[str, FieldChange]
    data: dict[str, Any] = Field(description="The event's own facts, as stored")


class LeadHistory(BaseModel):
    lead_id: UUID
    events: list[HistoryEntry]


class StageOut(BaseModel):
    id: str
    name: str
    step: int
    time_limit_hours: float | None


class FunnelOut(BaseModel):
    id: str
    name: str
    stages: list[StageOut]
    assessment_required: bool = Field(
        default=True,
        description="Whether its leads need an assessment before they are qualified as "
        "quality (a lead's card may ask otherwise)",
    )
    delivery: Literal["deal", "project"] = Field(
        default="deal",
        description="What a won lead becomes: a deal (POST /leads/{id}/deal), or a project "
        "directly (a lead closed won without a deal)",
    )


class CountAmount(BaseModel):
    count: int
    amount: Decimal


class FunnelReportStage(BaseModel):
    stage: str
    name: str
    step: int
    count: int = Field(description="Leads now in this stage, non-quality excluded")
    amount: Decimal
    paused: CountAmount = Field(
        description="Of them, the leads paused now (included in count and amount)"
    )
    reached: int = Field(description="Leads that reached this step or a later one")
    conversion_to_next: float | None = Field(
        description="Share of the leads that reached this step which reached the next one"
    )


class FunnelReport(BaseModel):
    funnel: str
    created_from: datetime | None
    created_to: datetime | None
    stages: list[FunnelReportStage]
    totals: CountAmount
    non_quality: CountAmount
    new: CountAmount
    repeat: CountAmount
    paused: CountAmount = Field(description="Leads paused now (included in totals)")


class PausedLead(LeadSummary):
    paused_seconds: float = Field(description="How long it has been paused, in seconds")


class PauseReasonFigures(BaseModel):
    reason: str
    count: int
    amount: Decimal
    average_paused_seconds: float
    longest_paused_seconds: float


class PausedLeadsReport(BaseModel):
    """Why leads are not being worked: the leads paused now, by their pause reason."""

    funnel: str | None
    manager: str | None
    created_from: datetime | None
    created_to: datetime | None
    reasons: list[PauseReasonFigures] = Field(description="Most leads first")
    totals: CountAmount
    items: list[PausedLead] = Field(description="The paused leads, longest paused first")
    total: int
    limit: int
    offset: int
