"""Client assignments: which manager works which client in which direction (the list,
and one assignment's card from its replayed state)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import duckdb

from aggregates import limits
from queries.common import Filters, page

ASSIGNMENT_COLUMNS = (
    "assignment_id, company_id, direction, manager, status, requested_manager, requested_by, "
    "approver, decided_by, comment, month, updated_at, version, pending_because"
)


def list_client_assignments(
    cursor: duckdb.DuckDBPyConnection, filters: Filters, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Client assignments, the most recently changed first."""
    return page(
        cursor,
        "client_assignments",
        ASSIGNMENT_COLUMNS,
        filters,
        "updated_at DESC, assignment_id",
        limit,
        offset,
    )


def assignment_detail(state: limits.ClientAssignment) -> dict[str, Any]:
    return asdict(state)
