"""A person's day across all projects: at most 24 hours logged.

Each person and day has a stream of its own, the consistency boundary of the cap: logging
or correcting hours on a project appends the change to the person's day at its next
version in the same atomic write, so racing entries on two projects cannot pass 24 hours
together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from uuid import UUID, uuid5

from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import RuleViolation

TIMESHEET_NAMESPACE = UUID("2f6c8a1e-5b3d-4e7f-a9c0-d4e6f8b0a2c3")
DAY_CAP = Decimal(24)


def person_day_stream_id(person: str, day: date) -> UUID:
    return uuid5(TIMESHEET_NAMESPACE, f"timesheet:{person}:{day.isoformat()}")


@dataclass(frozen=True, kw_only=True)
class PersonDayHoursBooked(DomainEvent):
    person: str
    day: date
    project_id: UUID
    entry_id: UUID
    change: Decimal
    """Hours added (a correction down is negative)."""
    total: Decimal
    """The person's hours that day across all projects, this change included."""


TIMESHEET_EVENT_TYPES: tuple[type[DomainEvent], ...] = (PersonDayHoursBooked,)


def day_total(events: list[DomainEvent]) -> Decimal:
    total = Decimal("0.00")
    for event in events:
        assert isinstance(event, PersonDayHoursBooked)
        total = event.total
    return total


def book(
    total: Decimal,
    person: str,
    day: date,
    project_id: UUID,
    entry_id: UUID,
    change: Decimal,
    meta: CommandMeta,
) -> PersonDayHoursBooked:
    after = total + change
    if after > DAY_CAP:
        raise RuleViolation(
            "day_over_24_hours",
            f"{person} has {total} hours logged on {day} across all projects: {change} more "
            f"would make {after}, over 24",
            logged=str(total),
            requested=str(change),
        )
    return PersonDayHoursBooked(
        **meta.event_fields(),
        person=person,
        day=day,
        project_id=project_id,
        entry_id=entry_id,
        change=change,
        total=after,
    )
