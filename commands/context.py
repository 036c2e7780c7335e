"""What the handlers need to know about the request that carried a command."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4, uuid5

import orjson

from aggregates.base import CommandMeta

IDEMPOTENCY_NAMESPACE = UUID("0b7f2a51-5c1e-4c36-9a3e-7de3c5b7a1f4")
MAX_IDEMPOTENCY_KEY = 200


class CommandFailed(Exception):
    """Base of the handler-level refusals (not found, conflicts, reused keys)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StreamNotFound(CommandFailed):
    pass


class VersionConflict(CommandFailed):
    def __init__(self, message: str, current_version: int) -> None:
        super().__init__(message)
        self.current_version = current_version


class IdempotencyKeyReused(CommandFailed):
    """The key was first used for a different request."""


@dataclass(frozen=True)
class CommandResult:
    stream_id: UUID
    version: int
    position: int
    replayed: bool = False
    """True when an Idempotency-Key matched an earlier command and nothing was appended."""


@dataclass(frozen=True)
class CommandContext:
    actor: str
    at: datetime
    command_id: UUID
    correlation_id: UUID | None = None
    expected_version: int | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    actor_role: str | None = None
    command: str | None = None
    cause: str | None = None
    guard: Callable[[Any], None] | None = field(default=None, compare=False, repr=False)
    """Checks that the actor may act on the aggregate the handler loaded (raises
    NotPermitted); None for process managers, which act on behalf of LeadLedger."""

    @property
    def meta(self) -> CommandMeta:
        return CommandMeta(
            actor=self.actor,
            at=self.at,
            command_id=self.command_id,
            correlation_id=self.correlation_id,
            request_hash=self.request_hash,
            actor_role=self.actor_role,
            command=self.command,
            cause=self.cause,
        )

    def check(self, state: Any) -> None:
        """Let the guard see the aggregate's state before anything is decided."""
        if self.guard is not None and state is not None:
            self.guard(state)

    @classmethod
    def new(
        cls,
        *,
        actor: str,
        clock: Callable[[], datetime],
        scope: str = "",
        request: Any = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
        correlation_id: UUID | None = None,
        actor_role: str | None = None,
        command: str | None = None,
        guard: Callable[[Any], None] | None = None,
    ) -> CommandContext:
        """A context with a server timestamp and a command id.

        With an Idempotency-Key the command id is derived from (actor, scope, key), so a
        repeat of the request is recognised as the same command. ``scope`` names what the
        command targets (``"lead:<id>"`` or ``"create-lead"``): a key is the actor's own
        and is scoped to its target. ``request`` is fingerprinted so that the key cannot
        be reused for a different request to the same target.
        """
        if idempotency_key is not None:
            command_id = uuid5(IDEMPOTENCY_NAMESPACE, f"{actor}\n{scope}\n{idempotency_key}")
            request_hash = hashlib.sha256(
                orjson.dumps(request, option=orjson.OPT_SORT_KEYS, default=str)
            ).hexdigest()[:32]
        else:
            command_id = uuid4()
            request_hash = None
        return cls(
            actor=actor,
            at=clock(),
            command_id=command_id,
            correlation_id=correlation_id,
            expected_version=expected_version,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            actor_role=actor_role,
            command=command,
            guard=guard,
        )
