"""The company directory: the list (search by name or tax id, filters by industry,
region and city), a company's record (with the duplicates merged into it), and the deal
volume by client industry (seed 001: «отчет объемов сделок по сферам деятельности»).

A merged company's records belong to its survivor: a record's client is
``coalesce(merged_into, company_id)`` of its company's row (:data:`CLIENT_OF`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb

from aggregates.company import CARD_FIELDS, name_key, normalise_name
from queries.common import ZERO, Filters, page, rows, streamed_rows

COMPANY_COLUMNS = (
    "company_id, name, normalised_name, tax_id, kpp, industry, region, city, legal_address, "
    "actual_address, postal_address, notes, in_directory, merged_into, absorbed, "
    "first_lead_id, created_at, created_by, updated_at, version"
)
CLIENT_OF = "coalesce(c.merged_into, c.company_id)"
"""SQL: the client (surviving company) of the ``companies`` row ``c``."""
DEAL_STATUSES = ("won", "open", "lost")


def as_clients(
    table: str, catalog: str | None = None, *, first: str | None = None, named: bool = True
) -> str:
    """SQL: the rows of ``table`` (a table's name or a parenthesised query, with
    ``company_id`` and, ``named``, ``company_name``) with their company mapped to its
    client: a merged company's rows carry its survivor's id and name, so grouping by
    ``company_id`` counts them as the survivor's. ``catalog``: the schema the tables are
    read from (default: the cursor's views). ``first``: keep one row per client, the
    first by this ordering (e.g. a client's first lead of those of the companies merged
    into it)."""
    prefix = f"{catalog}." if catalog else ""
    name = (
        ", CASE WHEN m.merged_into IS NULL THEN t.company_name"
        " ELSE coalesce(s.name, t.company_name) END AS company_name"
        if named
        else ""
    )
    source = table if table.startswith("(") else f"{prefix}{table}"
    mapped = (
        f"SELECT t.* REPLACE (coalesce(m.merged_into, t.company_id) AS company_id{name})"
        f" FROM {source} t"
        f" LEFT JOIN {prefix}companies m ON m.company_id = t.company_id"
        f" LEFT JOIN {prefix}companies s ON s.company_id = m.merged_into"
    )
    if first is not None:
        mapped = (
            f"SELECT * FROM ({mapped}) QUALIFY row_number() OVER"
            f" (PARTITION BY company_id ORDER BY {first}) = 1"
        )
    return f"({mapped})"


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass(frozen=True)
class CompanyFilters:
    """The directory's filters (None: not filtered). ``search`` matches the name (as
    duplicates are found: case, quotes and legal form aside) or the start of the tax id;
    industry, region and city match whole, case aside. Merged records are left out
    unless ``merged`` asks for them."""

    search: str | None = None
    industry: str | None = None
    region: str | None = None
    city: str | None = None
    merged: bool = False

    def filters(self) -> Filters:
        extra: list[tuple[str, list[Any]]] = []
        if self.search:
            needle = self.search.strip()
            digits = needle.replace(" ", "")
            clauses = ["normalised_name LIKE ? ESCAPE '\\'", "lower(name) LIKE ? ESCAPE '\\'"]
            params: list[Any] = [_like(normalise_name(needle)), _like(needle.lower())]
            if digits.isdigit():
                clauses.append("starts_with(tax_id, ?)")
                params.append(digits)
            extra.append(("(" + " OR ".join(clauses) + ")", params))
        for column in ("industry", "region", "city"):
            value = getattr(self, column)
            if value:
                extra.append((f"lower({column}) = lower(?)", [value.strip()]))
        if not self.merged:
            extra.append(("merged_into IS NULL", []))
        return Filters(extra=extra)


def list_companies(
    cursor: duckdb.DuckDBPyConnection, filters: CompanyFilters, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Companies by name, then id, a page at a time."""
    return page(
        cursor,
        "companies",
        COMPANY_COLUMNS,
        filters.filters(),
        "normalised_name, company_id",
        limit,
        offset,
    )


