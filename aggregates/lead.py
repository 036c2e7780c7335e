"""The Lead aggregate: every rule of a lead's life, from creation to closing.

Written as a decider. ``decide(state, command, funnels, meta)`` returns exactly one event
or raises a :class:`~aggregates.errors.DomainError`; ``evolve(state, event)`` folds an
event into the state. Both are pure.

Rules in brief:
- a lead is created in the first stage of its funnel; it is **repeat** when its
  ``company_id`` was used by an earlier lead, or, for a private person's lead (no
  company id), when an earlier lead named its contact (``contact_id``), else **new**;
- a lead moves to any stage of its funnel except the current one, never while paused
  and never once closed; a transfer goes to another funnel only;
- a paused lead takes card and cost edits, a resume, or a close; nothing else;
- an assessment needs ``hours`` > 0; qualification as quality needs an assessment first
  only where one is required (the card's ``assessment_required``, else its funnel's);
  a non-quality qualification never needs one, but needs a reason; non-quality closes
  the lead;
- a lead closed won in a funnel that delivers directly (``delivery = "project"``) with no
  deal becomes a project: the lead records it once (``LeadProjectStarted``);
- closing as ``lost`` needs a reason; a closed lead accepts no further command.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from aggregates import values
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, RuleViolation
from aggregates.funnels import FunnelCatalog
from aggregates.values import (
    DEFAULT_CURRENCY,
    MAX_AMOUNT,
    MAX_TEXT,
    amount,
    currency,
    required_text,
    text,
)

MAX_ASSESSMENT_HOURS = Decimal(10_000)
__all__ = ["MAX_AMOUNT", "MAX_TEXT"]

_text = text
_required_text = required_text
_amount = amount
_T = TypeVar("_T")


class LeadStatus(StrEnum):
    OPEN = "open"
    PAUSED = "paused"
    WON = "won"
    LOST = "lost"
    NON_QUALITY = "non_quality"

    @property
    def closed(self) -> bool:
        return self in (LeadStatus.WON, LeadStatus.LOST, LeadStatus.NON_QUALITY)


class Outcome(StrEnum):
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True)
class CostComponent:
    name: str
    amount: Decimal


@dataclass(frozen=True)
class Assessment:
    expert: str
    result: str
    hours: Decimal


# --- state ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lead:
    lead_id: UUID
    version: int
    funnel: str
    stage: str
    status: LeadStatus
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
    currency: str
    cost_components: tuple[CostComponent, ...]
    quality: bool | None
    qualification_reason: str | None
    assessment: Assessment | None
    assessment_hours_total: Decimal
    pause_reason: str | None
    paused_since: datetime | None
    close_reason: str | None
    closed_at: datetime | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    stage_entered_at: datetime
    deal_id: UUID | None = None
    answer_reminded_for: date | None = None
    """The answer date a reminder was sent for (a new date can be reminded again)."""
    answer_escalated_for: date | None = None
    contact: str | None = None
    assessment_required: bool | None = None
    """Asked on the card: True/False, or None for the funnel's setting."""
    project_id: UUID | None = None
    qualified_at: datetime | None = None
    """When it was found quality (None: not found quality)."""
    contact_id: UUID | None = None
    """The contact (``aggregates/contact.py``) the lead names: a private person's lead's
    client, whose earlier leads make it a repeat."""


CARD_FIELDS: tuple[str, ...] = (
    "title",
    "company_name",
    "source",
    "manager",
    "expert",
    "need_maturity",
    "answer_due",
    "description",
    "amount",
    "contact",
    "assessment_required",
)
REQUIRED_CARD_FIELDS = frozenset({"title", "company_name", "source", "manager"})


# --- commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateLead:
    lead_id: UUID
    funnel: str
    title: str
    company_name: str
    source: str
    manager: str
    company_id: str | None = None
    expert: str | None = None
    need_maturity: str | None = None
    answer_due: date | None = None
    description: str | None = None
    amount: Decimal = Decimal(0)
    currency: str = DEFAULT_CURRENCY
    contact: str | None = None
    assessment_required: bool | None = None
    contact_id: UUID | None = None


@dataclass(frozen=True)
class UpdateLeadCard:
    """Only the fields present in ``changes`` are touched."""

    changes: dict[str, Any]


@dataclass(frozen=True)
class SetLeadCostBreakdown:
    components: tuple[CostComponent, ...]


@dataclass(frozen=True)
class MoveLeadToStage:
    stage: str


@dataclass(frozen=True)
class TransferLead:
    funnel: str
    stage: str | None = None


@dataclass(frozen=True)
class PauseLead:
    reason: str


@dataclass(frozen=True)
class ResumeLead:
    pass


@dataclass(frozen=True)
class RecordLeadAssessment:
    expert: str
    result: str
    hours: Decimal


@dataclass(frozen=True)
class QualifyLead:
    quality: bool
    reason: str | None = None


@dataclass(frozen=True)
class CloseLead:
    outcome: str
    reason: str | None = None


@dataclass(frozen=True)
class RemindUnansweredLead:
    """The client's answer date passed with no answer: remind the manager."""

    due: date
    recipient: str


