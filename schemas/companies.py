"""Request and response models of the company directory, the client card and the deal
volume by client industry."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from schemas.leads import HistoryEntry, Strict
from schemas.limits import Code, LongText, Name
from schemas.pipeline import Page

CARD_FIELDS = (
    "name",
    "tax_id",
    "kpp",
    "industry",
    "region",
    "city",
    "legal_address",
    "actual_address",
    "postal_address",
    "notes",
)


class CompanyCard(Strict):
    """A company's card (PUT: the whole card; fields left out are cleared)."""

    name: Name
    tax_id: Code | None = Field(
        default=None, description="INN: 10 digits (an organisation) or 12, check digits right"
    )
    kpp: Code | None = Field(default=None, description="KPP: 9 characters, with a 10-digit INN")
    industry: Name | None = None
    region: Name | None = None
    city: Name | None = None
    legal_address: LongText | None = None
    actual_address: LongText | None = None
    postal_address: LongText | None = None
    notes: LongText | None = None
    different_company: bool = Field(
        default=False,
        description="Register (or change) although another company has the same name in the "
        "same city: this is a different company. The tax id rule knows no exception.",
    )

    def card(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in CARD_FIELDS}


class CompanyRequest(CompanyCard):
    company_id: Code | None = Field(
        default=None,
        description="The id leads will name; one is made up when none is given",
    )


class CompanyPatch(Strict):
    """Only the fields sent are changed (null clears one)."""

    name: Name | None = None
    tax_id: Code | None = None
    kpp: Code | None = None
    industry: Name | None = None
    region: Name | None = None
    city: Name | None = None
    legal_address: LongText | None = None
    actual_address: LongText | None = None
    postal_address: LongText | None = None
    notes: LongText | None = None
    different_company: bool = False

    def changes(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in CARD_FIELDS if f in self.model_fields_set}


class MergeRequest(Strict):
    into: Code = Field(description="The surviving company's id")


class CompanyAccepted(BaseModel):
    company_id: str
    version: int
    position: int


class MergedCompany(BaseModel):
    company_id: str
    name: str


class CompanyOut(BaseModel):
    company_id: str
    name: str
    normalised_name: str
    tax_id: str | None
    kpp: str | None
    industry: str | None
    region: str | None
    city: str | None
    legal_address: str | None
    actual_address: str | None
    postal_address: str | None
    notes: str | None
    in_directory: bool = Field(description="Registered in the directory or its card filled")
    merged_into: str | None = Field(
        description="The surviving record this duplicate was merged into (read-only then)"
    )
    absorbed: int = Field(description="How many duplicates were merged into it")
    first_lead_id: str | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    version: int


class CompanyRecord(CompanyOut):
    merged: list[MergedCompany] = Field(description="The duplicates merged into it")
    merged_into_name: str | None


class CompanyPage(Page):
    items: list[CompanyOut]


class CompanyHistory(BaseModel):
    company_id: str
    events: list[HistoryEntry]


# --- the client card --------------------------------------------------------------------

TimelineKind = Literal[
    "lead_created",
    "lead_closed",
    "deal_created",
    "deal_closed",
    "activity",
    "project_created",
    "invoice",
    "payment",
]


class TimelineEntry(BaseModel):
    at: datetime
    kind: TimelineKind
    record: Literal["lead", "deal", "activity", "project"] = Field(
        description="The kind of record ``record_id`` names"
    )
    record_id: str
    title: str | None = Field(
        description="The record's title (an invoice's number, an activity's type)"
    )
    amount: Decimal | None
    status: str | None
    who: str | None = Field(description="The manager, owner or PM (who issued or recorded)")
    company_id: str = Field(description="The company the record names (a merged one's too)")


class ClientTotals(BaseModel):
    lifetime_value: Decimal = Field(description="What the client paid (project payments)")
    invoiced: Decimal = Field(description="Invoiced on their deals and their projects")
    invoiced_on_deals: Decimal
    invoiced_on_projects: Decimal = Field(
        description="Issued on their projects directly (not carried from a deal)"
    )
    open_deals: int
    open_deals_amount: Decimal
    last_interaction_at: datetime | None
    last_invoice_on: date | None
    dormant_after_days: int
    dormant_since: date | None = Field(
        description="The dormant-clients indicator's rule: from the day after "
        "dormant_after_days passed since the last deal invoice; null when not dormant"
    )


class ClientCard(Page):
    company: CompanyRecord
    asked_for: str = Field(description="The id asked for (a merged company's shows its survivor)")
    company_ids: list[str] = Field(description="The survivor and every company merged into it")
    totals: ClientTotals
    items: list[TimelineEntry] = Field(description="The timeline, newest first (one page)")


# --- deal volume by industry ------------------------------------------------------------


class IndustryVolume(BaseModel):
    industry: str | None = Field(description="The client's industry (null: none recorded)")
    count: int
    amount: Decimal
    won_count: int
    won_amount: Decimal
    open_count: int
    open_amount: Decimal
    lost_count: int
    lost_amount: Decimal


class IndustryVolumeTotals(BaseModel):
    count: int
    amount: Decimal
    won_count: int
    won_amount: Decimal
    open_count: int
    open_amount: Decimal
    lost_count: int
    lost_amount: Decimal


class DealVolumeReport(BaseModel):
    """Deals created in the period by client industry, split won / open / lost."""

    start: datetime | None
    end: datetime | None
    items: list[IndustryVolume]
    totals: IndustryVolumeTotals
