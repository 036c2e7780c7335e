"""Properties of the Lead decider over random command sequences (hypothesis).

Random commands, valid and invalid, across both funnels and at increasing instants, are
run through ``decide``/``evolve``. After each one the lead's invariants hold, a refusal is
only ever an InvalidValue or a RuleViolation, and the accepted events survive the event
codec: replaying them after encode → decode rebuilds the very same state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates.base import CommandMeta
from aggregates.errors import InvalidValue, RuleViolation
from aggregates.lead import (
    CARD_FIELDS,
    CloseLead,
    CostComponent,
    CreateLead,
    Lead,
    LeadCommand,
    LeadEvent,
    LeadStatus,
    MoveLeadToStage,
    PauseLead,
    QualifyLead,
    RecordLeadAssessment,
    ResumeLead,
    SetLeadCostBreakdown,
    TransferLead,
    UpdateLeadCard,
    create,
    decide,
    evolve,
    fold,
)
from leadledger.wiring import event_codec
from tests.gwt import FUNNELS, T0

SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- strategies -------------------------------------------------------------------------

FUNNEL_IDS = [*FUNNELS, "wholesale"]
STAGE_IDS = sorted({s.id for f in FUNNELS.values() for s in f.stages}) + ["nowhere"]



def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, picked in proportion to its weight."""
    return st.sampled_from([s for w, s in choices for _ in range(w)]).flatmap(lambda s: s)


# Few distinct values, so that "same value again" and duplicate names come up often.
blank = st.sampled_from([None, "", "   "])
words = st.sampled_from(["alpha", "beta", " beta ", "gamma"])
required_text = weighted((4, words), (1, blank))
optional_text = weighted((2, words), (1, blank))
valid_amounts = st.one_of(
    st.sampled_from(["0", "10", "10.5", "99.99", "-0", "1E+3"]).map(Decimal),
    st.decimals(min_value=0, max_value=100_000, places=2),
)
invalid_amounts = st.one_of(
    st.sampled_from(["-1", "-0.01", "1.001", "0.001", "1e15", "NaN", "-Infinity"]).map(Decimal),
    st.decimals(places=3),
    st.decimals(allow_nan=True, allow_infinity=True),
)
amounts = weighted((4, valid_amounts), (1, invalid_amounts))
dates = st.one_of(st.none(), st.sampled_from([date(2026, 2, 1), date(2026, 3, 15)]))

CARD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "title": required_text,
    "company_name": required_text,
    "source": required_text,
    "manager": required_text,
    "expert": optional_text,
    "need_maturity": optional_text,
    "description": optional_text,
    "answer_due": dates,
    "amount": weighted((6, amounts), (1, st.none())),
}
card_changes = weighted(
    (20, st.lists(st.sampled_from(list(CARD_VALUES)), min_size=1, max_size=3, unique=True)),
    (1, st.just(["stage"])),  # not a card field
    (1, st.just([])),
).flatmap(
    lambda names: st.fixed_dictionaries(
        {n: CARD_VALUES.get(n, st.sampled_from(STAGE_IDS)) for n in names}
    )
)
components = st.lists(
    st.builds(CostComponent, weighted((8, words), (1, blank)), amounts), max_size=3
).map(tuple)

commands: st.SearchStrategy[LeadCommand] = weighted(
    (3, st.builds(UpdateLeadCard, card_changes)),
    (3, st.builds(SetLeadCostBreakdown, components)),
    (3, st.builds(MoveLeadToStage, st.sampled_from(STAGE_IDS))),
    (2, st.builds(TransferLead, st.sampled_from(FUNNEL_IDS), st.none() | st.sampled_from(STAGE_IDS))),
    (2, st.builds(PauseLead, optional_text)),
    (2, st.just(ResumeLead())),
    (3, st.builds(RecordLeadAssessment, required_text, required_text, amounts)),
    (2, st.builds(QualifyLead, st.booleans(), optional_text)),
    (1, st.builds(CloseLead, st.sampled_from(["won", "lost", "lost", "draw"]), optional_text)),
)
# Mostly valid, so that most runs get past the creation.
create_commands = weighted(
    (9, st.builds(CreateLead, lead_id=st.uuids(), funnel=st.sampled_from(list(FUNNELS)),
                  title=words, company_name=words, source=words, manager=words,
                  company_id=optional_text, expert=optional_text, need_maturity=optional_text,
                  answer_due=dates, description=optional_text, amount=valid_amounts)),
    (1, st.builds(CreateLead, lead_id=st.uuids(), funnel=st.sampled_from(FUNNEL_IDS),
                  title=required_text, company_name=required_text, source=required_text,
                  manager=required_text, company_id=optional_text, expert=optional_text,
                  need_maturity=optional_text, answer_due=dates, description=optional_text,
                  amount=amounts)),
)
metas = st.builds(
    lambda actor, micros, command_id: (actor, timedelta(microseconds=micros), command_id),
    st.sampled_from(["anna.sales", "boris", "olga.pm"]),
    st.integers(min_value=1, max_value=3 * 24 * 3600 * 10**6),
    st.uuids(),
)


