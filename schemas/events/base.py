"""The base of every public payload model and the wire types its fields use.

Values are written as ``event_store.codec`` stores them: decimals as strings (exact,
never floats), instants as ISO 8601 with a UTC offset, days as ``YYYY-MM-DD``, ids as
UUID strings, tuples and sets as arrays.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "AwareDatetime",
    "CardChanges",
    "CurrencyCode",
    "Day",
    "DecimalString",
    "FieldChange",
    "HealthLevel",
    "Hours",
    "Id",
    "Instant",
    "Money",
    "Month",
    "Outcome",
    "PublicPayload",
    "tidy_description",
    "tidy_schema",
]


def tidy_description(text: str) -> str:
    """A docstring as a schema description: CommonMark, lines of a paragraph joined."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(p.split()) for p in paragraphs).replace("``", "`")


def tidy_schema(schema: dict[str, Any], cls: type[Any]) -> None:
    """``json_schema_extra`` hook: the model's descriptions (its docstring and its fields')
    as tidy CommonMark."""
    if isinstance(schema.get("description"), str):
        schema["description"] = tidy_description(schema["description"])
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for prop in properties.values():
            if isinstance(prop, dict) and isinstance(prop.get("description"), str):
                prop["description"] = tidy_description(prop["description"])


class PublicPayload(BaseModel):
    """The ``data`` of a published event: exactly the fields it declares, nothing more."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=tidy_schema)


DECIMAL_PATTERN = r"^-?\d+(\.\d+)?$"

DecimalString = Annotated[
    str,
    Field(
        pattern=DECIMAL_PATTERN,
        description='A decimal number written as a string, exact (never a float), e.g. "12.50".',
        examples=["12.50"],
    ),
]
"""A decimal on the wire: amounts, hours, prices."""

Money = Annotated[
    str,
    Field(
        pattern=DECIMAL_PATTERN,
        description='An amount of money as a decimal string with two places, e.g. "1500.00".',
        examples=["1500.00"],
    ),
]

Hours = Annotated[
    str,
    Field(
        pattern=DECIMAL_PATTERN,
        description='Hours as a decimal string with two places, e.g. "7.50".',
        examples=["7.50"],
    ),
]

Instant = AwareDatetime
"""A moment in time: ISO 8601 with its UTC offset, e.g. ``2026-01-05T09:00:00+00:00``."""

Day = date
"""A calendar day: ``YYYY-MM-DD``."""

Id = UUID
"""An identifier: a UUID string."""

CurrencyCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 alphabetic currency code: three capital letters, e.g. RUB.",
        examples=["RUB"],
    ),
]

Month = Annotated[
    str,
    Field(
        pattern=r"^\d{4}-\d{2}$",
        description="A calendar month: YYYY-MM.",
        examples=["2026-01"],
    ),
]

Outcome = Literal["won", "lost"]
"""How a lead or deal ended."""

HealthLevel = Literal["good", "some_difficulties", "big_difficulties"]
"""A project's health, from best to worst."""


class FieldChange(PublicPayload):
    """One field of a card edit: its value before and after."""

    old: Any = Field(
        description="The value before, as JSON (dates and amounts as strings; null when empty)."
    )
    new: Any = Field(
        description="The value after, as JSON (dates and amounts as strings; null when empty)."
    )


CardChanges = Annotated[
    dict[str, FieldChange],
    Field(description="Only the fields whose value changed, by field name, each old → new."),
]
