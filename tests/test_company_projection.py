"""The ``companies`` read model and the deal volume by industry, as properties.

(a) Random directories (registrations, refused duplicates, leads naming companies, card
changes, merges, chains of merges) driven through the real handlers on SQLite: projecting
the log in random page sizes gives exactly what one rebuild gives, and every row agrees
with the company's folded stream (its card, and the survivor its merges end in).

(b) The deal volume by industry against an oracle over random deals and companies: the
rows are the oracle's, the won / open / lost splits add up to each row, and the rows to
the totals.
"""

# ruff: noqa: RUF001

from __future__ import annotations

import random
import tempfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates import company
from aggregates.errors import DomainError
from commands.companies import (
    change_company_card,
    load_company,
    merge_company,
    register_company,
    survivor_of,
)
from commands.context import CommandContext
from event_store import EventStore, open_event_store
from leadledger.wiring import event_codec
from projections.companies import CompanyProjection
from projections.database import ReadModelDatabase
from projections.deals import DEAL_COLUMNS, ddl
from projections.projector import Projector, rebuild
from queries.companies import DEAL_STATUSES, deal_volume_by_industry
from tests.factories import LeadDriver, ManualClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NAMES = ["ООО «Ромашка»", "Ромашка", "Agro Holding", "Northwind LLC", "Acme"]
CITIES = [None, "Москва", "г. Москва", "Тверь"]
TAX_IDS = [company.with_check_digits(f"7707{n:05d}") for n in range(4)]


def drive(store: EventStore, seed: int, steps: int = 40) -> list[str]:
    """A random directory through the handlers; the company ids it made or named."""
    rng = random.Random(seed)
    clock = ManualClock(T0)
    leads = LeadDriver(store, clock=clock)
    ids: list[str] = []

    def ctx() -> CommandContext:
        return CommandContext.new(actor="anna.sales", clock=clock)

    for step in range(steps):
        clock.advance(minutes=rng.randint(1, 90))
        roll = rng.random()
        try:
            if roll < 0.35 or not ids:
                company_id = f"c{step}"
                card = {"name": rng.choice(NAMES), "city": rng.choice(CITIES)}
                if rng.random() < 0.5:
                    card["tax_id"] = rng.choice(TAX_IDS)
                command = company.RegisterCompany(company_id, card, rng.random() < 0.3)
                register_company(store, command, ctx())
                ids.append(company_id)
            elif roll < 0.6:
                company_id = rng.choice([*ids, f"lead-only-{rng.randint(0, 3)}"])
                leads.create(company_id=company_id, company_name=rng.choice(NAMES))
                if company_id not in ids:
                    ids.append(company_id)
            elif roll < 0.85:
                changes: dict[str, Any] = {
                    rng.choice(["industry", "region", "notes"]): rng.choice(["A", "B", None]),
                }
                if rng.random() < 0.3:
                    changes["tax_id"] = rng.choice([*TAX_IDS, None])
                if rng.random() < 0.3:
                    changes["city"] = rng.choice(CITIES)
                command_change = company.ChangeCompanyCard(changes, False, rng.random() < 0.5)
                change_company_card(store, rng.choice(ids), command_change, ctx())
            else:
                merged, into = rng.sample(ids, 2) if len(ids) > 1 else (ids[0], ids[0])
                merge_company(store, merged, company.MergeCompany(into), ctx())
        except DomainError:
            continue  # a refused command (a duplicate, a merged record, no change) adds nothing
    return ids


def table(db: ReadModelDatabase) -> list[tuple[Any, ...]]:
    cursor = db.cursor()
    try:
        return cursor.execute("SELECT * FROM companies ORDER BY company_id").fetchall()
    finally:
        cursor.close()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), sizes=st.integers(0, 100_000))
def test_projecting_in_random_pages_equals_a_rebuild_and_the_streams(seed: int, sizes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        incremental = ReadModelDatabase(f"{tmp}/incremental.duckdb")
        rebuilt = ReadModelDatabase(f"{tmp}/rebuilt.duckdb")
        try:
            rng = random.Random(sizes)
            ids = drive(store, seed)
            projector = Projector(store, incremental, [CompanyProjection()], page_size=1)
            while True:
                projector.page_size = rng.randint(1, 9)
                if not projector.run_once():
                    break
            rebuild(store, rebuilt, [CompanyProjection()])
            rows = table(incremental)
            assert rows == table(rebuilt)
            cursor = incremental.cursor()
            found = {
                r[0]: r[1:]
                for r in cursor.execute(
                    "SELECT company_id, name, tax_id, city, merged_into, stream_id FROM companies"
                ).fetchall()
            }
            cursor.close()
            assert set(found) == set(ids)
            for company_id in ids:
                state = load_company(store, company_id)
                survivor = survivor_of(store, state)
                expected_into = None if survivor is state else survivor.company_id
                assert found[company_id] == (
                    state.card.name,
                    state.card.tax_id,
                    state.card.city,
                    expected_into,
                    str(company.company_stream_id(company_id)),
                )
        finally:
            incremental.close()
            rebuilt.close()
            store.close()


# --- (b) the deal volume by industry ----------------------------------------------------

INDUSTRIES = ["Retail", "Agriculture", None]

deal_rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", None]),  # the deal's company
        st.sampled_from(["open", "won", "lost"]),
        st.decimals(min_value=0, max_value=10_000, places=2, allow_nan=False),
        st.integers(0, 60),  # days after T0 it was created
    ),
    max_size=40,
)
company_rows = st.fixed_dictionaries(
    {c: st.tuples(st.sampled_from(INDUSTRIES), st.sampled_from([None, "a", "b"])) for c in "abc"}
)


