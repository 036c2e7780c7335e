"""Hand-off requests: the list (a department's queue), the hand-off report, the
departments' load, and a request's card and history replayed from the event store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import duckdb

from aggregates import handoff
from aggregates.rules import Department, Rules
from commands.context import StreamNotFound
from commands.handoffs import load_handoff_records
from event_store import EventStore, RecordedEvent
from queries.common import Filters, page, rows
from queries.history import stream_history

UNASSIGNED = "unassigned"
OPEN_REQUEST = "status NOT IN ('done', 'rejected', 'cancelled')"

HANDOFF_COLUMNS = (
    "request_id, deal_id, department, stage, status, round, assignee, created_at, taken_at, "
    "ready_at, take_seconds, estimate_seconds, price, service, contractor_id, contractor_name, "
    "own_equipment, lead_time_days, plan_hours, rejection_reason, reminded, escalated, "
    "updated_at, version"
)


def list_handoffs(
    cursor: duckdb.DuckDBPyConnection, filters: Filters, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Hand-off requests, newest first."""
    return page(
        cursor, "handoffs", HANDOFF_COLUMNS, filters, "created_at DESC, request_id", limit, offset
    )


def handoff_report(
    cursor: duckdb.DuckDBPyConnection, filters: Filters, limit: int, offset: int
) -> dict[str, Any]:
    """Per request: department, deal, who took it, the time to take it and to estimate it
    (seconds from the request), price and status; with a summary of all it matches."""
    where, params = filters.where("h")
    summary_row = cursor.execute(
        "SELECT count(*), count(h.taken_at), count(h.ready_at), avg(h.take_seconds), "
        f"avg(h.estimate_seconds), coalesce(sum(h.price), 0) FROM handoffs h{where}",
        params,
    ).fetchone()
    assert summary_row is not None
    total, taken, estimated, take_avg, estimate_avg, price_total = summary_row
    cursor.execute(
        "SELECT h.request_id, h.department, h.deal_id, d.title AS deal_title, "
        "d.company_name, h.assignee, h.created_at, h.taken_at, h.take_seconds, h.ready_at, "
        "h.estimate_seconds, h.price, h.status "
        f"FROM handoffs h LEFT JOIN deals d ON d.deal_id = h.deal_id{where} "
        "ORDER BY h.created_at DESC, h.request_id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return {
        "items": rows(cursor),
        "total": int(total),
        "limit": limit,
        "offset": offset,
        "summary": {
            "requests": int(total),
            "taken": int(taken),
            "estimated": int(estimated),
            "average_take_seconds": take_avg,
            "average_estimate_seconds": estimate_avg,
            "total_price": Decimal(price_total),
        },
    }


def department_load(
    cursor: duckdb.DuckDBPyConnection, departments: Iterable[Department]
) -> list[dict[str, Any]]:
    """Open requests (not done, rejected or cancelled) per department and person; every configured
    department is listed, with none open too."""
    cursor.execute(
        "SELECT department, assignee, status, count(*) AS n FROM handoffs "
        f"WHERE {OPEN_REQUEST} GROUP BY ALL"
    )
    counted = cursor.fetchall()
    load: dict[str, dict[str, Any]] = {
        d.id: {"department": d.id, "name": d.name, "people": {}, "by_status": {}}
        for d in departments
    }
    for department, assignee, status, n in counted:
        entry = load.setdefault(
            department,
            {"department": department, "name": department, "people": {}, "by_status": {}},
        )
        person = UNASSIGNED if assignee is None else assignee
        entry["people"][person] = entry["people"].get(person, 0) + n
        entry["by_status"][status] = entry["by_status"].get(status, 0) + n
    report = []
    for entry in load.values():
        people = sorted(entry["people"].items(), key=lambda p: (-p[1], p[0]))
        report.append(
            {
                "department": entry["department"],
                "name": entry["name"],
                "open_requests": sum(entry["people"].values()),
                "by_status": {
                    status: entry["by_status"].get(status, 0)
                    for status in ("open", "in_work", "ready")
                },
                "people": [{"assignee": who, "open_requests": n} for who, n in people],
            }
        )
    return report


def handoff_as_of(
    store: EventStore, rules: Rules, request_id: UUID, moment: datetime | None
) -> handoff.HandoffRequest:
    """The hand-off request now, or as it was at ``moment`` (from the event store)."""
    records = load_handoff_records(store, request_id, as_of=moment)
    state = handoff.fold([r.event for r in records], rules)
    if state is None:
        raise StreamNotFound(f"hand-off request {request_id} not found")
    return state


def handoff_detail(state: handoff.HandoffRequest, rules: Rules) -> dict[str, Any]:
    department = rules.require_department(state.department)
    detail = asdict(state)
    detail["status"] = state.status(department)
    detail["price"] = state.price
    if state.logistics is not None:
        detail["logistics"]["own_equipment"] = state.logistics.contractor_id is None
    return detail


def handoff_history(records: list[RecordedEvent], rules: Rules) -> list[dict[str, Any]]:
    return stream_history(
        records,
        lambda state, event: handoff.evolve(state, event, rules),
        lambda state: handoff_detail(state, rules),
    )