def directory_export(
    cursor: duckdb.DuckDBPyConnection, filters: CompanyFilters
) -> Iterator[dict[str, Any]]:
    """Every company the filters match (merged records never: theirs are their
    survivors'), by name then id, as the companies import reads them: the id and the
    card, and ``different_company`` on every company after the first with one name in
    one city (so the file imports back as the directory it came from)."""
    where, params = replace(filters, merged=False).filters().where()
    names = ("company_id", *CARD_FIELDS)
    cursor.execute(
        f"SELECT {', '.join(names)} FROM companies{where} ORDER BY normalised_name, company_id",
        params,
    )
    seen: set[str] = set()
    for row in streamed_rows(cursor):
        key = name_key(row["name"], row["city"])
        row["different_company"] = key in seen
        seen.add(key)
        yield row


def company_record(cursor: duckdb.DuckDBPyConnection, company_id: str) -> dict[str, Any] | None:
    """A company's row with the duplicates merged into it (id and name) and, for a
    merged one, its survivor's name; None when the viewer has no such company."""
    cursor.execute(f"SELECT {COMPANY_COLUMNS} FROM companies WHERE company_id = ?", [company_id])
    found = rows(cursor)
    if not found:
        return None
    record = found[0]
    cursor.execute(
        "SELECT company_id, name FROM companies WHERE merged_into = ? ORDER BY name, company_id",
        [company_id],
    )
    record["merged"] = rows(cursor)
    survivor = record["merged_into"]
    record["merged_into_name"] = None
    if survivor is not None:
        row = cursor.execute("SELECT name FROM companies WHERE company_id = ?", [survivor])
        named = row.fetchone()
        record["merged_into_name"] = named[0] if named else None
    return record


def client_ids(cursor: duckdb.DuckDBPyConnection, company_id: str) -> list[str]:
    """The company ids whose records are this client's: itself and every company merged
    into it (as the viewer sees them)."""
    cursor.execute(
        "SELECT company_id FROM companies WHERE company_id = ? OR merged_into = ?"
        " ORDER BY company_id",
        [company_id, company_id],
    )
    return [r[0] for r in cursor.fetchall()]


def _figures(count: int, amount: Any) -> dict[str, Any]:
    return {"count": int(count or 0), "amount": Decimal(amount or 0).quantize(ZERO)}


def deal_volume_by_industry(
    cursor: duckdb.DuckDBPyConnection, start: datetime | None, end: datetime | None
) -> dict[str, Any]:
    """Deals created in the period by their client's industry (the surviving company's;
    None for deals of no company or of a company without one): count and sum, split
    won / open / lost. The splits add up to each row's totals, the rows to the totals."""
    where, params = Filters(start=start, end=end).where("d")
    cursor.execute(
        "SELECT s.industry AS industry, d.status AS status, count(*) AS n,"
        " sum(d.amount)::DECIMAL(38, 2) AS amount"
        " FROM deals d"
        " LEFT JOIN companies c ON c.company_id = d.company_id"
        f" LEFT JOIN companies s ON s.company_id = {CLIENT_OF}"
        f"{where} GROUP BY ALL",
        params,
    )
    by_industry: dict[str | None, dict[str, dict[str, Any]]] = {}
    for industry, status, n, amount in cursor.fetchall():
        split = by_industry.setdefault(industry, {})
        key = status if status in DEAL_STATUSES else "open"
        previous = split.get(key, _figures(0, 0))
        split[key] = _figures(previous["count"] + n, previous["amount"] + (amount or ZERO))
    items = []
    for industry, split in by_industry.items():
        parts = {s: split.get(s, _figures(0, 0)) for s in DEAL_STATUSES}
        items.append(
            {
                "industry": industry,
                "count": sum(p["count"] for p in parts.values()),
                "amount": sum((p["amount"] for p in parts.values()), ZERO),
                **{f"{s}_count": parts[s]["count"] for s in DEAL_STATUSES},
                **{f"{s}_amount": parts[s]["amount"] for s in DEAL_STATUSES},
            }
        )
    items.sort(key=lambda i: (-i["amount"], i["industry"] is None, i["industry"] or ""))
    totals = {
        "count": sum(i["count"] for i in items),
        "amount": sum((i["amount"] for i in items), ZERO),
        **{f"{s}_count": sum(i[f"{s}_count"] for i in items) for s in DEAL_STATUSES},
        **{f"{s}_amount": sum((i[f"{s}_amount"] for i in items), ZERO) for s in DEAL_STATUSES},
    }
    return {"start": start, "end": end, "items": items, "totals": totals}
