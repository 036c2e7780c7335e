"""The people who use LeadLedger: their role, department, region, city and e-mail.

The user directory is an aggregate like any other: a user is registered by an
administrator, changed (role, department, region, city, e-mail) and deactivated, each an event with
who did it. A bearer token names a user and carries these claims; the directory is what
a head's "my department and its people" is read from, and which managers an assistant
works for (set by an administrator, read from the directory, never from the token, so a
change holds at once).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID, uuid5

from aggregates import values
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, RuleViolation

USER_NAMESPACE = UUID("5d0c9a77-1b7e-4c52-93f4-8a2b6e4d1c30")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
DEPARTMENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")
MAX_EMAIL = 254


class Role(StrEnum):
    MANAGER = "manager"
    HEAD = "head"
    TOP = "top"
    PM = "pm"
    EXPERT = "expert"
    DEPARTMENT = "department"
    ANALYST = "analyst"
    AUDITOR = "auditor"
    ADMIN = "admin"
    ASSISTANT = "assistant"

    @property
    def with_article(self) -> str:
        """'a manager', 'an analyst': for messages that say who may not do what."""
        return f"{'an' if self.value[0] in 'aeiou' else 'a'} {self.value}"


ROLES: tuple[Role, ...] = tuple(Role)
SEES_EVERYTHING = frozenset({Role.TOP, Role.ANALYST, Role.AUDITOR})
"""Roles whose reads are not narrowed to their own records (admins read no business data)."""


@dataclass(frozen=True)
class Principal:
    """The authenticated user a request acts for: the actor on every event it causes."""

    user: str
    role: Role
    department: str | None = None
    region: str | None = None

    @property
    def sees_everything(self) -> bool:
        return self.role in SEES_EVERYTHING


def user_stream_id(username: str) -> UUID:
    return uuid5(USER_NAMESPACE, username)


def username(value: Any, field: str = "user") -> str:
    if not isinstance(value, str) or not USERNAME.match(value):
        raise InvalidValue(
            field,
            f"{field} must be 1-64 characters of lower-case letters, digits, '.', '_' or "
            "'-', starting with a letter or digit",
        )
    return value


def role(value: Any, field: str = "role") -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidValue(
            field, f"{field} must be one of: {', '.join(r.value for r in ROLES)}"
        ) from None


def department(value: Any, field: str = "department") -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not DEPARTMENT.match(value):
        raise InvalidValue(
            field,
            f"{field} must be 1-64 characters of lower-case letters, digits, '_' or '-'",
        )
    return value


def email(value: Any, field: str = "email") -> str | None:
    """An e-mail address, trimmed and lower-cased (None or "": none)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidValue(field, f"{field} must be an e-mail address")
    address = value.strip().lower()
    if len(address) > MAX_EMAIL or not EMAIL.match(address):
        raise InvalidValue(field, f"{field} must be an e-mail address like name@example.com")
    return address


def check_claims(role_: Role, department_: str | None) -> None:
    """Heads and department workers belong to a department: it is what they see."""
    if role_ in (Role.HEAD, Role.DEPARTMENT) and department_ is None:
        raise InvalidValue("department", f"a {role_.value} needs a department")


@dataclass(frozen=True)
class CostRate:
    """What an hour of a person's work costs the company from ``valid_from`` on (until the
    next rate's day)."""

    valid_from: date
    rate: Decimal
    currency: str


@dataclass(frozen=True)
class User:
    username: str
    version: int
    name: str
    role: Role
    department: str | None
    region: str | None
    active: bool
    created_at: datetime
    updated_at: datetime
    city: str | None = None
    email: str | None = None
    """Where the user's alerts are e-mailed (None: shown in the workspace only)."""
    managers: tuple[str, ...] = ()
    """An assistant's managers: whose leads they create and fill, and whose records they
    see."""
    cost_rates: tuple[CostRate, ...] = ()
    """The person's hourly cost rates, each in force from its day, by day."""

    def rate_on(self, day: date) -> CostRate | None:
        """The hourly cost rate in force on ``day`` (None before the first one)."""
        found = None
        for rate in self.cost_rates:
            if rate.valid_from <= day:
                found = rate
        return found

    def principal(self) -> Principal:
        return Principal(self.username, self.role, self.department, self.region)


