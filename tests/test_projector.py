"""The projector: incremental projection in any page sizes equals a rebuild; read models
agree with the event store; stage clocks exclude paused time; a fault or a crash mid-page
loses and doubles nothing; the same on a PostgreSQL event store."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates import lead
from event_store import EventStore, open_event_store
from leadledger.settings import DEFAULT_FUNNELS_FILE, Settings
from leadledger.wiring import Platform, event_codec, load_rules, read_model_projections
from projections.base import Projection
from projections.database import ReadModelDatabase
from projections.projector import POSITION_NAME, REBUILD_SETTINGS, Projector, rebuild
from tests.factories import (
    FUNNELS,
    LeadDriver,
    ManualClock,
    Step,
    apply_history,
    chunks,
    generate_history,
    histories,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RULES = load_rules(Settings().funnels_file, Settings().rules_file)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

Snapshot = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]


def projections() -> list[Projection]:
    return read_model_projections(FUNNELS, RULES)


def snapshot(db: ReadModelDatabase) -> Snapshot:
    """Both read models, in a stable order, and the stored position."""
    cursor = db.cursor()
    try:
        leads = cursor.execute("SELECT * FROM leads ORDER BY lead_id").fetchall()
        visits = cursor.execute(
            "SELECT * FROM lead_stage_visits ORDER BY lead_id, visit_no"
        ).fetchall()
        return leads, visits, db.position(POSITION_NAME, cursor)
    finally:
        cursor.close()


def rebuilt(store: EventStore, path: Path | str) -> Snapshot:
    """The read models of a rebuild from scratch into a fresh DuckDB file."""
    assert not Path(path).exists()
    db = ReadModelDatabase(path)
    try:
        rebuild(store, db, projections())
        return snapshot(db)
    finally:
        db.close()


def assert_same_read_models(actual: Snapshot, expected: Snapshot) -> None:
    leads, visits, position = actual
    leads_expected, visits_expected, position_expected = expected
    assert len(leads) == len(leads_expected)
    for row, row_expected in zip(leads, leads_expected, strict=True):
        assert row == row_expected
    assert len(visits) == len(visits_expected)
    for row, row_expected in zip(visits, visits_expected, strict=True):
        assert row == row_expected
    assert position == position_expected


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[EventStore]:
    store = open_event_store(f"sqlite:///{tmp_path}/events.sqlite", event_codec())
    yield store
    store.close()


# --- (a) random page sizes give what a rebuild gives ------------------------------------


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=histories(max_leads=20, max_steps=160), data=st.data())
def test_incremental_projection_in_random_pages_equals_a_rebuild(
    history: list[Step], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        db = ReadModelDatabase(f"{tmp}/incremental.duckdb")
        try:
            append_sizes = data.draw(st.lists(st.integers(1, 80), min_size=1, max_size=6))
            for piece in chunks(history, append_sizes):
                apply_history(store, piece)
                # Some pages of random sizes between appends, each by a fresh projector
                # resuming from the stored position.
                for k in data.draw(st.lists(st.integers(1, 60), max_size=3)):
                    Projector(store, db, projections(), page_size=k).run_once()
            final_page = data.draw(st.integers(1, 400))
            Projector(store, db, projections(), page_size=final_page).catch_up()

            incremental = snapshot(db)
            assert incremental[2] == store.last_position()
            assert_same_read_models(incremental, rebuilt(store, f"{tmp}/rebuilt.duckdb"))
        finally:
            db.close()
            store.close()


# --- (b) the read model agrees with the state replayed from the event store -------------


def _lead_ids(history: list[Step]) -> list[UUID]:
    return [s.lead_id for s in history if isinstance(s.command, lead.CreateLead)]


def _as_utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _replayed_fields(state: lead.Lead) -> dict[str, Any]:
    return {
        "lead_id": str(state.lead_id),
        "funnel": state.funnel,
        "stage": state.stage,
        "status": state.status.value,
        "repeat": state.repeat,
        "version": state.version,
        "amount": state.amount,
        "currency": state.currency,
        "title": state.title,
        "company_name": state.company_name,
        "company_id": state.company_id,
        "source": state.source,
        "manager": state.manager,
        "expert": state.expert,
        "need_maturity": state.need_maturity,
        "answer_due": state.answer_due,
        "description": state.description,
        "quality": state.quality,
        "qualification_reason": state.qualification_reason,
        "assessment_expert": state.assessment.expert if state.assessment else None,
        "assessment_result": state.assessment.result if state.assessment else None,
        "assessment_hours": state.assessment.hours if state.assessment else None,
        "assessment_hours_total": state.assessment_hours_total,
        "pause_reason": state.pause_reason,
        "paused_since": state.paused_since,
        "close_reason": state.close_reason,
        "closed_at": state.closed_at,
        "created_at": state.created_at,
        "created_by": state.created_by,
        "updated_at": state.updated_at,
        "stage_entered_at": state.stage_entered_at,
        "stage_step": FUNNELS[state.funnel].step_of(state.stage),
        "cost_components": [(c.name, c.amount) for c in state.cost_components],
        "deal_id": None if state.deal_id is None else str(state.deal_id),
        "contact": state.contact,
        "assessment_required": lead.assessment_required(state, FUNNELS),
        "assessment_required_on_card": state.assessment_required,
        "project_id": None if state.project_id is None else str(state.project_id),
        "qualified_at": state.qualified_at,
        "contact_id": None if state.contact_id is None else str(state.contact_id),
    }


def _row_fields(row: dict[str, Any]) -> dict[str, Any]:
    fields = {k: row[k] for k in row if k not in ("furthest_step", "assessments", "visits")}
    for k in (
        "paused_since",
        "closed_at",
        "created_at",
        "updated_at",
        "stage_entered_at",
        "qualified_at",
    ):
        fields[k] = _as_utc(fields[k])
    fields["cost_components"] = [
        (c["name"], Decimal(c["amount"])) for c in json.loads(row["cost_components"])
    ]
    del fields["last_position"]
    return fields


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_each_lead_row_agrees_with_the_state_replayed_from_the_store(
    sqlite_store: EventStore, tmp_path: Path, seed: int
) -> None:
    history = generate_history(seed, leads=40, steps=400)
    rng = random.Random(seed)
    db = ReadModelDatabase(tmp_path / "read_models.duckdb")
    try:
        for piece in chunks(history, [rng.randint(1, 100) for _ in range(8)]):
            apply_history(sqlite_store, piece)
            Projector(sqlite_store, db, projections(), page_size=rng.randint(1, 80)).catch_up()
        cursor = db.cursor()
        names = [c[0] for c in cursor.execute("SELECT * FROM leads LIMIT 0").description]
        rows = {
            r[0]: dict(zip(names, r, strict=True))
            for r in cursor.execute("SELECT * FROM leads").fetchall()
        }
        visits = dict(
            cursor.execute(
                "SELECT lead_id, count(*) FROM lead_stage_visits GROUP BY lead_id"
            ).fetchall()
        )
        lead_ids = _lead_ids(history)
        assert sorted(rows) == sorted(str(i) for i in lead_ids)
        for lead_id in lead_ids:
            recorded = sqlite_store.load(lead_id)
            state = lead.fold([r.event for r in recorded])
            assert state is not None
            row = rows[str(lead_id)]
            assert _row_fields(row) == _replayed_fields(state), lead_id
            assert row["last_position"] == recorded[-1].position
            moves = sum(
                isinstance(r.event, lead.LeadStageChanged | lead.LeadTransferred) for r in recorded
            )
            assert row["visits"] == visits[str(lead_id)] == moves + 1
            assessed = [r.event for r in recorded if isinstance(r.event, lead.LeadAssessed)]
            assert row["assessments"] == len(assessed)
    finally:
        db.close()


# --- (c) stage visits exclude paused time -----------------------------------------------


def _visits(db: ReadModelDatabase, lead_id: UUID) -> list[dict[str, Any]]:
    cursor = db.cursor()
    result = cursor.execute(
        "SELECT visit_no, funnel, stage, entered_at, left_at, paused_seconds, paused_since "
        "FROM lead_stage_visits WHERE lead_id = ? ORDER BY visit_no",
        [str(lead_id)],
    )
    names = [c[0] for c in result.description]
    return [dict(zip(names, r, strict=True)) for r in result.fetchall()]


@pytest.mark.parametrize(
    ("page_size", "after_each_command"), [(1, False), (2, True), (1000, False)]
)
def test_paused_time_is_excluded_from_a_stage_visit(
    sqlite_store: EventStore, tmp_path: Path, page_size: int, after_each_command: bool
) -> None:
    clock = ManualClock(T0)
    driver = LeadDriver(sqlite_store, clock=clock)
    db = ReadModelDatabase(tmp_path / "rm.duckdb")
    projector = Projector(sqlite_store, db, projections(), page_size=page_size)

    def step() -> None:
        if after_each_command:
            projector.catch_up()

    try:
        lead_id = driver.create().stream_id
        step()
        clock.advance(hours=1)
        driver.pause(lead_id)
        step()
        clock.advance(hours=2)
        driver.resume(lead_id)
        step()
        clock.advance(hours=2)
        driver.move(lead_id, "assessment")
        step()
        # A second visit paused twice (1 h and 30 min), then left by a transfer.
        clock.advance(minutes=10)
        driver.pause(lead_id)
        step()
        clock.advance(hours=1)
        driver.resume(lead_id)
        step()
        clock.advance(minutes=20)
        driver.pause(lead_id)
        step()
        clock.advance(minutes=30)
        driver.resume(lead_id)
        step()
        clock.advance(minutes=5)
        driver.transfer(lead_id, "court", "assessment")
        step()
        # A third visit ends in a close while paused: paused until the close.
        clock.advance(hours=1)
        driver.pause(lead_id)
        step()
        clock.advance(hours=3)
        driver.close(lead_id, "lost", "went to a competitor")
        projector.catch_up()

        visits = _visits(db, lead_id)
        h = timedelta(hours=1)
        assert [(v["visit_no"], v["funnel"], v["stage"]) for v in visits] == [
            (1, "out_of_court", "new"),
            (2, "out_of_court", "assessment"),
            (3, "court", "assessment"),
        ]
        first, second, third = visits
        assert first["entered_at"] == T0
        assert first["left_at"] - first["entered_at"] == 5 * h
        assert first["paused_seconds"] == 7200
        assert first["paused_since"] is None

        assert second["entered_at"] == T0 + 5 * h
        assert second["left_at"] - second["entered_at"] == timedelta(minutes=10 + 60 + 20 + 30 + 5)
        assert second["paused_seconds"] == 3600 + 1800
        assert second["paused_since"] is None

        assert third["left_at"] - third["entered_at"] == 4 * h
        assert third["paused_seconds"] == 3 * 3600
        assert third["paused_since"] is None

        row = (
            db.cursor()
            .execute(
                "SELECT status, paused_since, pause_reason, visits FROM leads WHERE lead_id = ?",
                [str(lead_id)],
            )
            .fetchone()
        )
        assert row == ("lost", None, None, 3)
        assert_same_read_models(snapshot(db), rebuilt(sqlite_store, tmp_path / "rebuilt.duckdb"))
    finally:
        db.close()


def test_an_open_visit_of_a_paused_lead_shows_since_when(
    sqlite_store: EventStore, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    driver = LeadDriver(sqlite_store, clock=clock)
    db = ReadModelDatabase(tmp_path / "rm.duckdb")
    try:
        lead_id = driver.create().stream_id
        clock.advance(hours=1)
        driver.pause(lead_id)
        Projector(sqlite_store, db, projections(), page_size=1).catch_up()
        [visit] = _visits(db, lead_id)
        assert visit["left_at"] is None
        assert visit["paused_seconds"] == 0
        assert visit["paused_since"] == T0 + timedelta(hours=1)
    finally:
        db.close()


# --- (d) faults and crashes -------------------------------------------------------------


class InjectedFault(Exception):
    pass


@pytest.mark.parametrize("fail_on_call", [1, 2], ids=["before-fold", "after-fold"])
def test_a_fault_mid_page_leaves_read_models_and_position_as_before(
    sqlite_store: EventStore, tmp_path: Path, fail_on_call: int
) -> None:
    history = generate_history(21, leads=30, steps=240)
    half = len(history) // 2
    path = tmp_path / "read_models.duckdb"
    db = ReadModelDatabase(path)
    try:
        apply_history(sqlite_store, history[:half])
        Projector(sqlite_store, db, projections(), page_size=25).catch_up()
        before = snapshot(db)
        assert before[2] == sqlite_store.last_position()
        apply_history(sqlite_store, history[half:])

        calls: list[int] = []

        def hook(folded: int) -> None:
            calls.append(folded)
            if len(calls) == fail_on_call:
                raise InjectedFault(f"fault after folding {folded} events")

        faulty = Projector(sqlite_store, db, projections(), page_size=40, fault_hook=hook)
        with pytest.raises(InjectedFault):
            faulty.run_once()
        if fail_on_call == 2:
            assert calls[-1] > 0  # the page was folded into the tables, then the fault
        assert faulty.position == before[2]
        assert_same_read_models(snapshot(db), before)

        # The same projector, without the fault, goes on from where it was.
        faulty.fault_hook = None
        assert faulty.run_once() == 40
        # What is on disk is what was committed: reopen the file.
        db.close()
        db = ReadModelDatabase(path)
        fresh = Projector(sqlite_store, db, projections(), page_size=33)
        assert fresh.position == before[2] + 40
        fresh.catch_up()
        assert_same_read_models(snapshot(db), rebuilt(sqlite_store, tmp_path / "rebuilt.duckdb"))
    finally:
        db.close()


@pytest.mark.parametrize("fault_page", [1, 3])
def test_a_fault_during_catch_up_keeps_exactly_the_pages_before_it(
    sqlite_store: EventStore, tmp_path: Path, fault_page: int
) -> None:
    """catch_up reads the next page while folding one; a fault still commits nothing of
    its page and the projector resumes from the page before."""
    apply_history(sqlite_store, generate_history(23, leads=20, steps=160))
    page_size = 20
    assert sqlite_store.last_position() > (fault_page + 1) * page_size
    calls: list[int] = []

    per_page = len(projections()) + 1  # the hook runs before each projection and after all

    def hook(folded: int) -> None:
        calls.append(folded)
        page, after_fold = (len(calls) - 1) // per_page + 1, len(calls) % per_page == 0
        if page == fault_page and after_fold:
            raise InjectedFault(f"page {page}")

    db = ReadModelDatabase(tmp_path / "read_models.duckdb")
    expected_db = ReadModelDatabase(tmp_path / "pages_before.duckdb")
    try:
        projector = Projector(sqlite_store, db, projections(), page_size=page_size, fault_hook=hook)
        with pytest.raises(InjectedFault):
            projector.catch_up()
        committed = (fault_page - 1) * page_size
        assert projector.position == committed
        if committed:
            Projector(sqlite_store, expected_db, projections(), page_size=committed).run_once()
        else:
            for projection in projections():
                projection.create_tables(expected_db.cursor())
        assert_same_read_models(snapshot(db), snapshot(expected_db))

        projector.fault_hook = None
        projector.catch_up()
        assert projector.position == sqlite_store.last_position()
        assert_same_read_models(snapshot(db), rebuilt(sqlite_store, tmp_path / "rebuilt.duckdb"))
    finally:
        expected_db.close()
        db.close()


def test_a_fault_leaves_nothing_behind_then_a_fresh_projector_catches_up(
    sqlite_store: EventStore, tmp_path: Path
) -> None:
    """Fault on every page from the start: nothing is ever committed."""
    apply_history(sqlite_store, generate_history(22, leads=10, steps=80))
    path = tmp_path / "read_models.duckdb"
    db = ReadModelDatabase(path)
    try:

        def hook(folded: int) -> None:
            if folded:
                raise InjectedFault

        projector = Projector(sqlite_store, db, projections(), page_size=10_000, fault_hook=hook)
        empty = snapshot(db)
        assert empty == ([], [], 0)
        for _ in range(3):
            with pytest.raises(InjectedFault):
                projector.catch_up()
            assert snapshot(db) == empty
        db.close()
        db = ReadModelDatabase(path)
        Projector(sqlite_store, db, projections(), page_size=7).catch_up()
        assert_same_read_models(snapshot(db), rebuilt(sqlite_store, tmp_path / "rebuilt.duckdb"))
    finally:
        db.close()


CRASHING_PROJECTOR = textwrap.dedent(
    """
    import os, signal, sys, time, tomllib

    from aggregates.company import COMPANY_EVENT_TYPES
    from aggregates.funnels import FunnelCatalog
    from aggregates.lead import LEAD_EVENT_TYPES
    from aggregates.lead import UPCASTERS as LEAD_UPCASTERS
    from event_store import open_event_store
    from event_store.codec import EventCodec
    from projections.database import ReadModelDatabase
    from projections.leads import LeadProjection
    from projections.projector import Projector

    events_url, duckdb_path, funnels_file = sys.argv[1:4]
    page_size, crash_page = int(sys.argv[4]), int(sys.argv[5])
    with open(funnels_file, "rb") as f:
        funnels = FunnelCatalog.from_config(tomllib.load(f))
    store = open_event_store(
        events_url, EventCodec((*LEAD_EVENT_TYPES, *COMPANY_EVENT_TYPES), LEAD_UPCASTERS)
    )
    db = ReadModelDatabase(duckdb_path)
    calls = 0

    def hook(folded):
        # One projection: the hook runs twice a page, before and after the fold.
        global calls
        calls += 1
        page, after_fold = (calls + 1) // 2, calls % 2 == 0
        if page == crash_page and after_fold:
            print(f"killing myself mid-page {page} after folding {folded}", flush=True)
            time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGKILL)

    projector = Projector(store, db, [LeadProjection(funnels)], page_size=page_size,
                          fault_hook=hook)
    print(f"starting at {projector.position}", flush=True)
    projector.catch_up()
    print(f"caught up at {projector.position}", flush=True)
    db.close()
    store.close()
    """
)


def _run_projector_process(
    tmp_path: Path, events_url: str, duckdb_path: Path, page_size: int, crash_page: int
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "crashing_projector.py"
    script.write_text(CRASHING_PROJECTOR)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [
            sys.executable,
            str(script),
            events_url,
            str(duckdb_path),
            str(DEFAULT_FUNNELS_FILE),
            str(page_size),
            str(crash_page),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_projector_killed_mid_page_restarts_and_ends_equal_to_a_rebuild(
    tmp_path: Path,
) -> None:
    events_url = f"sqlite:///{tmp_path}/events.sqlite"
    store = open_event_store(events_url, event_codec())
    try:
        apply_history(store, generate_history(31, leads=30, steps=260))
        total = store.last_position()
        page_size = 25
        assert total > 4 * page_size
        duckdb_path = tmp_path / "read_models.duckdb"

        crashed = _run_projector_process(tmp_path, events_url, duckdb_path, page_size, 3)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        assert "killing myself mid-page 3" in crashed.stdout
        assert "caught up" not in crashed.stdout

        # Pages 1 and 2 were committed, page 3 never was.
        db = ReadModelDatabase(duckdb_path)
        try:
            after_crash = snapshot(db)
        finally:
            db.close()
        assert after_crash[2] == 2 * page_size
        two_pages = ReadModelDatabase(tmp_path / "two_pages.duckdb")
        try:
            Projector(store, two_pages, projections(), page_size=2 * page_size).run_once()
            assert_same_read_models(after_crash, snapshot(two_pages))
        finally:
            two_pages.close()

        restarted = _run_projector_process(tmp_path, events_url, duckdb_path, page_size, 0)
        assert restarted.returncode == 0, restarted.stderr
        assert f"starting at {2 * page_size}" in restarted.stdout
        assert f"caught up at {total}" in restarted.stdout

        db = ReadModelDatabase(duckdb_path)
        try:
            assert_same_read_models(snapshot(db), rebuilt(store, tmp_path / "rebuilt.duckdb"))
        finally:
            db.close()
    finally:
        store.close()


def test_rebuild_replaces_read_models_that_were_projected_before(
    sqlite_store: EventStore, tmp_path: Path
) -> None:
    apply_history(sqlite_store, generate_history(41, leads=10, steps=90))
    db = ReadModelDatabase(tmp_path / "rm.duckdb")
    try:
        Projector(sqlite_store, db, projections(), page_size=9).catch_up()
        before = snapshot(db)
        projector = rebuild(sqlite_store, db, projections(), page_size=13)
        assert projector.position == sqlite_store.last_position()
        assert_same_read_models(snapshot(db), before)
    finally:
        db.close()


def test_a_rebuild_writes_the_database_file_once_at_the_end(
    sqlite_store: EventStore, tmp_path: Path
) -> None:
    """The pages go to the write-ahead log only (no checkpoint after each page, however
    low the threshold), the file is written once when the rebuild ends, and the database's
    own threshold is back afterwards; so is its memory limit, which the rebuild bounds
    (REBUILD_SETTINGS) while it runs."""
    apply_history(sqlite_store, generate_history(43, leads=12, steps=120))
    path = tmp_path / "rm.duckdb"
    wal = Path(f"{path}.wal")
    db = ReadModelDatabase(path)
    try:
        db.cursor().execute("SET checkpoint_threshold = '1KB'")
        db.cursor().execute("SET memory_limit = '3GiB'")
        wal_sizes: list[int] = []
        limits: set[str] = set()

        def seen(_n: int) -> None:
            wal_sizes.append(wal.stat().st_size if wal.exists() else 0)
            limit = db.cursor().execute("SELECT current_setting('memory_limit')").fetchall()
            limits.add(str(limit[0][0]))

        projector = rebuild(sqlite_store, db, projections(), page_size=17, progress=seen)
        assert projector.position == sqlite_store.last_position()
        assert len(wal_sizes) > 3
        # a checkpoint empties the log: it only grew during the rebuild
        assert all(size > 0 for size in wal_sizes)
        assert wal_sizes == sorted(wal_sizes)
        assert not wal.exists() or wal.stat().st_size == 0
        threshold = db.cursor().execute("SELECT current_setting('checkpoint_threshold')")
        assert threshold.fetchall() == [("1000 bytes",)]
        # DuckDB shows 512MB as 488.2 MiB
        assert limits == {"488.2 MiB"}
        assert REBUILD_SETTINGS["memory_limit"] == "512MB"
        limit = db.cursor().execute("SELECT current_setting('memory_limit')").fetchall()
        assert limit == [("3.0 GiB",)]
    finally:
        db.close()


# --- (e) the same on a PostgreSQL event store -------------------------------------------


def test_projection_from_postgres_equals_rebuild_and_the_sqlite_projection(
    pg_schema_url: str, sqlite_store: EventStore, tmp_path: Path
) -> None:
    history = generate_history(51, leads=25, steps=220)
    pg_store = open_event_store(pg_schema_url, event_codec())
    pg_db = ReadModelDatabase(tmp_path / "from_postgres.duckdb")
    sqlite_db = ReadModelDatabase(tmp_path / "from_sqlite.duckdb")
    try:
        rng = random.Random(51)
        for piece in chunks(history, [rng.randint(10, 70) for _ in range(5)]):
            apply_history(pg_store, piece)
            for _ in range(rng.randint(1, 3)):
                Projector(pg_store, pg_db, projections(), page_size=rng.randint(1, 50)).run_once()
        Projector(pg_store, pg_db, projections(), page_size=17).catch_up()
        from_postgres = snapshot(pg_db)
        assert from_postgres[2] == pg_store.last_position()
        assert_same_read_models(from_postgres, rebuilt(pg_store, tmp_path / "rebuilt.duckdb"))

        # The same history through a SQLite store projects to the very same read models.
        apply_history(sqlite_store, history)
        Projector(sqlite_store, sqlite_db, projections(), page_size=64).catch_up()
        assert_same_read_models(snapshot(sqlite_db), from_postgres)
    finally:
        sqlite_db.close()
        pg_db.close()
        pg_store.close()


def test_the_background_followers_start_once_per_platform(platform: Platform) -> None:
    """A second app lifespan on one platform (two test clients, say) starts no second
    projector on the same DuckDB connection."""

    def projectors() -> int:
        return sum(t.name == "leadledger-projector" for t in threading.enumerate())

    before = projectors()
    platform.start_background()
    platform.start_background()
    assert projectors() == before + 1
