"""Derived read models (a projection with ``derive_all``): a rebuild folds the log without
them and derives them once at the end; what it gives equals incremental folding in any
pages and each model's ``derive_all`` over the other read models; a rebuild interrupted by
a fault (while folding or while deriving) and reopened gives exactly the tables of an
uninterrupted rebuild."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from event_store import EventStore, open_event_store
from leadledger.settings import Settings
from leadledger.wiring import event_codec, load_rules, read_model_projections
from projections.base import Projection
from projections.cohorts import CohortProjection
from projections.database import ReadModelDatabase
from projections.projector import (
    DERIVE_PENDING,
    POSITION_NAME,
    Projector,
    derived_projections,
    rebuild,
)
from tests.factories import (
    FUNNELS,
    Step,
    apply_history,
    fold_in_random_pages,
    generate_history,
    histories,
)

RULES = load_rules(Settings().funnels_file, Settings().rules_file)

Tables = dict[str, list[tuple[Any, ...]]]


def projections() -> list[Projection]:
    return read_model_projections(FUNNELS, RULES)


def tables(db: ReadModelDatabase, *, derived_only: bool = False) -> Tables:
    """Every table of the projections (or of the derived ones), rows in a stable order."""
    chosen = derived_projections(projections()) if derived_only else projections()
    cursor = db.cursor()
    try:
        return {
            table: cursor.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
            for projection in chosen
            for table in projection.tables
        }
    finally:
        cursor.close()


def pending(db: ReadModelDatabase) -> bool:
    return db.position(DERIVE_PENDING) > 0


def test_the_derived_models_are_the_ones_whose_tables_other_read_models_give() -> None:
    names = {p.name for p in derived_projections(projections())}
    assert {"cohorts", "lead_days"} <= names
    assert "leads" not in names


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=histories(max_leads=15, max_steps=140), data=st.data())
def test_derived_at_the_end_equals_folded_in_random_pages_and_each_derive_all(
    history: list[Step], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        folded = ReadModelDatabase(f"{tmp}/folded.duckdb")
        rebuilt = ReadModelDatabase(f"{tmp}/rebuilt.duckdb")
        try:
            fold_in_random_pages(store, folded, history, data, projections)
            rebuild(store, rebuilt, projections(), page_size=data.draw(st.integers(1, 400)))
            assert not pending(rebuilt)
            assert tables(rebuilt) == tables(folded)
            # each model's derive_all over the folded base tables gives its folded rows
            expected = tables(folded, derived_only=True)
            cursor = folded.cursor()
            for projection in derived_projections(projections()):
                cursor.execute("BEGIN TRANSACTION")
                projection.derive_all(cursor)
                cursor.execute("COMMIT")
            cursor.close()
            assert tables(folded, derived_only=True) == expected
        finally:
            folded.close()
            rebuilt.close()
            store.close()


class InjectedFault(Exception):
    pass


def _uninterrupted(store: EventStore, path: Path) -> Tables:
    db = ReadModelDatabase(path)
    try:
        rebuild(store, db, projections(), page_size=29)
        return tables(db)
    finally:
        db.close()


def _incremental(store: EventStore, path: Path) -> Tables:
    db = ReadModelDatabase(path)
    try:
        Projector(store, db, projections(), page_size=17).catch_up()
        return tables(db)
    finally:
        db.close()


@pytest.mark.parametrize("fault_page", [1, 4])
def test_a_rebuild_interrupted_while_folding_then_reopened_equals_an_uninterrupted_one(
    tmp_path: Path, fault_page: int
) -> None:
    store = open_event_store(f"sqlite:///{tmp_path}/events.sqlite", event_codec())
    path = tmp_path / "read_models.duckdb"
    try:
        apply_history(store, generate_history(31, leads=25, steps=220))
        page_size = 20
        assert store.last_position() > (fault_page + 1) * page_size
        # the hook runs before each folded projection and after all: the derived ones are
        # not folded in a rebuild
        per_page = len(projections()) - len(derived_projections(projections())) + 1
        calls: list[int] = []

        def hook(folded: int) -> None:
            calls.append(folded)
            if len(calls) == fault_page * per_page:  # the page folded, before its commit
                raise InjectedFault(f"page {fault_page}")

        db = ReadModelDatabase(path)
        with pytest.raises(InjectedFault):
            rebuild(
                store,
                db,
                projections(),
                page_size=page_size,
                fault_hook=hook,
                first_page_size=page_size,
            )
        committed = (fault_page - 1) * page_size
        assert db.position(POSITION_NAME) == committed
        assert pending(db)
        cursor = db.cursor()
        # the base models hold the pages before the fault; the derived ones nothing yet
        assert cursor.execute("SELECT count(*) FROM lead_cohorts").fetchall() == [(0,)]
        leads = cursor.execute("SELECT count(*) FROM leads").fetchall()[0][0]
        assert (leads > 0) == (committed > 0)
        cursor.close()
        db.close()

        db = ReadModelDatabase(path)  # reopened: derives, clears the marker, goes on
        projector = Projector(store, db, projections(), page_size=33)
        assert not pending(db)
        assert projector.position == committed
        projector.catch_up()
        assert projector.position == store.last_position()
        actual = tables(db)
        db.close()
        assert actual == _uninterrupted(store, tmp_path / "uninterrupted.duckdb")
        assert actual == _incremental(store, tmp_path / "incremental.duckdb")
    finally:
        store.close()


class FailingDerive(CohortProjection):
    """The cohorts, whose derive_all fails once after deriving its rows."""

    failures = 1

    def derive_all(self, cursor: duckdb.DuckDBPyConnection) -> None:
        super().derive_all(cursor)
        if FailingDerive.failures:
            FailingDerive.failures -= 1
            raise InjectedFault("derive")


def test_a_rebuild_interrupted_while_deriving_then_reopened_equals_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    store = open_event_store(f"sqlite:///{tmp_path}/events.sqlite", event_codec())
    path = tmp_path / "read_models.duckdb"
    try:
        apply_history(store, generate_history(37, leads=25, steps=200))
        failing = [FailingDerive() if p.name == "cohorts" else p for p in projections()]
        db = ReadModelDatabase(path)
        with pytest.raises(InjectedFault):
            rebuild(store, db, failing, page_size=50)
        # every page is committed, the derived models are not (the derive rolled back)
        assert db.position(POSITION_NAME) == store.last_position()
        assert pending(db)
        cursor = db.cursor()
        assert cursor.execute("SELECT count(*) FROM lead_days").fetchall() == [(0,)]
        cursor.close()
        db.close()

        db = ReadModelDatabase(path)
        Projector(store, db, projections()).catch_up()
        assert not pending(db)
        actual = tables(db)
        db.close()
        assert actual == _uninterrupted(store, tmp_path / "uninterrupted.duckdb")
        assert actual == _incremental(store, tmp_path / "incremental.duckdb")
    finally:
        store.close()


def test_a_live_projector_folds_the_derived_models_page_by_page(tmp_path: Path) -> None:
    """Without a rebuild (no marker), every page goes through every projection's apply."""
    store = open_event_store(f"sqlite:///{tmp_path}/events.sqlite", event_codec())
    db = ReadModelDatabase(tmp_path / "read_models.duckdb")
    try:
        apply_history(store, generate_history(41, leads=10, steps=80))
        projector = Projector(store, db, projections(), page_size=1_000)
        assert not pending(db)
        projector.run_once()
        cursor = db.cursor()
        assert cursor.execute("SELECT count(*) FROM lead_days").fetchall()[0][0] > 0
        assert cursor.execute("SELECT count(*) FROM lead_cohorts").fetchall()[0][0] > 0
        cursor.close()
    finally:
        db.close()
        store.close()
