"""Request and response models of the user directory, sensitive information and erasure."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from schemas.leads import Strict
from schemas.limits import (
    MAX_SENSITIVE_FIELDS,
    MAX_SENSITIVE_NOTES,
    Code,
    Name,
    SensitiveFieldName,
    SensitiveFieldValue,
)

Email = Annotated[str, Field(max_length=254, description="An e-mail address")]
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


class RegisterUserRequest(Strict):
    username: Code = Field(description="Login name: lower-case letters, digits, '.', '_', '-'")
    name: Name = Field(description="Full name")
    role: RoleName
    department: Code | None = Field(
        default=None, description="Department (required for heads and department workers)"
    )
    region: Name | None = Field(default=None, description="Region")
    city: Name | None = Field(default=None, description="City")
    email: Email | None = Field(default=None, description="Where the user's alerts are e-mailed")


class CostRateRequest(Strict):
    rate: Decimal = Field(description="What an hour of the person's work costs: ≥ 0, 2 decimals")
    currency: Code = Field(default="RUB", description="ISO 4217 code of the rate")
    valid_from: date = Field(description="The first day the rate is in force")
    reason: Name = Field(description="Why the rate is set (a raise, a new grade, a correction)")


class ChangeUserRequest(Strict):
    name: Name | None = None
    role: RoleName | None = None
    department: Code | None = None
    region: Name | None = None
    city: Name | None = None
    email: Email | None = None
    active: bool | None = Field(default=None, description="false: the user can no longer act")


class AssistantManagersRequest(Strict):
    managers: list[Code] = Field(
        min_length=1,
        max_length=50,
        description="The managers the assistant works for (replaces the list): each an "
        "active user with the role manager",
    )


class UserView(BaseModel):
    username: str
    name: str
    role: str
    department: str | None
    region: str | None
    city: str | None = None
    email: str | None = None
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    managers: list[str] = Field(
        default_factory=list, description="An assistant's managers (empty for other roles)"
    )


class UserPage(BaseModel):
    items: list[UserView]
    total: int
    limit: int
    offset: int


class Me(BaseModel):
    user: str
    role: str
    department: str | None
    region: str | None


class UserAccepted(BaseModel):
    username: str
    version: int
    position: int


class SensitiveInfoRequest(Strict):
    notes: str = Field(default="", max_length=MAX_SENSITIVE_NOTES, description="Free text")
    fields: dict[SensitiveFieldName, SensitiveFieldValue] = Field(
        default_factory=dict,
        max_length=MAX_SENSITIVE_FIELDS,
        description='Named fields, e.g. {"decision maker": "..."}',
    )


class SensitiveInfoView(BaseModel):
    lead_id: str
    status: Literal["shown", "erased", "empty"] = Field(
        description="shown; erased: the data subject was erased and the section cannot be "
        "read by anyone; empty: never set"
    )
    notes: str | None
    fields: dict[str, str] | None
    subject_id: str
    updated_at: datetime | None
    updated_by: str | None
    erased_at: datetime | None


class SensitiveRead(BaseModel):
    position: int
    actor: str
    actor_role: str | None
    outcome: str
    at: datetime


class SensitiveReadPage(BaseModel):
    lead_id: str
    items: list[SensitiveRead]
    total: int
    limit: int
    offset: int


class SubjectView(BaseModel):
    subject_id: str
    erased_at: datetime | None
    has_key: bool


class ErasureAccepted(BaseModel):
    subject_id: str
    keys_destroyed: bool
    position: int
