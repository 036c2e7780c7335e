"""Shapes of deals, hand-off requests and client assignments for readers, from their
replayed state (the event store), and their histories."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any
from uuid import UUID

from aggregates import deal, handoff, limits
from aggregates.rules import Rules
from commands.context import StreamNotFound
from commands.deals import load_deal_records
from commands.handoffs import load_handoff_records
from event_store import EventStore, RecordedEvent
from read_api.views import stream_history


def deal_as_of(store: EventStore, deal_id: UUID, moment: datetime | None) -> deal.Deal:
    """The deal now, or as it was at ``moment``, replayed from the event store (404 when
    it did not exist then)."""
    state = deal.fold([r.event for r in load_deal_records(store, deal_id, as_of=moment)])
    if state is None:
        when = "" if moment is None else f" at {moment:%Y-%m-%dT%H:%M:%S%z}"
        raise StreamNotFound(f"deal {deal_id} not found{when}")
    return state


def handoff_as_of(
    store: EventStore, rules: Rules, request_id: UUID, moment: datetime | None
) -> handoff.HandoffRequest:
    """The hand-off request now, or as it was at ``moment`` (from the event store)."""
    records = load_handoff_records(store, request_id, as_of=moment)
    state = handoff.fold([r.event for r in records], rules)
    if state is None:
        raise StreamNotFound(f"hand-off request {request_id} not found")
    return state


def deal_detail(state: deal.Deal) -> dict[str, Any]:
    detail = asdict(state)
    detail["status"] = state.status.value
    return detail


def handoff_detail(state: handoff.HandoffRequest, rules: Rules) -> dict[str, Any]:
    department = rules.require_department(state.department)
    detail = asdict(state)
    detail["status"] = state.status(department)
    detail["price"] = state.price
    if state.logistics is not None:
        detail["logistics"]["own_equipment"] = state.logistics.contractor_id is None
    return detail


def assignment_detail(state: limits.ClientAssignment) -> dict[str, Any]:
    return asdict(state)


def deal_history(records: list[RecordedEvent]) -> list[dict[str, Any]]:
    return stream_history(records, deal.evolve, deal_detail)


def handoff_history(records: list[RecordedEvent], rules: Rules) -> list[dict[str, Any]]:
    return stream_history(
        records,
        lambda state, event: handoff.evolve(state, event, rules),
        lambda state: handoff_detail(state, rules),
    )
