"""Shapes of a lead for readers: from the read model row, from replayed state, as history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from aggregates import lead as lead_model
from aggregates.base import DomainEvent
from aggregates.funnels import FunnelCatalog
from event_store import RecordedEvent
from event_store.codec import event_fields

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


def detail_from_state(
    state: lead_model.Lead, funnels: FunnelCatalog | None = None
) -> dict[str, Any]:
    """The lead detail (the shape of ``schemas.leads.LeadDetail``) from replayed events
    (the effective assessment requirement needs the funnels; without them, the card's)."""
    required = (
        lead_model.assessment_required(state, funnels)
        if funnels is not None
        else state.assessment_required
    )
    return {
        "lead_id": state.lead_id,
        "funnel": state.funnel,
        "stage": state.stage,
        "status": state.status.value,
        "title": state.title,
        "company_name": state.company_name,
        "company_id": state.company_id,
        "repeat": state.repeat,
        "source": state.source,
        "manager": state.manager,
        "expert": state.expert,
        "need_maturity": state.need_maturity,
        "answer_due": state.answer_due,
        "description": state.description,
        "amount": state.amount,
        "currency": state.currency,
        "cost_components": [{"name": c.name, "amount": c.amount} for c in state.cost_components],
        "quality": state.quality,
        "qualification_reason": state.qualification_reason,
        "assessment": (
            None
            if state.assessment is None
            else {
                "expert": state.assessment.expert,
                "result": state.assessment.result,
                "hours": state.assessment.hours,
            }
        ),
        "assessment_hours_total": state.assessment_hours_total,
        "pause_reason": state.pause_reason,
        "paused_since": state.paused_since,
        "close_reason": state.close_reason,
        "closed_at": state.closed_at,
        "created_at": state.created_at,
        "created_by": state.created_by,
        "updated_at": state.updated_at,
        "stage_entered_at": state.stage_entered_at,
        "deal_id": state.deal_id,
        "contact": state.contact,
        "assessment_required": required,
        "assessment_required_on_card": state.assessment_required,
        "project_id": state.project_id,
        "version": state.version,
    }


def detail_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """The lead detail from a ``leads`` read-model row."""
    detail = {k: row[k] for k in DETAIL_ROW_FIELDS}
    detail["cost_components"] = orjson.loads(row["cost_components"] or "[]")
    detail["assessment"] = (
        None
        if row["assessment_expert"] is None
        else {
            "expert": row["assessment_expert"],
            "result": row["assessment_result"],
            "hours": row["assessment_hours"],
        }
    )
    return detail


DETAIL_ROW_FIELDS = (
    "lead_id",
    "funnel",
    "stage",
    "status",
    "title",
    "company_name",
    "company_id",
    "repeat",
    "source",
    "manager",
    "expert",
    "need_maturity",
    "answer_due",
    "description",
    "amount",
    "currency",
    "quality",
    "qualification_reason",
    "assessment_hours_total",
    "pause_reason",
    "paused_since",
    "close_reason",
    "closed_at",
    "created_at",
    "created_by",
    "updated_at",
    "stage_entered_at",
    "deal_id",
    "contact",
    "assessment_required",
    "assessment_required_on_card",
    "project_id",
    "version",
)


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
