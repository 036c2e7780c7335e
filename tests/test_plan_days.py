"""Each task's plan spread over its days (``plan_days``, issue 16 §2, §4): built
incrementally in random pages it equals a rebuild and the rows derived from the tasks as
they stand, and plan/fact and the resource load read from it equal the reports that
spread every task when asked, on random project histories (tasks added and changed,
planned dates set and moved, assignees changed) and random periods."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates import project
from aggregates.errors import DomainError
from commands.context import CommandContext, CommandFailed
from commands.projects import create_project, handle_project_command
from event_store import EventStore, open_event_store
from leadledger.settings import Settings
from leadledger.wiring import event_codec, load_funnels, load_rules, read_model_projections
from projections.base import Projection
from projections.database import ReadModelDatabase
from projections.directory import USERS_DDL
from projections.plan_days import PlanDayProjection
from projections.projector import Projector, rebuild
from projections.resource_months import ResourceMonthProjection
from queries.common import Filters
from queries.projects import Days, Span, month_parts, plan_fact, resource_load
from tests.factories import ManualClock
from tests.test_plan_spread import CALENDAR, tasks_db

SETTINGS = Settings()
RULES = load_rules(SETTINGS.funnels_file, SETTINGS.rules_file)
FUNNELS = load_funnels(SETTINGS.funnels_file)
CONFIGURED = RULES.project.calendar
T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
BASE = date(2026, 1, 1)
PEOPLE = ("ivan.fitter", "olga.designer", None)


def projections() -> list[Projection]:
    return read_model_projections(FUNNELS, RULES)


@dataclass(frozen=True)
class Step:
    project: int
    command: Any


def _day(offset: int | None) -> date | None:
    return None if offset is None else BASE + timedelta(days=offset)


hours = st.integers(0, 20_000).map(lambda c: Decimal(c) / 100)
day_offset = st.one_of(st.none(), st.integers(-10, 90))


@st.composite
def project_histories(draw: st.DrawFn) -> list[Step]:
    n = draw(st.integers(1, 3))
    steps = [
        Step(
            i,
            ("create", draw(day_offset, label="planned_start"), draw(day_offset, label="end")),
        )
        for i in range(n)
    ]
    for _ in range(draw(st.integers(1, 25))):
        which = draw(st.integers(0, n - 1))
        kind = draw(st.sampled_from(["add", "add", "update", "card"]))
        if kind == "add":
            command: Any = project.AddTask(
                task_id=f"T{draw(st.integers(1, 6))}",
                title="Task",
                assignee=draw(st.sampled_from(PEOPLE)),
                planned_hours=draw(hours),
                start=_day(draw(day_offset)),
                due=_day(draw(day_offset)),
            )
        elif kind == "update":
            field = draw(st.sampled_from(["planned_hours", "start", "due", "assignee"]))
            value: Any = {
                "planned_hours": str(draw(hours)),
                "start": (d := _day(draw(day_offset))) and d.isoformat(),
                "due": (d := _day(draw(day_offset))) and d.isoformat(),
                "assignee": draw(st.sampled_from(PEOPLE)),
            }[field]
            command = project.UpdateTask(
                task_id=f"T{draw(st.integers(1, 6))}", changes={field: value}
            )
        else:
            field = draw(st.sampled_from(["planned_start", "planned_end"]))
            start = _day(draw(day_offset))
            command = project.UpdateProjectCard({field: start and start.isoformat()})
        steps.append(Step(which, command))
    return steps


def _apply(store: EventStore, steps: list[Step], ids: dict[int, UUID], clock: ManualClock) -> None:
    """Each step through the command handlers; the steps the rules refuse are dropped."""
    for step in steps:
        clock.set(clock() + timedelta(minutes=7))
        ctx = CommandContext.new(actor="petr.pm", clock=clock)
        try:
            if isinstance(step.command, tuple):
                _, start, end = step.command
                project_id = UUID(int=step.project + 1, version=4)
                create_project(
                    store,
                    RULES,
                    project.CreateProject(
                        project_id=project_id,
                        title=f"Project {step.project}",
                        company_name="Agro",
                        department="production",
                        planned_start=_day(start),
                        planned_end=_day(end),
                    ),
                    ctx,
                )
                ids[step.project] = project_id
            elif step.project in ids:  # else its creation was refused
                handle_project_command(store, RULES, ids[step.project], step.command, ctx)
        except (DomainError, CommandFailed):
            continue


def _rows(db: ReadModelDatabase, table: str = "plan_days") -> list[tuple[Any, ...]]:
    cursor = db.cursor()
    try:
        return cursor.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
    finally:
        cursor.close()


def _assert_reports_same(
    cursor: duckdb.DuckDBPyConnection, calendar: Any, data: st.DataObject
) -> None:
    first = BASE + timedelta(days=data.draw(st.integers(-20, 100), label="from"))
    last = first + timedelta(days=data.draw(st.integers(0, 70), label="length"))
    limit = data.draw(st.integers(1, 5), label="limit")
    offset = data.draw(st.integers(0, 3), label="offset")
    person = data.draw(st.sampled_from([None, *PEOPLE[:2], "nobody"]), label="person")
    span = Span(first, last)
    load = resource_load(cursor, calendar, span, person, limit, offset)
    assert load == resource_load(cursor, calendar, span, person, limit, offset, stored=False)
    # every row has the titles the tasks have now, from the months or looked up for days
    projects = dict(cursor.execute("SELECT project_id, title FROM projects").fetchall())
    tasks = {
        (p, t): title
        for p, t, title in cursor.execute(
            "SELECT project_id, task_id, title FROM project_tasks"
        ).fetchall()
    }
    for item in load["items"]:
        for task in item["tasks"]:
            assert task["project"] == projects[task["project_id"]]
            assert task["title"] == tasks.get((task["project_id"], task["task_id"]))
        for row in item["projects"]:
            assert row["title"] == projects[row["project_id"]]
    days = data.draw(st.sampled_from([Days(first, last), Days(first), Days(None, last), Days()]))
    filters = data.draw(st.sampled_from([Filters(), Filters(equal={"department": "production"})]))
    assert plan_fact(cursor, filters, days, limit, offset, calendar) == plan_fact(
        cursor, filters, days, limit, offset, calendar, stored=False
    )


@pytest.mark.slow
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=project_histories(), data=st.data())
def test_plan_days_fold_like_a_rebuild_and_the_reports_read_them_as_the_tasks_answer(
    history: list[Step], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        db = ReadModelDatabase(f"{tmp}/incremental.duckdb")
        again = ReadModelDatabase(f"{tmp}/rebuilt.duckdb")
        clock = ManualClock(T0)
        ids: dict[int, UUID] = {}
        try:
            sizes = data.draw(st.lists(st.integers(1, 10), min_size=1, max_size=4), label="parts")
            index = 0
            for size in [*sizes, len(history)]:
                _apply(store, history[index : index + size], ids, clock)
                index += size
                page = data.draw(st.integers(1, 20), label="page size")
                Projector(store, db, projections(), page_size=page).run_once()
            Projector(store, db, projections(), page_size=data.draw(st.integers(1, 50))).catch_up()
            rebuild(store, again, projections())
            assert _rows(db) == _rows(again)
            assert _rows(db, "resource_months") == _rows(again, "resource_months")
            cursor = db.cursor()
            # the rows are the tasks' own plans, spread as they stand, and the months sum
            # the days and time entries as they stand
            cursor.execute("CREATE TEMP TABLE spread AS SELECT * FROM plan_days")
            cursor.execute("CREATE TEMP TABLE months AS SELECT * FROM resource_months")
            PlanDayProjection(CONFIGURED).derive_all(cursor)
            ResourceMonthProjection().derive_all(cursor)
            assert _rows(db) == sorted(cursor.execute("SELECT * FROM spread").fetchall())
            assert _rows(db, "resource_months") == sorted(
                cursor.execute("SELECT * FROM months").fetchall()
            )
            for _ in range(5):
                _assert_reports_same(cursor, CONFIGURED, data)
            cursor.close()
        finally:
            db.close()
            again.close()
            store.close()


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 100_000).map(lambda c: Decimal(c) / 100),
            st.integers(-5, 60),
            st.one_of(st.none(), st.integers(0, 40)),
            st.sampled_from(PEOPLE),
        ),
        min_size=1,
        max_size=6,
    ),
    st.data(),
)
def test_the_reports_from_the_spread_days_equal_the_reports_that_spread_the_tasks(
    tasks: list[tuple[Decimal, int, int | None, str | None]], data: st.DataObject
) -> None:
    con = tasks_db(
        [
            (h, BASE + timedelta(days=s), None if n is None else BASE + timedelta(days=s + n))
            for h, s, n, _ in tasks
        ]
    )
    try:
        for i, (_, _, _, who) in enumerate(tasks):
            con.execute("UPDATE project_tasks SET assignee = ? WHERE task_id = ?", [who, f"t{i}"])
        con.execute(USERS_DDL)
        con.execute(
            "UPDATE projects SET actual_hours = 0, planned_hours = "
            "(SELECT sum(planned_hours) FROM project_tasks)"
        )
        for derived in (PlanDayProjection(CALENDAR), ResourceMonthProjection()):
            derived.create_tables(con)
            derived.derive_all(con)
        # every day's share adds up to the task's whole plan
        planned = dict(
            con.execute("SELECT task_id, sum(planned) FROM plan_days GROUP BY ALL").fetchall()
        )
        assert planned == {f"t{i}": h for i, (h, *_) in enumerate(tasks)}
        for _ in range(4):
            _assert_reports_same(con, CALENDAR, data)
    finally:
        con.close()


def test_a_task_is_spread_over_its_working_days_and_again_when_it_changes() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        db = ReadModelDatabase(f"{tmp}/read.duckdb")
        clock = ManualClock(T0)
        ids: dict[int, UUID] = {}
        try:
            # Mon 2026-01-26 .. Fri 2026-02-06: 10 working days, 4 h each
            add = project.AddTask(
                task_id="T1",
                title="Mounting",
                assignee="ivan.fitter",
                planned_hours=Decimal(40),
                start=date(2026, 1, 26),
                due=date(2026, 2, 6),
            )
            _apply(store, [Step(0, ("create", None, None)), Step(0, add)], ids, clock)
            projector = Projector(store, db, projections(), page_size=100)
            projector.catch_up()
            cursor = db.cursor()
            days = cursor.execute(
                "SELECT day, planned FROM plan_days WHERE person = 'ivan.fitter' ORDER BY day"
            ).fetchall()
            assert len(days) == 10
            assert {p for _, p in days} == {Decimal("4.00")}
            assert days[0][0] == date(2026, 1, 26)
            assert days[-1][0] == date(2026, 2, 6)
            change = project.UpdateTask(task_id="T1", changes={"assignee": "olga.designer"})
            _apply(store, [Step(0, change)], ids, clock)
            projector.catch_up()
            people = cursor.execute("SELECT DISTINCT person FROM plan_days").fetchall()
            assert people == [("olga.designer",)]
            cursor.close()
        finally:
            db.close()
            store.close()


@settings(max_examples=300, deadline=None)
@given(st.dates(date(1, 1, 1), date(9999, 12, 31)), st.integers(0, 800))
def test_a_period_is_its_months_and_days_less_the_days_it_leaves_out(
    first: date, length: int
) -> None:
    last = min(first + timedelta(days=min(length, (date.max - first).days)), date.max)
    parts = month_parts(Span(first, last))
    held: list[date] = []
    for month in parts.months:
        day = month
        while day.month == month.month:
            held.append(day)
            if day == date.max:
                break
            day += timedelta(days=1)
    for a, b in parts.days:
        held += [a + timedelta(days=i) for i in range((b - a).days + 1)]
    taken = [a + timedelta(days=i) for a, b in parts.less for i in range((b - a).days + 1)]
    assert sorted(set(held) - set(taken)) == [
        first + timedelta(days=i) for i in range((last - first).days + 1)
    ]
    assert len(set(held)) == len(held)
    assert set(taken) <= set(held)
    # a cut month reads at most half its days
    assert all(2 * ((b - a).days + 1) <= 31 for a, b in (*parts.days, *parts.less))