@dataclass(frozen=True)
class RegisterUser:
    username: str
    name: str
    role: str
    department: str | None = None
    region: str | None = None
    city: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class ChangeUser:
    """Only the fields present in ``changes`` are touched (name, role, department,
    region, city, email, active)."""

    changes: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class UserRegistered(DomainEvent):
    """Version 2 added ``city`` and ``email``; earlier users are read with neither (see
    ``upcast_user_registered_v1``)."""

    schema_version: ClassVar[int] = 2

    username: str
    name: str
    role: str
    department: str | None
    region: str | None
    city: str | None = None
    email: str | None = None


def upcast_user_registered_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Users registered before the directory kept a city and an e-mail address."""
    return data | {"city": None, "email": None}


UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("UserRegistered", 1): upcast_user_registered_v1,
}
"""Stored-event upcasters: (event type, stored version) → the next version's fields."""


@dataclass(frozen=True, kw_only=True)
class UserChanged(DomainEvent):
    username: str
    changes: dict[str, Any]


@dataclass(frozen=True)
class SetAssistantManagers:
    """The managers an assistant works for (the whole list: it replaces the last one)."""

    managers: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class AssistantManagersSet(DomainEvent):
    username: str
    managers: tuple[str, ...]
    previous: tuple[str, ...]


@dataclass(frozen=True)
class SetCostRate:
    """The person's hourly cost rate from a day on (a rate set again for the same day
    replaces it); ``reason`` says why (a raise, a new grade, a correction)."""

    rate: Any
    valid_from: Any
    reason: Any
    currency: Any = values.DEFAULT_CURRENCY


@dataclass(frozen=True, kw_only=True)
class UserCostRateSet(DomainEvent):
    """An hour of the person's work costs ``rate`` from ``valid_from`` on (the actor set
    it, for ``reason``); ``previous`` is the rate that was in force on that day, if any."""

    username: str
    rate: Decimal
    currency: str
    valid_from: date
    reason: str
    previous: Decimal | None = None


USER_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    UserRegistered,
    UserChanged,
    AssistantManagersSet,
    UserCostRateSet,
)
MAX_COST_RATE = Decimal(1_000_000)
"""An hour's cost above this is a typing error, not a rate."""
MAX_MANAGERS = 50
CHANGEABLE = ("name", "role", "department", "region", "city", "email", "active")


def register(command: RegisterUser, meta: CommandMeta) -> UserRegistered:
    role_ = role(command.role)
    department_ = department(command.department)
    check_claims(role_, department_)
    return UserRegistered(
        **meta.event_fields(),
        username=username(command.username, "username"),
        name=values.required_text("name", command.name),
        role=role_.value,
        department=department_,
        region=values.text("region", command.region, required=False),
        city=values.text("city", command.city, required=False),
        email=email(command.email),
    )


def change(user: User, command: ChangeUser, meta: CommandMeta) -> UserChanged:
    unknown = sorted(set(command.changes) - set(CHANGEABLE))
    if unknown:
        raise InvalidValue(unknown[0], f"{unknown[0]} cannot be changed")
    clean: dict[str, Any] = {}
    for field, value in command.changes.items():
        if field == "name":
            clean[field] = values.required_text("name", value)
        elif field == "role":
            clean[field] = role(value).value
        elif field == "department":
            clean[field] = department(value)
        elif field in ("region", "city"):
            clean[field] = values.text(field, value, required=False)
        elif field == "email":
            clean[field] = email(value)
        elif field == "active":
            if not isinstance(value, bool):
                raise InvalidValue("active", "active must be true or false")
            clean[field] = value
    changed = {k: v for k, v in clean.items() if getattr(user, k) != v}
    if not changed:
        raise RuleViolation("nothing_changed", "the change leaves the user as it is")
    after = evolve_changes(user, changed)
    check_claims(after.role, after.department)
    return UserChanged(**meta.event_fields(), username=user.username, changes=changed)


