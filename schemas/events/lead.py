"""Public events of a lead: a sales opportunity from first touch until it is won or lost.

Published on the ``lead`` aggregate type; the aggregate id is the lead id.
"""

from __future__ import annotations

from pydantic import Field

from schemas.events.base import (
    CardChanges,
    CurrencyCode,
    Day,
    Hours,
    Id,
    Money,
    Outcome,
    PublicPayload,
)


class LeadCreatedV1(PublicPayload):
    """A new lead was registered in the first stage of its funnel (version 1: the amount
    names no currency; all such leads were priced in roubles, RUB)."""

    lead_id: Id
    funnel: str = Field(description="The sales funnel the lead follows.")
    stage: str = Field(description="The funnel stage the lead starts in (the funnel's first).")
    title: str
    company_name: str = Field(description="The client company's name as entered.")
    company_id: str | None = Field(
        description="The client's id in the company registry (e.g. its tax number); null when "
        "not given."
    )
    repeat: bool = Field(
        description="True when an earlier lead already named this company_id (a repeat "
        "client), false for a new client."
    )
    source: str = Field(description="Where the lead came from (channel).")
    manager: str = Field(description="The sales manager who owns the lead.")
    expert: str | None = Field(description="The expert assigned to assess the lead, if any.")
    need_maturity: str | None = Field(description="How mature the client's need is, if known.")
    answer_due: Day | None = Field(description="The day the client expects an answer by, if any.")
    description: str | None
    amount: Money = Field(description="The lead's expected value.")


class LeadCreatedV2(LeadCreatedV1):
    """A new lead was registered in the first stage of its funnel, with the currency of its
    amount (version 2)."""

    currency: CurrencyCode = Field(description="ISO 4217 currency of ``amount``, e.g. RUB.")


class LeadCreatedV3(LeadCreatedV2):
    """A new lead was registered in the first stage of its funnel, with its contact and
    whether it needs an assessment (version 3; earlier versions: no contact, and the
    funnel's assessment setting applies)."""

    contact: str | None = Field(default=None, description="The client's contact person, if given.")
    assessment_required: bool | None = Field(
        default=None,
        description="Whether an expert's assessment is required before the lead is qualified "
        "as quality; null: as its funnel is configured.",
    )


class LeadCreatedV4(LeadCreatedV3):
    """A new lead was registered in the first stage of its funnel, naming the contact
    record of its client (version 4; earlier versions: no contact record)."""

    contact_id: Id | None = Field(
        default=None,
        description="The contact (person) the lead names; a lead with no company_id is a "
        "repeat when an earlier lead named the same contact.",
    )


class LeadCardUpdatedV1(PublicPayload):
    """Fields of the lead's card were edited (title, company, source, manager, expert, need
    maturity, answer date, description or amount)."""

    changes: CardChanges


class CostComponent(PublicPayload):
    """One line of a lead's cost breakdown."""

    name: str
    amount: Money


class LeadCostBreakdownSetV1(PublicPayload):
    """The lead's cost was broken down into components; their total becomes its amount."""

    components: tuple[CostComponent, ...]
    total: Money = Field(description="The components' sum: the lead's amount from now on.")
    previous_amount: Money = Field(description="The lead's amount before this breakdown.")


class LeadStageChangedV1(PublicPayload):
    """The lead moved to another stage of its funnel."""

    funnel: str
    from_stage: str
    to_stage: str


class LeadTransferredV1(PublicPayload):
    """The lead was transferred to another funnel."""

    from_funnel: str
    from_stage: str
    to_funnel: str
    to_stage: str


class LeadPausedV1(PublicPayload):
    """Work on the lead was paused."""

    reason: str


class LeadResumedV1(PublicPayload):
    """Work on a paused lead was resumed."""

    paused_seconds: float = Field(description="How long the lead was paused, in seconds.")


class LeadAssessedV1(PublicPayload):
    """An expert assessed the lead."""

    expert: str
    result: str = Field(description="The expert's conclusion.")
    hours: Hours = Field(description="Hours the expert spent on the assessment.")


class LeadQualifiedV1(PublicPayload):
    """The lead was qualified as quality or non-quality (a non-quality lead is closed)."""

    quality: bool = Field(description="True for a quality lead, false for non-quality.")
    reason: str | None = Field(description="Why; required for a non-quality lead.")


class LeadClosedV1(PublicPayload):
    """The lead was closed as won or lost."""

    outcome: Outcome
    reason: str | None = Field(description="Why; always given when the lead was lost.")


class LeadConvertedToDealV1(PublicPayload):
    """The lead became a deal."""

    deal_id: Id = Field(description="The deal created from the lead.")
    deal_funnel: str = Field(description="The deal funnel the new deal follows.")


class LeadProjectStartedV1(PublicPayload):
    """The lead, closed won in a funnel that delivers directly, became a project."""

    project_id: Id = Field(description="The project created from the lead.")


class LeadAnswerReminderSentV1(PublicPayload):
    """The client's answer date passed without an answer: the manager was reminded."""

    due: Day = Field(description="The answer date that passed.")
    recipient: str = Field(description="Who was reminded.")


class LeadAnswerEscalatedV1(PublicPayload):
    """Still no answer after the grace period: it was escalated to the manager's head."""

    due: Day = Field(description="The answer date that passed.")
    recipient: str = Field(description="Who the escalation went to.")
    manager: str = Field(description="The lead's manager.")


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "lead": (
        LeadCreatedV1,
        LeadCreatedV2,
        LeadCreatedV3,
        LeadCreatedV4,
        LeadCardUpdatedV1,
        LeadCostBreakdownSetV1,
        LeadStageChangedV1,
        LeadTransferredV1,
        LeadPausedV1,
        LeadResumedV1,
        LeadAssessedV1,
        LeadQualifiedV1,
        LeadClosedV1,
        LeadConvertedToDealV1,
        LeadProjectStartedV1,
        LeadAnswerReminderSentV1,
        LeadAnswerEscalatedV1,
    ),
}
"""The models of this module by aggregate type, every version of every event type."""
