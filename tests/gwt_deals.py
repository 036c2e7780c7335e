"""Given/When/Then for the deciders that came with deals: the deal, the hand-off request,
the contractor, and the lead's conversion into a deal.

A :class:`Decider` bundles one aggregate's ``create``, ``decide`` and ``evolve`` with the
configured rules. ``DEAL.given(*events).when(command).then(DealStageChanged, ...)`` folds
the events, decides the command (the creation when there is no state yet) and checks the
one event; ``.then_rejected(RuleViolation, rule=...)`` and ``.then_invalid(field=...)``
check a refusal. Every accepted event must carry the command's actor, instant and id.
``Accepted.given`` continues the story from the accepted event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar
from uuid import UUID, uuid4

import pytest

from aggregates import contractor, deal, handoff, lead
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import DomainError, InvalidValue, NotPermitted, RuleViolation
from aggregates.funnels import FunnelCatalog
from aggregates.rules import Rules
from leadledger.settings import DEFAULT_FUNNELS_FILE, DEFAULT_RULES_FILE
from leadledger.wiring import load_funnels, load_rules

RULES: Rules = load_rules(DEFAULT_FUNNELS_FILE, DEFAULT_RULES_FILE)
FUNNELS: FunnelCatalog = load_funnels(DEFAULT_FUNNELS_FILE)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
STEP = timedelta(hours=1)
ACTOR = "anna.sales"

S = TypeVar("S")


def meta(at: datetime = T0, actor: str = ACTOR, command_id: UUID | None = None) -> CommandMeta:
    return CommandMeta(actor=actor, at=at, command_id=command_id or uuid4())


@dataclass(frozen=True)
class Decider(Generic[S]):
    """One aggregate's decider functions, bound to the configured rules."""

    name: str
    creates: type
    create: Callable[[Any, CommandMeta], DomainEvent]
    decide: Callable[[S, Any, CommandMeta], DomainEvent]
    evolve: Callable[[S | None, DomainEvent], S]

    def fold(self, events: tuple[DomainEvent, ...] | list[DomainEvent]) -> S | None:
        state: S | None = None
        for event in events:
            state = self.evolve(state, event)
        return state

    def history(
        self, create_command: Any, *commands: Any, start: datetime = T0
    ) -> tuple[DomainEvent, ...]:
        """The events of a valid history: each command decided one STEP after the last."""
        events = [self.create(create_command, meta(start))]
        state = self.evolve(None, events[0])
        for n, command in enumerate(commands, start=1):
            event = self.decide(state, command, meta(start + n * STEP))
            events.append(event)
            state = self.evolve(state, event)
        return tuple(events)

    def given(self, *events: DomainEvent) -> Given[S]:
        return Given(self, tuple(events))


@dataclass(frozen=True)
class Accepted(Generic[S]):
    decider: Decider[S]
    events: tuple[DomainEvent, ...]
    """The given events and the accepted one, last."""

    @property
    def event(self) -> DomainEvent:
        return self.events[-1]

    @property
    def state(self) -> S:
        state = self.decider.fold(self.events)
        assert state is not None
        return state

    @property
    def given(self) -> Given[S]:
        """The story so far, to decide the next command on."""
        return Given(self.decider, self.events)


