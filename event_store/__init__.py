"""The event store: eventsourcing recorders over SQLite (embedded) or PostgreSQL."""

from event_store.store import (
    ConcurrencyError,
    EventStore,
    NewEvent,
    RecordedEvent,
    open_event_store,
)

__all__ = ["ConcurrencyError", "EventStore", "NewEvent", "RecordedEvent", "open_event_store"]
