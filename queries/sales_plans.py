"""Sales plans from the read models (``sales_plans``, ``sales_plan_changes``): the list
(filtered by month, manager and department, paginated), one plan's history, and the plans
of a set of managers for a month (the cabinets read them).

Every query runs on the viewer's cursor: a scoped viewer's views hold their own plans (a
manager's) or their department's (a head's) only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb

from queries.common import rows

PLAN_FIELDS = (
    "manager, month, amount, currency, deals, department, set_by, set_by_role, set_at, "
    "reason, version"
)


@dataclass(frozen=True)
class PlanFilters:
    month: str | None = None
    manager: str | None = None
    department: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("month", self.month), ("manager", self.manager)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.department is not None:
            # the person's department now; the plan's own when they left the directory
            clauses.append(
                "coalesce((SELECT u.department FROM users AS u WHERE u.username = "
                "sales_plans.manager), department) = ?"
            )
            params.append(self.department)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def list_plans(
    cursor: duckdb.DuckDBPyConnection, filters: PlanFilters, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Plans, the latest month first, then by manager."""
    where, params = filters.where()
    cursor.execute(f"SELECT count(*) FROM sales_plans{where}", params)
    row = cursor.fetchone()
    total = int(row[0]) if row else 0
    cursor.execute(
        f"SELECT {PLAN_FIELDS} FROM sales_plans{where} "
        "ORDER BY month DESC, manager LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return rows(cursor), total


def plan_history(
    cursor: duckdb.DuckDBPyConnection, manager: str, month: str
) -> list[dict[str, Any]]:
    """Every setting or change of one plan, the first first (empty: none the viewer sees)."""
    cursor.execute(
        "SELECT version, amount, currency, deals, previous_amount, previous_deals, set_by, "
        "set_by_role, set_at, reason, position FROM sales_plan_changes "
        "WHERE manager = ? AND month = ? ORDER BY version",
        [manager, month],
    )
    return rows(cursor)


@dataclass(frozen=True)
class Plan:
    amount: Decimal
    currency: str
    deals: int | None


def plans_of(
    cursor: duckdb.DuckDBPyConnection, managers: Iterable[str], month: str
) -> dict[str, Plan]:
    """The plans in force for ``month`` of these managers (those without one left out)."""
    wanted = sorted(set(managers))
    if not wanted:
        return {}
    cursor.execute(
        "SELECT manager, amount, currency, deals FROM sales_plans "
        "WHERE month = ? AND manager IN (SELECT unnest(?))",
        [month, wanted],
    )
    return {m: Plan(a, c, d) for m, a, c, d in cursor.fetchall()}