@dataclass(frozen=True)
class Run:
    events: list[LeadEvent]
    state: Lead | None


def run(create_command: CreateLead, company_known: bool, steps: list[Any]) -> Run:
    """Apply the commands in turn, checking the invariants after each; refusals are skipped."""
    at = T0
    try:
        first = create(
            create_command, FUNNELS, CommandMeta(actor="anna", at=at, command_id=create_command.lead_id),
            company_known=company_known,
        )
    except (InvalidValue, RuleViolation):
        return Run([], None)
    events: list[LeadEvent] = [first]
    lead = evolve(None, first)
    check_invariants(lead, accepted=1)
    for (actor, delta, command_id), command in steps:
        at += delta
        meta = CommandMeta(actor=actor, at=at, command_id=command_id)
        try:
            event = decide(lead, command, FUNNELS, meta)
        except RuleViolation as refusal:
            if lead.status.closed:
                assert refusal.rule == "lead_closed"
            continue
        except InvalidValue:
            assert not lead.status.closed, "a closed lead must refuse with lead_closed"
            continue
        assert not lead.status.closed, f"a closed lead accepted {command!r}"
        assert (event.actor, event.at, event.command_id) == (actor, at, command_id)
        events.append(event)
        lead = evolve(lead, event)
        check_invariants(lead, accepted=len(events))
    return Run(events, lead)


def check_invariants(lead: Lead, *, accepted: int) -> None:
    assert lead.status in set(LeadStatus)
    assert len(LeadStatus) == 5
    funnel = FUNNELS[lead.funnel]
    assert funnel.stage(lead.stage) is not None, f"{lead.stage} not in {lead.funnel}"
    assert lead.version == accepted
    assert (lead.paused_since is not None) == (lead.status is LeadStatus.PAUSED)
    if lead.cost_components:
        assert lead.amount == sum((c.amount for c in lead.cost_components), Decimal(0))
    assert (lead.status is LeadStatus.NON_QUALITY) == (lead.quality is False)


# Lengths drawn uniformly from 1..30 (st.lists alone favours short lists).
steps = st.integers(1, 30).flatmap(
    lambda n: st.lists(st.tuples(metas, commands), min_size=n, max_size=n)
)
scenarios = st.tuples(create_commands, st.booleans(), steps)


@SETTINGS
@given(scenarios)
def test_random_commands_never_break_the_invariants(scenario: Any) -> None:
    # Any exception other than InvalidValue / RuleViolation escapes run() and fails here.
    run(*scenario)


@SETTINGS
@given(scenarios)
def test_replaying_decoded_events_rebuilds_the_same_state(scenario: Any) -> None:
    result = run(*scenario)
    codec = event_codec()
    decoded = [codec.decode(codec.topic(e), codec.encode(e)) for e in result.events]
    assert decoded == result.events
    assert fold(decoded) == result.state


def test_the_strategies_reach_the_interesting_states() -> None:
    """Guard against a vacuous property: enough runs get paused, qualified and closed."""
    seen: set[str] = set()

    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(scenarios)
    def collect(scenario: Any) -> None:
        result = run(*scenario)
        for event in result.events:
            seen.add(event.type)
        if result.state is not None:
            seen.add(result.state.status.value)

    collect()
    assert {"paused", "won", "lost", "non_quality", "LeadTransferred", "LeadResumed"} <= seen
    assert {"LeadCostBreakdownSet", "LeadCardUpdated", "LeadQualified", "LeadStageChanged"} <= seen
