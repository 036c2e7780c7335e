"""Lead read models: ``leads`` (current state) and ``lead_stage_visits``.

A page of events is folded in memory over the touched leads' current rows (loaded once
per page), then written back with two set-based statements per table: delete the old
rows, insert the new ones from an Arrow table. Timestamps, dates and amounts travel as
text and are cast by DuckDB on insert, so the fold never builds Python datetimes except
to close a visit that ends while paused.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from aggregates.funnels import FunnelCatalog
from projections.base import PageEvent

LEADS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("lead_id", "VARCHAR"),
    ("funnel", "VARCHAR"),
    ("stage", "VARCHAR"),
    ("stage_step", "INTEGER"),
    ("furthest_step", "INTEGER"),
    ("status", "VARCHAR"),
    ("repeat", "BOOLEAN"),
    ("title", "VARCHAR"),
    ("company_name", "VARCHAR"),
    ("company_id", "VARCHAR"),
    ("source", "VARCHAR"),
    ("manager", "VARCHAR"),
    ("expert", "VARCHAR"),
    ("need_maturity", "VARCHAR"),
    ("answer_due", "DATE"),
    ("description", "VARCHAR"),
    ("amount", "DECIMAL(18,2)"),
    ("cost_components", "VARCHAR"),
    ("quality", "BOOLEAN"),
    ("qualification_reason", "VARCHAR"),
    ("assessment_expert", "VARCHAR"),
    ("assessment_result", "VARCHAR"),
    ("assessment_hours", "DECIMAL(18,2)"),
    ("assessment_hours_total", "DECIMAL(18,2)"),
    ("assessments", "INTEGER"),
    ("pause_reason", "VARCHAR"),
    ("paused_since", "TIMESTAMPTZ"),
    ("close_reason", "VARCHAR"),
    ("closed_at", "TIMESTAMPTZ"),
    ("created_at", "TIMESTAMPTZ"),
    ("created_by", "VARCHAR"),
    ("updated_at", "TIMESTAMPTZ"),
    ("stage_entered_at", "TIMESTAMPTZ"),
    ("visits", "INTEGER"),
    ("version", "INTEGER"),
    ("last_position", "BIGINT"),
)

VISITS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("lead_id", "VARCHAR"),
    ("visit_no", "INTEGER"),
    ("funnel", "VARCHAR"),
    ("stage", "VARCHAR"),
    ("entered_at", "TIMESTAMPTZ"),
    ("left_at", "TIMESTAMPTZ"),
    ("paused_seconds", "DOUBLE"),
    ("paused_since", "TIMESTAMPTZ"),
)

_ARROW_TYPES = {
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
    "DOUBLE": pa.float64(),
}
_TEXT_CAST = frozenset({"DATE", "DECIMAL(18,2)", "TIMESTAMPTZ"})


def _ddl(table: str, columns: tuple[tuple[str, str], ...]) -> str:
    body = ", ".join(f"{name} {sql_type}" for name, sql_type in columns)
    return f"CREATE TABLE IF NOT EXISTS {table} ({body})"


def _arrow_schema(columns: tuple[tuple[str, str], ...]) -> pa.Schema:
    return pa.schema([(n, _ARROW_TYPES.get(t, pa.string())) for n, t in columns])


def _select_as_text(columns: tuple[tuple[str, str], ...], alias: str) -> str:
    """Select list that returns dates, amounts and timestamps as text, the fold's form."""
    return ", ".join(
        f"CAST({alias}.{n} AS VARCHAR) AS {n}" if t in _TEXT_CAST else f"{alias}.{n}"
        for n, t in columns
    )


def _insert_from(table: str, columns: tuple[tuple[str, str], ...], source: str) -> str:
    select = ", ".join(f"CAST({n} AS {t})" if t in _TEXT_CAST else n for n, t in columns)
    return f"INSERT INTO {table} SELECT {select} FROM {source}"


def _to_arrow(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> pa.Table:
    schema = _arrow_schema(columns)
    return pa.table({n: [r[n] for r in rows] for n, _ in columns}, schema=schema)


def _seconds_between(start: str, end: str) -> float:
    return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())


