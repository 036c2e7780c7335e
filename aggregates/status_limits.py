"""Time limits of stages and statuses, set by hand (seed 000: "for each status a time
limit can be set by hand").

A stage of a lead or deal funnel, or a project status, starts with the limit its
configuration gives (``time_limit_hours`` in funnels.toml and rules.toml). An
administrator or top management sets, changes or removes it: each time an event on the
stage's own stream (one stream per kind, funnel and stage), with who did it, so the limit
in force at any instant is the last one set by then (the configured one before the first).
Removing the limit (``limit_hours`` null) leaves the stage with none from then on.

A project's final status and a status that stops the clock count against no limit, so
none can be set on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid5

from aggregates import values
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, RuleViolation
from aggregates.funnels import FunnelCatalog
from aggregates.rules import Rules

STATUS_LIMIT_NAMESPACE = UUID("c3a9e1d4-6f2b-4a8c-9d5e-7b1f0e3a2c64")
Kind = Literal["lead", "deal", "project"]
KINDS: tuple[Kind, ...] = ("lead", "deal", "project")
MAX_LIMIT_HOURS = 100 * 366 * 24
"""A century: a longer limit is a typo."""


def status_limit_stream_id(kind: str, funnel: str | None, stage: str) -> UUID:
    return uuid5(STATUS_LIMIT_NAMESPACE, f"status-limit:{kind}:{funnel or ''}:{stage}")


@dataclass(frozen=True)
class SetStatusLimit:
    """Set, change or (``limit_hours`` None) remove the limit of a stage or status."""

    kind: str
    funnel: str | None
    stage: str
    limit_hours: float | None
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class StatusLimitSet(DomainEvent):
    kind: str
    """lead, deal or project."""
    funnel: str | None
    """The lead or deal funnel; None for a project status."""
    stage: str
    """The stage (leads, deals) or the status (projects)."""
    limit_hours: float | None
    """The limit in force from this event on; None: no limit."""
    previous_hours: float | None
    """The limit in force until this event (the configured one before the first)."""
    reason: str | None = None


STATUS_LIMIT_EVENT_TYPES: tuple[type[DomainEvent], ...] = (StatusLimitSet,)


@dataclass(frozen=True)
class StatusLimit:
    kind: str
    funnel: str | None
    stage: str
    limit_hours: float | None
    set_by: str
    set_at: datetime
    version: int


def configured_limit(
    kind: Any, funnel: Any, stage: Any, funnels: FunnelCatalog, rules: Rules
) -> float | None:
    """The limit the configuration gives the stage or status; InvalidValue naming the
    field when the kind, funnel or stage is not a configured one, or has no limit to set
    (a project's final status, a status that stops the clock)."""
    if kind not in KINDS:
        raise InvalidValue("kind", f"kind must be one of {', '.join(KINDS)}")
    if not isinstance(stage, str) or not stage:
        raise InvalidValue("stage", "stage is required: a stage id, or a project status id")
    if kind == "project":
        if funnel is not None:
            raise InvalidValue("funnel", "projects have no funnel: leave 'funnel' out")
        project = rules.project
        status = project.status(stage)
        if status is None:
            known = ", ".join(s.id for s in project.statuses)
            raise InvalidValue("stage", f"unknown project status '{stage}' (statuses: {known})")
        if status.stops_clock or status.id == project.done_status:
            raise InvalidValue(
                "stage", f"project status '{stage}' counts against no limit: none can be set"
            )
        return status.time_limit_hours
    catalog = funnels if kind == "lead" else rules.deal_funnels
    if not isinstance(funnel, str) or not funnel:
        raise InvalidValue("funnel", f"a {kind} stage's limit names its funnel")
    chosen = catalog.get(funnel)
    if chosen is None:
        known = ", ".join(sorted(catalog))
        raise InvalidValue("funnel", f"unknown {kind} funnel '{funnel}' (known: {known})")
    found = chosen.stage(stage)
    if found is None:
        known = ", ".join(s.id for s in chosen.stages)
        raise InvalidValue("stage", f"unknown stage '{stage}' of funnel '{funnel}' ({known})")
    return found.time_limit_hours


def limit_hours(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue("limit_hours", "limit_hours must be a number of hours, or null")
    hours = float(value)
    if not math.isfinite(hours) or hours <= 0 or hours > MAX_LIMIT_HOURS:
        raise InvalidValue(
            "limit_hours", f"limit_hours must be above 0 and at most {MAX_LIMIT_HOURS} (or null)"
        )
    return hours


def decide(
    state: StatusLimit | None,
    command: SetStatusLimit,
    configured: float | None,
    meta: CommandMeta,
) -> StatusLimitSet:
    """``configured``: the stage's configured limit (:func:`configured_limit`), in force
    until the first limit is set by hand."""
    if command.kind not in KINDS:
        raise InvalidValue("kind", f"kind must be one of {', '.join(KINDS)}")
    hours = limit_hours(command.limit_hours)
    reason = None if command.reason is None else values.required_text("reason", command.reason)
    before = configured if state is None else state.limit_hours
    if hours == before:
        said = "no limit" if hours is None else f"a limit of {hours:g} h"
        raise RuleViolation(
            "limit_unchanged", f"the {command.kind} {command.stage!r} has {said} already"
        )
    return StatusLimitSet(
        **meta.event_fields(),
        kind=command.kind,
        funnel=command.funnel,
        stage=command.stage,
        limit_hours=hours,
        previous_hours=before,
        reason=reason,
    )


def evolve(state: StatusLimit | None, event: DomainEvent) -> StatusLimit:
    if not isinstance(event, StatusLimitSet):
        raise ValueError(f"not a status limit event: {event.type}")
    return StatusLimit(
        kind=event.kind,
        funnel=event.funnel,
        stage=event.stage,
        limit_hours=event.limit_hours,
        set_by=event.actor,
        set_at=event.at,
        version=1 if state is None else state.version + 1,
    )


def fold(events: list[DomainEvent]) -> StatusLimit | None:
    state: StatusLimit | None = None
    for event in events:
        state = evolve(state, event)
    return state


def in_force(configured: float | None, events: list[DomainEvent], at: datetime) -> float | None:
    """The limit in force at ``at``: the last one set by then, else the configured one."""
    hours = configured
    for event in events:
        if isinstance(event, StatusLimitSet) and event.at <= at:
            hours = event.limit_hours
    return hours
