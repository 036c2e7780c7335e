"""The report pack's read models (issue 16 §4): built incrementally in random pages they
equal a rebuild, and the reports read from them equal the reports computed the old way
from the raw read models, on random small histories."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from event_store import open_event_store
from leadledger.settings import Settings
from leadledger.wiring import event_codec, load_rules, read_model_projections
from projections.base import Projection
from projections.cohorts import REACHED, STEPS, CohortProjection
from projections.database import ReadModelDatabase
from projections.process import KINDS
from projections.projector import rebuild
from queries import conversion
from queries.common import rows
from queries.process_map import ProcessMapFilters, StageInfo, process_map
from queries.sales import period_where
from tests.factories import (
    FUNNELS,
    MANAGERS,
    Step,
    fold_in_random_pages,
    histories,
    put_managers_in_departments,
)

RULES = load_rules(Settings().funnels_file, Settings().rules_file)
STAGES = {f.id: [StageInfo(s.id, s.name, s.step) for s in f.stages] for f in FUNNELS.values()}


def projections() -> list[Projection]:
    return read_model_projections(FUNNELS, RULES)


def _tables(db: ReadModelDatabase) -> dict[str, list[tuple[Any, ...]]]:
    cursor = db.cursor()
    try:
        return {
            k.table: cursor.execute(f"SELECT * FROM {k.table} ORDER BY ALL").fetchall()
            for k in KINDS
        }
    finally:
        cursor.close()


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=histories(max_leads=15, max_steps=120), data=st.data())
def test_process_read_models_fold_like_a_rebuild_and_answer_as_the_visits_do(
    history: list[Step], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        db = ReadModelDatabase(f"{tmp}/incremental.duckdb")
        again = ReadModelDatabase(f"{tmp}/rebuilt.duckdb")
        try:
            fold_in_random_pages(store, db, history, data, projections)
            rebuild(store, again, projections())
            assert _tables(db) == _tables(again)
            with db.cursor() as directory:
                put_managers_in_departments(directory, MANAGERS)
            cursor = db.cursor()
            first, last = history[0].at, history[-1].at
            span = max((last - first).total_seconds(), 1.0)
            for _ in range(4):
                funnel = data.draw(st.sampled_from(sorted(FUNNELS)), label="funnel")
                start, end = sorted(
                    first + timedelta(seconds=span * data.draw(st.floats(-0.1, 1.1)))
                    for _ in range(2)
                )
                as_of: datetime = last + timedelta(seconds=1)
                if data.draw(st.booleans(), label="as of before the last event"):
                    as_of = first + timedelta(seconds=span * data.draw(st.floats(0, 1)))
                filters = ProcessMapFilters(
                    "lead",
                    funnel,
                    as_of,
                    start=data.draw(st.sampled_from([None, start])),
                    end=data.draw(st.sampled_from([None, end])),
                    department=data.draw(st.sampled_from([None, "sales", "retail"])),
                    variants=data.draw(st.integers(1, 20)),
                )
                stages = STAGES[funnel]
                # the process visits (a long period's months: tests/test_process_months.py)
                stored = process_map(cursor, filters, stages, months=False)
                assert stored == process_map(cursor, filters, stages, stored=False)
            cursor.close()
        finally:
            db.close()
            again.close()
            store.close()


# --- conversion cohorts ------------------------------------------------------------------

# The report as it was computed before its read models: one scan of leads joined to their
# deals and projects (the oracle).
OLD_COHORTS = """
WITH cohort AS (
  SELECT epoch_us(l.created_at) // 86400000000 AS day, l.funnel AS funnel,
    {reached},
    {steps}
  FROM leads AS l
  LEFT JOIN deals AS d ON d.deal_id = l.deal_id
  LEFT JOIN projects AS p ON p.project_id = coalesce(l.project_id, d.project_id){where}
),
months AS (SELECT day, strftime(DATE '1970-01-01' + CAST(day AS INTEGER), '%Y-%m') AS month
  FROM (SELECT DISTINCT day FROM cohort))
SELECT month, funnel, grouping(month, funnel) AS level, count(*) AS leads,
  {counts},
  {quantiles}