class LeadProjection:
    name = "leads"
    tables: tuple[str, ...] = ("leads", "lead_stage_visits")
    topics: frozenset[str] = frozenset(
        {
            "LeadCreated",
            "LeadCardUpdated",
            "LeadCostBreakdownSet",
            "LeadStageChanged",
            "LeadTransferred",
            "LeadPaused",
            "LeadResumed",
            "LeadAssessed",
            "LeadQualified",
            "LeadClosed",
        }
    )

    def __init__(self, funnels: FunnelCatalog) -> None:
        self.funnels = funnels
        self._steps: dict[tuple[str, str], int | None] = {}

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(_ddl("leads", LEADS_COLUMNS))
        cursor.execute(_ddl("lead_stage_visits", VISITS_COLUMNS))

    def _step(self, funnel: str, stage: str) -> int | None:
        key = (funnel, stage)
        if key not in self._steps:
            f = self.funnels.get(funnel)
            self._steps[key] = None if f is None else f.step_of(stage)
        return self._steps[key]

    # --- page ---------------------------------------------------------------------------

    def apply(self, cursor: duckdb.DuckDBPyConnection, events: list[PageEvent]) -> None:
        created: set[str] = set()
        existing: set[str] = set()
        for e in events:
            if e.topic == "LeadCreated":
                created.add(e.stream_id)
            elif e.stream_id not in created:
                existing.add(e.stream_id)
        rows, open_visits = self._load(cursor, existing)
        changed_visits: dict[tuple[str, int], dict[str, Any]] = {}
        for e in events:
            self._fold(rows, open_visits, changed_visits, e)
        self._write(cursor, rows, list(changed_visits.values()))

    def _load(
        self, cursor: duckdb.DuckDBPyConnection, lead_ids: set[str]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        rows: dict[str, dict[str, Any]] = {}
        visits: dict[str, dict[str, Any]] = {}
        if not lead_ids:
            return rows, visits
        ids = pa.table({"lead_id": pa.array(sorted(lead_ids), pa.string())})
        cursor.register("_touched_leads", ids)
        try:
            names = [n for n, _ in LEADS_COLUMNS]
            for values in cursor.execute(
                f"SELECT {_select_as_text(LEADS_COLUMNS, 'l')} FROM leads l "
                "JOIN _touched_leads t ON l.lead_id = t.lead_id"
            ).fetchall():
                row = dict(zip(names, values, strict=True))
                rows[row["lead_id"]] = row
            names = [n for n, _ in VISITS_COLUMNS]
            for values in cursor.execute(
                f"SELECT {_select_as_text(VISITS_COLUMNS, 'v')} FROM lead_stage_visits v "
                "JOIN leads l ON v.lead_id = l.lead_id AND v.visit_no = l.visits "
                "JOIN _touched_leads t ON l.lead_id = t.lead_id"
            ).fetchall():
                visit = dict(zip(names, values, strict=True))
                visits[visit["lead_id"]] = visit
        finally:
            cursor.unregister("_touched_leads")
        missing = lead_ids - rows.keys()
        if missing:
            raise RuntimeError(
                f"events for {len(missing)} lead(s) whose creation was never projected, "
                f"e.g. {next(iter(missing))}: rebuild the read models"
            )
        return rows, visits

    def _fold(
        self,
        rows: dict[str, dict[str, Any]],
        open_visits: dict[str, dict[str, Any]],
        changed: dict[tuple[str, int], dict[str, Any]],
        e: PageEvent,
    ) -> None:
        d = e.data
        at = d["at"]
        lead_id = e.stream_id
        if e.topic == "LeadCreated":
            step = self._step(d["funnel"], d["stage"])
            rows[lead_id] = {
                "lead_id": lead_id,
                "funnel": d["funnel"],
                "stage": d["stage"],
                "stage_step": step,
                "furthest_step": step,
                "status": "open",
                "repeat": d["repeat"],
                "title": d["title"],
                "company_name": d["company_name"],
                "company_id": d["company_id"],
                "source": d["source"],
                "manager": d["manager"],
                "expert": d["expert"],
                "need_maturity": d["need_maturity"],
                "answer_due": d["answer_due"],
                "description": d["description"],
                "amount": d["amount"],
                "cost_components": "[]",
                "quality": None,
                "qualification_reason": None,
                "assessment_expert": None,
                "assessment_result": None,
                "assessment_hours": None,
                "assessment_hours_total": "0.00",
                "assessments": 0,
                "pause_reason": None,
                "paused_since": None,
                "close_reason": None,
                "closed_at": None,
                "created_at": at,
                "created_by": d["actor"],
                "updated_at": at,
                "stage_entered_at": at,
                "visits": 1,
                "version": e.version,
                "last_position": e.position,
            }
            self._open_visit(rows[lead_id], open_visits, changed, at)
            return
        row = rows[lead_id]
        row["version"] = e.version
        row["updated_at"] = at
        row["last_position"] = e.position
        topic = e.topic
        if topic == "LeadCardUpdated":
            for field, change in d["changes"].items():
                row[field] = change["new"]
        elif topic == "LeadCostBreakdownSet":
            row["amount"] = d["total"]
            row["cost_components"] = orjson.dumps(d["components"]).decode()
        elif topic == "LeadStageChanged":
            self._close_visit(lead_id, open_visits, changed, at)
            row["stage"] = d["to_stage"]
            row["stage_step"] = step = self._step(row["funnel"], d["to_stage"])
            if step is not None and (row["furthest_step"] is None or step > row["furthest_step"]):
                row["furthest_step"] = step
            row["stage_entered_at"] = at
            row["visits"] += 1
            self._open_visit(row, open_visits, changed, at)
        elif topic == "LeadTransferred":
            self._close_visit(lead_id, open_visits, changed, at)
            row["funnel"] = d["to_funnel"]
            row["stage"] = d["to_stage"]
            row["stage_step"] = row["furthest_step"] = self._step(d["to_funnel"], d["to_stage"])
            row["stage_entered_at"] = at
            row["visits"] += 1
            self._open_visit(row, open_visits, changed, at)
        elif topic == "LeadPaused":
            row["status"] = "paused"
            row["pause_reason"] = d["reason"]
            row["paused_since"] = at
            visit = self._touch_visit(lead_id, open_visits, changed)
            visit["paused_since"] = at
        elif topic == "LeadResumed":
            row["status"] = "open"
            row["pause_reason"] = None
            row["paused_since"] = None
            visit = self._touch_visit(lead_id, open_visits, changed)
            visit["paused_seconds"] += d["paused_seconds"]
            visit["paused_since"] = None
        elif topic == "LeadAssessed":
            row["assessment_expert"] = d["expert"]
            row["assessment_result"] = d["result"]
            row["assessment_hours"] = d["hours"]
            row["assessment_hours_total"] = str(
                Decimal(row["assessment_hours_total"]) + Decimal(d["hours"])
            )
            row["assessments"] += 1
        elif topic == "LeadQualified":
            row["quality"] = d["quality"]
            row["qualification_reason"] = d["reason"]
            if not d["quality"]:
                row["status"] = "non_quality"
                row["closed_at"] = at
                self._close_visit(lead_id, open_visits, changed, at)
        elif topic == "LeadClosed":
            row["status"] = d["outcome"]
            row["close_reason"] = d["reason"]
            row["closed_at"] = at
            row["pause_reason"] = None
            row["paused_since"] = None
            self._close_visit(lead_id, open_visits, changed, at)

    @staticmethod
    def _open_visit(
        row: dict[str, Any],
        open_visits: dict[str, dict[str, Any]],
        changed: dict[tuple[str, int], dict[str, Any]],
        at: str,
    ) -> None:
        visit = {
            "lead_id": row["lead_id"],
            "visit_no": row["visits"],
            "funnel": row["funnel"],
            "stage": row["stage"],
            "entered_at": at,
            "left_at": None,
            "paused_seconds": 0.0,
            "paused_since": None,
        }
        open_visits[row["lead_id"]] = visit
        changed[(row["lead_id"], row["visits"])] = visit

    @staticmethod
    def _touch_visit(
        lead_id: str,
        open_visits: dict[str, dict[str, Any]],
        changed: dict[tuple[str, int], dict[str, Any]],
    ) -> dict[str, Any]:
        visit = open_visits[lead_id]
        changed[(lead_id, visit["visit_no"])] = visit
        return visit

    def _close_visit(
        self,
        lead_id: str,
        open_visits: dict[str, dict[str, Any]],
        changed: dict[tuple[str, int], dict[str, Any]],
        at: str,
    ) -> None:
        visit = self._touch_visit(lead_id, open_visits, changed)
        if visit["paused_since"] is not None:
            visit["paused_seconds"] += _seconds_between(visit["paused_since"], at)
            visit["paused_since"] = None
        visit["left_at"] = at

    @staticmethod
    def _write(
        cursor: duckdb.DuckDBPyConnection,
        rows: dict[str, dict[str, Any]],
        visits: list[dict[str, Any]],
    ) -> None:
        if rows:
            cursor.register("_lead_rows", _to_arrow(list(rows.values()), LEADS_COLUMNS))
            try:
                cursor.execute(
                    "DELETE FROM leads WHERE lead_id IN (SELECT lead_id FROM _lead_rows)"
                )
                cursor.execute(_insert_from("leads", LEADS_COLUMNS, "_lead_rows"))
            finally:
                cursor.unregister("_lead_rows")
        if visits:
            cursor.register("_visit_rows", _to_arrow(visits, VISITS_COLUMNS))
            try:
                cursor.execute(
                    "DELETE FROM lead_stage_visits v USING _visit_rows c "
                    "WHERE v.lead_id = c.lead_id AND v.visit_no = c.visit_no"
                )
                cursor.execute(_insert_from("lead_stage_visits", VISITS_COLUMNS, "_visit_rows"))
            finally:
                cursor.unregister("_visit_rows")
