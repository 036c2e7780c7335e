"""Manager activities («Мои Дела», seed 004): calls, meetings, demonstrations, e-mails.

An activity is of a configured type (``[activities]`` in rules.toml: code, group,
direction, weight), with a client (a company id or a contact, or both), optionally the
lead, deal or project it is about, the person it is for (its owner), a planned start
and duration, and notes.

Its life: **planned** → **done** (with a result) or **cancelled**; while planned it may be
rescheduled. **Overdue** is never stored: an activity is overdue at an instant when it is
still planned and its planned end has passed (:func:`is_overdue`), so it reads the same
now and ``as_of`` any instant. Incoming calls and e-mails (direction ``in``), and any
activity its owner records once it happened, are **registered** after the fact: done at
once, at a time not in the future.

When a planned activity's end passes undone, the deadlines process manager records one
overdue reminder for its owner (once per planned end: a rescheduled one may be reminded
again for its new end).

Who may plan for whom (a manager for themselves, a head for the people of their
department, top management for anyone) is the ownership policy (``commands/policy.py``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from aggregates import values
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, RuleViolation
from aggregates.rules import ActivityRules

MAX_DURATION_MINUTES = 24 * 60
"""A day: a longer activity is a typo (or a project, not an activity)."""
DEFAULT_DURATION_MINUTES = 30
MAX_PLANNING_DAYS = 366
"""How far ahead (and, for after-the-fact registrations, back) an activity may be."""

STATES = ("planned", "overdue", "done", "cancelled")
"""What an activity is at an instant: these partition every activity."""


# --- state ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    activity_id: UUID
    version: int
    activity_type: str
    group: str
    direction: str | None
    owner: str
    company_id: str | None
    contact: str | None
    lead_id: UUID | None
    deal_id: UUID | None
    project_id: UUID | None
    planned_at: datetime
    duration_minutes: int
    notes: str | None
    status: str
    """planned, done or cancelled (overdue is derived: :func:`state_at`)."""
    result: str | None
    done_at: datetime | None
    cancel_reason: str | None
    cancelled_at: datetime | None
    registered: bool
    """Registered after the fact (done at once), not planned."""
    reschedules: int
    reminded_for: datetime | None
    """The planned end the owner was last reminded of (None: never)."""
    created_at: datetime
    created_by: str
    updated_at: datetime

    @property
    def planned_end(self) -> datetime:
        return self.planned_at + timedelta(minutes=self.duration_minutes)

    def is_overdue(self, at: datetime) -> bool:
        """Still planned and its planned end passed by ``at``."""
        return self.status == "planned" and self.planned_end < at

    def state_at(self, at: datetime) -> str:
        """planned, overdue, done or cancelled at ``at``."""
        return "overdue" if self.is_overdue(at) else self.status


# --- commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanActivity:
    """Plan an activity for ``owner``, or (``done``, and always for incoming calls and
    e-mails) register one that happened at ``planned_at``."""

    activity_id: UUID
    activity_type: str
    owner: str
    planned_at: datetime
    duration_minutes: int = DEFAULT_DURATION_MINUTES
    company_id: str | None = None
    contact: str | None = None
    lead_id: UUID | None = None
    deal_id: UUID | None = None
    project_id: UUID | None = None
    notes: str | None = None
    done: bool = False
    result: str | None = None


@dataclass(frozen=True)
class CompleteActivity:
    result: str


@dataclass(frozen=True)
class CancelActivity:
    reason: str | None = None


@dataclass(frozen=True)
class RescheduleActivity:
    planned_at: datetime
    duration_minutes: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class RemindOverdueActivity:
    """The deadlines process manager: the activity's planned end ``planned_end`` passed."""

    planned_end: datetime


ActivityCommand = CompleteActivity | CancelActivity | RescheduleActivity | RemindOverdueActivity


# --- events -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ActivityOpened(DomainEvent):
    """What every activity's first event says of it (not an event of its own)."""

    activity_id: UUID
    activity_type: str
    group: str
    direction: str | None
    owner: str
    company_id: str | None
    contact: str | None
    lead_id: UUID | None
    deal_id: UUID | None
    project_id: UUID | None
    planned_at: datetime
    duration_minutes: int
    notes: str | None


