"""Monthly sales plans per manager (seed 004: «План утверждается руководством компании и не
может быть отредактирован МОП»).

A plan is an amount of money (with its currency) and, optionally, a number of deals a
manager is to win in a calendar month (``YYYY-MM``). One stream per manager and month; each
setting or change is a :class:`SalesPlanSet` event with who set it and why (a reason is
required). The head of a department sets the plans of its people, top management anyone's;
a manager (or anyone else) reads their plan but never changes it.

Plan progress is read against the production calendar (``[calendar]`` in rules.toml):
the plan to date on a day is the plan times working days elapsed (that day included) / working
days in the month; it is 0 before the month's first working day and the whole plan from
its last working day on. Plan % is the won deals' amount in the month / the plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID, uuid5

from aggregates import values
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, NotPermitted, RuleViolation
from aggregates.rules import Calendar

SALES_PLAN_NAMESPACE = UUID("5b8e2f61-3c4d-4e7a-9f1b-2a6c8d0e4f73")
MONTH = re.compile(r"^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])$")
MAX_DEALS = 100_000
PLANNED_ROLES = frozenset({"manager", "head"})
"""Who sells, and so may have a plan: managers and heads of sales."""
CENT = Decimal("0.01")


def sales_plan_stream_id(manager: str, month: str) -> UUID:
    return uuid5(SALES_PLAN_NAMESPACE, f"sales-plan:{manager}:{month}")


def month(value: Any, field: str = "month") -> str:
    """A calendar month, ``YYYY-MM`` (2000-01 to 2100-12)."""
    if not isinstance(value, str) or not MONTH.match(value):
        raise InvalidValue(field, f"'{field}' must be a month as YYYY-MM (e.g. 2026-03)")
    return value


def month_days(month_id: str) -> tuple[date, date]:
    """The first and the last day of a ``YYYY-MM`` month."""
    year, number = (int(part) for part in month(month_id).split("-"))
    first = date(year, number, 1)
    following = date(year + (number == 12), number % 12 + 1, 1)
    return first, following - timedelta(days=1)


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def working_days(month_id: str, calendar: Calendar) -> list[date]:
    """The month's working days by the production calendar, in order."""
    first, last = month_days(month_id)
    days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return [d for d in days if calendar.working_hours(d) > 0]


def plan_to_date(plan: Decimal, month_id: str, day: date, calendar: Calendar) -> Decimal:
    """The part of the plan due by the end of ``day``: plan times working days elapsed (``day``
    included) / working days in the month, to the cent. A month with no working day is
    due whole on its last day."""
    worked = working_days(month_id, calendar)
    if not worked:
        return plan if day >= month_days(month_id)[1] else Decimal("0.00")
    elapsed = sum(1 for d in worked if d <= day)
    return (plan * elapsed / len(worked)).quantize(CENT, rounding=ROUND_HALF_UP)


def plan_share(fact: Decimal, plan: Decimal | None) -> float | None:
    """Plan %: the fact as a fraction of the plan (None without a plan, or a zero one)."""
    if plan is None or plan == 0:
        return None
    return float(fact / plan)


@dataclass(frozen=True)
class SetSalesPlan:
    """Set or change a manager's plan for a month; ``reason`` says why (required)."""

    manager: str
    month: str
    amount: Any
    currency: Any = "RUB"
    deals: Any = None
    reason: Any = None


@dataclass(frozen=True)
class Person:
    """What the rule needs to know of a person: their role and department (and, for the
    planned one, whether they are an active user)."""

    user: str
    role: str
    department: str | None
    active: bool = True


@dataclass(frozen=True, kw_only=True)
class SalesPlanSet(DomainEvent):
    manager: str
    """The manager the plan is for."""
    month: str
    """YYYY-MM."""
    amount: Decimal
    currency: str
    deals: int | None
    """The number of deals to win, when the plan counts them."""
    department: str | None
    """The manager's department when the plan was set."""
    previous_amount: Decimal | None
    previous_deals: int | None
    reason: str


SALES_PLAN_EVENT_TYPES: tuple[type[DomainEvent], ...] = (SalesPlanSet,)


@dataclass(frozen=True)
class SalesPlan:
    manager: str
    month: str
    amount: Decimal
    currency: str
    deals: int | None
    set_by: str
    set_at: datetime
    reason: str
    version: int


def may_set(setter: Person, planned: Person) -> None:
    """The rule: top management sets anyone's plan, a head the plans of their department's
    people (not their own); nobody else, a manager least of all (seed 004)."""
    if setter.role == "top":
        return
    if setter.role == "head":
        if planned.user == setter.user:
            raise NotPermitted(
                "own_plan_by_management",
                "a head's own plan is set by top management, not by the head",
            )
        if setter.department is not None and planned.department == setter.department:
            return
        raise NotPermitted(
            "plan_of_own_department",
            f"a head sets the plans of their own department's people only "
            f"({planned.user} is not in {setter.department or 'a department of theirs'})",
        )
    raise NotPermitted(
        "plan_set_by_management",
        "a sales plan is approved by the company's management: only a head (for their "
        f"department) or top management sets it; {setter.role}s may read it but not change it",
    )


def deals_count(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DEALS:
        raise InvalidValue("deals", f"'deals' must be a whole number from 0 to {MAX_DEALS}")
    return value


def decide(
    state: SalesPlan | None,
    command: SetSalesPlan,
    setter: Person,
    planned: Person | None,
    meta: CommandMeta,
) -> SalesPlanSet:
    """``planned``: the person the plan is for, from the directory (None: unknown)."""
    month(command.month)
    if planned is None or not planned.active or planned.role not in PLANNED_ROLES:
        raise InvalidValue(
            "manager", f"'{command.manager}' is not an active manager or head of sales"
        )
    may_set(setter, planned)
    amount = values.amount("amount", command.amount)
    currency = values.currency(command.currency)
    deals = deals_count(command.deals)
    reason = values.required_text("reason", command.reason)
    if state is not None and (state.amount, state.currency, state.deals) == (
        amount,
        currency,
        deals,
    ):
        raise RuleViolation(
            "plan_unchanged",
            f"{command.manager}'s plan for {command.month} is {amount} {currency} already",
        )
    return SalesPlanSet(
        **meta.event_fields(),
        manager=command.manager,
        month=command.month,
        amount=amount,
        currency=currency,
        deals=deals,
        department=planned.department,
        previous_amount=None if state is None else state.amount,
        previous_deals=None if state is None else state.deals,
        reason=reason,
    )


def evolve(state: SalesPlan | None, event: DomainEvent) -> SalesPlan:
    if not isinstance(event, SalesPlanSet):
        raise ValueError(f"not a sales plan event: {event.type}")
    return SalesPlan(
        manager=event.manager,
        month=event.month,
        amount=event.amount,
        currency=event.currency,
        deals=event.deals,
        set_by=event.actor,
        set_at=event.at,
        reason=event.reason,
        version=1 if state is None else state.version + 1,
    )


def fold(events: list[DomainEvent]) -> SalesPlan | None:
    state: SalesPlan | None = None
    for event in events:
        state = evolve(state, event)
    return state
