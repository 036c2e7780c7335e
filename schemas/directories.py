"""Request and response models of the shared directories and the signatories report."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from schemas.leads import Strict
from schemas.limits import Code, LongText

MAX_ENTRY_FIELDS = 100

EntryFields = dict[Code, LongText | None]


class EntryRequest(Strict):
    fields: EntryFields = Field(
        max_length=MAX_ENTRY_FIELDS,
        description="The entry's fields by id, as the kind declares them (GET /directories); "
        "an unknown field or a missing required one is a 422 naming it",
    )


class EntryUpdateRequest(Strict):
    fields: EntryFields = Field(
        max_length=MAX_ENTRY_FIELDS,
        description="Only the fields sent are changed; null clears an optional one",
    )


class LinkRequest(Strict):
    target: Literal["lead", "project"]
    target_id: UUID
    role: Code = Field(description="One of the roles the kind declares for the target")


class EntryAccepted(BaseModel):
    entry_id: UUID
    version: int
    position: int


class FieldInfo(BaseModel):
    id: str
    name: str
    type: str
    required: bool


class KindInfo(BaseModel):
    id: str
    name: str
    title_field: str
    fields: list[FieldInfo]
    roles: dict[str, list[str]] = Field(description="Target (lead, project) → its roles")


class KindList(BaseModel):
    kinds: list[KindInfo]


class EntrySummary(BaseModel):
    entry_id: UUID
    kind: str
    title: str
    fields: dict[str, str | None]
    links: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    version: int


class EntryPage(BaseModel):
    items: list[EntrySummary]
    total: int
    limit: int
    offset: int


class EntryLink(BaseModel):
    target: str
    target_id: UUID
    role: str
    linked_at: datetime
    linked_by: str
    title: str
    status: str
    company_name: str | None
    manager: str | None


class EntryCard(EntrySummary):
    link_list: list[EntryLink] = Field(
        description="Links to the leads and projects the viewer sees, newest first"
    )
    hidden_links: int = Field(description="Links to records outside the viewer's scope")


class SignatoryRow(BaseModel):
    entry_id: UUID
    signatory: str
    position: str | None
    project_id: UUID
    title: str
    status: str
    company_name: str | None
    pm: str | None
    manager: str | None
    linked_at: datetime


class SignatoriesReport(BaseModel):
    items: list[SignatoryRow] = Field(
        description="One row per signatory and project, by signatory then project"
    )
    total: int
    limit: int
    offset: int
    signatories: int = Field(description="Distinct signatories matching the filter")
    projects: int = Field(description="Distinct projects matching the filter")
    statuses: list[str] = Field(description="The project statuses filtered on (none: all)")
