"""The process map's months (issue 16 §3, §4): built incrementally in random pages they
equal a rebuild, and a long period's map read from them equals the map read from every
visit: the counts exactly, the quantiles within the buckets' relative error."""

from __future__ import annotations

import math
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from event_store import open_event_store
from leadledger.settings import Settings
from leadledger.wiring import event_codec, load_rules, read_model_projections
from projections.base import Projection
from projections.database import ReadModelDatabase
from projections.process import ProcessVisitProjection
from projections.process_months import (
    MONTH_KINDS,
    ProcessMonthProjection,
    bucket_value,
    view_sql,
)
from projections.projector import Projector, rebuild
from queries.process_map import (
    LONG_PERIOD,
    RELATIVE_ERROR,
    ProcessMapFilters,
    StageInfo,
    process_map,
)
from tests.factories import (
    FUNNELS,
    MANAGERS,
    Step,
    fold_in_random_pages,
    generate_history,
    put_managers_in_departments,
)

RULES = load_rules(Settings().funnels_file, Settings().rules_file)
STAGES = {f.id: [StageInfo(s.id, s.name, s.step) for s in f.stages] for f in FUNNELS.values()}
QUANTILES = ("median_wait_seconds", "p90_wait_seconds", "median_seconds", "p90_seconds")


def projections() -> list[Projection]:
    return read_model_projections(FUNNELS, RULES)


@st.composite
def long_histories(draw: st.DrawFn) -> list[Step]:
    """Histories over several months (gaps of up to 10 days)."""
    leads = draw(st.integers(1, 12))
    steps = draw(st.integers(leads, 100))
    seed = draw(st.integers(0, 2**32 - 1))
    return generate_history(seed, leads=leads, steps=steps, max_gap_seconds=10 * 86400)


def _tables(db: ReadModelDatabase) -> dict[str, list[tuple[Any, ...]]]:
    cursor = db.cursor()
    try:
        return {
            t: cursor.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for k in MONTH_KINDS
            for t in (k.table, k.cases, k.open)
        }
    finally:
        cursor.close()


def _close(stored: float | None, exact: float | None) -> bool:
    if stored is None or exact is None:
        return stored is exact
    return math.isclose(stored, exact, rel_tol=RELATIVE_ERROR + 1e-9, abs_tol=1e-6)


def _same_within_bound(stored: Any, exact: Any, path: str = "") -> None:
    """Equal but for the quantiles, which are within the relative error."""
    if isinstance(exact, dict):
        assert stored.keys() == exact.keys(), path
        for key in exact:
            if key in QUANTILES:
                assert _close(stored[key], exact[key]), (path + key, stored[key], exact[key])
            else:
                _same_within_bound(stored[key], exact[key], f"{path}{key}.")
    elif isinstance(exact, list):
        assert len(stored) == len(exact), path
        for a, b in zip(stored, exact, strict=True):
            _same_within_bound(a, b, path)
    else:
        assert stored == exact, (path, stored, exact)


@pytest.mark.slow
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=long_histories(), data=st.data())
def test_process_months_fold_like_a_rebuild_and_answer_as_every_visit_does(
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
                # the directory written without its events: its departments' rows again,
                # as a page of the directory's events has them counted
                ProcessMonthProjection().derive_departments(directory)
            cursor = db.cursor()
            # the scoped viewers' view, over every visit, computes the stored rows
            for k in MONTH_KINDS:
                viewed = f"SELECT * FROM ({view_sql(k.process.table)}) ORDER BY ALL"
                stored_rows = f"SELECT * FROM {k.table} ORDER BY ALL"
                assert cursor.execute(viewed).fetchall() == cursor.execute(stored_rows).fetchall()
            first, last = history[0].at, history[-1].at
            month_start = datetime(first.year, first.month, 1, tzinfo=UTC)
            for _ in range(4):
                funnel = data.draw(st.sampled_from(sorted(FUNNELS)), label="funnel")
                # a long period: whole months, or cut at any instant
                start = data.draw(
                    st.sampled_from(
                        [
                            None,
                            month_start,
                            first - timedelta(days=1),
                            first + timedelta(days=data.draw(st.integers(0, 60))),
                        ]
                    ),
                    label="start",
                )
                length = LONG_PERIOD + timedelta(days=data.draw(st.integers(1, 400)))
                end = data.draw(st.sampled_from([None, (start or first) + length]), label="end")
                as_of: datetime = last + timedelta(seconds=data.draw(st.integers(1, 10**7)))
                if data.draw(st.booleans(), label="as of before the last event"):
                    as_of = first + (last - first) * data.draw(st.floats(0, 1))
                filters = ProcessMapFilters(
                    "lead",
                    funnel,
                    as_of,
                    start=start,
                    end=end,
                    department=data.draw(st.sampled_from([None, "sales", "retail"])),
                    variants=data.draw(st.integers(1, 20)),
                )
                stages = STAGES[funnel]
                exact = process_map(cursor, filters, stages, stored=False)
                stored = process_map(cursor, filters, stages, months=True)
                # the waits are ordered by their medians: stages of nearly equal medians may
                # swap places within the bound
                for result in (stored, exact):
                    result["waits"].sort(key=lambda w: w["stage"])
                _same_within_bound(stored, exact)
            cursor.close()
        finally:
            db.close()
            again.close()
            store.close()


def _process_tables(db: ReadModelDatabase) -> dict[str, list[tuple[Any, ...]]]:
    cursor = db.cursor()
    try:
        return {
            t: cursor.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in (*ProcessVisitProjection.tables, *ProcessMonthProjection.tables)
        }
    finally:
        cursor.close()


@pytest.mark.slow
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=long_histories(), data=st.data(), directory_first=st.booleans())
def test_deriving_the_process_models_at_once_equals_folding_them_in_random_pages(
    history: list[Step], data: st.DataObject, directory_first: bool
) -> None:
    """``derive_all`` (what a rebuild calls once at its end instead of every page's
    ``apply``) over the other read models' tables gives the rows the pages' folds give."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        db = ReadModelDatabase(f"{tmp}/incremental.duckdb")
        try:
            if directory_first:
                Projector(store, db, projections()).run_once()  # the tables
                with db.cursor() as directory:
                    put_managers_in_departments(directory, MANAGERS)
            fold_in_random_pages(store, db, history, data, projections)
            folded = _process_tables(db)
            with db.cursor() as cursor:
                cursor.execute("BEGIN")
                ProcessVisitProjection().derive_all(cursor)
                ProcessMonthProjection().derive_all(cursor)
                cursor.execute("COMMIT")
            assert _process_tables(db) == folded
        finally:
            db.close()
            store.close()


def test_a_bucket_s_middle_is_within_the_bound_of_every_time_in_it() -> None:
    from projections.process_months import GROWTH

    for bucket in (0, 1, 10, 500, 1500):
        low, high = GROWTH**bucket, GROWTH ** (bucket + 1)
        middle = bucket_value(bucket)
        assert middle / low - 1 <= RELATIVE_ERROR + 1e-12
        assert 1 - middle / high <= RELATIVE_ERROR + 1e-12
    assert RELATIVE_ERROR < 0.02
