"""The user directory (the ``users`` read model)."""

from __future__ import annotations

from typing import Any

import duckdb

from queries.common import count, rows

USER_COLUMNS = (
    "username, name, role, department, region, city, email, active, version, created_at, "
    "updated_at, coalesce(managers, []) AS managers"
)


def list_users(
    cursor: duckdb.DuckDBPyConnection,
    role: str | None,
    department: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """The directory, by username, filtered by role and department (None: not filtered)."""
    where = "WHERE (? IS NULL OR role = ?) AND (? IS NULL OR department = ?)"
    args = [role, role, department, department]
    total = count(cursor, f"SELECT count(*) FROM users {where}", args)
    cursor.execute(
        f"SELECT {USER_COLUMNS} FROM users {where} ORDER BY username LIMIT ? OFFSET ?",
        [*args, limit, offset],
    )
    return rows(cursor), total