FROM cohort JOIN months USING (day) GROUP BY GROUPING SETS ((month, funnel), (month), ())
ORDER BY level, month, funnel
"""


def old_cohorts(
    cursor: duckdb.DuckDBPyConnection,
    funnel: str | None,
    start: datetime | None,
    end: datetime | None,
) -> dict[str, Any]:
    where, params = period_where("l.created_at", start, end, funnel, "l.funnel")
    sql = OLD_COHORTS.format(
        reached=",\n    ".join(f"{c} AS r_{n}" for n, c in REACHED.items()),
        steps=",\n    ".join(f"{e} AS {n}" for n, e in STEPS.items()),
        where=where,
        counts=",\n  ".join(f"count(*) FILTER (WHERE r_{n}) AS {n}" for n in REACHED),
        quantiles=",\n  ".join(
            f"quantile_cont({s}, 0.5) FILTER (WHERE {s} >= 0) AS {s}_median, "
            f"quantile_cont({s}, 0.9) FILTER (WHERE {s} >= 0) AS {s}_p90"
            for s in STEPS
        ),
    )
    cursor.execute(sql, params)
    found = rows(cursor)
    everything = [r for r in found if r["level"] == 3]
    return {
        "funnel": funnel,
        "created_from": start,
        "created_to": end,
        "rows": [
            {"month": r["month"], "funnel": r["funnel"], **conversion._figures(r)}
            for r in found
            if r["level"] == 0
        ],
        "by_month": [
            {"month": r["month"], "funnel": "*", **conversion._figures(r)}
            for r in found
            if r["level"] == 1
        ],
        "totals": conversion._figures(everything[0] if everything else conversion._empty()),
    }


def _cohort_tables(db: ReadModelDatabase) -> list[list[tuple[Any, ...]]]:
    cursor = db.cursor()
    try:
        return [
            cursor.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in CohortProjection.tables
        ]
    finally:
        cursor.close()


T0 = datetime(2026, 1, 27, 9, 0, tzinfo=UTC)
instants = st.integers(0, 200 * 86400).map(lambda s: T0 + timedelta(seconds=s))
bounds = st.one_of(
    st.none(),
    instants,
    # a month's first instant, or the last one of a month (whole months)
    st.integers(0, 6).map(lambda m: datetime(2026, 2 + m, 1, tzinfo=UTC)),
    st.integers(0, 6).map(
        lambda m: datetime(2026, 2 + m, 1, tzinfo=UTC) - timedelta(microseconds=1)
    ),
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(max_leads=12, max_steps=80), data=st.data())
def test_cohort_read_models_fold_like_a_rebuild(history: list[Step], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        db = ReadModelDatabase(f"{tmp}/incremental.duckdb")
        again = ReadModelDatabase(f"{tmp}/rebuilt.duckdb")
        try:
            fold_in_random_pages(store, db, history, data, projections)
            rebuild(store, again, projections())
            assert _cohort_tables(db) == _cohort_tables(again)
            cursor = db.cursor()
            for funnel in (None, *sorted(FUNNELS)):
                start, end = data.draw(bounds), data.draw(bounds)
                report = conversion.conversion_cohorts(cursor, funnel=funnel, start=start, end=end)
                assert report == old_cohorts(cursor, funnel, start, end)
            cursor.close()
        finally:
            db.close()
            again.close()
            store.close()


# per lead: funnel, seconds after T0, quality, a deal (won, lost, open or none), a project
# (of the lead, of the deal or none), hours each step took
cohort_leads = st.lists(
    st.tuples(
        st.sampled_from(["court", "out_of_court"]),
        st.integers(0, 200 * 86400),
        st.booleans(),
        st.sampled_from(["won", "lost", "open", None]),
        st.sampled_from(["lead", "deal", None]),
        st.integers(-48, 2000),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(leads=cohort_leads, data=st.data())
def test_the_cohorts_from_their_read_models_equal_the_cohorts_from_the_records(
    leads: list[Any], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = ReadModelDatabase(f"{tmp}/read_models.duckdb")
        try:
            cursor = db.cursor()
            for projection in projections():
                projection.create_tables(cursor)
            for n, (funnel, at, quality, deal, project, hours) in enumerate(leads):
                created = T0 + timedelta(seconds=at)
                step = timedelta(hours=hours)
                qualified = created + step if quality else None
                deal_id = f"d{n}" if deal else None
                project_id = f"p{n}" if project and (project == "lead" or deal) else None
                cursor.execute(
                    "INSERT INTO leads (lead_id, funnel, created_at, quality, qualified_at,"
                    " deal_id, project_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        f"l{n}",
                        funnel,
                        created,
                        quality,
                        qualified,
                        deal_id,
                        project_id if project == "lead" else None,
                    ],
                )
                if deal_id is not None:
                    cursor.execute(
                        "INSERT INTO deals (deal_id, funnel, status, created_at, closed_at,"
                        " project_id) VALUES (?, 'turnkey', ?, ?, ?, ?)",
                        [
                            deal_id,
                            deal,
                            created + 2 * step,
                            None if deal == "open" else created + 3 * step,
                            project_id if project == "deal" else None,
                        ],
                    )
                if project_id is not None:
                    cursor.execute(
                        "INSERT INTO projects (project_id, created_at) VALUES (?, ?)",
                        [project_id, created + 4 * step],
                    )
            CohortProjection().derive_all(cursor)
            for funnel in (None, "court"):
                start, end = data.draw(bounds), data.draw(bounds)
                report = conversion.conversion_cohorts(cursor, funnel=funnel, start=start, end=end)
                assert report == old_cohorts(cursor, funnel, start, end)
            cursor.close()
        finally:
            db.close()
