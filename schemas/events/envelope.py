"""The envelope every published event travels in (Kafka message value, HTTP feed item)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.events.base import Id, Instant, tidy_schema

ENVELOPE_VERSION = 1


class EventEnvelope(BaseModel):
    """One published event: who did what to which aggregate, when, and its payload.

    Delivery is at least once: deduplicate by ``event_id``, which stays the same when an
    event is delivered again. Events of one aggregate arrive in ``aggregate_version``
    order (Kafka key = ``aggregate_id``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=tidy_schema)

    event_id: Id = Field(
        description="The event's stable id: the same on every delivery, use it to deduplicate."
    )
    type: str = Field(description="The event type, e.g. LeadCreated.", examples=["LeadCreated"])
    schema_version: int = Field(
        ge=1,
        description="The version of the event type's payload schema that ``data`` follows "
        "(always the current version: older stored events are upcast).",
    )
    aggregate_type: str = Field(
        description="The kind of stream the event belongs to, e.g. lead; the Kafka topic is "
        "<prefix>.<aggregate_type>.",
        examples=["lead"],
    )
    aggregate_id: Id = Field(description="The stream (aggregate) the event belongs to.")
    aggregate_version: int = Field(
        ge=1, description="The event's position in its aggregate's stream, from 1."
    )
    position: int = Field(
        ge=0, description="The event's position in LeadLedger's global event order."
    )
    occurred_at: Instant = Field(description="When LeadLedger accepted the command.")
    actor: str = Field(description="Who issued the command (user or process).")
    command_id: Id = Field(description="The command that recorded the event.")
    correlation_id: Id | None = Field(
        description="The request or process the command belongs to; null when none."
    )
    data: dict[str, Any] = Field(
        description="The event's payload: the schema of its type and schema_version."
    )