@dataclass(frozen=True)
class EscalateUnansweredLead:
    """Still no answer after the grace period: escalate to the manager's head."""

    due: date
    recipient: str


LeadCommand = (
    UpdateLeadCard
    | SetLeadCostBreakdown
    | MoveLeadToStage
    | TransferLead
    | PauseLead
    | ResumeLead
    | RecordLeadAssessment
    | QualifyLead
    | CloseLead
    | RemindUnansweredLead
    | EscalateUnansweredLead
)


# --- events -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LeadCreated(DomainEvent):
    """Version 2 added ``currency``; version 1 events are read with the default currency
    (see ``upcast_lead_created_v1``). Version 3 added ``contact`` and
    ``assessment_required`` (None: the funnel's setting); earlier events are read with
    neither (see ``upcast_lead_created_v2``). Version 4 added ``contact_id``; earlier
    events name no contact (see ``upcast_lead_created_v3``)."""

    schema_version: ClassVar[int] = 4

    lead_id: UUID
    funnel: str
    stage: str
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
    currency: str
    contact: str | None = None
    assessment_required: bool | None = None
    contact_id: UUID | None = None


def upcast_lead_created_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Leads created before currencies were recorded were all priced in roubles."""
    return data | {"currency": DEFAULT_CURRENCY}


def upcast_lead_created_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Leads created before the card had a contact or asked for an assessment: no contact,
    and the funnel's assessment setting applies."""
    return data | {"contact": None, "assessment_required": None}


def upcast_lead_created_v3(data: dict[str, Any]) -> dict[str, Any]:
    """Leads created before contacts were a directory named no contact record."""
    return data | {"contact_id": None}


UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("LeadCreated", 1): upcast_lead_created_v1,
    ("LeadCreated", 2): upcast_lead_created_v2,
    ("LeadCreated", 3): upcast_lead_created_v3,
}
"""Stored-event upcasters: (event type, stored version) → the next version's fields."""


@dataclass(frozen=True, kw_only=True)
class LeadCardUpdated(DomainEvent):
    changes: dict[str, dict[str, Any]]
    """``{field: {"old": value, "new": value}}`` with JSON values (dates and amounts as
    strings), only for fields whose value changed."""


@dataclass(frozen=True, kw_only=True)
class LeadCostBreakdownSet(DomainEvent):
    components: tuple[CostComponent, ...]
    total: Decimal
    previous_amount: Decimal


@dataclass(frozen=True, kw_only=True)
class LeadStageChanged(DomainEvent):
    funnel: str
    from_stage: str
    to_stage: str


@dataclass(frozen=True, kw_only=True)
class LeadTransferred(DomainEvent):
    from_funnel: str
    from_stage: str
    to_funnel: str
    to_stage: str


@dataclass(frozen=True, kw_only=True)
class LeadPaused(DomainEvent):
    reason: str


@dataclass(frozen=True, kw_only=True)
class LeadResumed(DomainEvent):
    paused_seconds: float


@dataclass(frozen=True, kw_only=True)
class LeadAssessed(DomainEvent):
    expert: str
    result: str
    hours: Decimal


@dataclass(frozen=True, kw_only=True)
class LeadQualified(DomainEvent):
    quality: bool
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class LeadClosed(DomainEvent):
    outcome: str
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class LeadConvertedToDeal(DomainEvent):
    deal_id: UUID
    deal_funnel: str


@dataclass(frozen=True, kw_only=True)
class LeadProjectStarted(DomainEvent):
    """The lead, closed won in a funnel that delivers directly, became this project (in
    the same atomic write as the project's creation)."""

    project_id: UUID


@dataclass(frozen=True, kw_only=True)
class LeadAnswerReminderSent(DomainEvent):
    due: date
    recipient: str


@dataclass(frozen=True, kw_only=True)
class LeadAnswerEscalated(DomainEvent):
    due: date
    recipient: str
    manager: str


LeadEvent = (
    LeadCreated
    | LeadCardUpdated
    | LeadCostBreakdownSet
    | LeadStageChanged
    | LeadTransferred
    | LeadPaused
    | LeadResumed
    | LeadAssessed
    | LeadQualified
    | LeadClosed
    | LeadConvertedToDeal
    | LeadProjectStarted
    | LeadAnswerReminderSent
    | LeadAnswerEscalated
)
LEAD_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    LeadCreated,
    LeadCardUpdated,
    LeadCostBreakdownSet,
    LeadStageChanged,
    LeadTransferred,
    LeadPaused,
    LeadResumed,
    LeadAssessed,
    LeadQualified,
    LeadClosed,
    LeadConvertedToDeal,
    LeadProjectStarted,
    LeadAnswerReminderSent,
    LeadAnswerEscalated,
)


# --- value checks -----------------------------------------------------------------------


def _card_value(field: str, value: Any) -> Any:
    if field in REQUIRED_CARD_FIELDS:
        return _required_text(field, value)
    if field == "amount":
        return _amount(field, value)
    if field == "answer_due":
        if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
            return value
        raise InvalidValue(field, "'answer_due' must be a date")
    if field == "assessment_required":
        if value is None or isinstance(value, bool):
            return value
        raise InvalidValue(field, "'assessment_required' must be true, false or null")
    return _text(field, value, required=False)


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _from_json_value(field: str, value: Any) -> Any:
    if value is None:
        return None
    if field == "amount":
        return Decimal(value)
    if field == "answer_due":
        return date.fromisoformat(value)
    return value


