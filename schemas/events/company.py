"""Public events of the company registry: one stream per client company id.

Published on the ``company`` aggregate type.
"""

from __future__ import annotations

from pydantic import Field

from schemas.events.base import Id, PublicPayload


class CompanyRegisteredV1(PublicPayload):
    """A client company was seen for the first time, by a new lead naming its company id;
    every later lead for it is a repeat."""

    company_id: str = Field(description="The client's id in the registry (e.g. its tax number).")
    company_name: str
    first_lead_id: Id = Field(description="The lead that brought the company in.")


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "company": (CompanyRegisteredV1,),
}
"""The models of this module by aggregate type, every version of every event type."""
