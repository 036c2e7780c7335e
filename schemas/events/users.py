"""Public events of the user directory and of sensitive information.

Users are published on the ``user`` aggregate type (the aggregate id is derived from the
username). A lead's sensitive section is published only as the fact that it changed or
was read: its sealed content never leaves LeadLedger. Erasures are published on the
``data_subject`` aggregate type, so that downstream copies can forget the subject too.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.events.base import CurrencyCode, Day, Id, Money, PublicPayload

RoleName = Literal[
    "manager",
    "head",
    "top",
    "pm",
    "expert",
    "department",
    "analyst",
    "auditor",
    "admin",
    "assistant",
]


class UserRegisteredV1(PublicPayload):
    """A user was added to the directory with a role, department and region."""

    username: str
    name: str
    role: RoleName
    department: str | None
    region: str | None


class UserRegisteredV2(UserRegisteredV1):
    """A user was added to the directory with a role, department, region, city and work
    e-mail address (version 2; earlier versions: neither city nor e-mail)."""

    city: str | None = Field(default=None, description="The user's city, if given.")
    email: str | None = Field(
        default=None, description="The work address the user's alerts are e-mailed to."
    )


class UserChangedV1(PublicPayload):
    """A user's name, role, department, region, city, e-mail or activity changed (the new
    values)."""

    username: str
    changes: dict[str, str | bool | None] = Field(
        description="The fields changed, with their new values (name, role, department, "
        "region, city, email, active)."
    )


class AssistantManagersSetV1(PublicPayload):
    """An assistant was attached to the managers they work for (the whole list, which
    replaces the previous one): they create and fill those managers' leads and see what
    those managers see."""

    username: str
    managers: list[str] = Field(description="The managers now, sorted.")
    previous: list[str] = Field(description="The managers before (empty the first time).")


class UserCostRateSetV1(PublicPayload):
    """What an hour of the person's work costs the company from a day on (until the next
    rate's day); a rate set again for the same day replaces it. The actor set it."""

    username: str
    rate: Money = Field(description="The hourly cost rate.")
    currency: CurrencyCode
    valid_from: Day = Field(description="The first day the rate is in force.")
    reason: str = Field(description="Why the rate was set.")
    previous: Money | None = Field(
        default=None, description="The rate in force on that day before, if any."
    )


class LeadSensitiveInfoSetV1(PublicPayload):
    """The lead's sensitive-information section was replaced. Its content is not
    published; only the lead's manager, their head and top management can read it."""

    lead_id: Id
    subject_id: str = Field(description="The data subject: company:<id> or lead:<id>.")


class LeadSensitiveInfoViewedV1(PublicPayload):
    """Someone read the lead's sensitive-information section (the actor is the reader)."""

    lead_id: Id
    subject_id: str
    outcome: Literal["shown", "erased", "empty"]


class DataSubjectErasedV1(PublicPayload):
    """The data subject was erased: its sensitive information can no longer be read by
    anyone. Subscribers holding copies of it should forget them."""

    subject_id: str
    keys_destroyed: bool = Field(description="False when the subject had no key left.")


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "user": (
        UserRegisteredV1,
        UserRegisteredV2,
        UserChangedV1,
        AssistantManagersSetV1,
        UserCostRateSetV1,
    ),
    "lead_sensitive": (LeadSensitiveInfoSetV1, LeadSensitiveInfoViewedV1),
    "data_subject": (DataSubjectErasedV1,),
}
"""The models of this module by aggregate type, every version of every event type."""