# --- decide -----------------------------------------------------------------------------


def create(
    command: CreateLead,
    funnels: FunnelCatalog,
    meta: CommandMeta,
    *,
    company_known: bool,
    contact_known: bool = False,
) -> LeadCreated:
    """Decide a new lead. ``company_known`` says whether an earlier lead used its
    company_id, ``contact_known`` whether an earlier lead named its contact_id: a lead with
    a company id is repeat by its company, a private person's (none) by its contact."""
    return LeadCreated(
        **meta.event_fields(),
        **_opening(command, command.contact_id, funnels, meta.at, company_known, contact_known),
    )


def _opening(
    command: CreateLead | ImportLead,
    contact_id: UUID | None,
    funnels: FunnelCatalog,
    at: datetime,
    company_known: bool,
    contact_known: bool,
) -> dict[str, Any]:
    """A new lead's card checked, as ``LeadCreated``'s own fields in their order (the
    import path builds its event from them without a ``LeadCreated``)."""
    funnel = funnels.require(command.funnel)
    company_id = _text("company_id", command.company_id, required=False)
    repeat = company_known if company_id is not None else contact_id is not None and contact_known
    return {
        "lead_id": command.lead_id,
        "funnel": funnel.id,
        "stage": funnel.first_stage.id,
        "title": _required_text("title", command.title),
        "company_name": _required_text("company_name", command.company_name),
        "company_id": company_id,
        "repeat": repeat,
        "source": _required_text("source", command.source),
        "manager": _required_text("manager", command.manager),
        "expert": _text("expert", command.expert, required=False),
        "need_maturity": _text("need_maturity", command.need_maturity, required=False),
        # the client's answer date: it may have passed before the lead was recorded, so
        # only the absolute bounds apply
        "answer_due": values.sensible_day(
            "answer_due", _card_value("answer_due", command.answer_due), at
        ),
        "description": _text("description", command.description, required=False),
        "amount": _amount("amount", command.amount),
        "currency": currency(command.currency),
        "contact": _text("contact", command.contact, required=False),
        "assessment_required": _card_value("assessment_required", command.assessment_required),
        "contact_id": contact_id,
    }


def _require_not_closed(lead: Lead) -> None:
    if lead.status.closed:
        raise RuleViolation(
            "lead_closed", f"the lead is closed ({lead.status.value}) and accepts no command"
        )


def _require_not_paused(lead: Lead, action: str) -> None:
    if lead.status is LeadStatus.PAUSED:
        raise RuleViolation("lead_paused", f"the lead is paused: resume it before you {action}")


def decide(
    lead: Lead, command: LeadCommand, funnels: FunnelCatalog, meta: CommandMeta
) -> LeadEvent:
    """Decide the one event a command on an existing lead produces, or refuse it."""
    _require_not_closed(lead)
    match command:
        case UpdateLeadCard(changes=changes):
            return _update_card(lead, changes, meta)
        case SetLeadCostBreakdown(components=components):
            return _set_cost(lead, components, meta)
        case MoveLeadToStage(stage=stage_id):
            _require_not_paused(lead, "move it to another stage")
            funnel = funnels.require(lead.funnel)
            stage = funnels.require_stage(funnel, stage_id)
            if stage.id == lead.stage:
                raise RuleViolation("same_stage", f"the lead is already in stage '{stage.id}'")
            return LeadStageChanged(
                **meta.event_fields(), funnel=lead.funnel, from_stage=lead.stage, to_stage=stage.id
            )
        case TransferLead(funnel=funnel_id, stage=stage_id):
            target = funnels.require(funnel_id)
            to_stage = (
                target.first_stage if stage_id is None else funnels.require_stage(target, stage_id)
            )
            _require_not_paused(lead, "transfer it")
            if target.id == lead.funnel:
                raise RuleViolation(
                    "same_funnel",
                    f"the lead is already in funnel '{target.id}': move it to a stage instead",
                )
            return LeadTransferred(
                **meta.event_fields(),
                from_funnel=lead.funnel,
                from_stage=lead.stage,
                to_funnel=target.id,
                to_stage=to_stage.id,
            )
        case PauseLead(reason=reason):
            text = _required_text("reason", reason)
            if lead.status is LeadStatus.PAUSED:
                raise RuleViolation("already_paused", "the lead is already paused")
            return LeadPaused(**meta.event_fields(), reason=text)
        case ResumeLead():
            if lead.status is not LeadStatus.PAUSED or lead.paused_since is None:
                raise RuleViolation("not_paused", "the lead is not paused")
            seconds = max(0.0, (meta.at - lead.paused_since).total_seconds())
            return LeadResumed(**meta.event_fields(), paused_seconds=seconds)
        case RecordLeadAssessment(expert=expert, result=result, hours=hours):
            expert_text = _required_text("expert", expert)
            result_text = _required_text("result", result)
            hours_value = _hours(hours)
            _require_not_paused(lead, "record an assessment")
            return LeadAssessed(
                **meta.event_fields(), expert=expert_text, result=result_text, hours=hours_value
            )
        case QualifyLead(quality=quality, reason=reason):
            reason_text = _text("reason", reason, required=not quality)
            _require_not_paused(lead, "qualify it")
            if quality and lead.assessment is None and assessment_required(lead, funnels):
                raise RuleViolation("assessment_required", _ASSESSMENT_MESSAGE)
            if quality and lead.quality is True:
                raise RuleViolation("already_qualified", "the lead is already qualified as quality")
            return LeadQualified(**meta.event_fields(), quality=quality, reason=reason_text)
        case CloseLead(outcome=outcome, reason=reason):
            try:
                parsed = Outcome(outcome)
            except ValueError as exc:
                raise InvalidValue("outcome", "'outcome' must be 'won' or 'lost'") from exc
            reason_text = _text("reason", reason, required=parsed is Outcome.LOST)
            return LeadClosed(**meta.event_fields(), outcome=parsed.value, reason=reason_text)
        case RemindUnansweredLead(due=due, recipient=recipient):
            _require_unanswered(lead, due, funnels)
            if lead.answer_reminded_for == due:
                raise RuleViolation("already_reminded", f"a reminder for {due} was sent already")
            return LeadAnswerReminderSent(**meta.event_fields(), due=due, recipient=recipient)
        case EscalateUnansweredLead(due=due, recipient=recipient):
            _require_unanswered(lead, due, funnels)
            if lead.answer_reminded_for != due:
                raise RuleViolation("not_reminded", "an escalation follows a reminder")
            if lead.answer_escalated_for == due:
                raise RuleViolation("already_escalated", f"{due} was escalated already")
            return LeadAnswerEscalated(
                **meta.event_fields(), due=due, recipient=recipient, manager=lead.manager
            )
    raise TypeError(f"not a lead command: {command!r}")  # pragma: no cover


