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
    actor_role: str | None = None
    command: str | None = None
    cause: str | None = None

    def event_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "actor": self.actor,
            "at": self.at,
            "command_id": self.command_id,
            "correlation_id": self.correlation_id,
            "request_hash": self.request_hash,
        }
        # recorded only when known, so events of earlier versions read the same
        if self.actor_role is not None:
            fields["actor_role"] = self.actor_role
        if self.command is not None:
            fields["command"] = self.command
        if self.cause is not None:
            fields["cause"] = self.cause
        return fields


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
    actor_role: str | None = None
    """The actor's role when the command was issued (``process`` for a process manager)."""
    command: str | None = None
    """The command that recorded the event (the API operation, or the process's step)."""
    cause: str | None = None
    """What caused it when a process manager issued it (the event or deadline it
    reacted to)."""

    @property
    def type(self) -> str:
        return type(self).__name__
