"""Projection rebuild of N events from PostgreSQL into DuckDB: events/s and peak RSS.

Setup (in a child process, so that it does not count in this process's peak RSS): a
realistic lead history is decided by the Lead decider, encoded with ``event_codec()``
and COPY-ed into the ``stored_events`` table of a fresh PostgreSQL schema (created by
opening the event store on that schema). Then, in this process:

1. ``projections.projector.rebuild()`` into a fresh DuckDB file: events/s, ru_maxrss of
   the process and the RSS growth during the rebuild (sampled every 20 ms), with a
   breakdown of where the time went;
2. a naive projection of a slice of the same log, one INSERT/UPDATE statement per event
   against DuckDB in autocommit mode: events/s, and the ratio of the two rates.

Nothing is cached between runs: the schema is dropped and the DuckDB files removed at the
end. Run from the project root:

    .venv/bin/python -m bench.bench_projection            # 1,000,000 events, ~150k leads
    .venv/bin/python -m bench.bench_projection --events 20000 --leads 3000
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import cProfile
import functools
import io
import multiprocessing
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import orjson
import psycopg
from psycopg import sql

from bench import benchlib
from event_store import EventStore, open_event_store
from leadledger.settings import Settings
from leadledger.wiring import event_codec, load_funnels, load_rules, read_model_projections
from projections.database import ReadModelDatabase
from projections.leads import LeadProjection
from projections.projector import rebuild

TARGET_EVENTS_PER_S = 100_000
TARGET_PEAK_RSS = 2**30
SCHEMA_PREFIX = "bench_projection_"

F = TypeVar("F", bound=Callable[..., Any])


# --- setup: generate and COPY, in a child process ----------------------------------------


def load_history(
    postgres_url: str, schema: str, events: int, leads: int, seed: int
) -> dict[str, Any]:
    """Generate ``events`` events and COPY them into ``schema.stored_events``."""
    funnels = load_funnels(Settings().funnels_file)
    codec = event_codec()
    history = benchlib.LeadHistory(funnels, leads=leads, events=events, seed=seed)
    topics: collections.Counter[str] = collections.Counter()
    state_bytes = 0
    started = time.perf_counter()
    table = sql.Identifier(schema, "stored_events")
    copy_sql = sql.SQL(
        "COPY {} (originator_id, originator_version, topic, state, notification_id) "
        "FROM STDIN (FORMAT BINARY)"
    ).format(table)
    position = 0
    first_at = last_at = None
    with psycopg.connect(postgres_url) as conn:
        with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            copy.set_types(["uuid", "int8", "text", "bytea", "int8"])
            for stream_id, version, event in history:
                position += 1
                topic = codec.topic(event)
                state = codec.encode(event)
                topics[topic] += 1
                state_bytes += len(state)
                copy.write_row((stream_id, version, topic, state, position))
                if first_at is None:
                    first_at = event.at
                last_at = event.at
        conn.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s)",
            [f'"{schema}".stored_events', max(position, 1)],
        )
        conn.commit()
    return {
        "events": position,
        "leads": history.created,
        "topics": dict(topics),
        "state_bytes": state_bytes,
        "seconds": time.perf_counter() - started,
        "first_at": first_at,
        "last_at": last_at,
        "peak_rss": benchlib.peak_rss(),
    }


def run_setup(args: argparse.Namespace, schema: str) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(
            load_history, args.postgres_url, schema, args.events, args.leads, args.seed
        )
        return future.result()


def vacuum_analyze(postgres_url: str, schema: str) -> tuple[float, int]:
    """VACUUM ANALYZE the loaded table (hint bits set, statistics fresh); seconds, bytes."""
    started = time.perf_counter()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(schema, "stored_events")))
        row = conn.execute(
            "SELECT pg_total_relation_size(%s)", [f'"{schema}".stored_events']
        ).fetchone()
    return time.perf_counter() - started, int(row[0]) if row else 0


# --- the batched rebuild -----------------------------------------------------------------


class PhaseTimer:
    """Wraps methods on instances (not classes) to add up the time spent in each."""

    def __init__(self) -> None:
        self.seconds: collections.defaultdict[str, float] = collections.defaultdict(float)
        self.calls: collections.Counter[str] = collections.Counter()

    def wrap(self, name: str, fn: F) -> F:
        @functools.wraps(fn)
        def timed(*a: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1

        return timed  # type: ignore[return-value]

    def instrument(self, obj: object, method: str, name: str) -> None:
        fn = getattr(obj, method, None)
        if callable(fn):
            setattr(obj, method, self.wrap(name, fn))


def measure_rebuild(
    store: EventStore, workdir: Path, page_size: int, profile: bool
) -> dict[str, Any]:
    settings = Settings()
    funnels = load_funnels(settings.funnels_file)
    projections = read_model_projections(
        funnels, load_rules(settings.funnels_file, settings.rules_file)
    )
    timer = PhaseTimer()
    # Instrument instances only, and only the methods that exist (the projector's
    # internals may change; the figures then just lose a line).
    reader = next(m for m in ("read_page", "read_rows", "read") if hasattr(store, m))
    timer.instrument(store, reader, "read")
    for projection in projections:
        timer.instrument(projection, "apply", "apply")
        timer.instrument(projection, "apply", f"apply:{projection.name}")
        # a derived model is derived once at the end of the rebuild instead
        timer.instrument(projection, "derive_all", "apply")
        timer.instrument(projection, "derive_all", f"derive_all:{projection.name}")
    db = ReadModelDatabase(workdir / "rebuild.duckdb")
    load_before = os.getloadavg()
    profiler = cProfile.Profile() if profile else None
    try:
        with benchlib.RssSampler() as rss:
            started = time.perf_counter()
            cpu_started = time.process_time()
            if profiler is not None:
                profiler.enable()
            projector = rebuild(store, db, projections, page_size=page_size)
            if profiler is not None:
                profiler.disable()
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu_started
        load = (load_before, os.getloadavg())
        cursor = db.cursor()
        leads_row = cursor.execute("SELECT count(*) FROM leads").fetchone()
        visits_row = cursor.execute("SELECT count(*) FROM lead_stage_visits").fetchone()
        cursor.close()
    finally:
        db.close()
    duckdb_bytes = sum(p.stat().st_size for p in workdir.glob("rebuild.duckdb*"))
    profile_text = ""
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        profile_text = out.getvalue()
    return {
        "events": projector.position,
        "seconds": seconds,
        "rss_baseline": rss.baseline,
        "rss_peak_sampled": rss.peak,
        "ru_maxrss": benchlib.peak_rss(),
        "leads_rows": leads_row[0] if leads_row else 0,
        "visit_rows": visits_row[0] if visits_row else 0,
        "duckdb_bytes": duckdb_bytes,
        "phases": dict(timer.seconds),
        "pages": max(timer.calls["read"] - 1, 0),  # the last read is empty
        "profile": profile_text,
        "load": load,
        "cpu_seconds": cpu_seconds,
    }


# --- the naive projection ----------------------------------------------------------------

_TAIL = "version = ?, updated_at = CAST(? AS TIMESTAMPTZ), last_position = ? WHERE lead_id = ?"
_NAIVE_UPDATES = {
    "LeadCostBreakdownSet": "amount = CAST(? AS DECIMAL(18,2)), cost_components = ?",
    "LeadStageChanged": (
        "stage = ?, stage_step = ?, furthest_step = greatest(coalesce(furthest_step, -1), ?), "
        "stage_entered_at = CAST(? AS TIMESTAMPTZ), visits = visits + 1"
    ),
    "LeadTransferred": (
        "funnel = ?, stage = ?, stage_step = ?, furthest_step = ?, "
        "stage_entered_at = CAST(? AS TIMESTAMPTZ), visits = visits + 1"
    ),
    "LeadPaused": "status = 'paused', pause_reason = ?, paused_since = CAST(? AS TIMESTAMPTZ)",
    "LeadResumed": "status = 'open', pause_reason = NULL, paused_since = NULL",
    "LeadAssessed": (
        "assessment_expert = ?, assessment_result = ?, assessment_hours = CAST(? AS DECIMAL), "
        "assessment_hours_total = assessment_hours_total + CAST(? AS DECIMAL), "
        "assessments = assessments + 1"
    ),
    "LeadQualified": (
        "quality = ?, qualification_reason = ?, "
        "status = CASE WHEN ? THEN status ELSE 'non_quality' END, "
        "closed_at = CASE WHEN ? THEN closed_at ELSE CAST(? AS TIMESTAMPTZ) END"
    ),
    "LeadClosed": (
        "status = ?, close_reason = ?, closed_at = CAST(? AS TIMESTAMPTZ), "
        "pause_reason = NULL, paused_since = NULL"
    ),
}
_NAIVE_INSERT = (
    "INSERT INTO leads (lead_id, funnel, stage, stage_step, furthest_step, status, repeat, "
    "title, company_name, company_id, source, manager, expert, need_maturity, answer_due, "
    "description, amount, cost_components, assessment_hours_total, assessments, created_at, "
    "created_by, updated_at, stage_entered_at, visits, version, last_position) VALUES "
    "(?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS DATE), ?, "
    "CAST(? AS DECIMAL(18,2)), '[]', 0, 0, CAST(? AS TIMESTAMPTZ), ?, CAST(? AS TIMESTAMPTZ), "
    "CAST(? AS TIMESTAMPTZ), 1, ?, ?)"
)


def _step(projection: LeadProjection, funnel: str, stage: str) -> int | None:
    known = projection.funnels.get(funnel)
    return None if known is None else known.step_of(stage)


def naive_statement(
    projection: LeadProjection,
    topic: str,
    lead_id: str,
    version: int,
    position: int,
    d: dict[str, Any],
) -> tuple[str, list[Any]] | None:
    """The one statement a naive projector runs for an event (None: not a lead event)."""
    at = d.get("at")
    tail = [version, at, position, lead_id]
    if topic == "LeadCreated":
        step = _step(projection, d["funnel"], d["stage"])
        return _NAIVE_INSERT, [
            lead_id,
            d["funnel"],
            d["stage"],
            step,
            step,
            d["repeat"],
            d["title"],
            d["company_name"],
            d["company_id"],
            d["source"],
            d["manager"],
            d["expert"],
            d["need_maturity"],
            d["answer_due"],
            d["description"],
            d["amount"],
            at,
            d["actor"],
            at,
            at,
            version,
            position,
        ]
    if topic == "LeadCardUpdated":
        fields = list(d["changes"])
        sets = ", ".join(
            f"{f} = CAST(? AS DECIMAL(18,2))"
            if f == "amount"
            else f"{f} = CAST(? AS DATE)"
            if f == "answer_due"
            else f"{f} = ?"
            for f in fields
        )
        values = [d["changes"][f]["new"] for f in fields]
        return f"UPDATE leads SET {sets}, {_TAIL}", [*values, *tail]
    head = _NAIVE_UPDATES.get(topic)
    if head is None:
        return None
    params: list[Any]
    if topic == "LeadCostBreakdownSet":
        params = [d["total"], orjson.dumps(d["components"]).decode()]
    elif topic == "LeadStageChanged":
        step = _step(projection, d["funnel"], d["to_stage"])
        params = [d["to_stage"], step, step, at]
    elif topic == "LeadTransferred":
        step = _step(projection, d["to_funnel"], d["to_stage"])
        params = [d["to_funnel"], d["to_stage"], step, step, at]
    elif topic == "LeadPaused":
        params = [d["reason"], at]
    elif topic == "LeadResumed":
        params = []
    elif topic == "LeadAssessed":
        params = [d["expert"], d["result"], d["hours"], d["hours"]]
    elif topic == "LeadQualified":
        params = [d["quality"], d["reason"], d["quality"], d["quality"], at]
    else:  # LeadClosed
        params = [d["outcome"], d["reason"], at]
    return f"UPDATE leads SET {head}, {_TAIL}", [*params, *tail]


def measure_naive(store: EventStore, workdir: Path, events: int) -> dict[str, Any]:
    """Read ``events`` events from the start of the log and apply one statement each."""
    projection = LeadProjection(load_funnels(Settings().funnels_file))
    path = workdir / "naive.duckdb"
    con = duckdb.connect(str(path))
    statements = 0
    topics: collections.Counter[str] = collections.Counter()
    topic_seconds: collections.defaultdict[str, float] = collections.defaultdict(float)
    try:
        con.execute("SET TimeZone = 'UTC'")
        projection.create_tables(con)
        started = time.perf_counter()
        done = 0
        while done < events:
            page = store.read(done, min(1000, events - done))
            if not page:
                break
            for n in page:
                topics[n.topic] += 1
                statement = naive_statement(
                    projection,
                    n.topic,
                    str(n.originator_id),
                    n.originator_version,
                    n.id,
                    orjson.loads(n.state),
                )
                if statement is not None:
                    begun = time.perf_counter()
                    con.execute(*statement)  # autocommit: one transaction per statement
                    topic_seconds[n.topic] += time.perf_counter() - begun
                    statements += 1
            done = page[-1].id
        seconds = time.perf_counter() - started
        row = con.execute("SELECT count(*) FROM leads").fetchone()
    finally:
        con.close()
    return {
        "events": done,
        "statements": statements,
        "seconds": seconds,
        "leads_rows": row[0] if row else 0,
        "topics": topics,
        "topic_seconds": topic_seconds,
    }


# --- report ------------------------------------------------------------------------------


def report(
    args: argparse.Namespace,
    setup: dict[str, Any],
    vacuum: tuple[float, int],
    rebuilt: dict[str, Any],
    naive: dict[str, Any],
) -> str:
    out: list[str] = []
    topics = setup["topics"]
    registered = topics.get("CompanyRegistered", 0)
    per_lead = (setup["events"] - registered) / max(1, setup["leads"])
    out.append(
        benchlib.table(
            "Setup: generated history, COPY-ed into PostgreSQL (child process)",
            ("what", "value"),
            [
                ("events", benchlib.count(setup["events"])),
                ("leads", benchlib.count(setup["leads"])),
                ("companies registered", benchlib.count(registered)),
                ("lead events per lead", f"{per_lead:.2f}"),
                ("history from", f"{setup['first_at']:%Y-%m-%d %H:%M}"),
                ("history to", f"{setup['last_at']:%Y-%m-%d %H:%M}"),
                ("mean JSON state bytes", f"{setup['state_bytes'] / max(1, setup['events']):.0f}"),
                ("generate + encode + COPY s", f"{setup['seconds']:.1f}"),
                (
                    "generate + encode + COPY events/s",
                    benchlib.count(setup["events"] / setup["seconds"]),
                ),
                ("VACUUM ANALYZE s", f"{vacuum[0]:.1f}"),
                ("table + indexes MiB", benchlib.mib(vacuum[1])),
                ("child peak RSS MiB", benchlib.mib(setup["peak_rss"])),
            ],
        )
    )
    out.append(
        benchlib.table(
            "Event mix",
            ("topic", "events", "share %"),
            [
                (t, benchlib.count(n), f"{100 * n / setup['events']:.1f}")
                for t, n in sorted(topics.items(), key=lambda kv: -kv[1])
            ],
        )
    )
    rate = rebuilt["events"] / rebuilt["seconds"]
    growth = rebuilt["rss_peak_sampled"] - rebuilt["rss_baseline"]
    out.append(
        benchlib.table(
            f"Rebuild into a fresh DuckDB file (page size {args.page_size:,})",
            ("what", "value", "target", "verdict"),
            [
                ("events", benchlib.count(rebuilt["events"]), "", ""),
                ("pages (the first an eighth, doubling)", benchlib.count(rebuilt["pages"]), "", ""),
                ("seconds", f"{rebuilt['seconds']:.2f}", "", ""),
                (
                    "events/s",
                    benchlib.count(rate),
                    f">= {TARGET_EVENTS_PER_S:,}",
                    "PASS" if rate >= TARGET_EVENTS_PER_S else "FAIL",
                ),
                (
                    "peak RSS of the process (ru_maxrss) MiB",
                    benchlib.mib(rebuilt["ru_maxrss"]),
                    "< 1024",
                    "PASS" if rebuilt["ru_maxrss"] < TARGET_PEAK_RSS else "FAIL",
                ),
                ("RSS before the rebuild MiB", benchlib.mib(rebuilt["rss_baseline"]), "", ""),
                (
                    "RSS peak during the rebuild MiB (sampled)",
                    benchlib.mib(rebuilt["rss_peak_sampled"]),
                    "",
                    "",
                ),
                ("RSS growth during the rebuild MiB", benchlib.mib(growth), "", ""),
                (
                    "leads rows",
                    benchlib.count(rebuilt["leads_rows"]),
                    "= leads created",
                    "ok" if rebuilt["leads_rows"] == topics.get("LeadCreated") else "MISMATCH",
                ),
                ("lead_stage_visits rows", benchlib.count(rebuilt["visit_rows"]), "", ""),
                ("DuckDB file MiB", benchlib.mib(rebuilt["duckdb_bytes"]), "", ""),
            ],
        )
    )
    phases = rebuilt["phases"]
    total = rebuilt["seconds"]
    apply = phases.get("apply", 0.0)
    rows: list[tuple[str, float | None]] = [
        ("whole rebuild (wall clock)", total),
        ("  reading pages from PostgreSQL (inside the read calls; *)", phases.get("read")),
        ("  outside apply and derive_all: waiting for pages, commit, drops", total - apply),
        ("  projection.apply and derive_all (set-based SQL in DuckDB)", apply),
    ]
    per_model = sorted(
        (
            (f"{k.split(':', 1)[1]}.{k.split(':', 1)[0]}", v)
            for k, v in phases.items()
            if k.startswith(("apply:", "derive_all:"))
        ),
        key=lambda kv: -kv[1],
    )
    rows += [(f"    {name}", s) for name, s in per_model]
    out.append(
        benchlib.table(
            "Where the rebuild's time went",
            ("phase", "seconds", "share %", "us/event"),
            [
                (name, "-", "-", "-")
                if s is None
                else (
                    name,
                    f"{s:.2f}",
                    f"{100 * s / total:.1f}",
                    f"{1e6 * s / max(1, rebuilt['events']):.2f}",
                )
                for name, s in rows
            ],
        )
        + "(*) the projector may read the next page in a second thread while it folds "
        "this one: then reading overlaps the other lines.\n"
        + "load average (1/5/15 min) before the rebuild: "
        + "/".join(f"{x:.2f}" for x in rebuilt["load"][0])
        + ", after it: "
        + "/".join(f"{x:.2f}" for x in rebuilt["load"][1])
        + "\n"
    )
    naive_rate = naive["events"] / naive["seconds"]
    out.append(
        benchlib.table(
            "Batched rebuild vs naive one-event-per-statement projection",
            ("projection", "events", "statements", "seconds", "events/s"),
            [
                (
                    "batched rebuild (one transaction per page)",
                    benchlib.count(rebuilt["events"]),
                    "-",
                    f"{rebuilt['seconds']:.2f}",
                    benchlib.count(rate),
                ),
                (
                    "naive: 1 INSERT/UPDATE per event, autocommit",
                    benchlib.count(naive["events"]),
                    benchlib.count(naive["statements"]),
                    f"{naive['seconds']:.2f}",
                    benchlib.count(naive_rate),
                ),
            ],
        )
    )
    out.append(
        benchlib.table(
            "Naive projection: one statement per event, by event type",
            ("topic", "events", "mean ms per statement"),
            [
                (
                    t,
                    benchlib.count(n),
                    benchlib.ms(naive["topic_seconds"][t] / n)
                    if t in naive["topic_seconds"]
                    else "-",
                )
                for t, n in naive["topics"].most_common()
            ],
        )
    )
    out.append(
        f"ratio batched/naive: {rate / naive_rate:,.1f}x  (naive slice = the first "
        f"{naive['events']:,} events of the log into an empty DuckDB file, `leads` table "
        "only: a best case for the naive projection)\n"
    )
    if rebuilt["profile"]:
        out.append("cProfile of the rebuild (top 25 by own time)\n" + rebuilt["profile"])
    return "\n".join(out)


# --- the same log rebuilt by another checkout's code, and the tables compared ----------

# Run with the other checkout first on the path: only the rebuild, as the projector's API
# has it on main (so a branch can be compared with main's code as it stands).
OTHER_REBUILD = """
import json, os, sys, time
from event_store import open_event_store
from leadledger.settings import Settings
from leadledger.wiring import event_codec, load_funnels, load_rules, read_model_projections
from projections.database import ReadModelDatabase
from projections.projector import rebuild
url, path, page_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
settings = Settings()
funnels = load_funnels(settings.funnels_file)
rules = load_rules(settings.funnels_file, settings.rules_file)
projections = read_model_projections(funnels, rules)
store = open_event_store(url, event_codec())
db = ReadModelDatabase(path)
load_before = os.getloadavg()
started, cpu_started = time.perf_counter(), time.process_time()
projector = rebuild(store, db, projections, page_size=page_size)
seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
print(json.dumps({"events": projector.position, "seconds": seconds, "cpu_seconds": cpu_seconds,
                  "load": [load_before, os.getloadavg()]}))
