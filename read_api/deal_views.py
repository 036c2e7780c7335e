"""Shapes of deals, hand-off requests and client assignments for readers, from their
replayed state (the event store), and their histories."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aggregates import deal, handoff, limits
from aggregates.rules import Rules
from event_store import RecordedEvent
from read_api.views import stream_history


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
