"""Request and response models of the contact endpoints."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, Field

from aggregates import contact
from schemas.leads import Strict
from schemas.limits import Code, LongText, Name

Phones = list[Code]
Emails = list[Code]


class ContactRequest(Strict):
    name: Name
    phones: Phones = Field(
        default_factory=list,
        max_length=contact.MAX_PHONES,
        description="Phone numbers; a Russian 8XXXXXXXXXX is kept as +7XXXXXXXXXX, others "
        "need their + country code. One another contact has is refused (409 likely_duplicate "
        "naming that contact)",
    )
    emails: Emails = Field(
        default_factory=list,
        max_length=contact.MAX_EMAILS,
        description="E-mail addresses (kept trimmed and lower-cased); one another contact "
        "has is refused as a likely duplicate",
    )
    position: Name | None = None
    companies: list[Code] = Field(
        default_factory=list,
        max_length=contact.MAX_COMPANIES,
        description="The client companies (their company ids) the person belongs to",
    )
    notes: LongText | None = None


class ContactUpdateRequest(Strict):
    """Only the fields sent are changed; lists are replaced whole."""

    name: Name | None = None
    phones: Phones | None = Field(default=None, max_length=contact.MAX_PHONES)
    emails: Emails | None = Field(default=None, max_length=contact.MAX_EMAILS)
    position: Name | None = None
    companies: list[Code] | None = Field(default=None, max_length=contact.MAX_COMPANIES)
    notes: LongText | None = None


class ContactAccepted(BaseModel):
    contact_id: UUID
    version: int
    position: int


class ContactSummary(BaseModel):
    contact_id: UUID
    name: str
    phones: list[str]
    emails: list[str]
    position: str | None
    companies: list[str]
    notes: str | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    version: int
    leads: int = Field(description="Leads naming the contact (that the viewer sees)")


class ContactPage(BaseModel):
    items: list[ContactSummary]
    total: int = Field(description="How many match the search, over all pages")
    limit: int
    offset: int


class ContactLead(BaseModel):
    lead_id: UUID
    title: str
    company_name: str
    funnel: str
    stage: str
    status: str
    repeat: bool
    manager: str
    amount: Decimal
    currency: str
    created_at: datetime


class ContactCard(ContactSummary):
    lead_list: list[ContactLead] = Field(description="The leads naming the contact, newest first")