def assessment_required(lead: Lead, funnels: FunnelCatalog) -> bool:
    """Whether the lead needs an assessment before it is qualified as quality: as its card
    asks, else as its (current) funnel is configured."""
    return _assessment_required(lead.assessment_required, lead.funnel, funnels)


def _assessment_required(on_card: bool | None, funnel_id: str, funnels: FunnelCatalog) -> bool:
    if on_card is not None:
        return on_card
    funnel = funnels.get(funnel_id)
    return True if funnel is None else funnel.assessment_required


def delivers_project(lead: Lead, funnels: FunnelCatalog) -> bool:
    """Closed won with no deal in a funnel that delivers directly: the lead becomes a
    project (the project-creation process manager makes it)."""
    funnel = funnels.get(lead.funnel)
    return (
        lead.status is LeadStatus.WON
        and lead.deal_id is None
        and funnel is not None
        and funnel.delivery == "project"
    )


def start_project(
    lead: Lead, project_id: UUID, funnels: FunnelCatalog, meta: CommandMeta
) -> LeadProjectStarted:
    """Record the lead's project; the project is created in the same atomic write."""
    if lead.project_id is not None:
        raise RuleViolation(
            "lead_already_delivered", f"the lead became project {lead.project_id} already"
        )
    if not delivers_project(lead, funnels):
        raise RuleViolation(
            "lead_not_delivered_directly",
            "only a lead closed won, without a deal, in a funnel that delivers projects "
            "directly becomes a project",
        )
    return LeadProjectStarted(**meta.event_fields(), project_id=project_id)


def is_unanswered(lead: Lead, funnels: FunnelCatalog) -> bool:
    """Open (or paused) and still in the first stage of its funnel: no answer yet."""
    funnel = funnels.get(lead.funnel)
    return not lead.status.closed and funnel is not None and lead.stage == funnel.first_stage.id


def _require_unanswered(lead: Lead, due: date, funnels: FunnelCatalog) -> None:
    if lead.answer_due != due:
        raise RuleViolation("answer_due_changed", f"the lead's answer date is not {due} any more")
    if not is_unanswered(lead, funnels):
        raise RuleViolation("answered", "the lead has moved past its first stage")


def convert(lead: Lead, deal_id: UUID, deal_funnel: str, meta: CommandMeta) -> LeadConvertedToDeal:
    """Record the lead's deal; the deal is created in the same atomic write."""
    _require_not_closed(lead)
    if lead.status is LeadStatus.PAUSED:
        raise RuleViolation("lead_paused", "the lead is paused: resume it before the deal")
    if lead.quality is not True:
        raise RuleViolation("lead_not_qualified", "only a lead qualified as quality becomes a deal")
    if lead.deal_id is not None:
        raise RuleViolation(
            "lead_already_converted", f"the lead became deal {lead.deal_id} already"
        )
    return LeadConvertedToDeal(**meta.event_fields(), deal_id=deal_id, deal_funnel=deal_funnel)


def _hours(value: Any) -> Decimal:
    return values.hours("hours", value, maximum=MAX_ASSESSMENT_HOURS)


