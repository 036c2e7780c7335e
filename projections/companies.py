"""The company directory's read model: ``companies``, one row per client company.

A row is a company's id and its stream's (the event feed shows a scoped viewer the
events of the companies they see by it), its card (name and its normalised form, tax id,
KPP, industry, region, city, addresses, notes), its first lead, whether it is in the
directory (registered there, or its card filled since it was first seen on a lead) and
``merged_into``: the
**surviving** record a merged company's records are reported under (the end of its
merge chain: when the survivor is merged in turn, the rows merged into it follow), NULL
for a live company. Queries map a record's ``company_id`` to its client with
``coalesce(merged_into, company_id)``.

Folded like the deal models (:class:`projections.deals.KeyedFold`): the page's company
events are applied in log order to the rows they touch, read in one query, and written
back with one delete and one insert from Arrow; a merge then moves the rows merged into
the merged company with one UPDATE. Every statement runs in the projector's transaction.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from aggregates.company import company_stream_id, normalise_name
from projections.deals import (
    Column,
    PageEvent,
    Row,
    _bigint,
    _flag,
    _insert,
    _int,
    _moment,
    _text,
    ddl,
    page_events,
)

_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

CARD = (
    "name",
    "tax_id",
    "kpp",
    "industry",
    "region",
    "city",
    "legal_address",
    "actual_address",
    "postal_address",
    "notes",
)
COMPANY_COLUMNS: tuple[Column, ...] = (
    _text("company_id"),
    _text("stream_id"),
    *(_text(c) for c in CARD[:1]),
    _text("normalised_name"),
    *(_text(c) for c in CARD[1:]),
    _flag("in_directory"),
    _text("merged_into"),
    _int("absorbed"),
    _text("first_lead_id"),
    _moment("created_at"),
    _text("created_by"),
    _moment("updated_at"),
    _int("version"),
    _bigint("last_position"),
)
TOPICS = frozenset(
    {
        "CompanyRegistered",
        "CompanyAddedToDirectory",
        "CompanyCardChanged",
        "CompanyFirstLeadRecorded",
        "CompanyMerged",
        "CompanyAbsorbed",
    }
)


class CompanyProjection:
    name = "companies"
    table = "companies"
    tables: tuple[str, ...] = ("companies",)
    topics: frozenset[str] = TOPICS

    @property
    def fingerprint(self) -> str:
        parts = [self.name, ddl(self.table, COMPANY_COLUMNS), _SOURCE_DIGEST]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(ddl(self.table, COMPANY_COLUMNS))

    def fold(self, row: Row | None, event: PageEvent) -> Row:
        doc = event.doc
        if event.topic == "CompanyRegistered":
            name = doc["company_name"]
            return _new_row(
                company_id=doc["company_id"],
                stream_id=str(company_stream_id(doc["company_id"])),
                name=name,
                normalised_name=normalise_name(name),
                in_directory=False,
                absorbed=0,
                first_lead_id=doc["first_lead_id"],
                created_at=event.moment,
                created_by=doc["actor"],
            )
        if event.topic == "CompanyAddedToDirectory":
            return _new_row(
                company_id=doc["company_id"],
                stream_id=str(company_stream_id(doc["company_id"])),
                **{c: doc.get(c) for c in CARD},
                normalised_name=normalise_name(doc["name"]),
                in_directory=True,
                absorbed=0,
                created_at=event.moment,
                created_by=doc["actor"],
            )
        if row is None:
            # a company's events whose registration was never projected: rebuild
            raise RuntimeError(
                f"events for company {doc['company_id']} whose registration was never "
                "projected: rebuild the read models"
            )
        if event.topic == "CompanyCardChanged":
            row.update({c: doc.get(c) for c in CARD})
            row["normalised_name"] = normalise_name(doc["name"])
            row["in_directory"] = True
        elif event.topic == "CompanyFirstLeadRecorded":
            row["first_lead_id"] = doc["lead_id"]
        elif event.topic == "CompanyMerged":
            row["merged_into"] = doc["into"]
        elif event.topic == "CompanyAbsorbed":
            row["absorbed"] = (row["absorbed"] or 0) + 1
        return row

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        topic = page["topic"]
        if not pc.any(pc.is_in(topic, value_set=_TOPIC_VALUES)).as_py():
            return
        # A company registered from a lead (the bulk of a log's company events) whose
        # stream has no other company event in the page: its row is the registration's
        # fields, written set-based; only the other companies are folded event by event.
        cursor.execute(REGISTERED_SQL)
        alone = pa.array(
            [r[0] for r in cursor.execute("SELECT position FROM _registered").fetchall()],
            pa.int64(),
        )
        if len(alone):
            names = cursor.execute("SELECT DISTINCT name FROM _registered").fetchall()
            normalised = pa.table(
                {
                    "name": pa.array([n for (n,) in names], pa.string()),
                    "normalised_name": pa.array([normalise_name(n) for (n,) in names], pa.string()),
                }
            )
            cursor.execute(
                "DELETE FROM companies WHERE company_id IN (SELECT company_id FROM _registered)"
            )
            cursor.register("_normalised", normalised)
            try:
                cursor.execute(INSERT_REGISTERED_SQL)
            finally:
                cursor.unregister("_normalised")
        cursor.execute("DROP TABLE _registered")
        rest = page.filter(
            pc.and_(
                pc.is_in(topic, value_set=_TOPIC_VALUES),
                pc.invert(pc.is_in(page["position"], value_set=alone)),
            )
        )
        self._fold_events(cursor, page_events(rest, self.topics))

    def _fold_events(self, cursor: duckdb.DuckDBPyConnection, events: list[PageEvent]) -> None:
        if not events:
            return
        keys = sorted({e.doc["company_id"] for e in events})
        names = [c.name for c in COMPANY_COLUMNS]
        touched = "company_id IN (SELECT unnest(?::VARCHAR[]))"
        cursor.execute(f"SELECT {', '.join(names)} FROM companies WHERE {touched}", [keys])
        rows: dict[str, Row] = {r[0]: dict(zip(names, r, strict=True)) for r in cursor.fetchall()}
        merges: list[tuple[str, str]] = []
        for event in events:
            key = event.doc["company_id"]
            row = rows.get(key)
            folded = self.fold(None if row is None else dict(row), event)
            folded["updated_at"] = event.moment
            folded["version"] = event.version
            folded["last_position"] = event.position
            rows[key] = folded
            if event.topic == "CompanyMerged":
                merges.append((key, event.doc["into"]))
        cursor.execute(f"DELETE FROM companies WHERE {touched}", [keys])
        _insert(cursor, "companies", COMPANY_COLUMNS, [rows[k] for k in keys])
        # the rows merged into a company merged now follow it to its survivor, in log
        # order (a chain A → B → C leaves A and B under C)
        for merged, into in merges:
            cursor.execute(
                "UPDATE companies SET merged_into = ? WHERE merged_into = ?", [into, merged]
            )


_TOPIC_VALUES = pa.array(sorted(TOPICS), pa.string())

# The page's registrations of companies with no other company event in the page, their
# fields as CompanyRegistered carries them.
REGISTERED_SQL = f"""
CREATE OR REPLACE TEMP TABLE _registered AS
WITH company_events AS (
  SELECT position, stream_id, version, topic, state,
    json_extract_string(state, '$.company_id') AS company_id
  FROM _page WHERE topic IN ({", ".join(f"'{t}'" for t in sorted(TOPICS))})
)
SELECT position, stream_id, version, company_id,
  json_extract_string(state, '$.company_name') AS name,
  json_extract_string(state, '$.first_lead_id') AS first_lead_id,
  CAST(json_extract_string(state, '$.at') AS TIMESTAMPTZ) AS created_at,
  json_extract_string(state, '$.actor') AS created_by,
FROM company_events
QUALIFY topic = 'CompanyRegistered' AND count(*) OVER (PARTITION BY company_id) = 1
"""

# The row a registration alone makes: what CompanyProjection.fold makes of it.
INSERT_REGISTERED_SQL = f"""
INSERT INTO companies ({", ".join(c.name for c in COMPANY_COLUMNS)})
SELECT {
    ", ".join(
        {
            "company_id": "company_id",
            "stream_id": "stream_id",
            "name": "name",
            "normalised_name": "normalised_name",
            "in_directory": "FALSE",
            "absorbed": "0",
            "first_lead_id": "first_lead_id",
            "created_at": "created_at",
            "created_by": "created_by",
            "updated_at": "created_at",
            "version": "version",
            "last_position": "position",
        }.get(c.name, "NULL")
        for c in COMPANY_COLUMNS
    )
}
FROM _registered LEFT JOIN _normalised USING (name)
"""


def _new_row(**values: object) -> Row:
    row: Row = dict.fromkeys(c.name for c in COMPANY_COLUMNS)
    row.update(values)
    return row
