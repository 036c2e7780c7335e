"""Given/When/Then for the Lead decider.

``given(*events).when(command, at=..., actor=...)`` folds the events with ``evolve`` and
then ``.then(...)`` runs ``decide`` (``create`` when there is no lead yet) and checks the
one event it returns; ``.then_rejected(RuleViolation, rule=...)`` and
``.then_invalid(field=...)`` check the refusal. Every accepted event is also checked to
carry the actor, instant and command id of the command's meta.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import DomainError, InvalidValue, RuleViolation
from aggregates.funnels import FunnelCatalog
from aggregates.lead import CreateLead, Lead, LeadCommand, LeadEvent, create, decide, evolve, fold
from leadledger.settings import DEFAULT_FUNNELS_FILE
from leadledger.wiring import load_funnels

FUNNELS: FunnelCatalog = load_funnels(DEFAULT_FUNNELS_FILE)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ACTOR = "anna.sales"
STEP = timedelta(hours=1)


def meta(at: datetime = T0, actor: str = ACTOR, command_id: UUID | None = None) -> CommandMeta:
    return CommandMeta(actor=actor, at=at, command_id=command_id or uuid4())


def new_lead(**overrides: Any) -> CreateLead:
    """A valid CreateLead in the out-of-court funnel, with any field overridden."""
    fields: dict[str, Any] = {
        "lead_id": UUID("00000000-0000-4000-8000-000000000001"),
        "funnel": "out_of_court",
        "title": "Appraisal of a warehouse",
        "company_name": "Northwind LLC",
        "source": "website",
        "manager": "boris",
    }
    fields.update(overrides)
    return CreateLead(**fields)


def history(
    create_command: CreateLead, *commands: LeadCommand, start: datetime = T0
) -> tuple[LeadEvent, ...]:
    """The events of a valid history: each command decided one STEP after the previous."""
    events: list[LeadEvent] = [create(create_command, FUNNELS, meta(start), company_known=False)]
    state = evolve(None, events[0])
    for n, command in enumerate(commands, start=1):
        event = decide(state, command, FUNNELS, meta(start + n * STEP))
        events.append(event)
        state = evolve(state, event)
    return tuple(events)


@dataclass(frozen=True)
class Accepted:
    event: LeadEvent
    state: Lead
    """The lead after the event."""


@dataclass(frozen=True)
class When:
    state: Lead | None
    command: CreateLead | LeadCommand
    meta: CommandMeta
    company_known: bool

    def _decide(self) -> LeadEvent:
        if self.state is None:
            assert isinstance(self.command, CreateLead), "no lead yet: only CreateLead applies"
            return create(self.command, FUNNELS, self.meta, company_known=self.company_known)
        assert not isinstance(self.command, CreateLead), "the lead exists already"
        return decide(self.state, self.command, FUNNELS, self.meta)

    def then(
        self,
        expected: type[DomainEvent] | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> Accepted:
        """Accepted with one event of the ``expected`` type and/or these field values."""
        event = self._decide()
        if isinstance(expected, type):
            assert type(event) is expected, f"expected {expected.__name__}, got {event!r}"
        elif expected is not None:
            fields = {**expected, **fields}
        for name, value in fields.items():
            assert getattr(event, name) == value, f"{event.type}.{name}"
        assert (event.actor, event.at, event.command_id) == (
            self.meta.actor,
            self.meta.at,
            self.meta.command_id,
        ), "the event does not carry the command's meta"
        return Accepted(event, evolve(self.state, event))

    def then_rejected(
        self, error: type[DomainError], /, *, rule: str | None = None, field: str | None = None
    ) -> DomainError:
        """Refused with ``error``, naming this rule (RuleViolation) or field (InvalidValue)."""
        with pytest.raises(DomainError) as caught:
            self._decide()
        refusal = caught.value
        assert isinstance(refusal, error), f"expected {error.__name__}, got {_describe(refusal)}"
        if rule is not None:
            assert isinstance(refusal, RuleViolation), _describe(refusal)
            assert refusal.rule == rule, f"expected rule {rule!r}, got {_describe(refusal)}"
        if field is not None:
            assert isinstance(refusal, InvalidValue), _describe(refusal)
            assert refusal.field == field, f"expected field {field!r}, got {_describe(refusal)}"
        return refusal

    def then_invalid(self, *, field: str) -> DomainError:
        return self.then_rejected(InvalidValue, field=field)


def _describe(refusal: DomainError) -> str:
    what = getattr(refusal, "rule", None) or getattr(refusal, "field", None)
    return f"{type(refusal).__name__}({what!r}): {refusal.message}"


@dataclass(frozen=True)
class Given:
    events: tuple[DomainEvent, ...]
    company_known: bool = False

    def when(
        self,
        command: CreateLead | LeadCommand,
        *,
        at: datetime | None = None,
        actor: str = ACTOR,
        command_id: UUID | None = None,
    ) -> When:
        """``at`` defaults to one STEP after the last given event (T0 when there is none)."""
        if at is None:
            at = self.events[-1].at + STEP if self.events else T0
        state = fold(list(self.events))
        return When(state, command, meta(at, actor, command_id), self.company_known)


def given(*events: DomainEvent, company_known: bool = False) -> Given:
    return Given(events, company_known)
