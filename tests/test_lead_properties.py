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
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregates.base import CommandMeta
from aggregates.errors import DomainError, InvalidValue, RuleViolation
from aggregates.lead import (
    LEAD_EVENT_TYPES,
    CloseLead,
    CostComponent,
    CreateLead,
    EscalateUnansweredLead,
    Lead,
    LeadCommand,
    LeadConvertedToDeal,
    LeadEvent,
    LeadProjectStarted,
    LeadStatus,
    MoveLeadToStage,
    PauseLead,
    QualifyLead,
    RecordLeadAssessment,
    RemindUnansweredLead,
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

SETTINGS = settings(max_examples=200, deadline=None)

# --- strategies -------------------------------------------------------------------------

FUNNEL_IDS = [*FUNNELS, "wholesale"]
STAGE_IDS = [*sorted({s.id for f in FUNNELS.values() for s in f.stages}), "nowhere"]
LEAD_ID = UUID("00000000-0000-4000-8000-00000000001e")
ACTORS = ("anna.sales", "boris", "olga.pm")


def _same(value: Any) -> Any:
    return value


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, roughly in proportion to its weight.

    Not flatmap over a sampled strategy: shrinking a failure would take minutes. Not a
    tuple of every branch either: drawing them all makes each example slow. And st.one_of
    drops repeats of the very same strategy object, so repeat fresh copies. (Hypothesis
    favours branches with more unexplored values: keep invalid branches small.)
    """
    return st.one_of(*[s.map(_same) for w, s in choices for _ in range(w)])


# Few distinct values, so that "same value again" and duplicate names come up often.
blank = st.sampled_from([None, "", "   "])
words = st.sampled_from(["alpha", "beta", " beta ", "gamma"])
required_text = weighted((4, words), (1, blank))
optional_text = weighted((2, words), (1, blank))
valid_amounts = st.one_of(
    st.sampled_from(["0", "10", "10.5", "99.99", "-0", "1E+3"]).map(Decimal),
    st.decimals(min_value=0, max_value=100_000, places=2),
)
invalid_amounts = st.sampled_from(
    ["-1", "-0.01", "1.001", "0.001", "1e15", "1e-30", "NaN", "sNaN", "-Infinity"]
).map(Decimal)
amounts = weighted((4, valid_amounts), (1, invalid_amounts))
hours = weighted(
    (4, st.decimals(min_value=Decimal("0.01"), max_value=10_000, places=2)),
    (1, st.sampled_from(["0", "-1", "0.001", "10000.01", "NaN"]).map(Decimal)),
)
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
    *[(1, st.fixed_dictionaries({name: values})) for name, values in CARD_VALUES.items()],
    (3, st.fixed_dictionaries({"amount": valid_amounts})),  # vs. a cost breakdown
    (4, st.fixed_dictionaries({}, optional=CARD_VALUES)),  # sometimes {}
    (1, st.fixed_dictionaries({"stage": st.sampled_from(STAGE_IDS)})),  # not a card field
)
component = st.builds(
    CostComponent,
    weighted((8, st.sampled_from(["labour", "travel", " travel ", "materials"])), (1, blank)),
    weighted((9, valid_amounts), (1, invalid_amounts)),
)
components = weighted(
    (6, st.lists(component, min_size=1, max_size=3, unique_by=lambda c: (c.name or "").strip())),
    (2, st.lists(component, min_size=2, max_size=3)),  # names may repeat
    (1, st.just([])),
).map(tuple)

due_dates = st.sampled_from([date(2026, 2, 1), date(2026, 3, 15)])
transfer_stages = weighted((2, st.none()), (1, st.sampled_from(STAGE_IDS)))
commands: st.SearchStrategy[LeadCommand] = weighted(
    (4, st.just(ResumeLead())),
    (6, st.builds(MoveLeadToStage, st.sampled_from(STAGE_IDS))),
    (4, st.builds(TransferLead, st.sampled_from(FUNNEL_IDS), transfer_stages)),
    (4, st.builds(PauseLead, optional_text)),
    (6, st.builds(UpdateLeadCard, card_changes)),
    (6, st.builds(SetLeadCostBreakdown, components)),
    (5, st.builds(RecordLeadAssessment, required_text, required_text, hours)),
    (4, st.builds(QualifyLead, st.booleans(), optional_text)),
    (2, st.builds(CloseLead, st.sampled_from(["won", "lost", "draw"]), optional_text)),
    # what the deadline process manager sends when the answer date passes
    (4, st.builds(RemindUnansweredLead, due_dates, words)),
    (5, st.builds(EscalateUnansweredLead, due_dates, words)),
)


def _creates(text: st.SearchStrategy[Any], amount: st.SearchStrategy[Decimal]) -> Any:
    return st.builds(
        CreateLead,
        lead_id=st.just(LEAD_ID),
        funnel=st.sampled_from(FUNNEL_IDS if text is required_text else list(FUNNELS)),
        title=text,
        company_name=text,
        source=text,
        manager=text,
        company_id=optional_text,
        expert=optional_text,
        need_maturity=optional_text,
        answer_due=dates,
        description=optional_text,
        amount=amount,
    )


# Mostly valid, so that most runs get past the creation.
create_commands = weighted(
    (9, _creates(words, valid_amounts)), (1, _creates(required_text, amounts))
)
# A step: microseconds since the previous command (instants strictly increase), a command.
step = st.tuples(st.integers(min_value=1, max_value=3 * 24 * 3600 * 10**6), commands)
# Short and long runs mixed: st.lists alone averages about six elements.
steps = st.one_of(st.lists(step, min_size=1, max_size=30), st.lists(step, min_size=15, max_size=30))
scenarios = st.tuples(create_commands, st.booleans(), steps)

# --- running a scenario -----------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    events: list[LeadEvent]
    """The accepted events, LeadCreated first; empty when the creation was refused."""
    state: Lead | None


def _meta(n: int, at: datetime) -> CommandMeta:
    return CommandMeta(actor=ACTORS[n % len(ACTORS)], at=at, command_id=UUID(int=n))


def run(
    create_command: CreateLead,
    company_known: bool,
    steps: list[tuple[int, LeadCommand]],
    *,
    check: bool = True,
) -> Run:
    """Apply the commands in turn, refusals skipped; with ``check``, assert the invariants.

    Any exception but InvalidValue / RuleViolation escapes and fails the test.
    """
    at = T0
    try:
        first = create(create_command, FUNNELS, _meta(0, at), company_known=company_known)
    except (InvalidValue, RuleViolation):
        return Run([], None)
    events: list[LeadEvent] = [first]
    lead = evolve(None, first)
    if check:
        check_invariants(lead, accepted=1)
    for n, (micros, command) in enumerate(steps, start=1):
        at += timedelta(microseconds=micros)
        meta = _meta(n, at)
        event: LeadEvent | None = None
        refusal: DomainError | None = None
        try:
            event = decide(lead, command, FUNNELS, meta)
        except (InvalidValue, RuleViolation) as exc:
            refusal = exc
        if check and lead.status.closed:
            assert isinstance(refusal, RuleViolation), f"closed {lead.status}: {command!r}"
            assert refusal.rule == "lead_closed", refusal.message
        if event is None:
            continue
        if check:
            assert (event.actor, event.at, event.command_id) == (
                meta.actor,
                meta.at,
                meta.command_id,
            )
        events.append(event)
        lead = evolve(lead, event)
        if check:
            check_invariants(lead, accepted=len(events))
    return Run(events, lead)


def check_invariants(lead: Lead, *, accepted: int) -> None:
    assert len(LeadStatus) == 5
    assert lead.status in set(LeadStatus)
    assert FUNNELS[lead.funnel].stage(lead.stage) is not None, f"{lead.stage} ∉ {lead.funnel}"
    assert lead.version == accepted
    assert (lead.paused_since is not None) == (lead.status is LeadStatus.PAUSED)
    if lead.cost_components:
        assert lead.amount == sum((c.amount for c in lead.cost_components), Decimal(0))
    assert (lead.status is LeadStatus.NON_QUALITY) == (lead.quality is False)


# --- properties -------------------------------------------------------------------------


@SETTINGS
@given(scenarios)
def test_random_commands_never_break_the_invariants(scenario: Any) -> None:
    run(*scenario)


@SETTINGS
@given(scenarios)
def test_replaying_decoded_events_rebuilds_the_same_state(scenario: Any) -> None:
    result = run(*scenario, check=False)
    codec = event_codec()
    decoded = [codec.decode(codec.topic(e), codec.encode(e)) for e in result.events]
    assert decoded == result.events
    assert fold(decoded) == result.state


def test_the_scenarios_reach_every_kind_of_event_and_status() -> None:
    """Guards the properties against vacuity: the strategies do drive leads everywhere."""
    seen: set[str] = set()

    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(scenarios)
    def collect(scenario: Any) -> None:
        result = run(*scenario, check=False)
        seen.update(e.type for e in result.events)
        if result.state is not None:
            seen.add(result.state.status.value)

    collect()
    assert {s.value for s in LeadStatus} <= seen
    # a conversion is decided with the deal's creation (tests/test_deal_rules.py), a
    # project's start with the project's (tests/test_lead_rules_seed000.py)
    assert {
        t.__name__ for t in LEAD_EVENT_TYPES if t not in (LeadConvertedToDeal, LeadProjectStarted)
    } <= seen