db.close()
store.close()
"""


def rebuild_with(checkout: Path, store_url: str, path: Path, page_size: int) -> dict[str, Any]:
    """Rebuild the log into ``path`` with the code of another checkout (a child process
    with that checkout first on the path); its figures as measured there."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    done = subprocess.run(
        [sys.executable, "-c", OTHER_REBUILD, store_url, str(path), str(page_size)],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the rebuild with {checkout} failed:\n{done.stderr[-4000:]}")
    figures: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
    return figures


def compare_tables(mine: Path, other: Path) -> list[tuple[str, int, int, int]]:
    """Every read-model table of both files: (table, rows here, rows only here, rows only
    there), compared row for row (``EXCEPT ALL`` both ways); -1 for a missing table."""
    con = duckdb.connect(str(mine), read_only=True)
    try:
        con.execute(f"ATTACH '{other}' AS other (READ_ONLY)")
        names = {
            db: {
                r[0]
                for r in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = ? "
                    "AND NOT temporary",
                    [db],
                ).fetchall()
            }
            for db in (con.execute("SELECT current_database()").fetchall()[0][0], "other")
        }
        here, there = names.values()
        rows = []
        for table in sorted((here | there) - {"read_model_fingerprints"}):
            if table not in here or table not in there:
                rows.append((table, -1, -1, -1))
                continue
            count = con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0]
            only_here = con.execute(
                f'SELECT count(*) FROM (FROM "{table}" EXCEPT ALL FROM other."{table}")'
            ).fetchall()[0][0]
            only_there = con.execute(
                f'SELECT count(*) FROM (FROM other."{table}" EXCEPT ALL FROM "{table}")'
            ).fetchall()[0][0]
            rows.append((table, int(count), int(only_here), int(only_there)))
        return rows
    finally:
        con.close()


