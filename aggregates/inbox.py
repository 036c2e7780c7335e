"""A user's alert inbox: which of the alerts addressed to them they have marked read.

An alert (a reminder, an escalation, a hand-off not taken, an approval asked for, an
overdue activity) is an event of the subject's own stream, addressed to one recipient;
its id is that event's position in the log. Reading it is the recipient's own fact, kept
on a stream of theirs (one per user): ``AlertsRead`` names the alerts newly marked read.
Only the recipient marks their alerts read; marking again what is read already records
nothing (the command is idempotent by its effect, not only by its key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID, uuid5

from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, NotPermitted

INBOX_NAMESPACE = UUID("9e4b1c27-3d5a-4f86-b0e2-6a7c8d9f1e35")
MAX_ALERTS_PER_MARK = 500


def inbox_stream_id(username: str) -> UUID:
    return uuid5(INBOX_NAMESPACE, f"alert-inbox:{username}")


@dataclass(frozen=True)
class Alert:
    """An alert as the handler found it in the read models: its id and recipient."""

    alert_id: int
    recipient: str


@dataclass(frozen=True)
class MarkAlertsRead:
    """Mark these alerts read for ``reader`` (``up_to``: the position asked for, when the
    alerts are "all up to" it)."""

    reader: str
    alerts: tuple[Alert, ...]
    up_to: int | None = None


@dataclass(frozen=True, kw_only=True)
class AlertsRead(DomainEvent):
    username: str
    """The reader: the recipient of every alert named."""
    alert_ids: tuple[int, ...]
    """The alerts newly marked read (ids = positions of the alert events), ascending."""
    up_to: int | None = None
    """When the reader marked "everything up to" a position: that position."""


INBOX_EVENT_TYPES: tuple[type[DomainEvent], ...] = (AlertsRead,)


@dataclass(frozen=True)
class Inbox:
    username: str
    read: frozenset[int]
    version: int


def evolve(inbox: Inbox | None, event: DomainEvent) -> Inbox:
    if not isinstance(event, AlertsRead):
        raise TypeError(f"an inbox has no event {event.type}")
    if inbox is None:
        return Inbox(event.username, frozenset(event.alert_ids), 1)
    return Inbox(inbox.username, inbox.read | frozenset(event.alert_ids), inbox.version + 1)


def fold(events: Sequence[DomainEvent]) -> Inbox | None:
    inbox: Inbox | None = None
    for event in events:
        inbox = evolve(inbox, event)
    return inbox


def alert_id(value: object, field: str = "alert_id") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidValue(field, f"{field} must be a positive integer (an alert's id)")
    return value


def mark_read(inbox: Inbox | None, command: MarkAlertsRead, meta: CommandMeta) -> AlertsRead | None:
    """The alerts newly read, or None when every one of them is read already.

    Every alert must be addressed to the reader: NotPermitted otherwise (HTTP 403)."""
    if len(command.alerts) > MAX_ALERTS_PER_MARK:
        raise InvalidValue(
            "alert_ids", f"at most {MAX_ALERTS_PER_MARK} alerts can be marked read at once"
        )
    for alert in command.alerts:
        if alert.recipient != command.reader:
            raise NotPermitted(
                "not_recipient",
                f"alert {alert.alert_id} is addressed to someone else: only its recipient "
                "marks it read",
            )
    read = inbox.read if inbox is not None else frozenset()
    new = sorted({a.alert_id for a in command.alerts} - read)
    if not new:
        return None
    return AlertsRead(
        **meta.event_fields(), username=command.reader, alert_ids=tuple(new), up_to=command.up_to
    )
