"""The audit timeline: every event of a stream (a lead, a deal, a hand-off request, a
project, ...) with who did it and the fields of its detail it changed, old → new; and a
lead's sensitive section's history (never its content)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aggregates import lead as lead_model
from aggregates.base import DomainEvent
from aggregates.funnels import FunnelCatalog
from event_store import RecordedEvent
from event_store.codec import event_fields
from queries.leads import detail_from_state

META_FIELDS = frozenset(
    {
        "actor",
        "at",
        "command_id",
        "correlation_id",
        "request_hash",
        "schema_version",
        "actor_role",
        "command",
        "cause",
    }
)
NOT_IN_CHANGES = frozenset({"version", "updated_at"})


def history(
    records: list[RecordedEvent], funnels: FunnelCatalog | None = None
) -> list[dict[str, Any]]:
    """Every event of a lead with the fields it changed, old → new."""
    return stream_history(
        records, lead_model.evolve, lambda state: detail_from_state(state, funnels)
    )


def stream_history(
    records: list[RecordedEvent],
    evolve: Callable[[Any, DomainEvent], Any],
    detail: Callable[[Any], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Every event of a stream with the fields of its detail it changed, old → new.

    Values stay Python objects (dates, amounts, ids); callers serialise once at the end.
    """
    entries: list[dict[str, Any]] = []
    state: Any = None
    before: dict[str, Any] = {}
    for record in records:
        event = record.event
        state = evolve(state, event)
        after = detail(state)
        changes = {
            key: {"old": before.get(key), "new": value}
            for key, value in after.items()
            if key not in NOT_IN_CHANGES and (old := before.get(key)) is not value and old != value
        }
        data = {k: v for k, v in event_fields(event).items() if k not in META_FIELDS}
        entries.append(_entry(record, changes, data))
        before = after
    return entries


def _entry(record: RecordedEvent, changes: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """One history entry: the event's place, who did it (role, command, cause), what."""
    event = record.event
    return {
        "position": record.position,
        "version": record.version,
        "type": event.type,
        "actor": event.actor,
        "actor_role": event.actor_role,
        "command": event.command,
        "caused_by": event.cause,
        "at": event.at,
        "command_id": event.command_id,
        "correlation_id": event.correlation_id,
        "changes": changes,
        "data": data,
    }


def sensitive_history(
    records: list[RecordedEvent], readable: Callable[[Any], bool]
) -> list[dict[str, Any]]:
    """History entries of a lead's sensitive section: who changed it and when, and
    whether it can still be read (``sealed``) or its subject was erased (``erased``) —
    never its content."""
    return [
        _entry(
            record,
            {},
            {
                "subject_id": getattr(record.event, "subject_id", None),
                "sensitive_information": "sealed" if readable(record.event) else "erased",
            },
        )
        for record in records
    ]