@dataclass(frozen=True, kw_only=True)
class ActivityPlanned(ActivityOpened):
    """An activity was planned for its owner (by them, their head or top management)."""


@dataclass(frozen=True, kw_only=True)
class ActivityRegistered(ActivityOpened):
    """An activity that happened was recorded after the fact (an incoming call or
    e-mail, or a call made unplanned): done at once, at ``planned_at``."""

    result: str | None


@dataclass(frozen=True, kw_only=True)
class ActivityDone(DomainEvent):
    result: str


@dataclass(frozen=True, kw_only=True)
class ActivityCancelled(DomainEvent):
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class ActivityRescheduled(DomainEvent):
    planned_at: datetime
    duration_minutes: int
    previous_planned_at: datetime
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class ActivityOverdueReminderSent(DomainEvent):
    """The activity's planned end passed undone: its owner is reminded (an alert)."""

    recipient: str
    planned_end: datetime
    due: date
    """The planned end's day (UTC), the alert's due date."""


ACTIVITY_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    ActivityPlanned,
    ActivityRegistered,
    ActivityDone,
    ActivityCancelled,
    ActivityRescheduled,
    ActivityOverdueReminderSent,
)
CREATIONS = (ActivityPlanned, ActivityRegistered)


# --- deciding ---------------------------------------------------------------------------


