"""Contacts: the list (search by name, phone or e-mail) and a contact's card with the
leads naming it — over the viewer's scope (``read_api/access.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import duckdb

from leadledger.imports.kinds.contacts import joined
from queries.common import Filters, page, rows, streamed_rows

CONTACT_COLUMNS = (
    "contact_id, name, phones, emails, position, companies, notes, created_at, created_by, "
    "updated_at, version"
)
LEAD_COLUMNS = (
    "lead_id, title, company_name, funnel, stage, status, repeat, manager, amount, currency, "
    "created_at"
)
EXPORT_COLUMNS = ("contact_id", "name", "phones", "emails", "position", "companies", "notes")
_PHONE_LIKE = re.compile(r"^\+?[0-9 ()\-.]{3,}$")


def search_term(raw: str | None) -> str | None:
    """What a search matches in ``contacts.search``: a phone-like text by its digits (a
    Russian 8… number as 7…), anything else lower-cased."""
    text = (raw or "").strip()
    if not text:
        return None
    if _PHONE_LIKE.match(text):
        digits = re.sub(r"[^0-9]", "", text)
        if not text.startswith("+") and len(digits) == 11 and digits[0] == "8":
            digits = "7" + digits[1:]
        return digits
    return text.lower()


def _with_leads(cursor: duckdb.DuckDBPyConnection, items: list[dict[str, Any]]) -> None:
    ids = [i["contact_id"] for i in items]
    counts: dict[str, int] = {}
    if ids:
        cursor.execute(
            "SELECT contact_id, count(*) FROM leads WHERE contact_id IN (SELECT unnest(?)) "
            "GROUP BY contact_id",
            [ids],
        )
        counts = {r[0]: int(r[1]) for r in cursor.fetchall()}
    for item in items:
        item["leads"] = counts.get(item["contact_id"], 0)


def list_contacts(
    cursor: duckdb.DuckDBPyConnection, q: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Contacts by name, those whose name, phone or e-mail contains ``q``; each with the
    number of leads naming it."""
    term = search_term(q)
    extra = [] if term is None else [("contains(search, ?)", [term])]
    items, total = page(
        cursor,
        "contacts",
        CONTACT_COLUMNS,
        Filters(extra=extra),
        "lower(name), contact_id",
        limit,
        offset,
    )
    _with_leads(cursor, items)
    return items, total


def contact_card(cursor: duckdb.DuckDBPyConnection, contact_id: str) -> dict[str, Any] | None:
    """The contact and the leads naming it, newest first."""
    cursor.execute(f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE contact_id = ?", [contact_id])
    found = rows(cursor)
    if not found:
        return None
    card = found[0]
    cursor.execute(
        f"SELECT {LEAD_COLUMNS} FROM leads WHERE contact_id = ? ORDER BY created_at DESC, lead_id",
        [contact_id],
    )
    card["lead_list"] = rows(cursor)
    card["leads"] = len(card["lead_list"])
    return card


def contact_choices(cursor: duckdb.DuckDBPyConnection, limit: int = 500) -> list[dict[str, Any]]:
    """Contacts for a form's choice (id and name, with a phone or e-mail to tell them apart)."""
    cursor.execute(
        "SELECT contact_id, name, phones[1] AS phone, emails[1] AS email FROM contacts "
        "ORDER BY lower(name), contact_id LIMIT ?",
        [limit],
    )
    return rows(cursor)


def contacts_export(cursor: duckdb.DuckDBPyConnection, q: str | None) -> Iterator[dict[str, Any]]:
    """Every contact the viewer sees (those matching ``q``), by name then id, as the
    contacts import reads them: the id and the card, lists joined into one cell each."""
    term = search_term(q)
    where, params = ("", []) if term is None else (" WHERE contains(search, ?)", [term])
    cursor.execute(
        f"SELECT {', '.join(EXPORT_COLUMNS)} FROM contacts{where} ORDER BY lower(name), contact_id",
        params,
    )
    for row in streamed_rows(cursor):
        for name in ("phones", "emails", "companies"):
            row[name] = joined(row[name])
        yield row
