"""What every command and event carries besides its own facts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID


@dataclass(frozen=True, kw_only=True)
class CommandMeta:
    """Who asked, when the server received it, and the command's identity."""

    actor: str
    at: datetime
    command_id: UUID
    correlation_id: UUID | None = None
    request_hash: str | None = None
    """Fingerprint of the request when it came with an Idempotency-Key."""

    def event_fields(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "at": self.at,
            "command_id": self.command_id,
            "correlation_id": self.correlation_id,
            "request_hash": self.request_hash,
        }


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    """A fact. Subclasses are frozen dataclasses with past-tense names."""

    schema_version: ClassVar[int] = 1
    sensitive_fields: ClassVar[frozenset[str]] = frozenset()
    """Fields that must never leave LeadLedger: they are left out of the published event
    (Kafka, the HTTP event feed) whatever its public schema says."""

    actor: str
    at: datetime
    command_id: UUID
    correlation_id: UUID | None = None
    request_hash: str | None = None

    @property
    def type(self) -> str:
        return type(self).__name__
