"""Shared directories: the entries of a kind (search, paging), an entry's card with the
leads and projects it is linked to, and the signatories report.

Entries are shared (everyone who reads leads sees them); the leads and projects of a
card are those the viewer sees (their scoped views), the rest only counted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
import orjson

from queries.common import EXPORT_BATCH, Filters, page, rows

ENTRY_COLUMNS = "entry_id, kind, title, fields, links, created_at, created_by, updated_at, version"


def _decoded(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for item in items:
        item["fields"] = orjson.loads(item["fields"]) if item["fields"] else {}
    return items


def list_entries(
    cursor: duckdb.DuckDBPyConnection, kind: str, q: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """The kind's entries by title (those with ``q`` in any field)."""
    term = (q or "").strip().lower()
    extra = [("contains(search, ?)", [term])] if term else []
    items, total = page(
        cursor,
        "directory_entries",
        ENTRY_COLUMNS,
        Filters(equal={"kind": kind}, extra=extra),
        "lower(title), entry_id",
        limit,
        offset,
    )
    return _decoded(items), total


def entries_export(
    cursor: duckdb.DuckDBPyConnection, kind: str, field_ids: Sequence[str], q: str | None
) -> Iterator[dict[str, Any]]:
    """The kind's entries (those with ``q`` in any field) by title then id, as the
    directory's import reads them: the id and every field."""
    term = (q or "").strip().lower()
    where = " AND contains(search, ?)" if term else ""
    cursor.execute(
        f"SELECT entry_id, fields FROM directory_entries WHERE kind = ?{where} "
        "ORDER BY lower(title), entry_id",
        [kind, term] if term else [kind],
    )
    while batch := cursor.fetchmany(EXPORT_BATCH):
        for entry_id, fields in batch:
            values = orjson.loads(fields) if fields else {}
            yield {"entry_id": entry_id, **{f: values.get(f) for f in field_ids}}


def entry_card(
    cursor: duckdb.DuckDBPyConnection, kind: str, entry_id: str
) -> dict[str, Any] | None:
    """The entry, its links to leads and projects the viewer sees (with their titles and
    statuses, newest link first) and how many other links it has."""
    cursor.execute(
        f"SELECT {ENTRY_COLUMNS} FROM directory_entries WHERE entry_id = ? AND kind = ?",
        [entry_id, kind],
    )
    found = _decoded(rows(cursor))
    if not found:
        return None
    card = found[0]
    cursor.execute(
        """
        SELECT l.target, l.target_id, l.role, l.linked_at, l.linked_by,
               coalesce(ld.title, p.title) AS title,
               coalesce(ld.status, p.status) AS status,
               coalesce(ld.company_name, p.company_name) AS company_name,
               coalesce(ld.manager, p.manager) AS manager
        FROM directory_links l
        LEFT JOIN leads ld ON l.target = 'lead' AND ld.lead_id = l.target_id
        LEFT JOIN projects p ON l.target = 'project' AND p.project_id = l.target_id
        WHERE l.entry_id = ? AND (ld.lead_id IS NOT NULL OR p.project_id IS NOT NULL)
        ORDER BY l.position DESC
        """,
        [entry_id],
    )
    card["link_list"] = rows(cursor)
    card["hidden_links"] = int(card["links"] or 0) - len(card["link_list"])
    return card


def links_of(
    cursor: duckdb.DuckDBPyConnection, target: str, target_id: str
) -> list[dict[str, Any]]:
    """The directory entries linked to one lead or project (for its card)."""
    cursor.execute(
        "SELECT l.entry_id, l.kind, l.role, e.title, l.linked_at FROM directory_links l "
        "JOIN directory_entries e USING (entry_id) WHERE l.target = ? AND l.target_id = ? "
        "ORDER BY l.kind, lower(e.title), l.entry_id",
        [target, target_id],
    )
    return rows(cursor)


def entry_choices(
    cursor: duckdb.DuckDBPyConnection, kinds: list[str], limit: int = 1000
) -> list[dict[str, Any]]:
    """Entries of these kinds for a form's choice (id, kind, title)."""
    cursor.execute(
        "SELECT entry_id, kind, title FROM directory_entries WHERE kind IN (SELECT unnest(?)) "
        "ORDER BY kind, lower(title), entry_id LIMIT ?",
        [kinds, limit],
    )
    return rows(cursor)


SIGNATORY_ROWS = """
    SELECT e.entry_id, e.title AS signatory,
           json_extract_string(e.fields, '$.position') AS position,
           p.project_id, p.title, p.status, p.company_name, p.pm, p.manager,
           l.linked_at
    FROM directory_links l
    JOIN directory_entries e USING (entry_id)
    JOIN projects p ON p.project_id = l.target_id
    WHERE l.kind = 'signatory' AND l.target = 'project' AND l.role = 'signatory'
"""


def signatories_report(
    cursor: duckdb.DuckDBPyConnection, statuses: list[str], limit: int, offset: int
) -> dict[str, Any]:
    """Signatories and the projects they sign (those the viewer sees), one row per
    signatory and project, by signatory then project; only projects in ``statuses`` when
    any is given. Totals: rows, distinct signatories and projects."""
    where = " AND p.status IN (SELECT unnest(?))" if statuses else ""
    params: list[Any] = [statuses] if statuses else []
    base = SIGNATORY_ROWS + where
    total_row = cursor.execute(
        f"SELECT count(*), count(DISTINCT entry_id), count(DISTINCT project_id) FROM ({base})",
        params,
    ).fetchone()
    assert total_row is not None
    cursor.execute(
        f"{base} ORDER BY lower(e.title), e.entry_id, lower(p.title), p.project_id "
        "LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return {
        "items": rows(cursor),
        "total": int(total_row[0]),
        "limit": limit,
        "offset": offset,
        "signatories": int(total_row[1]),
        "projects": int(total_row[2]),
        "statuses": statuses,
    }