def _utc(field: str, value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidValue(field, f"'{field}' must be a timestamp")
    moment: datetime = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _planned_at(field: str, value: Any, at: datetime, *, happened: bool) -> datetime:
    moment = _utc(field, value)
    horizon = timedelta(days=MAX_PLANNING_DAYS)
    if moment < at - horizon:
        raise InvalidValue(field, f"'{field}' must not be more than {MAX_PLANNING_DAYS} days ago")
    if happened and moment > at:
        raise InvalidValue(field, f"'{field}' must not be in the future: it already happened")
    if moment > at + horizon:
        raise InvalidValue(field, f"'{field}' must not be more than {MAX_PLANNING_DAYS} days ahead")
    return moment


def _duration(value: Any, field: str = "duration_minutes") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(field, f"'{field}' must be a whole number of minutes")
    if not 1 <= value <= MAX_DURATION_MINUTES:
        raise InvalidValue(field, f"'{field}' must be between 1 and {MAX_DURATION_MINUTES}")
    return value


ABOUT_FIELDS = {"lead_id": "lead", "deal_id": "deal", "project_id": "project"}
"""The records an activity may be about, by the field naming them."""


def plan(
    command: PlanActivity,
    rules: ActivityRules,
    meta: CommandMeta,
    *,
    missing: Collection[str] = (),
) -> ActivityPlanned | ActivityRegistered:
    """A new activity: planned, or registered done when it happened already.

    ``missing`` names the fields of ``ABOUT_FIELDS`` whose record does not exist: an
    activity is about a lead, deal or project only when there is one."""
    for field in ABOUT_FIELDS:
        if field in missing:
            raise InvalidValue(field, f"'{field}' names no {ABOUT_FIELDS[field]} that exists")
    kind = rules.require_type(command.activity_type, "type")
    owner = values.required_text("owner", command.owner)
    company_id = values.text("company_id", command.company_id, required=False)
    contact = values.text("contact", command.contact, required=False)
    if company_id is None and contact is None:
        raise InvalidValue("company_id", "name the client: a company id or a contact")
    happened = command.done or kind.after_the_fact
    fields: dict[str, Any] = {
        **meta.event_fields(),
        "activity_id": command.activity_id,
        "activity_type": kind.code,
        "group": kind.group,
        "direction": kind.direction,
        "owner": owner,
        "company_id": company_id,
        "contact": contact,
        "lead_id": command.lead_id,
        "deal_id": command.deal_id,
        "project_id": command.project_id,
        "planned_at": _planned_at("planned_at", command.planned_at, meta.at, happened=happened),
        "duration_minutes": _duration(command.duration_minutes),
        "notes": values.text("notes", command.notes, required=False),
    }
    result = values.text("result", command.result, required=False)
    if happened:
        return ActivityRegistered(**fields, result=result)
    if result is not None:
        raise InvalidValue("result", "a planned activity has no result yet: mark it done")
    return ActivityPlanned(**fields)


def _still_planned(activity: Activity, doing: str) -> None:
    if activity.status != "planned":
        raise RuleViolation(
            f"activity_{activity.status}",
            f"the activity is {activity.status} already: only a planned one can be {doing}",
        )


def decide(activity: Activity, command: ActivityCommand, meta: CommandMeta) -> DomainEvent:
    match command:
        case CompleteActivity():
            _still_planned(activity, "marked done")
            result = values.required_text("result", command.result)
            return ActivityDone(**meta.event_fields(), result=result)
        case CancelActivity():
            _still_planned(activity, "cancelled")
            reason = values.text("reason", command.reason, required=False)
            return ActivityCancelled(**meta.event_fields(), reason=reason)
        case RescheduleActivity():
            _still_planned(activity, "rescheduled")
            planned_at = _planned_at("planned_at", command.planned_at, meta.at, happened=False)
            duration = (
                activity.duration_minutes
                if command.duration_minutes is None
                else _duration(command.duration_minutes)
            )
            if (planned_at, duration) == (activity.planned_at, activity.duration_minutes):
                raise RuleViolation("no_change", "the activity is planned for that time already")
            return ActivityRescheduled(
                **meta.event_fields(),
                planned_at=planned_at,
                duration_minutes=duration,
                previous_planned_at=activity.planned_at,
                reason=values.text("reason", command.reason, required=False),
            )
        case RemindOverdueActivity():
            end = activity.planned_end
            if activity.status != "planned" or command.planned_end != end:
                raise RuleViolation(
                    "not_overdue", "the activity was done, cancelled or rescheduled since"
                )
            if meta.at < end:
                raise RuleViolation("not_overdue", f"the activity is planned to end at {end}")
            if activity.reminded_for == end:
                raise RuleViolation("already_reminded", "the owner was reminded of it already")
            return ActivityOverdueReminderSent(
                **meta.event_fields(),
                recipient=activity.owner,
                planned_end=end,
                due=end.astimezone(UTC).date(),
            )
    raise TypeError(f"not an activity command: {command!r}")


# --- evolving ---------------------------------------------------------------------------


def evolve(activity: Activity | None, event: DomainEvent) -> Activity:
    if activity is None:
        if not isinstance(event, CREATIONS):
            raise ValueError(f"an activity's stream starts with its creation, not {event.type}")
        done = isinstance(event, ActivityRegistered)
        return Activity(
            activity_id=event.activity_id,
            version=1,
            activity_type=event.activity_type,
            group=event.group,
            direction=event.direction,
            owner=event.owner,
            company_id=event.company_id,
            contact=event.contact,
            lead_id=event.lead_id,
            deal_id=event.deal_id,
            project_id=event.project_id,
            planned_at=event.planned_at,
            duration_minutes=event.duration_minutes,
            notes=event.notes,
            status="done" if done else "planned",
            result=event.result if isinstance(event, ActivityRegistered) else None,
            done_at=event.at if done else None,
            cancel_reason=None,
            cancelled_at=None,
            registered=done,
            reschedules=0,
            reminded_for=None,
            created_at=event.at,
            created_by=event.actor,
            updated_at=event.at,
        )
    changes: dict[str, Any]
    match event:
        case ActivityDone():
            changes = {"status": "done", "result": event.result, "done_at": event.at}
        case ActivityCancelled():
            changes = {
                "status": "cancelled",
                "cancel_reason": event.reason,
                "cancelled_at": event.at,
            }
        case ActivityRescheduled():
            changes = {
                "planned_at": event.planned_at,
                "duration_minutes": event.duration_minutes,
                "reschedules": activity.reschedules + 1,
            }
        case ActivityOverdueReminderSent():
            changes = {"reminded_for": event.planned_end}
        case _:
            raise ValueError(f"not an activity event: {event.type}")
    return replace(activity, version=activity.version + 1, updated_at=event.at, **changes)


def fold(events: list[DomainEvent]) -> Activity | None:
    activity: Activity | None = None
    for event in events:
        activity = evolve(activity, event)
    return activity
