"""Activities («Мои Дела») at the scale of seed 003: 100 managers over two years, about
1M activities: the activities projection's rebuild rate and the p95 of every indicator
query.

Targets: the rebuild ≥ 100k events/s; each indicator query's p95 < 50 ms.

Setup (in a child process, so that it does not count in this process's peak RSS): the
directory's people (``--managers`` managers in departments of ten, each with a head,
spread over regions and cities) and, for each working day of ``--days``, each manager's
activities decided by the Activity decider itself (``aggregates.activities``): planned
the day before, then done with a result (most), cancelled, rescheduled and done, or left
undone (overdue, with the owner's reminder); incoming calls and e-mails registered after
the fact; and, every fourth week, each manager's personal plan for the week
(``aggregates.activity_plans``). The events are COPY-ed into a fresh PostgreSQL schema in
log order (gap-free positions). Then, in this process:

1. ``projections.projector.rebuild()`` of the directory, the activities and the plans
   into a fresh DuckDB file: events/s and the time spent reading and folding;
2. the query functions behind ``GET /reports/activities/...`` and ``GET /activities``,
   called on a DuckDB cursor as the API does, for a manager (their scope), a head (their
   department's scope, through the same temporary views the API builds) and top
   management (everything): p50/p95/p99.

The schema is dropped and the files removed at the end. Run from the project root:

    .venv/bin/python -m bench.bench_activities                               # full scale
    .venv/bin/python -m bench.bench_activities --managers 20 --days 120 --runs 30
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg import sql

from aggregates import activities, activity_plans, users
from aggregates.base import CommandMeta, DomainEvent
from aggregates.rules import DEFAULT_ACTIVITY_RULES
from aggregates.users import Principal, Role
from bench import benchlib
from bench.bench_projection import PhaseTimer, vacuum_analyze
from event_store import EventStore, open_event_store
from leadledger.wiring import event_codec, read_model_projections
from projections.activities import ActivityPlanProjection, ActivityProjection
from projections.base import Projection
from projections.database import ReadModelDatabase
from projections.directory import DirectoryProjection
from projections.projector import rebuild
from queries import activities as queries
from queries.activities import ActivityFilters
from read_api.access import Scope

SCHEMA_PREFIX = "bench_activities_"
NAMESPACE = UUID("0c6f3a1e-9b2d-4e57-8a41-d5f27c3b9e18")
END = datetime(2026, 1, 9, 20, 0, tzinfo=UTC)
"""The history ends on a Friday evening (fixed: runs are reproducible)."""
REGIONS = {"North": ["Omsk", "Tomsk"], "South": ["Sochi", "Krasnodar"], "West": ["Kaliningrad"]}
RULES = DEFAULT_ACTIVITY_RULES

Row = tuple[UUID, int, DomainEvent]


def people(managers: int) -> list[tuple[str, str, str, str, str]]:
    """(username, role, department, region, city): managers in departments of ten, each
    department with its head."""
    regions = list(REGIONS.items())
    found = []
    for n in range(managers):
        department = f"sales{n // 10:02d}"
        region, cities = regions[(n // 10) % len(regions)]
        city = cities[n % len(cities)]
        if n % 10 == 0:
            found.append((f"head{n // 10:02d}", "head", department, region, city))
        found.append((f"m{n:03d}", "manager", department, region, city))
    return found


def history(managers: int, days: int, per_day: int, seed: int) -> Iterator[Row]:
    """The directory, then every day's activities in time order (see the docstring)."""
    rng = random.Random(seed)
    codes = [t for t in RULES.types if not t.after_the_fact]
    incoming = [t for t in RULES.types if t.after_the_fact]
    start = END - timedelta(days=days)
    for username, role, department, region, city in people(managers):
        command = users.RegisterUser(username, username, role, department, region, city)
        meta = CommandMeta(actor="admin", at=start - timedelta(days=2), command_id=uuid4())
        yield users.user_stream_id(username), 1, users.register(command, meta)
    names = [p[0] for p in people(managers) if p[1] == "manager"]
    day = start.date()
    while day <= END.date():
        if day.isoweekday() <= 5:
            yield from _day(rng, names, day, per_day, codes, incoming)
            if day.isoweekday() == 5 and (day.toordinal() // 7) % 4 == 0:
                yield from _plans(rng, names, day + timedelta(days=3))
        day += timedelta(days=1)


def _meta(actor: str, at: datetime) -> CommandMeta:
    return CommandMeta(actor=actor, at=at, command_id=uuid4())


def _day(
    rng: random.Random,
    names: list[str],
    day: date,
    per_day: int,
    codes: list[Any],
    incoming: list[Any],
) -> Iterator[Row]:
    morning = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=7)
    states: list[tuple[activities.Activity, str]] = []
    for name in names:
        for _ in range(rng.randint(per_day - 4, per_day + 4)):
            kind = rng.choice(incoming if rng.random() < 0.15 else codes)
            at = morning + timedelta(hours=rng.randint(1, 10), minutes=rng.randrange(0, 60, 5))
            command = activities.PlanActivity(
                activity_id=uuid4(),
                activity_type=kind.code,
                owner=name,
                planned_at=at,
                duration_minutes=15 if kind.group in ("calls", "emails") else 60,
                # each manager works their own portfolio of clients, sometimes another's
                company_id=f"{name if rng.random() < 0.95 else rng.choice(names)}"
                f"-c{rng.randrange(200):03d}",
                done=kind.after_the_fact,
                result="noted" if kind.after_the_fact else None,
            )
            asked = at if kind.after_the_fact else morning - timedelta(hours=14)
            event = activities.plan(command, RULES, _meta(name, asked))
            state = activities.evolve(None, event)
            yield command.activity_id, 1, event
            if not kind.after_the_fact:
                states.append((state, name))
    evening = morning + timedelta(hours=12)
    for state, name in states:
        fate = rng.random()
        steps: list[activities.ActivityCommand] = []
        if fate < 0.05:
            steps = [activities.RescheduleActivity(state.planned_at + timedelta(hours=1))]
            steps.append(activities.CompleteActivity("done after all"))
        elif fate < 0.08:
            steps = [activities.CancelActivity("the client cancelled")]
        elif fate < 0.10:
            steps = [activities.RemindOverdueActivity(state.planned_end)]  # left undone
        else:
            steps = [activities.CompleteActivity("agreed on the next step")]
        for step in steps:
            later = activities.decide(state, step, _meta(name, evening))
            state = activities.evolve(state, later)
            yield state.activity_id, state.version, later


