"""The event store: eventsourcing recorders over SQLite (embedded) or PostgreSQL."""

from event_store.chain import ChainReport, seal_existing, verify
from event_store.store import (
    ConcurrencyError,
    EventStore,
    NewEvent,
    RecordedEvent,
    open_event_store,
)

__all__ = [
    "ChainReport",
    "ConcurrencyError",
    "EventStore",
    "NewEvent",
    "RecordedEvent",
    "open_event_store",
    "seal_existing",
    "verify",
]
