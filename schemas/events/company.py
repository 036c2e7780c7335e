"""Public events of the company directory: one stream per client company id, and the
claims that keep it free of duplicates.

Published on the ``company`` aggregate type (the aggregate id is the company's stream id,
derived from its ``company_id``); the claims on a tax id or on a name in a city on the
``company_claim`` aggregate type (one aggregate per tax id, one per name and city).
"""

from __future__ import annotations

from pydantic import Field

from schemas.events.base import Id, PublicPayload

COMPANY_ID = Field(description="The client's id in the directory (the id leads name).")
NAME_KEY = Field(
    description="The normalised name and city the claim is on: `name|city`, lower case, "
    "without quotes, punctuation or the legal form (ООО, АО, ИП, LLC, …)."  # noqa: RUF001
)


class CompanyRegisteredV1(PublicPayload):
    """A client company was seen for the first time, by a new lead naming its company id;
    every later lead for it is a repeat."""

    company_id: str = Field(description="The client's id in the registry (e.g. its tax number).")
    company_name: str
    first_lead_id: Id = Field(description="The lead that brought the company in.")


class CompanyAddedToDirectoryV1(PublicPayload):
    """A company was registered in the directory with its card (before any lead named it)."""

    company_id: str = COMPANY_ID
    name: str
    tax_id: str | None = Field(description="INN: 10 digits (an organisation) or 12.")
    kpp: str | None = Field(description="KPP: 9 characters, with a 10-digit INN only.")
    industry: str | None
    region: str | None
    city: str | None
    legal_address: str | None
    actual_address: str | None
    postal_address: str | None
    notes: str | None
    name_key: str = NAME_KEY
    different_company: bool = Field(
        description="Registered although another company has the same name in the city."
    )


class CompanyCardChangedV1(PublicPayload):
    """A company's card was changed (the whole card after the change)."""

    company_id: str = COMPANY_ID
    name: str
    tax_id: str | None
    kpp: str | None
    industry: str | None
    region: str | None
    city: str | None
    legal_address: str | None
    actual_address: str | None
    postal_address: str | None
    notes: str | None
    name_key: str = NAME_KEY
    changed: tuple[str, ...] = Field(description="The card fields that changed.")
    different_company: bool = Field(
        description="Changed although another company has the same name in the city."
    )


class CompanyFirstLeadRecordedV1(PublicPayload):
    """The first lead naming a company registered in the directory: that lead is new,
    every later one a repeat."""

    company_id: str = COMPANY_ID
    lead_id: Id


class CompanyMergedV1(PublicPayload):
    """The company (a duplicate) was merged into another: it is read-only from now on,
    and its leads, deals and projects are reported under the survivor."""

    company_id: str = COMPANY_ID
    into: str = Field(description="The surviving company's id.")
    into_name: str


class CompanyAbsorbedV1(PublicPayload):
    """A duplicate was merged into this company, with its tax id and name claims."""

    company_id: str = COMPANY_ID
    merged_company_id: str
    merged_name: str
    tax_ids: tuple[str, ...] = Field(description="The tax ids whose claims moved here.")
    name_keys: tuple[str, ...] = Field(description="The name claims that moved here.")
    merged_had_leads: bool


class CompanyTaxIdClaimedV1(PublicPayload):
    """A company holds this tax id: another company registered with it is a duplicate."""

    tax_id: str
    company_id: str = COMPANY_ID
    merged_from: str | None = Field(description="Moved here by merging this company.")


class CompanyTaxIdReleasedV1(PublicPayload):
    """The company's card no longer has this tax id."""

    tax_id: str
    company_id: str = COMPANY_ID


class CompanyNameClaimedV1(PublicPayload):
    """A company holds this name in this city (beside the holders registered as
    different companies)."""

    name_key: str = NAME_KEY
    company_id: str = COMPANY_ID
    merged_from: str | None = Field(description="Moved here by merging this company.")


class CompanyNameReleasedV1(PublicPayload):
    """The company's card no longer has this name in this city."""

    name_key: str = NAME_KEY
    company_id: str = COMPANY_ID


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "company": (
        CompanyRegisteredV1,
        CompanyAddedToDirectoryV1,
        CompanyCardChangedV1,
        CompanyFirstLeadRecordedV1,
        CompanyMergedV1,
        CompanyAbsorbedV1,
    ),
    "company_claim": (
        CompanyTaxIdClaimedV1,
        CompanyTaxIdReleasedV1,
        CompanyNameClaimedV1,
        CompanyNameReleasedV1,
    ),
}
"""The models of this module by aggregate type, every version of every event type."""
