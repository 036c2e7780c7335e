"""Request and response models of imports (issue 18 §2) and their saved mappings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.leads import Strict

KindName = Annotated[
    str, Field(max_length=40, description="What the file holds: leads, deals, companies")
]
ColumnName = Annotated[str, Field(min_length=1, max_length=200)]
FieldName = Annotated[str, Field(max_length=60, description="A field of the kind ('' skips)")]


class RowErrorView(Strict):
    row: int = Field(description="The row as the spreadsheet numbers it (the header is row 1)")
    column: str | None = Field(description="The file's column at fault, when one is")
    field: str | None = Field(description="The field that column fills")
    reason: str
    code: str = Field(description="invalid_value, duplicate_row, or the rule refused")


class ImportReportView(Strict):
    kind: str
    file: str = Field(description="The file's name as uploaded")
    checksum: str = Field(description="SHA-256 of the file: every imported event names it")
    format: Literal["csv", "xlsx"]
    mode: Literal["all", "rows"]
    dry_run: bool
    status: Literal["dry_run", "imported", "rejected", "already_imported", "nothing"] = Field(
        description="rejected: mode 'all' and a row was refused, nothing was written; "
        "already_imported: every good row was imported before"
    )
    rows: int
    accepted: int = Field(description="Rows that pass every rule (written unless a dry run)")
    already_imported: int = Field(description="Rows whose record exists already: skipped")
    refused: int
    imported: int = Field(description="Records written by this request")
    events: int
    first_position: int | None
    last_position: int | None = Field(
        description="Pass it as min_position to read the imported records back"
    )
    seconds: float
    columns: dict[str, str] = Field(description="field → the file's column that filled it")
    errors: list[RowErrorView]
    errors_shown: int


class MappingRequest(Strict):
    kind: KindName
    columns: dict[ColumnName, FieldName] = Field(
        description="The file's column header → the field it fills ('' leaves it out)",
        max_length=200,
    )


class MappingView(Strict):
    name: str
    kind: str
    columns: dict[str, str]
    version: int
    saved_by: str


class MappingAccepted(Strict):
    name: str
    version: int
    position: int