def _plans(rng: random.Random, names: list[str], monday: date) -> Iterator[Row]:
    at = datetime.combine(monday - timedelta(days=3), datetime.min.time(), UTC) + timedelta(
        hours=18
    )
    for name in names:
        days = {
            monday + timedelta(days=d): {"call_out_cold": rng.randint(5, 12), "meeting_cold": 1}
            for d in range(5)
        }
        command = activity_plans.SetActivityPlan(name, monday, days, None)
        event = activity_plans.set_plan(None, command, RULES, _meta(name, at))
        yield activity_plans.plan_stream_id(name, monday), 1, event


def load_history(
    postgres_url: str, schema: str, managers: int, days: int, per_day: int, seed: int
) -> dict[str, Any]:
    """Generate the history and COPY it into ``schema.stored_events``."""
    codec = event_codec()
    topics: collections.Counter[str] = collections.Counter()
    started = time.perf_counter()
    table = sql.Identifier(schema, "stored_events")
    copy_sql = sql.SQL(
        "COPY {} (originator_id, originator_version, topic, state, notification_id) "
        "FROM STDIN (FORMAT BINARY)"
    ).format(table)
    position = 0
    with psycopg.connect(postgres_url) as conn:
        with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            copy.set_types(["uuid", "int8", "text", "bytea", "int8"])
            for stream_id, version, event in history(managers, days, per_day, seed):
                position += 1
                topic = codec.topic(event)
                topics[topic] += 1
                copy.write_row((stream_id, version, topic, codec.encode(event), position))
        conn.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s)",
            [f'"{schema}".stored_events', max(position, 1)],
        )
        conn.commit()
    return {
        "events": position,
        "activities": topics["ActivityPlanned"] + topics["ActivityRegistered"],
        "topics": dict(topics),
        "seconds": time.perf_counter() - started,
    }


