"""The Lead aggregate's rules, one Given/When/Then each (DOMAIN.md "Leads", aggregates/lead.py)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from aggregates.errors import RuleViolation
from aggregates.lead import (
    CloseLead,
    CostComponent,
    LeadAssessed,
    LeadCardUpdated,
    LeadClosed,
    LeadCommand,
    LeadCostBreakdownSet,
    LeadCreated,
    LeadEvent,
    LeadPaused,
    LeadQualified,
    LeadResumed,
    LeadStageChanged,
    LeadStatus,
    LeadTransferred,
    MoveLeadToStage,
    PauseLead,
    QualifyLead,
    RecordLeadAssessment,
    ResumeLead,
    SetLeadCostBreakdown,
    TransferLead,
    UpdateLeadCard,
)
from tests.gwt import T0, given, history, new_lead

ASSESS = RecordLeadAssessment(expert="ivan", result="feasible", hours=Decimal("3.5"))
PAUSE = PauseLead(reason="client on holiday")
BREAKDOWN = SetLeadCostBreakdown(
    (CostComponent("labour", Decimal("1000.50")), CostComponent("travel", Decimal("200")))
)


def lead(*commands: LeadCommand, **card: Any) -> tuple[LeadEvent, ...]:
    """Events of an out-of-court lead (card fields overridable) after these commands."""
    return history(new_lead(**card), *commands)


# --- create -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("funnel", "first_stage"), [("out_of_court", "new"), ("court", "request_received")]
)
def test_a_new_lead_lands_in_the_first_stage_of_its_funnel(funnel: str, first_stage: str) -> None:
    accepted = (
        given().when(new_lead(funnel=funnel)).then(LeadCreated, funnel=funnel, stage=first_stage)
    )
    assert accepted.state.status is LeadStatus.OPEN
    assert accepted.state.version == 1


def test_a_lead_whose_company_id_was_used_before_is_repeat() -> None:
    given(company_known=True).when(new_lead(company_id="inn-7701")).then(
        LeadCreated, company_id="inn-7701", repeat=True
    )


def test_a_lead_with_a_company_id_never_used_before_is_new() -> None:
    given(company_known=False).when(new_lead(company_id="inn-7701")).then(LeadCreated, repeat=False)


@pytest.mark.parametrize("company_id", [None, "", "   "])
def test_a_lead_without_company_id_is_new_even_if_the_company_is_said_known(
    company_id: str | None,
) -> None:
    given(company_known=True).when(new_lead(company_id=company_id)).then(
        LeadCreated, company_id=None, repeat=False
    )


def test_create_trims_texts_and_keeps_the_amount_with_two_decimals() -> None:
    given().when(new_lead(title="  Appraisal  ", amount=Decimal("12.5"))).then(
        LeadCreated, title="Appraisal", amount=Decimal("12.50")
    )


@pytest.mark.parametrize("field", ["title", "company_name", "source", "manager"])
@pytest.mark.parametrize("blank", [None, "", "   "])
def test_create_without_a_required_field_is_invalid(field: str, blank: str | None) -> None:
    given().when(new_lead(**{field: blank})).then_invalid(field=field)


def test_create_in_an_unknown_funnel_is_invalid() -> None:
    given().when(new_lead(funnel="wholesale")).then_invalid(field="funnel")


@pytest.mark.parametrize("amount", ["-0.01", "-100", "10.001", "0.005", "NaN", "1e15"])
def test_create_with_a_bad_amount_is_invalid(amount: str) -> None:
    given().when(new_lead(amount=Decimal(amount))).then_invalid(field="amount")


# --- update card ------------------------------------------------------------------------


def test_a_card_update_carries_only_the_changed_fields_old_to_new() -> None:
    accepted = (
        given(*lead(title="Old title", amount=Decimal("10")))
        .when(UpdateLeadCard({"title": "New title", "manager": "boris", "amount": Decimal(25)}))
        .then(
            LeadCardUpdated,
            changes={
                "title": {"old": "Old title", "new": "New title"},
                "amount": {"old": "10.00", "new": "25.00"},
            },
        )
    )
    assert (accepted.state.title, accepted.state.amount) == ("New title", Decimal("25.00"))


def test_a_card_update_sets_and_clears_optional_fields() -> None:
    accepted = (
        given(*lead(expert="ivan"))
        .when(UpdateLeadCard({"expert": None, "answer_due": date(2026, 2, 1)}))
        .then(
            LeadCardUpdated,
            changes={
                "expert": {"old": "ivan", "new": None},
                "answer_due": {"old": None, "new": "2026-02-01"},
            },
        )
    )
    assert (accepted.state.expert, accepted.state.answer_due) == (None, date(2026, 2, 1))


def test_a_card_update_naming_no_field_is_invalid() -> None:
    given(*lead()).when(UpdateLeadCard({})).then_invalid(field="body")


def test_a_card_update_with_the_current_values_is_no_change() -> None:
    given(*lead(title="Same", amount=Decimal("10"))).when(
        UpdateLeadCard({"title": " Same ", "amount": Decimal("10.00")})
    ).then_rejected(RuleViolation, rule="no_change")


@pytest.mark.parametrize("field", ["title", "company_name", "source", "manager"])
@pytest.mark.parametrize("blank", [None, "", "  "])
def test_a_card_update_blanking_a_required_field_is_invalid(field: str, blank: str | None) -> None:
    given(*lead()).when(UpdateLeadCard({field: blank})).then_invalid(field=field)


@pytest.mark.parametrize("amount", [Decimal("-1"), Decimal("1.234"), None])
def test_a_card_update_with_a_bad_amount_is_invalid(amount: Decimal | None) -> None:
    given(*lead()).when(UpdateLeadCard({"amount": amount})).then_invalid(field="amount")


def test_the_amount_cannot_be_edited_while_a_cost_breakdown_exists() -> None:
    given(*lead(BREAKDOWN)).when(UpdateLeadCard({"amount": Decimal(5)})).then_rejected(
        RuleViolation, rule="amount_from_cost_breakdown"
    )


def test_a_card_update_of_an_unknown_field_is_invalid_naming_it() -> None:
    given(*lead()).when(UpdateLeadCard({"title": "x", "stage": "contract"})).then_invalid(
        field="stage"
    )


def test_a_paused_lead_still_takes_card_edits() -> None:
    given(*lead(PAUSE)).when(UpdateLeadCard({"title": "Renamed"})).then(LeadCardUpdated)


# --- cost breakdown ---------------------------------------------------------------------


def test_the_cost_breakdown_total_becomes_the_amount() -> None:
    accepted = (
        given(*lead(amount=Decimal("99")))
        .when(BREAKDOWN)
        .then(
            LeadCostBreakdownSet,
            components=(
                CostComponent("labour", Decimal("1000.50")),
                CostComponent("travel", Decimal("200.00")),
            ),
            total=Decimal("1200.50"),
            previous_amount=Decimal("99.00"),
        )
    )
    assert accepted.state.amount == Decimal("1200.50")
    assert accepted.state.cost_components == accepted.event.components  # type: ignore[union-attr]


def test_a_negative_cost_component_is_invalid_naming_its_index() -> None:
    given(*lead()).when(
        SetLeadCostBreakdown(
            (CostComponent("labour", Decimal(1)), CostComponent("travel", Decimal(-1)))
        )
    ).then_invalid(field="components[1].amount")


def test_a_cost_component_with_more_than_two_decimals_is_invalid() -> None:
    given(*lead()).when(
        SetLeadCostBreakdown((CostComponent("labour", Decimal("1.001")),))
    ).then_invalid(field="components[0].amount")


def test_cost_component_names_must_be_unique() -> None:
    given(*lead()).when(
        SetLeadCostBreakdown(
            (CostComponent("labour", Decimal(1)), CostComponent(" labour ", Decimal(2)))
        )
    ).then_invalid(field="components[1].name")


def test_a_cost_component_needs_a_name() -> None:
    given(*lead()).when(SetLeadCostBreakdown((CostComponent(" ", Decimal(1)),))).then_invalid(
        field="components[0].name"
    )


def test_an_empty_cost_breakdown_is_invalid() -> None:
    given(*lead()).when(SetLeadCostBreakdown(())).then_invalid(field="components")


def test_the_same_cost_breakdown_again_is_no_change() -> None:
    given(*lead(BREAKDOWN)).when(BREAKDOWN).then_rejected(RuleViolation, rule="no_change")


def test_a_paused_lead_still_takes_cost_edits() -> None:
    given(*lead(PAUSE)).when(BREAKDOWN).then(LeadCostBreakdownSet)


# --- move to stage ----------------------------------------------------------------------


def test_a_lead_moves_forward_to_any_later_stage() -> None:
    accepted = (
        given(*lead())
        .when(MoveLeadToStage("proposal_sent"))
        .then(LeadStageChanged, funnel="out_of_court", from_stage="new", to_stage="proposal_sent")
    )
    assert accepted.state.stage == "proposal_sent"
    assert accepted.state.stage_entered_at == accepted.event.at


def test_a_lead_moves_back_to_an_earlier_stage() -> None:
    given(*lead(MoveLeadToStage("contract"))).when(MoveLeadToStage("assessment")).then(
        LeadStageChanged, from_stage="contract", to_stage="assessment"
    )


def test_moving_to_the_current_stage_is_refused() -> None:
    given(*lead()).when(MoveLeadToStage("new")).then_rejected(RuleViolation, rule="same_stage")


@pytest.mark.parametrize("stage", ["nowhere", "expertise_appointed"])
def test_moving_to_a_stage_outside_the_funnel_is_invalid(stage: str) -> None:
    given(*lead()).when(MoveLeadToStage(stage)).then_invalid(field="stage")


def test_a_paused_lead_does_not_move() -> None:
    given(*lead(PAUSE)).when(MoveLeadToStage("contract")).then_rejected(
        RuleViolation, rule="lead_paused"
    )


def test_a_closed_lead_does_not_move() -> None:
    given(*lead(CloseLead("won"))).when(MoveLeadToStage("contract")).then_rejected(
        RuleViolation, rule="lead_closed"
    )


# --- transfer ---------------------------------------------------------------------------


def test_a_transfer_goes_to_the_first_stage_of_the_other_funnel_by_default() -> None:
    accepted = (
        given(*lead(MoveLeadToStage("contract")))
        .when(TransferLead("court"))
        .then(
            LeadTransferred,
            from_funnel="out_of_court",
            from_stage="contract",
            to_funnel="court",
            to_stage="request_received",
        )
    )
    assert (accepted.state.funnel, accepted.state.stage) == ("court", "request_received")


def test_a_transfer_goes_to_the_named_stage() -> None:
    given(*lead()).when(TransferLead("court", "answer_given")).then(
        {"to_funnel": "court", "to_stage": "answer_given"}
    )


def test_a_transfer_within_the_same_funnel_is_refused() -> None:
    given(*lead()).when(TransferLead("out_of_court", "contract")).then_rejected(
        RuleViolation, rule="same_funnel"
    )


def test_a_transfer_to_an_unknown_funnel_is_invalid() -> None:
    given(*lead()).when(TransferLead("wholesale")).then_invalid(field="funnel")


def test_a_transfer_to_a_stage_the_funnel_lacks_is_invalid() -> None:
    given(*lead()).when(TransferLead("court", "proposal_sent")).then_invalid(field="stage")


def test_a_paused_lead_is_not_transferred() -> None:
    given(*lead(PAUSE)).when(TransferLead("court")).then_rejected(RuleViolation, rule="lead_paused")


# --- pause and resume -------------------------------------------------------------------


def test_a_lead_is_paused_with_a_reason() -> None:
    accepted = (
        given(*lead())
        .when(PauseLead("  client on holiday "))
        .then(LeadPaused, reason="client on holiday")
    )
    assert accepted.state.status is LeadStatus.PAUSED
    assert accepted.state.paused_since == accepted.event.at


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_pause_needs_a_reason(reason: str) -> None:
    given(*lead()).when(PauseLead(reason)).then_invalid(field="reason")


def test_a_paused_lead_cannot_be_paused_again() -> None:
    given(*lead(PAUSE)).when(PAUSE).then_rejected(RuleViolation, rule="already_paused")


def test_resuming_a_lead_that_is_not_paused_is_refused() -> None:
    given(*lead()).when(ResumeLead()).then_rejected(RuleViolation, rule="not_paused")


def test_a_resume_carries_how_long_the_lead_was_paused() -> None:
    events = lead(PAUSE)
    accepted = (
        given(*events)
        .when(ResumeLead(), at=events[-1].at + timedelta(hours=2, minutes=30))
        .then(LeadResumed, paused_seconds=9000.0)
    )
    assert accepted.state.status is LeadStatus.OPEN
    assert (accepted.state.paused_since, accepted.state.pause_reason) == (None, None)


@pytest.mark.parametrize(
    "command",
    [
        MoveLeadToStage("contract"),
        TransferLead("court"),
        ASSESS,
        QualifyLead(quality=True),
        QualifyLead(quality=False, reason="no budget"),
    ],
    ids=lambda c: type(c).__name__,
)
def test_a_paused_lead_refuses_work(command: LeadCommand) -> None:
    given(*lead(ASSESS, PAUSE)).when(command).then_rejected(RuleViolation, rule="lead_paused")


def test_a_paused_lead_can_be_closed_and_is_no_longer_paused() -> None:
    accepted = given(*lead(PAUSE)).when(CloseLead("lost", "went silent")).then(LeadClosed)
    assert accepted.state.status is LeadStatus.LOST
    assert accepted.state.paused_since is None


# --- assessment -------------------------------------------------------------------------


def test_an_assessment_records_expert_result_and_hours() -> None:
    accepted = (
        given(*lead(ASSESS))
        .when(RecordLeadAssessment(expert="olga", result="needs site visit", hours=Decimal(2)))
        .then(LeadAssessed, expert="olga", result="needs site visit", hours=Decimal("2.00"))
    )
    assert accepted.state.assessment_hours_total == Decimal("5.50")
    assert accepted.state.assessment is not None
    assert accepted.state.assessment.expert == "olga"


@pytest.mark.parametrize("hours", ["0", "-1", "0.001", "1.005", "NaN"])
def test_assessment_hours_must_be_positive_with_at_most_two_decimals(hours: str) -> None:
    given(*lead()).when(
        RecordLeadAssessment(expert="ivan", result="ok", hours=Decimal(hours))
    ).then_invalid(field="hours")


@pytest.mark.parametrize("field", ["expert", "result"])
@pytest.mark.parametrize("blank", [None, "", "  "])
def test_an_assessment_needs_expert_and_result(field: str, blank: str | None) -> None:
    values: dict[str, Any] = {"expert": "ivan", "result": "ok", "hours": Decimal(1), field: blank}
    given(*lead()).when(RecordLeadAssessment(**values)).then_invalid(field=field)


def test_a_paused_lead_is_not_assessed() -> None:
    given(*lead(PAUSE)).when(ASSESS).then_rejected(RuleViolation, rule="lead_paused")


# --- qualification ----------------------------------------------------------------------


def test_quality_qualification_needs_an_assessment_first_where_one_is_required() -> None:
    # court leads are always assessed (funnels.toml: assessment_required = true)
    given(*lead(funnel="court")).when(QualifyLead(quality=True)).then_rejected(
        RuleViolation, rule="assessment_required"
    )


def test_a_non_quality_qualification_never_needs_an_assessment() -> None:
    given(*lead(funnel="court")).when(QualifyLead(quality=False, reason="no budget")).then(
        LeadQualified, quality=False
    )


def test_an_assessed_lead_is_qualified_as_quality_and_stays_open() -> None:
    accepted = (
        given(*lead(ASSESS))
        .when(QualifyLead(quality=True))
        .then(LeadQualified, quality=True, reason=None)
    )
    assert accepted.state.quality is True
    assert accepted.state.status is LeadStatus.OPEN


@pytest.mark.parametrize("reason", [None, "", "  "])
def test_a_non_quality_lead_needs_a_reason(reason: str | None) -> None:
    given(*lead(ASSESS)).when(QualifyLead(quality=False, reason=reason)).then_invalid(
        field="reason"
    )


def test_a_non_quality_lead_is_closed_as_non_quality() -> None:
    accepted = (
        given(*lead(ASSESS))
        .when(QualifyLead(quality=False, reason="no budget"))
        .then(LeadQualified, quality=False, reason="no budget")
    )
    assert accepted.state.status is LeadStatus.NON_QUALITY
    assert accepted.state.closed_at == accepted.event.at


def test_a_quality_lead_cannot_be_qualified_as_quality_again() -> None:
    given(*lead(ASSESS, QualifyLead(quality=True))).when(QualifyLead(quality=True)).then_rejected(
        RuleViolation, rule="already_qualified"
    )


# --- close ------------------------------------------------------------------------------


def test_a_lead_is_won_without_a_reason() -> None:
    accepted = given(*lead()).when(CloseLead("won")).then(LeadClosed, outcome="won", reason=None)
    assert accepted.state.status is LeadStatus.WON
    assert accepted.state.closed_at == accepted.event.at


def test_a_lead_is_lost_with_a_reason() -> None:
    accepted = (
        given(*lead())
        .when(CloseLead("lost", "chose a competitor"))
        .then(LeadClosed, outcome="lost", reason="chose a competitor")
    )
    assert accepted.state.status is LeadStatus.LOST
    assert accepted.state.close_reason == "chose a competitor"


@pytest.mark.parametrize("reason", [None, "", "  "])
def test_a_lost_lead_needs_a_reason(reason: str | None) -> None:
    given(*lead()).when(CloseLead("lost", reason)).then_invalid(field="reason")


@pytest.mark.parametrize("outcome", ["draw", "", "WON", "non_quality"])
def test_closing_with_an_unknown_outcome_is_invalid(outcome: str) -> None:
    given(*lead()).when(CloseLead(outcome)).then_invalid(field="outcome")


CLOSINGS: dict[str, tuple[LeadCommand, ...]] = {
    "won": (CloseLead("won"),),
    "lost": (PAUSE, CloseLead("lost", "no answer")),
    "non_quality": (ASSESS, QualifyLead(quality=False, reason="no budget")),
}
EVERY_COMMAND: list[LeadCommand] = [
    UpdateLeadCard({"title": "Renamed"}),
    UpdateLeadCard({}),
    BREAKDOWN,
    SetLeadCostBreakdown(()),
    MoveLeadToStage("contract"),
    MoveLeadToStage("nowhere"),
    TransferLead("court"),
    TransferLead("wholesale"),
    PAUSE,
    PauseLead(""),
    ResumeLead(),
    ASSESS,
    QualifyLead(quality=True),
    QualifyLead(quality=False, reason="x"),
    CloseLead("won"),
    CloseLead("lost", "x"),
    CloseLead("draw"),
]


@pytest.mark.parametrize("closing", list(CLOSINGS))
@pytest.mark.parametrize("command", EVERY_COMMAND, ids=repr)
def test_a_closed_lead_refuses_every_command(closing: str, command: LeadCommand) -> None:
    given(*lead(*CLOSINGS[closing])).when(command).then_rejected(RuleViolation, rule="lead_closed")


# --- event meta -------------------------------------------------------------------------

ACCEPTED_COMMANDS: list[tuple[tuple[LeadCommand, ...], LeadCommand]] = [
    ((), UpdateLeadCard({"title": "Renamed"})),
    ((), BREAKDOWN),
    ((), MoveLeadToStage("contract")),
    ((), TransferLead("court")),
    ((), PAUSE),
    ((PAUSE,), ResumeLead()),
    ((), ASSESS),
    ((ASSESS,), QualifyLead(quality=True)),
    ((), CloseLead("won")),
]


@pytest.mark.parametrize(
    ("before", "command"), ACCEPTED_COMMANDS, ids=[type(c).__name__ for _, c in ACCEPTED_COMMANDS]
)
def test_every_event_carries_actor_instant_and_command_id_of_its_command(
    before: tuple[LeadCommand, ...], command: LeadCommand
) -> None:
    at = T0 + timedelta(days=3, microseconds=17)
    command_id = UUID("0b5b1f5e-0000-4000-8000-00000000c0de")
    when = given(*lead(*before)).when(command, at=at, actor="olga.pm", command_id=command_id)
    event = when.then().event  # .then() itself checks actor, at and command_id
    assert (event.actor, event.at, event.command_id) == ("olga.pm", at, command_id)


def test_the_created_event_carries_the_meta_and_the_state_records_creator_and_time() -> None:
    command_id = UUID("0b5b1f5e-0000-4000-8000-00000000c0df")
    accepted = (
        given()
        .when(new_lead(), at=T0, actor="olga.pm", command_id=command_id)
        .then(LeadCreated, actor="olga.pm", at=T0, command_id=command_id)
    )
    assert (accepted.state.created_by, accepted.state.created_at) == ("olga.pm", T0)
