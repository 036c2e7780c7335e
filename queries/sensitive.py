"""Who read a lead's sensitive section, and when (the ``sensitive_reads`` read model).
Never the section's content: it is not in any read model."""

from __future__ import annotations

from typing import Any

import duckdb

from queries.common import count


def list_sensitive_reads(
    cursor: duckdb.DuckDBPyConnection, lead_id: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """The reads of one lead's sensitive section, newest first."""
    total = count(cursor, "SELECT count(*) FROM sensitive_reads WHERE lead_id = ?", [lead_id])
    found = cursor.execute(
        "SELECT position, actor, actor_role, outcome, read_at FROM sensitive_reads "
        "WHERE lead_id = ? ORDER BY position DESC LIMIT ? OFFSET ?",
        [lead_id, limit, offset],
    ).fetchall()
    items = [
        {"position": r[0], "actor": r[1], "actor_role": r[2], "outcome": r[3], "at": r[4]}
        for r in found
    ]
    return items, total
