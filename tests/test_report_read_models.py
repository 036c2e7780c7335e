"""The report pack's read models (issue 16 §4): built incrementally in random pages they
equal a rebuild, and the reports read from them equal the reports computed the old way
from the raw read models, on random small histories."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from event_store import EventStore, open_event_store
from leadledger.settings import Settings
from leadledger.wiring import event_codec, load_rules, read_model_projections
from projections.base import Projection
from projections.database import ReadModelDatabase
from projections.process import KINDS
from projections.projector import Projector, rebuild
from queries.process_map import ProcessMapFilters, StageInfo, process_map
from tests.factories import FUNNELS, MANAGERS, Step, apply_history, chunks, histories

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


def _directory(db: ReadModelDatabase) -> None:
    """Every manager of the histories in one of two departments."""
    cursor = db.cursor()
    try:
        for i, manager in enumerate(MANAGERS):
            cursor.execute(
                "INSERT INTO users (username, department, active) VALUES (?, ?, TRUE)",
                [manager, "sales" if i % 2 == 0 else "retail"],
            )
    finally:
        cursor.close()


def _incremental(store: EventStore, db: ReadModelDatabase, history: list[Step], data: Any) -> None:
    sizes = data.draw(st.lists(st.integers(1, 60), min_size=1, max_size=5), label="appends")
    for piece in chunks(history, sizes):
        apply_history(store, piece)
        for k in data.draw(st.lists(st.integers(1, 50), max_size=3), label="pages"):
            Projector(store, db, projections(), page_size=k).run_once()
    Projector(store, db, projections(), page_size=data.draw(st.integers(1, 300))).catch_up()


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
            _incremental(store, db, history, data)
            rebuild(store, again, projections())
            assert _tables(db) == _tables(again)
            _directory(db)
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
                stored = process_map(cursor, filters, stages)
                assert stored == process_map(cursor, filters, stages, stored=False)
            cursor.close()
        finally:
            db.close()
            again.close()
            store.close()
