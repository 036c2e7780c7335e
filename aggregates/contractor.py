"""The contractor directory: contractors (name, services, contacts) and, for every
logistics estimate that uses one, a price quote with a quality rating and notes; once
the job is done, its delivery: planned vs actual completion and the delivered rating.

The quote is written together with the estimate on the hand-off request, in one
atomic append, so the directory's history holds exactly the estimates that used it; the
delivery likewise with the request's delivery (rules in ``aggregates/handoff.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from aggregates import values
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, RuleViolation

MAX_SERVICES = 100


@dataclass(frozen=True)
class Contractor:
    contractor_id: UUID
    version: int
    name: str
    services: tuple[str, ...]
    contacts: str | None
    notes: str | None
    quotes: int
    last_used_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deliveries: int = 0
    """Jobs delivered (rated on the work done)."""


@dataclass(frozen=True)
class RegisterContractor:
    contractor_id: UUID
    name: str
    services: tuple[str, ...]
    contacts: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class UpdateContractor:
    """Only the fields present in ``changes`` are touched."""

    changes: dict[str, Any]


@dataclass(frozen=True)
class RecordQuote:
    request_id: UUID
    deal_id: UUID
    service: str
    price: Decimal
    rating: int
    notes: str | None = None


@dataclass(frozen=True, kw_only=True)
class ContractorRegistered(DomainEvent):
    contractor_id: UUID
    name: str
    services: tuple[str, ...]
    contacts: str | None
    notes: str | None


@dataclass(frozen=True, kw_only=True)
class ContractorUpdated(DomainEvent):
    name: str
    services: tuple[str, ...]
    contacts: str | None
    notes: str | None


@dataclass(frozen=True, kw_only=True)
class ContractorQuoteRecorded(DomainEvent):
    request_id: UUID
    deal_id: UUID
    service: str
    price: Decimal
    rating: int
    notes: str | None


@dataclass(frozen=True)
class RecordDelivery:
    """The delivery a hand-off request's delivery adds (checked there already)."""

    request_id: UUID
    deal_id: UUID
    service: str
    contracted_on: date
    lead_time_days: int
    planned_on: date
    completed_on: date
    days_late: int
    rating: int
    notes: str | None = None


@dataclass(frozen=True, kw_only=True)
class ContractorDeliveryRecorded(DomainEvent):
    """A job the contractor quoted was done: planned vs actual completion and the rating
    of the work delivered."""

    request_id: UUID
    deal_id: UUID
    service: str
    contracted_on: date
    lead_time_days: int
    planned_on: date
    completed_on: date
    days_late: int
    rating: int
    notes: str | None


CONTRACTOR_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    ContractorRegistered,
    ContractorUpdated,
    ContractorQuoteRecorded,
    ContractorDeliveryRecorded,
)


def _services(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise InvalidValue("services", "name at least one service the contractor offers")
    if len(raw) > MAX_SERVICES:
        raise InvalidValue("services", f"at most {MAX_SERVICES} services")
    checked: list[str] = []
    for index, service in enumerate(raw):
        name = values.required_text(f"services[{index}]", service)
        if name in checked:
            raise InvalidValue(f"services[{index}]", f"service '{name}' appears twice")
        checked.append(name)
    return tuple(checked)


def register(command: RegisterContractor, meta: CommandMeta) -> ContractorRegistered:
    return ContractorRegistered(
        **meta.event_fields(),
        contractor_id=command.contractor_id,
        name=values.required_text("name", command.name),
        services=_services(command.services),
        contacts=values.text("contacts", command.contacts, required=False),
        notes=values.text("notes", command.notes, required=False),
    )


def update(contractor: Contractor, command: UpdateContractor, meta: CommandMeta) -> DomainEvent:
    changes = command.changes
    if not changes:
        raise InvalidValue("body", "name at least one field to change")
    unknown = set(changes) - {"name", "services", "contacts", "notes"}
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidValue(field, f"'{field}' is not a contractor field that can be changed")
    name = values.required_text("name", changes.get("name", contractor.name))
    services = _services(changes["services"]) if "services" in changes else contractor.services
    contacts = values.text("contacts", changes.get("contacts", contractor.contacts), required=False)
    notes = values.text("notes", changes.get("notes", contractor.notes), required=False)
    if (name, services, contacts, notes) == (
        contractor.name,
        contractor.services,
        contractor.contacts,
        contractor.notes,
    ):
        raise RuleViolation("no_change", "the contractor already has these values")
    return ContractorUpdated(
        **meta.event_fields(), name=name, services=services, contacts=contacts, notes=notes
    )


def quote(
    contractor: Contractor, command: RecordQuote, meta: CommandMeta
) -> ContractorQuoteRecorded:
    """The quote a logistics estimate adds; the estimate's fields were checked already."""
    if command.service not in contractor.services:
        offered = ", ".join(contractor.services)
        raise InvalidValue(
            "service",
            f"{contractor.name} does not offer '{command.service}' (offers: {offered})",
        )
    return ContractorQuoteRecorded(
        **meta.event_fields(),
        request_id=command.request_id,
        deal_id=command.deal_id,
        service=command.service,
        price=command.price,
        rating=command.rating,
        notes=command.notes,
    )


def deliver(
    contractor: Contractor, command: RecordDelivery, meta: CommandMeta
) -> ContractorDeliveryRecorded:
    """The delivery a hand-off request's delivery adds; its fields were checked there."""
    return ContractorDeliveryRecorded(
        **meta.event_fields(),
        request_id=command.request_id,
        deal_id=command.deal_id,
        service=command.service,
        contracted_on=command.contracted_on,
        lead_time_days=command.lead_time_days,
        planned_on=command.planned_on,
        completed_on=command.completed_on,
        days_late=command.days_late,
        rating=command.rating,
        notes=command.notes,
    )


def evolve(contractor: Contractor | None, event: DomainEvent) -> Contractor:
    if contractor is None:
        if not isinstance(event, ContractorRegistered):
            raise ValueError(
                f"a contractor's stream starts with ContractorRegistered, not {event.type}"
            )
        return Contractor(
            contractor_id=event.contractor_id,
            version=1,
            name=event.name,
            services=tuple(event.services),
            contacts=event.contacts,
            notes=event.notes,
            quotes=0,
            last_used_at=None,
            created_at=event.at,
            updated_at=event.at,
        )
    changes: dict[str, Any]
    match event:
        case ContractorUpdated():
            changes = {
                "name": event.name,
                "services": tuple(event.services),
                "contacts": event.contacts,
                "notes": event.notes,
            }
        case ContractorQuoteRecorded():
            changes = {"quotes": contractor.quotes + 1, "last_used_at": event.at}
        case ContractorDeliveryRecorded():
            changes = {"deliveries": contractor.deliveries + 1}
        case _:
            raise ValueError(f"not a contractor event: {event.type}")
    return replace(contractor, version=contractor.version + 1, updated_at=event.at, **changes)


def fold(events: list[DomainEvent]) -> Contractor | None:
    contractor: Contractor | None = None
    for event in events:
        contractor = evolve(contractor, event)
    return contractor
