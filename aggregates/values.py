"""Value checks shared by the deciders: each names the field it refuses."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from aggregates.errors import InvalidValue

MAX_AMOUNT = Decimal("1e15")
MAX_TEXT = 10_000
CENT = Decimal("0.01")
DEFAULT_CURRENCY = "RUB"
"""ISO 4217 code of amounts that name no currency."""


def text(field: str, value: Any, *, required: bool) -> str | None:
    """Stripped text; blank is None (or refused when required)."""
    if value is None:
        if required:
            raise InvalidValue(field, f"'{field}' is required")
        return None
    if not isinstance(value, str):
        raise InvalidValue(field, f"'{field}' must be a string")
    stripped: str = value.strip()
    if not stripped:
        if required:
            raise InvalidValue(field, f"'{field}' must not be blank")
        return None
    if len(stripped) > MAX_TEXT:
        raise InvalidValue(field, f"'{field}' is longer than {MAX_TEXT} characters")
    return stripped


def required_text(field: str, value: Any) -> str:
    checked = text(field, value, required=True)
    assert checked is not None
    return checked


def _decimal(field: str, value: Any) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise InvalidValue(field, f"'{field}' must be a number") from exc
    if not number.is_finite():
        raise InvalidValue(field, f"'{field}' must be a finite number")
    return number


def _two_places(field: str, number: Decimal) -> Decimal:
    rounded = number.quantize(CENT)
    if number != rounded:
        raise InvalidValue(field, f"'{field}' must have at most 2 decimal places")
    return rounded


def amount(field: str, value: Any, *, positive: bool = False) -> Decimal:
    """Money: ≥ 0 (or > 0 when ``positive``), below 10^15, at most 2 decimal places."""
    number = _decimal(field, value)
    if positive and number <= 0:
        raise InvalidValue(field, f"'{field}' must be greater than 0")
    if number < 0:
        raise InvalidValue(field, f"'{field}' must be greater than or equal to 0")
    if number >= MAX_AMOUNT:
        raise InvalidValue(field, f"'{field}' must be less than {MAX_AMOUNT:,.0f}")
    return _two_places(field, number)


def hours(field: str, value: Any, *, maximum: Decimal) -> Decimal:
    """Hours worked or planned: > 0, at most ``maximum``, at most 2 decimal places."""
    number = _decimal(field, value)
    if number <= 0:
        raise InvalidValue(field, f"'{field}' must be greater than 0")
    if number > maximum:
        raise InvalidValue(field, f"'{field}' must be at most {maximum}")
    return _two_places(field, number)


def day(field: str, value: Any, *, required: bool) -> date | None:
    if value is None:
        if required:
            raise InvalidValue(field, f"'{field}' is required")
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise InvalidValue(field, f"'{field}' must be a date")


EARLIEST_DAY = date(2000, 1, 1)
"""No date LeadLedger records is older than this (the business's records start later)."""
FUTURE_DAYS = 5 * 365 + 1
"""Nothing is planned, due or signed more than five years ahead of the command's day."""
BACKDATING_DAYS = 90
"""How long before its record was created a date may be: work, an invoice, a payment or
a plan recorded after the fact (a project is often opened in LeadLedger once the work
has started, with its first weeks' hours and invoices); a quarter covers that. Earlier
than that, the deal or the project did not exist."""


def sensible_day(
    field: str,
    value: date | None,
    at: datetime,
    *,
    since: datetime | None = None,
    record: str = "record",
) -> date | None:
    """A date the business can mean: not before 2000, not more than five years after the
    command's day ``at``, and, given ``since`` (when the record the date belongs to was
    created), not more than :data:`BACKDATING_DAYS` before that day. 422 naming ``field``."""
    if value is None:
        return None
    earliest, why = EARLIEST_DAY, "no record goes back further"
    if since is not None:
        floor = since.astimezone(UTC).date() - timedelta(days=BACKDATING_DAYS)
        if floor > earliest:
            earliest = floor
            why = f"{BACKDATING_DAYS} days before the {record} was created"
    if value < earliest:
        raise InvalidValue(field, f"'{field}' must not be before {earliest} ({why})")
    latest = at.astimezone(UTC).date() + timedelta(days=FUTURE_DAYS)
    if value > latest:
        raise InvalidValue(field, f"'{field}' must not be after {latest} (five years from today)")
    return value


def currency(value: Any, field: str = "currency") -> str:
    """An ISO 4217 alphabetic code: three capital Latin letters."""
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isupper():
        raise InvalidValue(field, f"'{field}' must be an ISO 4217 code of three capital letters")
    if not value.isalpha():
        raise InvalidValue(field, f"'{field}' must be an ISO 4217 code of three capital letters")
    return value