def run_setup(args: argparse.Namespace, schema: str) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(
            load_history,
            args.postgres_url,
            schema,
            args.managers,
            args.days,
            args.per_day,
            args.seed,
        )
        return future.result()


def measure_rebuild(store: EventStore, db: ReadModelDatabase, page_size: int) -> dict[str, Any]:
    projections: list[Projection] = [
        DirectoryProjection(),
        ActivityProjection(),
        ActivityPlanProjection(),
    ]
    timer = PhaseTimer()
    reader = next(m for m in ("read_page", "read_rows", "read") if hasattr(store, m))
    timer.instrument(store, reader, "read")
    for projection in projections:
        timer.instrument(projection, "apply", projection.name)
    started = time.perf_counter()
    projector = rebuild(store, db, projections, page_size=page_size)
    seconds = time.perf_counter() - started
    cursor = db.cursor()
    row = cursor.execute("SELECT count(*) FROM activities").fetchone()
    cursor.close()
    return {
        "events": projector.position,
        "seconds": seconds,
        "rows": row[0] if row else 0,
        "phases": dict(timer.seconds),
    }


def measure_queries(db: ReadModelDatabase, runs: int) -> list[list[Any]]:
    # the other read models the client lists join (leads, deals): empty here, as the
    # server has them
    others = [
        p
        for p in read_model_projections(_funnels(), _rules())
        if p.name not in ("directory", "activities", "activity_plans")
    ]
    cursor = db.cursor()
    for projection in others:
        projection.create_tables(cursor)
    now = END - timedelta(hours=4)  # Friday afternoon: some of the day still to do
    week = queries.monday(now.date())
    month = now.date() - timedelta(days=29)
    head = Principal("head01", Role.HEAD, "sales01")
    manager = Principal("m015", Role.MANAGER, "sales01")
    rows: list[list[Any]] = []
    viewers: list[tuple[str, Principal | None, ActivityFilters]] = [
        ("manager", manager, ActivityFilters(owner="m015")),
        ("head", head, ActivityFilters()),
        ("top, a region", None, ActivityFilters(region="North")),
        ("top, all", None, ActivityFilters()),
    ]
    for label, principal, filters in viewers:
        scoped = db.cursor()
        if principal is not None:
            Scope.of(principal, scoped).apply(scoped)
        overdue = ActivityFilters(**{**filters.__dict__, "state": "overdue"})
        c, f, today = scoped, filters, now.date()
        checks: list[tuple[str, Callable[[], object]]] = [
            ("weekly table", partial(queries.weekly_table, c, f, week, now, RULES)),
            ("coefficient, week", partial(queries.coefficient, c, f, week, today, now, RULES)),
            (
                "coefficient, 30 days",
                partial(queries.coefficient, c, f, month, today, now, RULES),
            ),
            (
                "calls per day, 30 days",
                partial(queries.calls, c, f, month, today, now, "day", 50, 0),
            ),
            (
                "calls per week, 30 days",
                partial(queries.calls, c, f, month, today, now, "week", 50, 0),
            ),
            (
                "clients without interaction",
                partial(queries.clients_without_interaction, c, f, now, 30, 50, 0),
            ),
            ("clients without planned", partial(queries.clients_without_planned, c, f, now, 50, 0)),
            ("overdue list", partial(queries.list_activities, c, overdue, now, 50, 0)),
        ]
        for name, call in checks:
            samples = benchlib.timed(call, runs, warmup=2)
            rows.append(benchlib.latency_row(f"{label}: {name}", samples))
        scoped.close()
    cursor.close()
    return rows


