"""Public events of the contacts: the persons LeadLedger deals with.

Published on the ``contact`` aggregate type: a contact's own events (the aggregate id is
the contact id), its phone and e-mail claims (the aggregate id is the claim stream's) and
its first-lead mark. Phones, e-mails and claimed values are personal data: they never
leave LeadLedger (subscribers see that a claim moved, not what was claimed).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.events.base import Id, PublicPayload


class ContactRegisteredV1(PublicPayload):
    """A contact (a person) was added: name, position, the client companies it belongs to."""

    contact_id: Id
    name: str
    position: str | None
    companies: tuple[str, ...] = Field(description="The client companies' ids.")
    notes: str | None


class ContactUpdatedV1(PublicPayload):
    """A contact's card was edited (the card after the edit, without phones and e-mails)."""

    name: str
    position: str | None
    companies: tuple[str, ...] = Field(description="The client companies' ids.")
    notes: str | None


class ContactIdentifierClaimedV1(PublicPayload):
    """A phone or an e-mail became a contact's: no other contact may have it now."""

    kind: Literal["phone", "email"]
    contact_id: Id


class ContactIdentifierReleasedV1(PublicPayload):
    """A contact dropped a phone or an e-mail: another contact may claim it."""

    kind: Literal["phone", "email"]
    contact_id: Id


class ContactFirstLeadNamedV1(PublicPayload):
    """The first lead naming the contact; every later one naming it is a repeat."""

    contact_id: Id
    first_lead_id: Id


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "contact": (
        ContactRegisteredV1,
        ContactUpdatedV1,
        ContactIdentifierClaimedV1,
        ContactIdentifierReleasedV1,
        ContactFirstLeadNamedV1,
    ),
}
"""The models of this module by aggregate type, every version of every event type."""