def set_managers(
    user: User,
    command: SetAssistantManagers,
    directory: dict[str, User | None],
    meta: CommandMeta,
) -> AssistantManagersSet:
    """Attach an assistant to one or more managers. ``directory`` holds the named users as
    they are now (None: no such user): each must be an active manager."""
    if user.role is not Role.ASSISTANT:
        raise RuleViolation(
            "not_an_assistant", f"{user.username} is {user.role.with_article}, not an assistant"
        )
    if not isinstance(command.managers, (tuple, list)) or not command.managers:
        raise InvalidValue("managers", "managers must name one or more managers")
    if len(command.managers) > MAX_MANAGERS:
        raise InvalidValue("managers", f"managers may name at most {MAX_MANAGERS} managers")
    managers: list[str] = []
    for name in command.managers:
        name = username(name, "managers")
        if name in managers:
            raise InvalidValue("managers", f"{name} is named twice")
        person = directory.get(name)
        if person is None or not person.active:
            raise InvalidValue("managers", f"{name} is not an active user of the directory")
        if person.role is not Role.MANAGER:
            raise RuleViolation(
                "not_a_manager",
                f"{name} is {person.role.with_article}: an assistant works only for managers",
                manager=name,
            )
        managers.append(name)
    chosen = tuple(sorted(managers))
    if chosen == user.managers:
        raise RuleViolation("nothing_changed", "the assistant works for these managers already")
    return AssistantManagersSet(
        **meta.event_fields(), username=user.username, managers=chosen, previous=user.managers
    )


def set_cost_rate(user: User, command: SetCostRate, meta: CommandMeta) -> UserCostRateSet:
    """Set the person's hourly cost rate from a day on: ≥ 0 with two decimals, in an ISO
    currency, from a sensible day, with a reason; the rate already set for that day
    again is refused (nothing would change)."""
    rate = values.amount("rate", command.rate)
    if rate > MAX_COST_RATE:
        raise InvalidValue("rate", f"'rate' must be at most {MAX_COST_RATE} an hour")
    currency = values.currency(command.currency)
    valid_from = values.day("valid_from", command.valid_from, required=True)
    valid_from = values.sensible_day("valid_from", valid_from, meta.at)
    assert valid_from is not None
    reason = values.required_text("reason", command.reason)
    same_day = next((r for r in user.cost_rates if r.valid_from == valid_from), None)
    if same_day is not None and (same_day.rate, same_day.currency) == (rate, currency):
        raise RuleViolation(
            "nothing_changed", f"{user.username}'s rate from {valid_from} is {rate} already"
        )
    in_force = user.rate_on(valid_from)
    return UserCostRateSet(
        **meta.event_fields(),
        username=user.username,
        rate=rate,
        currency=currency,
        valid_from=valid_from,
        reason=reason,
        previous=None if in_force is None else in_force.rate,
    )


def evolve_changes(user: User, changes: dict[str, Any]) -> User:
    fields = dict(changes)
    if "role" in fields:
        fields["role"] = Role(fields["role"])
    return replace(user, **fields)


def evolve(user: User | None, event: DomainEvent) -> User:
    if isinstance(event, UserRegistered):
        return User(
            username=event.username,
            version=1,
            name=event.name,
            role=Role(event.role),
            department=event.department,
            region=event.region,
            city=event.city,
            email=event.email,
            active=True,
            created_at=event.at,
            updated_at=event.at,
        )
    assert user is not None, "a user's stream starts with UserRegistered"
    if isinstance(event, UserChanged):
        user = evolve_changes(user, event.changes)
    elif isinstance(event, AssistantManagersSet):
        user = replace(user, managers=tuple(event.managers))
    elif isinstance(event, UserCostRateSet):
        rate = CostRate(event.valid_from, event.rate, event.currency)
        kept = [r for r in user.cost_rates if r.valid_from != rate.valid_from]
        user = replace(user, cost_rates=tuple(sorted([*kept, rate], key=lambda r: r.valid_from)))
    return replace(user, version=user.version + 1, updated_at=event.at)


def fold(events: list[DomainEvent]) -> User | None:
    user: User | None = None
    for event in events:
        user = evolve(user, event)
    return user