def _tables(
    deals: list[tuple[str | None, str, Decimal, int]],
    companies: dict[str, tuple[str | None, str | None]],
) -> duckdb.DuckDBPyConnection:
    cursor = duckdb.connect()
    cursor.execute(ddl("deals", DEAL_COLUMNS))
    cursor.execute(
        "CREATE TABLE companies (company_id VARCHAR, industry VARCHAR, merged_into VARCHAR)"
    )
    for company_id, (industry, into) in companies.items():
        merged = None if into in (None, company_id) else into
        cursor.execute("INSERT INTO companies VALUES (?, ?, ?)", [company_id, industry, merged])
    rows = [
        {
            "deal_id": f"deal-{n}",
            "company_id": company_id,
            "status": status,
            "amount": amount,
            "created_at": T0 + timedelta(days=days),
        }
        for n, (company_id, status, amount, days) in enumerate(deals)
    ]
    names = ["deal_id", "company_id", "status", "amount", "created_at"]
    kinds = {c.name: c.arrow for c in DEAL_COLUMNS}
    arrow = pa.table({n: pa.array([r[n] for r in rows], kinds[n]) for n in names})
    cursor.register("_deals", arrow)
    cursor.execute(f"INSERT INTO deals ({', '.join(names)}) SELECT * FROM _deals")
    return cursor


@settings(max_examples=60, deadline=None)
@given(deals=deal_rows, companies=company_rows, start=st.integers(0, 30), span=st.integers(0, 40))
def test_deal_volume_by_industry_matches_the_oracle_and_its_splits_add_up(
    deals: list[tuple[str | None, str, Decimal, int]],
    companies: dict[str, tuple[str | None, str | None]],
    start: int,
    span: int,
) -> None:
    first, last = T0 + timedelta(days=start), T0 + timedelta(days=start + span)
    cursor = _tables(deals, companies)
    report = deal_volume_by_industry(cursor, first, last)

    def industry_of(company_id: str | None) -> str | None:
        if company_id not in companies:
            return None
        industry, into = companies[company_id]
        if into not in (None, company_id):
            return companies[into][0] if into in companies else None
        return industry

    oracle: dict[str | None, dict[str, list[Decimal]]] = defaultdict(lambda: defaultdict(list))
    for company_id, status, amount, days in deals:
        if first <= T0 + timedelta(days=days) <= last:
            oracle[industry_of(company_id)][status].append(amount)
    got = {row["industry"]: row for row in report["items"]}
    assert set(got) == set(oracle)
    for industry, split in oracle.items():
        row = got[industry]
        for status in DEAL_STATUSES:
            assert row[f"{status}_count"] == len(split[status])
            assert row[f"{status}_amount"] == sum(split[status], Decimal(0))
        assert row["count"] == sum(row[f"{s}_count"] for s in DEAL_STATUSES)
        assert row["amount"] == sum(row[f"{s}_amount"] for s in DEAL_STATUSES)
    totals = report["totals"]
    for field in (
        "count",
        "amount",
        *(f"{s}_{m}" for s in DEAL_STATUSES for m in ("count", "amount")),
    ):
        assert totals[field] == sum(row[field] for row in report["items"])


def test_the_demo_gives_its_companies_cards_deterministically() -> None:
    from leadledger.demo import load_demo, load_demo_companies
    from tests.factories import FUNNELS

    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        try:
            load_demo(store, FUNNELS, T0, leads=30, seed=3)
            filled = load_demo_companies(store, T0)
            assert filled > 5
            assert load_demo_companies(store, T0) == 0  # loading again changes nothing
            db = ReadModelDatabase(f"{tmp}/read.duckdb")
            try:
                rebuild(store, db, [CompanyProjection()])
                cursor = db.cursor()
                rows = cursor.execute(
                    "SELECT tax_id, industry, city, in_directory FROM companies"
                ).fetchall()
                cursor.close()
            finally:
                db.close()
            assert len(rows) == filled
            assert all(company.inn_is_valid(tax) for tax, *_ in rows)
            assert len({tax for tax, *_ in rows}) == filled
            assert all(industry and city and directory for _, industry, city, directory in rows)
        finally:
            store.close()
