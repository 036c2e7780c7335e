"""The one body every error answer shares, as published in the OpenAPI document."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FieldError(BaseModel):
    field: str = Field(description="The field, header or parameter at fault, e.g. components[3]")
    message: str


class ErrorBody(BaseModel):
    """``{"detail", "code", ...}``: what went wrong, a stable code, and what applies."""

    model_config = ConfigDict(extra="allow", title="Error")

    detail: str = Field(description="What went wrong, for people")
    code: str = Field(
        description="A stable code: invalid_request, invalid_value, unauthenticated, "
        "not_permitted, not_found, rule_violation, version_conflict, "
        "idempotency_key_reused, payload_too_large, read_models_behind, "
        "event_store_unavailable, http_error (405, …), …"
    )
    field: str | None = Field(default=None, description="The field at fault (422)")
    errors: list[FieldError] | None = Field(default=None, description="Every field at fault (422)")
    rule: str | None = Field(default=None, description="The rule refusing the command (403, 409)")
    current_version: int | None = Field(
        default=None, description="The record's version now (409 version_conflict)"
    )
    max_bytes: int | None = Field(default=None, description="The body limit (413)")