def _update_card(lead: Lead, changes: dict[str, Any], meta: CommandMeta) -> LeadCardUpdated:
    if not changes:
        raise InvalidValue("body", "name at least one card field to change")
    diff: dict[str, dict[str, Any]] = {}
    for field, raw in changes.items():
        if field not in CARD_FIELDS:
            raise InvalidValue(field, f"'{field}' is not a card field that can be changed")
        new = _card_value(field, raw)
        if field == "answer_due":
            values.sensible_day(field, new, meta.at)
        old = getattr(lead, field)
        if new != old:
            diff[field] = {"old": _json_value(old), "new": _json_value(new)}
    if "amount" in diff and lead.cost_components:
        raise RuleViolation(
            "amount_from_cost_breakdown",
            "the amount is derived from the cost breakdown: change the breakdown instead",
        )
    if not diff:
        raise RuleViolation("no_change", "the card already has these values")
    return LeadCardUpdated(**meta.event_fields(), changes=diff)


def _set_cost(
    lead: Lead, components: tuple[CostComponent, ...], meta: CommandMeta
) -> LeadCostBreakdownSet:
    if not components:
        raise InvalidValue("components", "a cost breakdown needs at least one component")
    checked: list[CostComponent] = []
    seen: set[str] = set()
    for index, component in enumerate(components):
        name = _required_text(f"components[{index}].name", component.name)
        if name in seen:
            raise InvalidValue(
                f"components[{index}].name", f"component name '{name}' appears twice"
            )
        seen.add(name)
        checked.append(
            CostComponent(name, _amount(f"components[{index}].amount", component.amount))
        )
    total = sum((c.amount for c in checked), Decimal("0.00"))
    if total >= MAX_AMOUNT:
        raise InvalidValue("components", f"the total must be less than {MAX_AMOUNT:,.0f}")
    if tuple(checked) == lead.cost_components:
        raise RuleViolation("no_change", "the lead already has this cost breakdown")
    return LeadCostBreakdownSet(
        **meta.event_fields(), components=tuple(checked), total=total, previous_amount=lead.amount
    )


# --- evolve -----------------------------------------------------------------------------

OPENING_CARD = (
    "funnel",
    "stage",
    "title",
    "company_name",
    "company_id",
    "repeat",
    "source",
    "manager",
    "expert",
    "need_maturity",
    "answer_due",
    "description",
    "amount",
    "currency",
    "contact",
    "assessment_required",
)
"""The fields a lead's first event (created or imported) gives its state as they are."""


def _opening_card(event: LeadCreated | LeadImported) -> dict[str, Any]:
    return {name: getattr(event, name) for name in OPENING_CARD}


def evolve(lead: Lead | None, event: DomainEvent) -> Lead:
    """Fold one event into the lead's state."""
    if lead is None:
        if isinstance(event, LeadImported):
            return imported(event)
        if not isinstance(event, LeadCreated):
            raise ValueError(f"a lead's stream must start with LeadCreated, not {event.type}")
        return Lead(
            lead_id=event.lead_id,
            version=1,
            status=LeadStatus.OPEN,
            **_opening_card(event),
            contact_id=event.contact_id,
            cost_components=(),
            quality=None,
            qualification_reason=None,
            assessment=None,
            assessment_hours_total=Decimal("0.00"),
            pause_reason=None,
            paused_since=None,
            close_reason=None,
            closed_at=None,
            created_at=event.at,
            created_by=event.actor,
            updated_at=event.at,
            stage_entered_at=event.at,
        )
    changes: dict[str, Any]
    match event:
        case LeadCardUpdated(changes=card):
            changes = {f: _from_json_value(f, c["new"]) for f, c in card.items()}
        case LeadCostBreakdownSet(components=components, total=total):
            changes = {"cost_components": components, "amount": total}
        case LeadStageChanged(to_stage=to_stage):
            changes = {"stage": to_stage, "stage_entered_at": event.at}
        case LeadTransferred(to_funnel=to_funnel, to_stage=to_stage):
            changes = {"funnel": to_funnel, "stage": to_stage, "stage_entered_at": event.at}
        case LeadPaused(reason=reason):
            changes = {
                "status": LeadStatus.PAUSED,
                "pause_reason": reason,
                "paused_since": event.at,
            }
        case LeadResumed():
            changes = {"status": LeadStatus.OPEN, "pause_reason": None, "paused_since": None}
        case LeadAssessed(expert=expert, result=result, hours=hours):
            changes = {
                "assessment": Assessment(expert, result, hours),
                "assessment_hours_total": lead.assessment_hours_total + hours,
            }
        case LeadQualified(quality=quality, reason=reason):
            changes = {
                "quality": quality,
                "qualification_reason": reason,
                "status": LeadStatus.OPEN if quality else LeadStatus.NON_QUALITY,
                "closed_at": None if quality else event.at,
                "qualified_at": event.at if quality else None,
            }
        case LeadClosed(outcome=outcome, reason=reason):
            changes = {
                "status": LeadStatus(outcome),
                "close_reason": reason,
                "closed_at": event.at,
                "paused_since": None,
                "pause_reason": None,
            }
        case LeadConvertedToDeal(deal_id=deal_id):
            changes = {"deal_id": deal_id}
        case LeadProjectStarted(project_id=project_id):
            changes = {"project_id": project_id}
        case LeadAnswerReminderSent(due=due):
            changes = {"answer_reminded_for": due}
        case LeadAnswerEscalated(due=due):
            changes = {"answer_escalated_for": due}
        case _:
            raise ValueError(f"not a lead event: {event.type}")
    changes["version"] = lead.version + 1
    changes["updated_at"] = event.at
    return _copy_with(lead, changes)


