"""Alerts: what was raised about which record, for whom and when."""

from __future__ import annotations

from typing import Any

import duckdb

from queries.common import Filters, page

ALERT_COLUMNS = (
    "alert_id, kind, subject_type, subject_id, recipient, detail, due, raised_at, raised_by"
)


def list_alerts(
    cursor: duckdb.DuckDBPyConnection, filters: Filters, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Alerts, newest first."""
    return page(
        cursor, "alerts", ALERT_COLUMNS, filters, "raised_at DESC, alert_id DESC", limit, offset
    )
