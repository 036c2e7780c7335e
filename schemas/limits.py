"""How long and how many: the bounds of every text and list a request may carry.

One place for them all, chosen so that no real user meets them while a single request
can never be large enough to hurt (a cost breakdown of 600,000 components once was).
They are pydantic constraints, so the OpenAPI document states them (``maxLength``,
``maxItems``, ``maxProperties``) and a request over one is the usual 422 naming the
field. The deciders keep their own checks of meaning (blank, unique, in range).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from aggregates import contractor, deal, handoff, sensitive
from aggregates.values import MAX_TEXT

MAX_CODE = 200
"""Identifiers and codes: funnel, stage, status, department, username, company id,
contract or invoice number, task id, currency."""
MAX_NAME = 300
"""Titles and names: a lead's or deal's title, a company, a component, a service."""
MAX_LONG_TEXT = MAX_TEXT
"""Free text: descriptions, notes, reasons, comments, contacts, results."""
MAX_COMPONENTS = 200
"""Components of a lead's cost breakdown."""
MAX_SERVICES = deal.MAX_SERVICES
"""Service lines of a deal's proposal."""
MAX_CALCULATION_SERVICES = handoff.MAX_CALCULATION_SERVICES
"""Services priced on a request for calculation."""
MAX_LAUNCH_SERVICES = deal.MAX_SERVICES
"""Services launched into work at once (at most a proposal's)."""
MAX_ACT_ITEMS = 2_000
"""Services or tasks an act of completed work covers (at most a project's tasks)."""
MAX_CONTRACTOR_SERVICES = contractor.MAX_SERVICES
"""Services a contractor offers."""
MAX_DEPENDENCIES = 200
"""Tasks a task depends on."""
MAX_SENSITIVE_NOTES = sensitive.MAX_NOTES
MAX_SENSITIVE_FIELDS = sensitive.MAX_FIELDS
MAX_SENSITIVE_FIELD_NAME = sensitive.MAX_FIELD_NAME
MAX_SENSITIVE_FIELD_VALUE = sensitive.MAX_FIELD_VALUE
MAX_QUERY_TEXT = MAX_CODE
"""A free-text filter of a query (a manager, a company id, a service)."""

Code = Annotated[str, Field(max_length=MAX_CODE)]
Name = Annotated[str, Field(max_length=MAX_NAME)]
LongText = Annotated[str, Field(max_length=MAX_LONG_TEXT)]
SensitiveFieldName = Annotated[str, Field(max_length=MAX_SENSITIVE_FIELD_NAME)]
SensitiveFieldValue = Annotated[str, Field(max_length=MAX_SENSITIVE_FIELD_VALUE)]