def _copy_with(lead: Lead, changes: dict[str, Any]) -> Lead:
    """``dataclasses.replace`` without its per-field checks: replaying a long stream
    (history, as_of) copies the state once per event, and ``replace`` dominated that."""
    copy = object.__new__(Lead)
    copy.__dict__.update(lead.__dict__)
    copy.__dict__.update(changes)
    return copy


def fold(events: list[DomainEvent]) -> Lead | None:
    lead: Lead | None = None
    for event in events:
        lead = evolve(lead, event)
    return lead


# --- import of an existing base (issue 18 §2) -------------------------------------------
#
# A lead brought in from another system keeps its original creation date and its current
# stage and status. The row is checked by the very deciders above, step by step, each
# step at its own original instant: ``create`` (the card), ``MoveLeadToStage`` (to its
# stage), ``QualifyLead``, ``PauseLead`` or ``CloseLead`` (its status). The steps' events
# are not recorded: one ``LeadImported`` carries the state they lead to, so that no
# process manager reacts to history (no answer reminders for last year's leads, no deal
# or project made for a lead won long ago) and an auditor sees one fact, "imported from
# this file's row", not commands nobody issued. ``import_lead_by_steps`` is that
# definition; ``import_lead`` reaches its answers without the steps' events and states
# (an import decides hundreds of thousands of rows), held to them by a property test.


@dataclass(frozen=True)
class ImportLead:
    """One row of a lead file. ``reason`` explains the status: why non-quality, lost (or
    won), or paused. Instants are the original system's; ``None`` for ``stage_entered_at``
    and ``closed_at`` means the creation instant, for ``paused_since`` the stage's entry."""

    lead_id: UUID
    funnel: str
    title: str
    company_name: str
    source: str
    manager: str
    created_at: datetime
    stage: str | None = None
    status: str = "open"
    company_id: str | None = None
    expert: str | None = None
    need_maturity: str | None = None
    answer_due: date | None = None
    description: str | None = None
    amount: Decimal = Decimal(0)
    currency: str = DEFAULT_CURRENCY
    contact: str | None = None
    assessment_required: bool | None = None
    quality: bool | None = None
    reason: str | None = None
    stage_entered_at: datetime | None = None
    closed_at: datetime | None = None
    paused_since: datetime | None = None
    external_id: str | None = None


_IMPORT_FIELDS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(ImportLead)}
_IMPORT_REQUIRED = frozenset(
    n for n, d in _IMPORT_FIELDS.items() if d is dataclasses.MISSING and n != "lead_id"
)


def import_command(lead_id: UUID, row: dict[str, Any]) -> ImportLead:
    """``ImportLead(lead_id=lead_id, **row)`` (the same object, or the same TypeError)
    without the frozen ``__init__``'s ``object.__setattr__`` per field: one per imported
    row."""
    fields = _IMPORT_FIELDS.copy()
    fields["lead_id"] = lead_id
    fields.update(row)
    if len(fields) != len(_IMPORT_FIELDS) or "lead_id" in row or not row.keys() >= _IMPORT_REQUIRED:
        return ImportLead(lead_id=lead_id, **row)  # its own TypeError, naming the field
    return _frozen(ImportLead, fields)


@dataclass(frozen=True, kw_only=True)
class LeadImported(DomainEvent):
    """A lead brought in from an existing base, as it stands there: its stage, status and
    original instants. ``at`` is when it was imported; ``created_at`` when it was created
    in the original system. The event's ``cause`` names the file, its checksum and row."""

    lead_id: UUID
    funnel: str
    stage: str
    status: str
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
    currency: str
    contact: str | None
    assessment_required: bool | None
    quality: bool | None
    qualification_reason: str | None
    close_reason: str | None
    pause_reason: str | None
    created_at: datetime
    stage_entered_at: datetime
    qualified_at: datetime | None
    closed_at: datetime | None
    paused_since: datetime | None
    external_id: str | None


LEAD_IMPORT_EVENT_TYPES: tuple[type[DomainEvent], ...] = (LeadImported,)


