"""The leads of each day (``lead_days``, issue 16 §1, §4): built incrementally in random
pages it equals a rebuild, and "Leads and sales for a period" read from it (whole days
from the model, the days a bound cuts from the leads, the in-work page from the days'
counts) equals the report computed the old way from every lead, on random histories and
random periods."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from event_store import open_event_store
from leadledger.settings import Settings
from leadledger.wiring import event_codec, load_rules, read_model_projections
from projections.base import Projection
from projections.database import ReadModelDatabase
from projections.lead_days import LeadDayProjection
from projections.projector import rebuild
from queries import sales
from tests.factories import (
    EPOCH,
    FUNNELS,
    MANAGERS,
    Step,
    fold_in_random_pages,
    histories,
    put_managers_in_departments,
)

RULES = load_rules(Settings().funnels_file, Settings().rules_file)
SPLITS = ("month", "funnel", "department", "source", "manager")


def projections() -> list[Projection]:
    return read_model_projections(FUNNELS, RULES)


def _days(db: ReadModelDatabase) -> list[tuple[Any, ...]]:
    cursor = db.cursor()
    try:
        return cursor.execute("SELECT * FROM lead_days ORDER BY ALL").fetchall()
    finally:
        cursor.close()


def _bound(first: datetime, span: float) -> st.SearchStrategy[datetime | None]:
    """No bound, an instant of the history, a midnight or a day's last instant."""
    instant = st.floats(-0.1, 1.1).map(lambda f: first + timedelta(seconds=span * f))
    midnight = instant.map(lambda t: t.replace(hour=0, minute=0, second=0, microsecond=0))
    return st.one_of(
        st.none(), instant, midnight, midnight.map(lambda t: t - timedelta(microseconds=1))
    )


def _assert_same(cursor: duckdb.DuckDBPyConnection, data: st.DataObject, bound: Any) -> None:
    start, end = data.draw(bound, label="from"), data.draw(bound, label="to")
    if start is not None and end is not None and start > end:
        start, end = end, start
    funnel = data.draw(st.sampled_from([None, *sorted(FUNNELS)]), label="funnel")
    split = data.draw(st.sampled_from(SPLITS), label="split")
    limit = data.draw(st.integers(1, 6), label="limit")
    offset = data.draw(st.integers(0, 8), label="offset")
    args = {"funnel": funnel, "split": split, "start": start, "end": end}
    stored = sales.leads_period(cursor, **args, limit=limit, offset=offset)
    assert stored == sales.leads_period(cursor, **args, limit=limit, offset=offset, stored=False)


@pytest.mark.slow
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=histories(max_leads=15, max_steps=120), data=st.data())
def test_lead_days_fold_like_a_rebuild_and_the_report_reads_them_as_the_leads_answer(
    history: list[Step], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        db = ReadModelDatabase(f"{tmp}/incremental.duckdb")
        again = ReadModelDatabase(f"{tmp}/rebuilt.duckdb")
        try:
            fold_in_random_pages(store, db, history, data, projections)
            rebuild(store, again, projections())
            assert _days(db) == _days(again)
            cursor = db.cursor()
            # the rows are the leads' own figures, counted per day
            cursor.execute("CREATE TEMP TABLE counted AS SELECT * FROM lead_days")
            LeadDayProjection().derive_all(cursor)
            assert _days(db) == sorted(cursor.execute("SELECT * FROM counted").fetchall())
            put_managers_in_departments(cursor, MANAGERS[:-1])  # the last in none
            first, last = history[0].at, history[-1].at
            span = max((last - first).total_seconds(), 1.0)
            for _ in range(6):
                _assert_same(cursor, data, _bound(first, span))
            cursor.close()
        finally:
            db.close()
            again.close()
            store.close()


# per lead: seconds after EPOCH, funnel, manager, source, status, repeat, pause reason,
# amount (or none)
day_leads = st.lists(
    st.tuples(
        st.integers(0, 20 * 86400),
        st.sampled_from(sorted(FUNNELS)),
        st.sampled_from(MANAGERS),
        st.sampled_from(["website", "referral", None]),
        st.sampled_from(["open", "paused", "won", "lost", "non_quality"]),
        st.sampled_from([True, False, None]),
        st.sampled_from(["holiday", "documents", None]),
        st.one_of(st.none(), st.integers(0, 10**6).map(lambda c: Decimal(c) / 100)),
    ),
    max_size=40,
)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(leads=day_leads, data=st.data())
def test_the_report_from_the_days_equals_the_report_from_the_leads(
    leads: list[Any], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = ReadModelDatabase(f"{tmp}/read_models.duckdb")
        try:
            cursor = db.cursor()
            for projection in projections():
                projection.create_tables(cursor)
            for n, (at, funnel, manager, source, status, repeat, reason, amount) in enumerate(
                leads
            ):
                cursor.execute(
                    "INSERT INTO leads (lead_id, funnel, manager, source, status, repeat,"
                    " pause_reason, amount, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    # ties on the instant: the page's order falls back on the id
                    [
                        f"l{n:03}",
                        funnel,
                        manager,
                        source,
                        status,
                        repeat,
                        reason,
                        amount,
                        EPOCH + timedelta(seconds=at - at % 7200),
                    ],
                )
            LeadDayProjection().derive_all(cursor)
            put_managers_in_departments(cursor, MANAGERS[:-1])  # the last in none
            for _ in range(4):
                _assert_same(cursor, data, _bound(EPOCH, 20 * 86400))
            cursor.close()
        finally:
            db.close()


def test_a_period_of_whole_days_reads_no_lead_and_a_cut_day_reads_its_leads() -> None:
    first = datetime(2026, 3, 2, tzinfo=UTC)
    whole = sales._whole_days(first, datetime(2026, 3, 4, 23, 59, 59, 999999, tzinfo=UTC))
    assert whole == (sales._day(first), sales._day(first) + 2, [])
    noon = datetime(2026, 3, 2, 12, tzinfo=UTC)
    evening = datetime(2026, 3, 4, 18, tzinfo=UTC)
    assert sales._whole_days(noon, evening) == (
        sales._day(first) + 1,
        sales._day(first) + 1,
        [
            (noon, datetime(2026, 3, 3, tzinfo=UTC) - timedelta(microseconds=1)),
            (datetime(2026, 3, 4, tzinfo=UTC), evening),
        ],
    )
    # within one day: that day's leads only
    assert sales._whole_days(noon, noon + timedelta(hours=1))[2] == [
        (noon, noon + timedelta(hours=1))
    ]
