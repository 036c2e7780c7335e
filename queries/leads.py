"""Leads: the list and the card (from the read model or from replayed events), the funnel
report, the paused leads and the leads per manager, in set-based SQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb
import orjson

from aggregates import lead as lead_model
from aggregates.funnels import Funnel, FunnelCatalog
from queries.common import rows, streamed_rows

SUMMARY_COLUMNS = (
    "lead_id, funnel, stage, status, title, company_name, repeat, manager, amount, "
    "created_at, updated_at, pause_reason, paused_since, version"
)


@dataclass(frozen=True)
class LeadFilters:
    funnel: str | None = None
    stage: str | None = None
    status: str | None = None
    manager: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column in ("funnel", "stage", "status", "manager"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.created_from is not None:
            clauses.append("created_at >= ?")
            params.append(self.created_from)
        if self.created_to is not None:
            clauses.append("created_at <= ?")
            params.append(self.created_to)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def list_leads(
    cursor: duckdb.DuckDBPyConnection, filters: LeadFilters, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where, params = filters.where()
    total_row = cursor.execute(f"SELECT count(*) FROM leads{where}", params).fetchone()
    total = int(total_row[0]) if total_row else 0
    cursor.execute(
        f"SELECT {SUMMARY_COLUMNS} FROM leads{where} "
        "ORDER BY created_at DESC, lead_id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return rows(cursor), total


def get_lead(cursor: duckdb.DuckDBPyConnection, lead_id: str) -> dict[str, Any] | None:
    cursor.execute("SELECT * FROM leads WHERE lead_id = ?", [lead_id])
    found = rows(cursor)
    return found[0] if found else None


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


def funnel_report(
    cursor: duckdb.DuckDBPyConnection,
    funnel: Funnel,
    created_from: datetime | None,
    created_to: datetime | None,
) -> dict[str, Any]:
    """Per stage: leads now there and their amount, how many reached each step, conversion.

    Counts cover the leads now in the funnel (a transferred lead counts in its current
    funnel) created in the period. Stage rows leave non-quality leads out (they left the
    funnel); totals include them; ``reached`` counts every lead whose furthest step in
    this funnel is at or beyond the stage's step. ``paused`` figures (per stage and in
    total) count the leads paused now; the counts and totals still include them.
    """
    filters = LeadFilters(funnel=funnel.id, created_from=created_from, created_to=created_to)
    where, params = filters.where()
    cursor.execute(
        "SELECT stage, furthest_step, status = 'non_quality' AS non_quality, repeat, "
        "status = 'paused' AS paused, "
        f"count(*) AS n, coalesce(sum(amount), 0) AS amount FROM leads{where} "
        "GROUP BY ALL",
        params,
    )
    zero = Decimal("0.00")
    per_stage: dict[str, list[Any]] = {s.id: [0, zero] for s in funnel.stages}
    paused_per_stage: dict[str, list[Any]] = {s.id: [0, zero] for s in funnel.stages}
    paused = [0, zero]
    reached_at_step = [0] * funnel.steps
    totals = [0, zero]
    non_quality = [0, zero]
    new = [0, zero]
    repeat = [0, zero]
    for stage, furthest, is_non_quality, is_repeat, is_paused, n, amount in cursor.fetchall():
        if is_paused:
            paused[0] += n
            paused[1] += amount
            if stage in paused_per_stage:
                paused_per_stage[stage][0] += n
                paused_per_stage[stage][1] += amount
        totals[0] += n
        totals[1] += amount
        bucket = repeat if is_repeat else new
        bucket[0] += n
        bucket[1] += amount
        if is_non_quality:
            non_quality[0] += n
            non_quality[1] += amount
        elif stage in per_stage:
            per_stage[stage][0] += n
            per_stage[stage][1] += amount
        if furthest is not None and 0 <= furthest < funnel.steps:
            reached_at_step[furthest] += n
    # reached(step) = leads whose furthest step is >= step
    reached = [0] * funnel.steps
    running = 0
    for step in range(funnel.steps - 1, -1, -1):
        running += reached_at_step[step]
        reached[step] = running
    stages = []
    for stage in funnel.stages:
        here = reached[stage.step]
        following = reached[stage.step + 1] if stage.step + 1 < funnel.steps else None
        stages.append(
            {
                "stage": stage.id,
                "name": stage.name,
                "step": stage.step,
                "count": per_stage[stage.id][0],
                "amount": per_stage[stage.id][1],
                "paused": {
                    "count": paused_per_stage[stage.id][0],
                    "amount": paused_per_stage[stage.id][1],
                },
                "reached": here,
                "conversion_to_next": (
                    None if following is None or here == 0 else round(following / here, 4)
                ),
            }
        )

    def pair(values: list[Any]) -> dict[str, Any]:
        return {"count": values[0], "amount": values[1]}

    return {
        "funnel": funnel.id,
        "created_from": created_from,
        "created_to": created_to,
        "stages": stages,
        "totals": pair(totals),
        "non_quality": pair(non_quality),
        "new": pair(new),
        "repeat": pair(repeat),
        "paused": pair(paused),
    }


def paused_leads_report(
    cursor: duckdb.DuckDBPyConnection,
    filters: LeadFilters,
    now: datetime,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """Why leads are not being worked: the leads paused now (in the viewer's scope),
    per pause reason their count, amount, average and longest paused time, and the
    paused leads themselves, longest paused first."""
    where, params = replace(filters, status="paused").where()
    seconds = "greatest(epoch(CAST(? AS TIMESTAMPTZ)) - epoch(paused_since), 0)"
    cursor.execute(
        f"SELECT pause_reason AS reason, count(*) AS count, "
        f"coalesce(sum(amount), 0) AS amount, avg({seconds}) AS average_paused_seconds, "
        f"max({seconds}) AS longest_paused_seconds FROM leads{where} "
        "GROUP BY pause_reason ORDER BY count DESC, reason",
        [now, now, *params],
    )
    reasons = [
        {
            **row,
            "reason": row["reason"] or "",
            "average_paused_seconds": float(row["average_paused_seconds"] or 0),
            "longest_paused_seconds": float(row["longest_paused_seconds"] or 0),
        }
        for row in rows(cursor)
    ]
    cursor.execute(
        f"SELECT {SUMMARY_COLUMNS}, {seconds} AS paused_seconds FROM leads{where} "
        "ORDER BY paused_since, lead_id LIMIT ? OFFSET ?",
        [now, *params, limit, offset],
    )
    items = [{**row, "paused_seconds": float(row["paused_seconds"])} for row in rows(cursor)]
    return {
        "funnel": filters.funnel,
        "manager": filters.manager,
        "created_from": filters.created_from,
        "created_to": filters.created_to,
        "reasons": reasons,
        "totals": {
            "count": sum(r["count"] for r in reasons),
            "amount": sum((r["amount"] for r in reasons), Decimal("0.00")),
        },
        "items": items,
        "total": sum(r["count"] for r in reasons),
        "limit": limit,
        "offset": offset,
    }


def leads_per_manager(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Per manager of the viewer's leads: open, paused, won and lost leads, the open and
    paused leads' amount and the won leads' amount (a head's table per person)."""
    cursor.execute(
        "SELECT manager,"
        " count(*) FILTER (WHERE status = 'open') AS open,"
        " count(*) FILTER (WHERE status = 'paused') AS paused,"
        " count(*) FILTER (WHERE status = 'won') AS won,"
        " count(*) FILTER (WHERE status IN ('lost', 'non_quality')) AS lost,"
        " coalesce(sum(amount) FILTER (WHERE status IN ('open', 'paused')), 0) AS open_amount,"
        " coalesce(sum(amount) FILTER (WHERE status = 'won'), 0) AS won_amount"
        " FROM leads GROUP BY manager ORDER BY manager"
    )
    return rows(cursor)


LEAD_EXPORT_COLUMNS = (
    "lead_id",
    "title",
    "company_name",
    "company_id",
    "source",
    "manager",
    "funnel",
    "stage",
    "status",
    "created_at",
    "stage_entered_at",
    "closed_at",
    "paused_since",
    "amount",
    "currency",
    "expert",
    "need_maturity",
    "answer_due",
    "description",
    "contact",
    "assessment_required_on_card",
    "quality",
    "qualification_reason",
    "close_reason",
    "pause_reason",
)


def leads_export(
    cursor: duckdb.DuckDBPyConnection, filters: LeadFilters
) -> Iterator[dict[str, Any]]:
    """Every lead the viewer sees (those the filters match), oldest first, as the leads
    import reads them: the id as ``external_id`` (so the file imports back as these very
    leads), the card, the stage and status with their instants, and the one ``reason``
    the status has (why non-quality, won or lost, or paused)."""
    where, params = filters.where()
    cursor.execute(
        f"SELECT {', '.join(LEAD_EXPORT_COLUMNS)} FROM leads{where} ORDER BY created_at, lead_id",
        params,
    )
    for row in streamed_rows(cursor):
        yield lead_import_row(row)


def lead_import_row(row: dict[str, Any]) -> dict[str, Any]:
    """A ``leads`` read-model row as a row of the leads import."""
    status = row["status"]
    reasons = {
        "non_quality": row["qualification_reason"],
        "won": row["close_reason"],
        "lost": row["close_reason"],
        "paused": row["pause_reason"],
    }
    return {
        "external_id": row["lead_id"],
        "title": row["title"],
        "company_name": row["company_name"],
        "company_id": row["company_id"],
        "source": row["source"],
        "manager": row["manager"],
        "funnel": row["funnel"],
        "stage": row["stage"],
        "status": status,
        "created_at": row["created_at"],
        "stage_entered_at": row["stage_entered_at"],
        "closed_at": row["closed_at"] if status in ("won", "lost", "non_quality") else None,
        "paused_since": row["paused_since"] if status == "paused" else None,
        "amount": row["amount"],
        "currency": row["currency"],
        "expert": row["expert"],
        "need_maturity": row["need_maturity"],
        "answer_due": row["answer_due"],
        "description": row["description"],
        "contact": row["contact"],
        "assessment_required": row["assessment_required_on_card"],
        # a non-quality lead says so by its status; the import refuses both at once
        "quality": row["quality"] is True,
        "reason": reasons.get(status),
    }
