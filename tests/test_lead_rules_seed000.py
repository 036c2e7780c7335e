"""Seed 000's lead rules (issue 13 §1), one Given/When/Then each: an assessment only where
one is required, a lead delivered directly becomes a project, and the funnel options that
say so (aggregates/lead.py, aggregates/funnels.py)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import pytest
from hypothesis import given as hypothesis_given
from hypothesis import settings
from hypothesis import strategies as st

from aggregates import lead, project
from aggregates.errors import InvalidValue, RuleViolation
from aggregates.funnels import FunnelCatalog
from aggregates.lead import (
    CloseLead,
    LeadCardUpdated,
    LeadCreated,
    LeadProjectStarted,
    LeadQualified,
    QualifyLead,
    RecordLeadAssessment,
    TransferLead,
    UpdateLeadCard,
)
from event_store.codec import EventCodec
from leadledger.settings import DEFAULT_FUNNELS_FILE, DEFAULT_RULES_FILE
from leadledger.wiring import load_rules
from tests.gwt import FUNNELS, T0, given, history, meta, new_lead

ASSESS = RecordLeadAssessment(expert="ivan", result="feasible", hours=Decimal("2"))
QUALITY = QualifyLead(quality=True)
PROJECT_ID = UUID("00000000-0000-4000-8000-0000000000aa")
RULES = load_rules(DEFAULT_FUNNELS_FILE, DEFAULT_RULES_FILE)


def lead_events(*commands: Any, **card: Any) -> tuple[Any, ...]:
    return history(new_lead(**card), *commands)


# --- the funnel options ---------------------------------------------------------------


def test_court_leads_need_an_assessment_and_out_of_court_leads_do_not() -> None:
    assert FUNNELS["court"].assessment_required is True
    assert FUNNELS["out_of_court"].assessment_required is False


def test_out_of_court_delivers_projects_directly_and_court_deals() -> None:
    assert FUNNELS["out_of_court"].delivery == "project"
    assert FUNNELS["out_of_court"].options["deal_funnel"] == "turnkey"  # a deal stays possible
    assert FUNNELS["court"].delivery == "deal"


def _catalog(**options: Any) -> FunnelCatalog:
    return FunnelCatalog.from_config(
        {"funnels": {"f": {"stages": [{"id": "new"}, {"id": "done"}], **options}}}
    )


def test_a_funnel_without_the_options_keeps_the_old_rules() -> None:
    funnel = _catalog()["f"]
    assert (funnel.assessment_required, funnel.delivery) == (True, "deal")


@pytest.mark.parametrize(
    "options", [{"assessment_required": "yes"}, {"delivery": "invoice"}, {"delivery": 1}]
)
def test_a_funnel_with_a_bad_option_is_a_configuration_error(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        _catalog(**options)


# --- assessment "if one is required" -------------------------------------------------


def test_where_none_is_required_a_quality_qualification_needs_no_assessment() -> None:
    given(*lead_events()).when(QUALITY).then(LeadQualified, quality=True)


def test_where_one_is_required_a_quality_qualification_needs_the_assessment() -> None:
    given(*lead_events(funnel="court")).when(QUALITY).then_rejected(
        RuleViolation, rule="assessment_required"
    )
    given(*lead_events(ASSESS, funnel="court")).when(QUALITY).then(LeadQualified, quality=True)


@pytest.mark.parametrize("funnel", ["court", "out_of_court"])
@pytest.mark.parametrize("on_card", [True, False, None])
def test_a_non_quality_qualification_never_needs_an_assessment(
    funnel: str, on_card: bool | None
) -> None:
    events = lead_events(funnel=funnel, assessment_required=on_card)
    given(*events).when(QualifyLead(quality=False, reason="spam")).then(
        LeadQualified, quality=False
    )


def test_the_card_may_ask_for_an_assessment_the_funnel_does_not_require() -> None:
    events = lead_events(assessment_required=True)
    assert events[0].assessment_required is True
    given(*events).when(QUALITY).then_rejected(RuleViolation, rule="assessment_required")


def test_the_card_may_waive_the_assessment_its_funnel_requires() -> None:
    given(*lead_events(funnel="court", assessment_required=False)).when(QUALITY).then(
        LeadQualified, quality=True
    )


def test_a_card_update_changes_the_requirement_old_to_new() -> None:
    accepted = (
        given(*lead_events())
        .when(UpdateLeadCard({"assessment_required": True, "contact": "Olga, +7 900"}))
        .then(
            LeadCardUpdated,
            changes={
                "assessment_required": {"old": None, "new": True},
                "contact": {"old": None, "new": "Olga, +7 900"},
            },
        )
    )
    assert lead.assessment_required(accepted.state, FUNNELS) is True
    assert accepted.state.contact == "Olga, +7 900"


def test_a_card_set_back_to_null_follows_its_funnel_again() -> None:
    events = lead_events(UpdateLeadCard({"assessment_required": None}), assessment_required=True)
    given(*events).when(QUALITY).then(LeadQualified, quality=True)


def test_a_transferred_lead_follows_its_new_funnel() -> None:
    events = lead_events(TransferLead("court"))
    given(*events).when(QUALITY).then_rejected(RuleViolation, rule="assessment_required")


@pytest.mark.parametrize("value", ["yes", 1, 0])
def test_a_requirement_that_is_not_a_boolean_or_null_is_invalid(value: Any) -> None:
    given().when(new_lead(assessment_required=value)).then_invalid(field="assessment_required")
    given(*lead_events()).when(UpdateLeadCard({"assessment_required": value})).then_invalid(
        field="assessment_required"
    )


@settings(max_examples=60, deadline=None, database=None)
@hypothesis_given(
    funnel=st.sampled_from(["court", "out_of_court"]),
    on_card=st.sampled_from([True, False, None]),
    assessed=st.booleans(),
    quality=st.booleans(),
)
def test_a_qualification_is_refused_only_for_quality_without_a_required_assessment(
    funnel: str, on_card: bool | None, assessed: bool, quality: bool
) -> None:
    events = lead_events(
        *([ASSESS] if assessed else []), funnel=funnel, assessment_required=on_card
    )
    required = on_card if on_card is not None else FUNNELS[funnel].assessment_required
    when = given(*events).when(QualifyLead(quality=quality, reason=None if quality else "spam"))
    if quality and required and not assessed:
        when.then_rejected(RuleViolation, rule="assessment_required")
    else:
        when.then(LeadQualified, quality=quality)


def test_a_lead_created_before_version_3_follows_its_funnel() -> None:
    stored = {
        "actor": "anna",
        "at": T0.isoformat(),
        "command_id": "00000000-0000-4000-8000-000000000009",
        "lead_id": "00000000-0000-4000-8000-000000000001",
        "funnel": "court",
        "stage": "request_received",
        "title": "t",
        "company_name": "c",
        "company_id": None,
        "repeat": False,
        "source": "s",
        "manager": "m",
        "expert": None,
        "need_maturity": None,
        "answer_due": None,
        "description": None,
        "amount": "10.00",
        "currency": "EUR",
        "schema_version": 2,
    }
    codec = EventCodec(lead.LEAD_EVENT_TYPES, lead.UPCASTERS)
    event = codec.decode("LeadCreated", orjson.dumps(stored))
    assert isinstance(event, LeadCreated)
    assert (event.contact, event.assessment_required, event.currency) == (None, None, "EUR")
    state = lead.evolve(None, event)
    assert lead.assessment_required(state, FUNNELS) is True


# --- a lead that completes its funnel becomes a project ------------------------------


def _won(*before: Any, **card: Any) -> lead.Lead:
    state = lead.fold(list(lead_events(*before, CloseLead("won"), **card)))
    assert state is not None
    return state


def test_a_lead_closed_won_in_a_funnel_delivering_directly_starts_its_project() -> None:
    state = _won()
    assert lead.delivers_project(state, FUNNELS)
    event = lead.start_project(state, PROJECT_ID, FUNNELS, meta())
    assert isinstance(event, LeadProjectStarted)
    assert event.project_id == PROJECT_ID
    after = lead.evolve(state, event)
    assert (after.project_id, after.version) == (PROJECT_ID, state.version + 1)


def test_a_lead_starts_one_project_only() -> None:
    state = _won()
    started = lead.evolve(state, lead.start_project(state, PROJECT_ID, FUNNELS, meta()))
    with pytest.raises(RuleViolation) as refused:
        lead.start_project(started, PROJECT_ID, FUNNELS, meta())
    assert refused.value.rule == "lead_already_delivered"


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(lead.fold(list(lead_events())), id="open"),
        pytest.param(lead.fold(list(lead_events(CloseLead("lost", "price")))), id="lost"),
        pytest.param(_won(ASSESS, funnel="court"), id="court-funnel-delivers-deals"),
    ],
)
def test_only_a_won_lead_of_a_funnel_delivering_directly_becomes_a_project(
    state: lead.Lead | None,
) -> None:
    assert state is not None
    assert not lead.delivers_project(state, FUNNELS)
    with pytest.raises(RuleViolation) as refused:
        lead.start_project(state, PROJECT_ID, FUNNELS, meta())
    assert refused.value.rule == "lead_not_delivered_directly"


def test_a_won_lead_that_chose_a_deal_gets_no_project_of_its_own() -> None:
    state = _won()
    converted = lead.evolve(
        state,
        lead.LeadConvertedToDeal(**meta().event_fields(), deal_id=PROJECT_ID, deal_funnel="x"),
    )
    assert not lead.delivers_project(converted, FUNNELS)


def test_a_project_carries_the_lead_card() -> None:
    created = project.create(
        project.CreateProject(
            project_id=PROJECT_ID,
            title="Appraisal",
            company_name="Northwind",
            amount=Decimal("30.00"),
            currency="EUR",
            contact="Olga",
            source="website",
            need_maturity="ready_to_buy",
            expert="eva",
            description="a warehouse",
            answer_due=date(2026, 1, 20),
            cost_components=(project.CostComponent("survey", Decimal("30.00")),),
        ),
        RULES.project,
        meta(),
    )
    state = project.evolve(None, created)
    assert (state.currency, state.contact, state.source, state.expert) == (
        "EUR",
        "Olga",
        "website",
        "eva",
    )
    assert state.cost_components == (project.CostComponent("survey", Decimal("30.00")),)
    assert state.answer_due == date(2026, 1, 20)


def test_a_project_created_before_version_2_reads_in_roubles_with_no_lead_card() -> None:
    upcast = project.upcast_project_created_v1({"title": "t"})
    assert upcast["currency"] == "RUB"
    assert upcast["cost_components"] == []
    assert upcast["contact"] is None


def test_a_project_with_a_bad_lead_card_value_is_invalid() -> None:
    with pytest.raises(InvalidValue) as refused:
        project.create(
            project.CreateProject(
                project_id=PROJECT_ID,
                title="t",
                company_name="c",
                cost_components=(project.CostComponent("x", Decimal("-1")),),
            ),
            RULES.project,
            meta(),
        )
    assert refused.value.field == "cost_components[0].amount"
