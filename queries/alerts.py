"""Alerts (what was raised about which record, for whom and when) and their read marks:
the alert list with ``read`` per row, a recipient's inbox
(unread first), the unread count shown in every page's header, and the alerts a mark
names (for the inbox command to check their recipient).

An alert is read when its recipient marked it (``alert_reads``); only the recipient can,
so "read" is the alert's own state, the same for every viewer.
"""

from __future__ import annotations

from typing import Any

import duckdb

from aggregates.inbox import MAX_ALERTS_PER_MARK, Alert
from commands.context import StreamNotFound
from queries.common import Filters, rows

ALERT_COLUMNS = (
    "alert_id, kind, subject_type, subject_id, recipient, detail, due, raised_at, raised_by"
)

IS_READ = "EXISTS (SELECT 1 FROM alert_reads r WHERE r.alert_id = alerts.alert_id)"
COLUMNS = f"{ALERT_COLUMNS}, {IS_READ} AS read"

SUBJECT_PAGES = {
    "lead": "/leads/{id}",
    "deal": "/deals/{id}",
    "handoff": "/handoffs/{id}",
    "project": "/projects/{id}",
}
"""The workspace page of each kind of alert subject (relative to the workspace's root);
a subject without a page of its own (a client assignment) is shown without a link."""


def subject_path(subject_type: str, subject_id: str) -> str | None:
    """The subject's workspace page, relative to the workspace's root (None: none)."""
    pattern = SUBJECT_PAGES.get(subject_type)
    return None if pattern is None else pattern.format(id=subject_id)


def _with(where: str, clause: str) -> str:
    return f"{where} AND {clause}" if where else f" WHERE {clause}"


def list_alerts(
    cursor: duckdb.DuckDBPyConnection,
    filters: Filters,
    limit: int,
    offset: int,
    *,
    unread_only: bool = False,
) -> tuple[list[dict[str, Any]], int, int]:
    """Alerts, newest first, each with ``read``; the total the filters match and how
    many of those are unread (``unread_only``: the unread ones alone)."""
    where, params = filters.where()
    row = cursor.execute(
        f"SELECT count(*), count(*) FILTER (WHERE NOT {IS_READ}) FROM alerts{where}", params
    ).fetchone()
    total, unread = (int(row[0]), int(row[1])) if row else (0, 0)
    if unread_only:
        where = _with(where, f"NOT {IS_READ}")
        total = unread
    cursor.execute(
        f"SELECT {COLUMNS} FROM alerts{where} ORDER BY raised_at DESC, alert_id DESC "
        "LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return rows(cursor), total, unread


MINE = (
    "alerts LEFT JOIN (SELECT alert_id, true AS read FROM alert_reads WHERE reader = ?) "
    "USING (alert_id) WHERE recipient = ?"
)
"""The recipient's alerts with their read marks (only theirs are joined: cheap)."""


def inbox(
    cursor: duckdb.DuckDBPyConnection, recipient: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int, int]:
    """The recipient's alerts, unread first, newest first within each; their total and
    how many are unread."""
    row = cursor.execute(
        "SELECT raised, raised - read FROM alert_counts WHERE recipient = ?", [recipient]
    ).fetchone()
    total, unread = (int(row[0]), int(row[1])) if row else (0, 0)
    cursor.execute(
        f"SELECT {ALERT_COLUMNS}, coalesce(read, false) AS read FROM {MINE} "
        "ORDER BY read NULLS FIRST, raised_at DESC, alert_id DESC LIMIT ? OFFSET ?",
        [recipient, recipient, limit, offset],
    )
    items = rows(cursor)
    for item in items:
        item["subject_path"] = subject_path(item["subject_type"], item["subject_id"])
    return items, total, unread


def unread_count(cursor: duckdb.DuckDBPyConnection, recipient: str) -> int:
    """How many of the recipient's alerts are unread (the header's counter: one row)."""
    row = cursor.execute(
        "SELECT raised - read FROM alert_counts WHERE recipient = ?", [recipient]
    ).fetchone()
    return int(row[0]) if row else 0


def alert_recipients(cursor: duckdb.DuckDBPyConnection, alert_ids: list[int]) -> dict[int, str]:
    """The recipient of each of these alerts that exists."""
    if not alert_ids:
        return {}
    found = cursor.execute(
        "SELECT alert_id, recipient FROM alerts WHERE alert_id IN (SELECT unnest(?))",
        [alert_ids],
    ).fetchall()
    return {int(a): str(r) for a, r in found}


def unread_up_to(
    cursor: duckdb.DuckDBPyConnection, recipient: str, up_to: int | None, limit: int
) -> list[int]:
    """The recipient's unread alerts with ids up to ``up_to`` (None: all), oldest first,
    at most ``limit`` of them."""
    cursor.execute(
        f"SELECT alert_id FROM {MINE} AND read IS NULL AND (? IS NULL OR alert_id <= ?) "
        "ORDER BY alert_id LIMIT ?",
        [recipient, recipient, up_to, up_to, limit],
    )
    return [int(r[0]) for r in cursor.fetchall()]


def alerts_to_mark(
    own: duckdb.DuckDBPyConnection,
    scoped: duckdb.DuckDBPyConnection,
    reader: str,
    alert_ids: list[int] | None,
    up_to: int | None,
) -> tuple[Alert, ...]:
    """The alerts a mark names, with their recipients (the inbox's rule refuses those of
    others): ``alert_ids``, or else the reader's unread ones up to ``up_to`` (None: all,
    at most :data:`MAX_ALERTS_PER_MARK`). ``own`` reads every alert, ``scoped`` as the
    reader may see them: an alert that is not there, or is someone else's outside the
    reader's scope, is StreamNotFound (404)."""
    if alert_ids is None:
        alert_ids = unread_up_to(own, reader, up_to, MAX_ALERTS_PER_MARK)
    recipients = alert_recipients(own, alert_ids)
    others = [a for a in alert_ids if recipients.get(a, reader) != reader]
    seen = alert_recipients(scoped, others)
    for alert_id in alert_ids:
        if alert_id not in recipients or (recipients[alert_id] != reader and alert_id not in seen):
            raise StreamNotFound(f"alert {alert_id} not found")
    return tuple(Alert(a, recipients[a]) for a in alert_ids)