@dataclass(frozen=True)
class When(Generic[S]):
    decider: Decider[S]
    events: tuple[DomainEvent, ...]
    command: Any
    meta: CommandMeta

    def _decide(self) -> DomainEvent:
        state = self.decider.fold(self.events)
        if state is None:
            assert isinstance(self.command, self.decider.creates), (
                f"no {self.decider.name} yet: only {self.decider.creates.__name__} applies"
            )
            return self.decider.create(self.command, self.meta)
        assert not isinstance(self.command, self.decider.creates), f"the {self.decider.name} exists"
        return self.decider.decide(state, self.command, self.meta)

    def then(
        self,
        expected: type[DomainEvent] | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> Accepted[S]:
        """Accepted with one event of the ``expected`` type and/or these field values."""
        event = self._decide()
        if isinstance(expected, type):
            assert type(event) is expected, f"expected {expected.__name__}, got {event!r}"
        elif expected is not None:
            fields = {**expected, **fields}
        for name, value in fields.items():
            actual = getattr(event, name)
            assert actual == value, f"{event.type}.{name}: {actual!r} != {value!r}"
        assert (event.actor, event.at, event.command_id) == (
            self.meta.actor,
            self.meta.at,
            self.meta.command_id,
        ), "the event does not carry the command's meta"
        return Accepted(self.decider, (*self.events, event))

    def then_rejected(
        self, error: type[DomainError], /, *, rule: str | None = None, field: str | None = None
    ) -> DomainError:
        """Refused with ``error``, naming this rule (RuleViolation, NotPermitted) or field
        (InvalidValue)."""
        with pytest.raises(DomainError) as caught:
            self._decide()
        refusal = caught.value
        assert isinstance(refusal, error), f"expected {error.__name__}, got {describe(refusal)}"
        if rule is not None:
            assert isinstance(refusal, (RuleViolation, NotPermitted)), describe(refusal)
            assert refusal.rule == rule, f"expected rule {rule!r}, got {describe(refusal)}"
        if field is not None:
            assert isinstance(refusal, InvalidValue), describe(refusal)
            assert refusal.field == field, f"expected field {field!r}, got {describe(refusal)}"
        return refusal

    def then_violates(self, rule: str) -> DomainError:
        return self.then_rejected(RuleViolation, rule=rule)

    def then_invalid(self, *, field: str) -> DomainError:
        return self.then_rejected(InvalidValue, field=field)


def describe(refusal: DomainError) -> str:
    what = getattr(refusal, "rule", None) or getattr(refusal, "field", None)
    return f"{type(refusal).__name__}({what!r}): {refusal.message}"


@dataclass(frozen=True)
class Given(Generic[S]):
    decider: Decider[S]
    events: tuple[DomainEvent, ...]

    def when(
        self,
        command: Any,
        *,
        at: datetime | None = None,
        actor: str = ACTOR,
        command_id: UUID | None = None,
    ) -> When[S]:
        """``at`` defaults to one STEP after the last given event (T0 when there is none)."""
        if at is None:
            at = self.events[-1].at + STEP if self.events else T0
        return When(self.decider, self.events, command, meta(at, actor, command_id))


# --- the deciders -----------------------------------------------------------------------


DEAL: Decider[deal.Deal] = Decider(
    name="deal",
    creates=deal.CreateDeal,
    create=lambda command, m: deal.create(command, RULES, m),
    decide=lambda state, command, m: deal.decide(state, command, RULES, m),
    evolve=deal.evolve,
)

HANDOFF: Decider[handoff.HandoffRequest] = Decider(
    name="hand-off request",
    creates=handoff.CreateHandoff,
    create=lambda command, m: handoff.create(command, RULES, m),
    decide=lambda state, command, m: handoff.decide(state, command, RULES, m),
    evolve=lambda state, event: handoff.evolve(state, event, RULES),
)


def _contractor_decide(state: contractor.Contractor, command: Any, m: CommandMeta) -> DomainEvent:
    if isinstance(command, contractor.RecordQuote):
        return contractor.quote(state, command, m)
    return contractor.update(state, command, m)


CONTRACTOR: Decider[contractor.Contractor] = Decider(
    name="contractor",
    creates=contractor.RegisterContractor,
    create=contractor.register,
    decide=_contractor_decide,
    evolve=contractor.evolve,
)


@dataclass(frozen=True)
class ConvertToDeal:
    """The lead's side of a conversion (``lead.convert``), as a command for the GWT."""

    deal_id: UUID
    deal_funnel: str = "turnkey"


def _lead_decide(state: lead.Lead, command: Any, m: CommandMeta) -> DomainEvent:
    if isinstance(command, ConvertToDeal):
        return lead.convert(state, command.deal_id, command.deal_funnel, m)
    return lead.decide(state, command, FUNNELS, m)


LEAD: Decider[lead.Lead] = Decider(
    name="lead",
    creates=lead.CreateLead,
    create=lambda command, m: lead.create(command, FUNNELS, m, company_known=False),
    decide=_lead_decide,
    evolve=lead.evolve,
)