def _instant(field: str, value: Any, *, after: datetime, before: datetime, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidValue(field, f"'{field}' must be a date and time with its time zone")
    if value < after:
        raise InvalidValue(field, f"'{field}' must not be before {what}")
    if value > before:
        raise InvalidValue(field, f"'{field}' must not be after the import ({before:%Y-%m-%d})")
    return value


def import_lead(
    command: ImportLead, funnels: FunnelCatalog, meta: CommandMeta, *, company_known: bool
) -> LeadImported:
    """Decide an imported lead: the answer of :func:`import_lead_by_steps` (the same event,
    or the same refusal), reached without its intermediate events and states. An import
    decides a row in this many microseconds, and the steps' frozen events and states of
    30-odd fields were most of its cost, so the steps' checks are made here on the card
    directly, in the steps' order, by the same rule functions (``_opening``, the stage
    lookup, ``_assessment_required``, the reasons' texts); a property test holds the two
    paths to the same answers for any row."""
    created_at = _instant(
        "created_at",
        command.created_at,
        after=_earliest(meta.at),
        before=meta.at,
        what="2000-01-01",
    )
    stage_at = _instant(
        "stage_entered_at",
        command.stage_entered_at or created_at,
        after=created_at,
        before=meta.at,
        what="the creation",
    )
    card = _opening(command, None, funnels, created_at, company_known, False)
    del card["contact_id"]
    stage_entered_at = created_at
    if command.stage is not None and command.stage != card["stage"]:
        # MoveLeadToStage on a lead just created (open, not paused, in its funnel)
        stage = funnels.require_stage(funnels.require(card["funnel"]), command.stage)
        if stage.id == card["stage"]:
            raise RuleViolation("same_stage", f"the lead is already in stage '{stage.id}'")
        card["stage"] = stage.id
        stage_entered_at = stage_at
    status = _import_status(command.status)
    closed_at = None
    if status.closed:
        closed_at = _instant(
            "closed_at",
            command.closed_at or stage_at,
            after=stage_at,
            before=meta.at,
            what="the stage was entered",
        )
    if command.quality is not None and command.quality is (status is LeadStatus.NON_QUALITY):
        raise InvalidValue(
            "quality",
            "a lead found not quality has status 'non_quality', and only such a lead is",
        )
    quality: bool | None = None
    qualified_at = None
    if command.quality is True:
        # QualifyLead(True): no assessment was recorded on an imported lead
        if _assessment_required(card["assessment_required"], card["funnel"], funnels):
            raise RuleViolation("assessment_required", _ASSESSMENT_MESSAGE)
        quality, qualified_at = True, stage_at
    reason = command.reason
    qualification_reason = close_reason = pause_reason = None
    paused_since = None
    match status:
        case LeadStatus.NON_QUALITY:
            qualification_reason = _text("reason", reason, required=True)
            quality = False
        case LeadStatus.WON | LeadStatus.LOST:
            close_reason = _text("reason", reason, required=status is LeadStatus.LOST)
        case LeadStatus.PAUSED:
            paused_since = _instant(
                "paused_since",
                command.paused_since or stage_at,
                after=stage_at,
                before=meta.at,
                what="the stage was entered",
            )
            pause_reason = _required_text("reason", reason or "")
        case LeadStatus.OPEN:
            pass
    external_id = _text("external_id", command.external_id, required=False)
    # LeadImported's fields in their declared order (what its __init__ would set)
    fields = {
        "actor": meta.actor,
        "at": meta.at,
        "command_id": meta.command_id,
        "correlation_id": meta.correlation_id,
        "request_hash": meta.request_hash,
        "actor_role": meta.actor_role,
        "command": meta.command,
        "cause": meta.cause,
        "lead_id": card["lead_id"],
        "funnel": card["funnel"],
        "stage": card["stage"],
        "status": status.value,
    }
    for name in _IMPORTED_CARD:
        fields[name] = card[name]
    fields["quality"] = quality
    fields["qualification_reason"] = qualification_reason
    fields["close_reason"] = close_reason
    fields["pause_reason"] = pause_reason
    fields["created_at"] = created_at
    fields["stage_entered_at"] = stage_entered_at
    fields["qualified_at"] = qualified_at
    fields["closed_at"] = closed_at
    fields["paused_since"] = paused_since
    fields["external_id"] = external_id
    return _frozen(LeadImported, fields)


_IMPORTED_CARD = OPENING_CARD[2:]
"""The opening card after its funnel and stage, which the import decides itself."""
_ASSESSMENT_MESSAGE = (
    "the lead must be assessed before it is qualified as quality (an "
    "assessment is required by its card or its funnel)"
)


_STATUS_OF: dict[str, LeadStatus] = {s.value: s for s in LeadStatus}
"""The statuses by their text: a dict's lookup, not the enum's call (once per imported
row)."""


def _import_status(value: str) -> LeadStatus:
    if value.__class__ is str and (known := _STATUS_OF.get(value)) is not None:
        return known
    try:
        return LeadStatus(value)
    except ValueError as exc:
        allowed = ", ".join(s.value for s in LeadStatus)
        raise InvalidValue("status", f"'status' must be one of {allowed}") from exc


_EARLIEST: dict[Any, datetime] = {}


def _earliest(at: datetime) -> datetime:
    """2000-01-01 at midnight in ``at``'s zone (asked once per imported row)."""
    tz = at.tzinfo
    earliest = _EARLIEST.get(tz)
    if earliest is None:
        earliest = datetime.combine(values.EARLIEST_DAY, datetime.min.time(), tz)
        _EARLIEST[tz] = earliest
    return earliest


def _frozen(cls: type[_T], fields: dict[str, Any]) -> _T:
    """A frozen dataclass made from ALL its fields, given in their declared order (as its
    ``__init__`` would set them), without ``__init__``'s ``object.__setattr__`` per field."""
    made = object.__new__(cls)
    object.__setattr__(made, "__dict__", fields)
    return made


def import_lead_by_steps(
    command: ImportLead, funnels: FunnelCatalog, meta: CommandMeta, *, company_known: bool
) -> LeadImported:
    """What an imported lead is, by definition: the card and every step to its stage and
    status checked by this module's deciders at their original instants (see above).
    :func:`import_lead` gives the same answers faster."""
    created_at = _instant(
        "created_at",
        command.created_at,
        after=_earliest(meta.at),
        before=meta.at,
        what="2000-01-01",
    )
    stage_at = _instant(
        "stage_entered_at",
        command.stage_entered_at or created_at,
        after=created_at,
        before=meta.at,
        what="the creation",
    )
    at = _step_meta(meta)
    created = create(
        CreateLead(
            lead_id=command.lead_id,
            funnel=command.funnel,
            title=command.title,
            company_name=command.company_name,
            source=command.source,
            manager=command.manager,
            company_id=command.company_id,
            expert=command.expert,
            need_maturity=command.need_maturity,
            answer_due=command.answer_due,
            description=command.description,
            amount=command.amount,
            currency=command.currency,
            contact=command.contact,
            assessment_required=command.assessment_required,
        ),
        funnels,
        at(created_at),
        company_known=company_known,
    )
    state = evolve(None, created)
    if command.stage is not None and command.stage != state.stage:
        state = evolve(state, decide(state, MoveLeadToStage(command.stage), funnels, at(stage_at)))
    status = _import_status(command.status)
    closed_at = None
    if status.closed:
        closed_at = _instant(
            "closed_at",
            command.closed_at or stage_at,
            after=stage_at,
            before=meta.at,
            what="the stage was entered",
        )
    if command.quality is not None and command.quality is (status is LeadStatus.NON_QUALITY):
        raise InvalidValue(
            "quality",
            "a lead found not quality has status 'non_quality', and only such a lead is",
        )
    if command.quality is True:
        state = evolve(state, decide(state, QualifyLead(True), funnels, at(stage_at)))
    reason = command.reason
    match status:
        case LeadStatus.NON_QUALITY:
            assert closed_at is not None
            state = evolve(state, decide(state, QualifyLead(False, reason), funnels, at(closed_at)))
        case LeadStatus.WON | LeadStatus.LOST:
            assert closed_at is not None
            command_close = CloseLead(status.value, reason)
            state = evolve(state, decide(state, command_close, funnels, at(closed_at)))
        case LeadStatus.PAUSED:
            since = _instant(
                "paused_since",
                command.paused_since or stage_at,
                after=stage_at,
                before=meta.at,
                what="the stage was entered",
            )
            state = evolve(state, decide(state, PauseLead(reason or ""), funnels, at(since)))
        case LeadStatus.OPEN:
            pass
    return LeadImported(
        **meta.event_fields(),
        lead_id=state.lead_id,
        funnel=state.funnel,
        stage=state.stage,
        status=state.status.value,
        title=state.title,
        company_name=state.company_name,
        company_id=state.company_id,
        repeat=state.repeat,
        source=state.source,
        manager=state.manager,
        expert=state.expert,
        need_maturity=state.need_maturity,
        answer_due=state.answer_due,
        description=state.description,
        amount=state.amount,
        currency=state.currency,
        contact=state.contact,
        assessment_required=state.assessment_required,
        quality=state.quality,
        qualification_reason=state.qualification_reason,
        close_reason=state.close_reason,
        pause_reason=state.pause_reason,
        created_at=state.created_at,
        stage_entered_at=state.stage_entered_at,
        qualified_at=state.qualified_at,
        closed_at=state.closed_at,
        paused_since=state.paused_since,
        external_id=_text("external_id", command.external_id, required=False),
    )


def _step_meta(meta: CommandMeta) -> Callable[[datetime], CommandMeta]:
    def at(moment: datetime) -> CommandMeta:
        return CommandMeta(actor=meta.actor, at=moment, command_id=meta.command_id)

    return at


def imported(event: LeadImported) -> Lead:
    """The state an imported lead starts from (version 1)."""
    status = LeadStatus(event.status)
    return Lead(
        lead_id=event.lead_id,
        version=1,
        status=status,
        **_opening_card(event),
        cost_components=(),
        quality=event.quality,
        qualification_reason=event.qualification_reason,
        assessment=None,
        assessment_hours_total=Decimal("0.00"),
        pause_reason=event.pause_reason,
        paused_since=event.paused_since,
        close_reason=event.close_reason,
        closed_at=event.closed_at,
        created_at=event.created_at,
        created_by=event.actor,
        updated_at=event.at,
        stage_entered_at=event.stage_entered_at,
        qualified_at=event.qualified_at,
    )


def link_imported_deal(
    lead: Lead, deal_id: UUID, deal_funnel: str, meta: CommandMeta
) -> LeadConvertedToDeal:
    """An imported deal names this lead: the lead records it, once. (A conversion's other
    rules, open and qualified, describe a sale starting now, not one that happened.)"""
    if lead.deal_id is not None and lead.deal_id != deal_id:
        raise RuleViolation(
            "lead_already_converted", f"the lead became deal {lead.deal_id} already"
        )
    return LeadConvertedToDeal(**meta.event_fields(), deal_id=deal_id, deal_funnel=deal_funnel)