def run_comparison(
    args: argparse.Namespace,
    store: EventStore,
    store_url: str,
    workdir: Path,
    first: dict[str, Any],
) -> tuple[str, bool]:
    """``--compare-with``: the same log rebuilt by the other checkout's code and by this
    one's, alternating (this one's first run is the measured rebuild above); then every
    table compared with the other code's. The report, and whether all tables are equal."""
    checkout = Path(args.compare_with).resolve()
    runs: list[tuple[str, dict[str, Any]]] = [("this checkout", first)]
    for round_no in range(args.compare_rounds):
        other_path = workdir / f"other{round_no}.duckdb"
        print(f"rebuilding with {checkout} ...", file=sys.stderr, flush=True)
        runs.append((str(checkout), rebuild_with(checkout, store_url, other_path, args.page_size)))
        if round_no + 1 < args.compare_rounds:
            for path in workdir.glob("rebuild.duckdb*"):
                path.unlink()
            print("rebuilding with this checkout ...", file=sys.stderr, flush=True)
            again = measure_rebuild(store, workdir, args.page_size, profile=False)
            runs.append(("this checkout", again))
    rows = [
        (
            code,
            f"{r['seconds']:.2f}",
            benchlib.count(r["events"] / r["seconds"]),
            f"{r['cpu_seconds']:.1f}",
            f"{r['load'][0][0]:.1f} / {r['load'][1][0]:.1f}",
        )
        for code, r in runs
    ]
    out = [
        benchlib.table(
            "Same log, same window, alternating: this checkout vs " + str(checkout),
            ("code", "seconds", "events/s", "CPU s (this process)", "load 1 min before / after"),
            rows,
        )
    ]
    compared = compare_tables(workdir / "rebuild.duckdb", workdir / "other0.duckdb")
    differing = [r for r in compared if r[2] or r[3] or r[1] < 0]
    out.append(
        benchlib.table(
            f"Tables compared row for row (EXCEPT ALL both ways): {len(compared)} tables, "
            f"{len(differing)} differing",
            ("table", "rows", "only here", "only there"),
            [(t, benchlib.count(n), str(a), str(b)) for t, n, a, b in differing]
            or [("(all equal)", "-", "-", "-")],
        )
    )
    return "\n".join(out), not differing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log")
    parser.add_argument("--leads", type=int, default=150_000, help="leads in the history")
    parser.add_argument("--page-size", type=int, default=200_000, help="rebuild page size")
    parser.add_argument("--naive-events", type=int, default=5_000, help="events in the naive slice")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument(
        "--postgres-url", default=benchlib.DEFAULT_POSTGRES_URL, help="PostgreSQL to use"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the rebuild and print the top entries"
    )
    parser.add_argument(
        "--compare-with",
        metavar="PATH",
        help="another checkout (e.g. /work/main): rebuild the same log with its code too, "
        "alternating, and compare every table row for row (exit 1 on a difference)",
    )
    parser.add_argument(
        "--compare-rounds", type=int, default=1, help="rebuilds with each code (--compare-with)"
    )
    args = parser.parse_args(argv)

    print(
        f"bench_projection: events={args.events:,} leads={args.leads:,} "
        f"page_size={args.page_size:,} naive_events={args.naive_events:,}",
        flush=True,
    )
    schema = benchlib.create_schema(args.postgres_url, SCHEMA_PREFIX)
    workdir = Path(tempfile.mkdtemp(prefix="bench_projection_"))
    store: EventStore | None = None
    equal = True
    try:
        store_url = benchlib.schema_url(args.postgres_url, schema)
        store = open_event_store(store_url, event_codec())
        print("setup: generating and loading the history ...", file=sys.stderr, flush=True)
        setup = run_setup(args, schema)
        vacuum = vacuum_analyze(args.postgres_url, schema)
        print("measuring the rebuild ...", file=sys.stderr, flush=True)
        rebuilt = measure_rebuild(store, workdir, args.page_size, args.profile)
        compared = ""
        if args.compare_with:
            compared, equal = run_comparison(args, store, store_url, workdir, rebuilt)
        print("measuring the naive projection ...", file=sys.stderr, flush=True)
        naive = measure_naive(store, workdir, min(args.naive_events, setup["events"]))
        print()
        print(report(args, setup, vacuum, rebuilt, naive))
        if compared:
            print(compared)
    finally:
        if store is not None:
            store.close()
        benchlib.drop_schema(args.postgres_url, schema)
        benchlib.remove_tree(workdir)
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