def _funnels() -> Any:
    from leadledger.settings import Settings
    from leadledger.wiring import load_funnels

    return load_funnels(Settings().funnels_file)


def _rules() -> Any:
    from leadledger.settings import Settings
    from leadledger.wiring import load_rules

    settings = Settings()
    return load_rules(settings.funnels_file, settings.rules_file)


def report(
    args: argparse.Namespace,
    setup: dict[str, Any],
    rebuilt: dict[str, Any],
    latencies: list[list[Any]],
) -> str:
    rate = rebuilt["events"] / rebuilt["seconds"] if rebuilt["seconds"] else 0.0
    summary = benchlib.table(
        "Activities: setup and rebuild",
        ["what", "value"],
        [
            ["load average before (1/5/15 min)", args.load_before],
            ["load average at the end", "/".join(f"{x:.2f}" for x in os.getloadavg())],
            ["managers", benchlib.count(args.managers)],
            ["days of history", benchlib.count(args.days)],
            ["activities", benchlib.count(setup["activities"])],
            ["events in the log", benchlib.count(setup["events"])],
            ["setup (generate + COPY), s", f"{setup['seconds']:.1f}"],
            ["rebuild, s", f"{rebuilt['seconds']:.2f}"],
            ["rebuild, events/s", benchlib.count(rate)],
            ["target, events/s", "100,000"],
            ["activity rows", benchlib.count(rebuilt["rows"])],
            *(
                [f"time in {name}, s", f"{seconds:.2f}"]
                for name, seconds in sorted(rebuilt["phases"].items())
            ),
        ],
    )
    queries_table = benchlib.table(
        f"Indicator queries, {args.runs} runs each (target p95 < 50 ms)",
        ["query", "runs", "p50 ms", "p95 ms", "p99 ms", "max ms", "mean ms"],
        latencies,
    )
    return summary + "\n" + queries_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--managers", type=int, default=100, help="managers")
    parser.add_argument("--days", type=int, default=730, help="days of history")
    parser.add_argument("--per-day", type=int, default=19, help="activities per manager a day")
    parser.add_argument("--page-size", type=int, default=200_000, help="rebuild page size")
    parser.add_argument("--runs", type=int, default=100, help="runs per query")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument(
        "--postgres-url", default=benchlib.DEFAULT_POSTGRES_URL, help="PostgreSQL to use"
    )
    args = parser.parse_args(argv)
    args.load_before = "/".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"bench_activities: managers={args.managers:,} days={args.days:,} "
        f"per_day={args.per_day} page_size={args.page_size:,} runs={args.runs}",
        flush=True,
    )
    schema = benchlib.create_schema(args.postgres_url, SCHEMA_PREFIX)
    workdir = Path(tempfile.mkdtemp(prefix="bench_activities_"))
    store: EventStore | None = None
    db: ReadModelDatabase | None = None
    try:
        store = open_event_store(benchlib.schema_url(args.postgres_url, schema), event_codec())
        print("setup: generating and loading the history ...", file=sys.stderr, flush=True)
        setup = run_setup(args, schema)
        vacuum_analyze(args.postgres_url, schema)
        print("measuring the rebuild ...", file=sys.stderr, flush=True)
        db = ReadModelDatabase(workdir / "rebuild.duckdb")
        rebuilt = measure_rebuild(store, db, args.page_size)
        print("measuring the queries ...", file=sys.stderr, flush=True)
        latencies = measure_queries(db, args.runs)
        print()
        print(report(args, setup, rebuilt, latencies))
    finally:
        if db is not None:
            db.close()
        if store is not None:
            store.close()
        benchlib.drop_schema(args.postgres_url, schema)
        benchlib.remove_tree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
