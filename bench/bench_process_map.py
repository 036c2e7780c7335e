"""Process map latency with N leads' stage visits (target: p95 < 50 ms), and the process
log export's rate.

The read models are created by the projections' own ``create_tables`` in a fresh DuckDB
file; ``leads``, ``users`` and ``lead_stage_visits`` are filled in SQL inside DuckDB
(seeded ``random()``): N leads over 12 months, 60% out-of-court / 40% court, ten managers
in two departments; each lead walks its funnel forward 1 to 6 stages (most stall early),
one in ten moves back once (rework), 40% are closed; times in a stage are exponential
(mean 3 days). That is about 2.5 visits per lead. Then, on a ``ReadModelDatabase``
cursor as the API uses it:

- ``queries.process_map.process_map`` for the out-of-court funnel over 1 month, 3 months
  and 12 months of creation (12 months also as 12 whole months, 6 months cut mid-month,
  and for one department: read from the months read model, projections/
  process_months.py), over 1 month for one department, and the year read from the
  process visits (``months=False``, as before the months) in the same run;
- the export: XES of the out-of-court leads (all of them) and OCEL 2.0 JSON of every
  record, written to /dev/null: events per second.

Run from the project root:

    .venv/bin/python -m bench.bench_process_map                 # 1,000,000 leads
    .venv/bin/python -m bench.bench_process_map --leads 100000 --runs 30
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import benchlib
from leadledger.settings import Settings
from leadledger.wiring import load_funnels, load_rules, read_model_projections
from projections.database import ReadModelDatabase
from projections.process import ProcessVisitProjection
from projections.process_months import ProcessMonthProjection
from queries import process_log
from queries.process_map import ProcessMapFilters, StageInfo, process_map

TARGET_P95 = 0.050
END = datetime(2026, 11, 1, tzinfo=UTC)
"""The synthetic leads were created in the 12 months before this instant."""
MANAGERS = [f"manager.{i}" for i in range(10)]

FILL_SQL = """
SELECT setseed(0.42);
INSERT INTO users (username, name, role, department, active)
SELECT m, m, 'manager', CASE WHEN i % 2 = 0 THEN 'sales' ELSE 'retail' END, TRUE
FROM (SELECT unnest($managers) AS m, generate_subscripts($managers, 1) AS i);
CREATE TEMP TABLE _synthetic AS
SELECT i, 'lead-' || lpad(i::VARCHAR, 8, '0') AS lead_id,
  CASE WHEN random() < 0.6 THEN 'out_of_court' ELSE 'court' END AS funnel,
  $managers[1 + (hash(i) % 10)::INTEGER] AS manager,
  $end::TIMESTAMPTZ - to_microseconds((random() * 365 * 86400 * 1e6)::BIGINT) AS created_at,
  -- visits: 1 to 6 forward (most stall early), 2 more for a lead that moves back once
  least(6, 1 + floor(-ln(1 - random()) * 1.4)::INTEGER) AS forward,
  random() < 0.1 AS rework,
  random() < 0.4 AS closed
FROM range($leads) t(i);
CREATE TEMP TABLE _stages AS
SELECT * FROM (VALUES {stages}) s(funnel, idx, stage);
CREATE TEMP TABLE _visits AS
WITH walked AS (
  SELECT s.lead_id, s.funnel, s.created_at, s.closed, j + 1 AS visit_no,
    CASE WHEN NOT s.rework OR s.forward < 3 THEN j
      WHEN j <= 2 THEN j WHEN j = 3 THEN 1 ELSE j - 2 END AS idx,
    CASE WHEN s.rework AND s.forward >= 3 THEN s.forward + 2 ELSE s.forward END AS visits,
    (-ln(1 - random()) * 3 * 86400 * 1e6)::BIGINT AS spent
  FROM _synthetic s, range(0, 8) r(j)
  WHERE j < CASE WHEN s.rework AND s.forward >= 3 THEN s.forward + 2 ELSE s.forward END
),
timed AS (
  SELECT *, created_at + to_microseconds(coalesce(sum(spent) OVER (PARTITION BY lead_id
    ORDER BY visit_no ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::BIGINT)
    AS entered_at
  FROM walked
)
SELECT t.lead_id, t.visit_no, t.funnel, g.stage, t.entered_at,
  CASE WHEN t.visit_no < t.visits OR t.closed
    THEN t.entered_at + to_microseconds(t.spent) END AS left_at,
  t.closed AND t.visit_no = t.visits AS closing
FROM timed t JOIN _stages g ON g.funnel = t.funnel AND g.idx = t.idx;
INSERT INTO leads (lead_id, funnel, stage, status, manager, created_at, closed_at, source)
SELECT s.lead_id, s.funnel, v.stage, CASE WHEN s.closed THEN 'lost' ELSE 'open' END,
  s.manager, s.created_at, CASE WHEN s.closed THEN v.left_at END, 'website'
FROM _synthetic s JOIN _visits v ON v.lead_id = s.lead_id AND (v.closing OR v.left_at IS NULL);
INSERT INTO lead_stage_visits (lead_id, visit_no, funnel, stage, entered_at, left_at,
  paused_seconds)
SELECT lead_id, visit_no, funnel, stage, entered_at, left_at, 0 FROM _visits
ORDER BY lead_id, visit_no;
DROP TABLE _synthetic; DROP TABLE _stages; DROP TABLE _visits;
"""


def fill_read_models(path: Path, leads: int) -> dict[str, Any]:
    funnels = load_funnels(Settings().funnels_file)
    rules = load_rules(Settings().funnels_file, Settings().rules_file)
    db = ReadModelDatabase(path)
    try:
        cursor = db.cursor()
        for projection in read_model_projections(funnels, rules):
            projection.create_tables(cursor)
        stages = ", ".join(
            f"('{f.id}', {i}, '{s.id}')"
            for f in funnels.values()
            for i, s in enumerate(f.stages[:6])
        )
        started = time.perf_counter()
        for statement in FILL_SQL.format(stages=stages).split(";\n"):
            if statement.strip():
                cursor.execute(
                    statement,
                    {
                        k: v
                        for k, v in (("managers", MANAGERS), ("end", END), ("leads", leads))
                        if f"${k}" in statement
                    },
                )
        visits_filled = time.perf_counter()
        # the process map's read model, derived from the visits as the projector does
        ProcessVisitProjection().derive_all(cursor)
        derived = time.perf_counter()
        # and the months of a long period's map, derived from those
        ProcessMonthProjection().derive_all(cursor)
        months = time.perf_counter()
        cursor.execute("CHECKPOINT")
        visits = cursor.execute("SELECT count(*) FROM lead_stage_visits").fetchall()[0]
        return {
            "leads": leads,
            "visits": visits[0] if visits else 0,
            "fill_seconds": visits_filled - started,
            "derive_seconds": derived - visits_filled,
            "months_seconds": months - derived,
            "funnels": funnels,
        }
    finally:
        db.close()


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--no-export", action="store_true", help="skip the export's rate")
    args = parser.parse_args(argv)
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="bench-process-map-") as tmp:
        path = Path(tmp) / "read_models.duckdb"
        filled = fill_read_models(path, args.leads)
        print(
            f"{benchlib.count(filled['leads'])} leads, {benchlib.count(filled['visits'])} "
            f"visits filled in {filled['fill_seconds']:.1f} s, the process read model "
            f"derived from them in {filled['derive_seconds']:.1f} s, its months in "
            f"{filled['months_seconds']:.1f} s",
            flush=True,
        )
        funnel = filled["funnels"]["out_of_court"]
        stages = [StageInfo(s.id, s.name, s.step) for s in funnel.stages]
        db = ReadModelDatabase(path)
        try:
            cursor = db.cursor()
            # "now": just after the last move of the synthetic history (the API asks the
            # map as of now, after every visit)
            last = cursor.execute(
                "SELECT max(greatest(entered_at, coalesce(left_at, entered_at)))"
                " FROM lead_stage_visits"
            ).fetchall()[0][0]
            as_of = max(last, END) + timedelta(seconds=1)
            month = END - timedelta(days=30)
            year = datetime(2025, 11, 1, tzinfo=UTC)
            cases: list[tuple[str, datetime | None, str | None, bool, bool, int]] = [
                ("out_of_court, 1 month", month, None, True, True, args.runs),
                ("out_of_court, 3 months", END - timedelta(days=91), None, True, True, args.runs),
                ("out_of_court, 12 months", None, None, True, True, args.runs),
                ("out_of_court, 12 whole months", year, None, True, True, args.runs),
                (
                    "out_of_court, 6 months (cut)",
                    END - timedelta(days=182),
                    None,
                    True,
                    True,
                    args.runs,
                ),
                ("out_of_court, 12 months, one department", None, "sales", True, True, args.runs),
                ("out_of_court, 1 month, one department", month, "sales", True, True, args.runs),
                # the year from the process visits, as before the months read model
                ("12 months from the process visits (before)", None, None, True, False, 20),
                # the same map gathered from the visits, as before the read model
                ("1 month, gathered from the visits (old)", month, None, False, True, 5),
            ]
            rows = []
            baseline = benchlib.timed(
                lambda: cursor.execute(
                    "SELECT count(*) FROM leads WHERE funnel = 'out_of_court'"
                ).fetchall(),
                args.runs,
                args.warmup,
            )
            base_p50 = benchlib.percentile(baseline, 50)
            rows.append(
                [
                    *benchlib.latency_row("baseline: count(*) of leads in a funnel", baseline),
                    "",
                    "",
                    "1.0",
                ]
            )
            for name, start, department, stored, by_month, runs in cases:
                filters = ProcessMapFilters(
                    "lead", "out_of_court", as_of, start=start, end=END, department=department
                )
                result: dict[str, Any] = {}

                def run(
                    f: ProcessMapFilters = filters,
                    out: dict[str, Any] = result,
                    stored: bool = stored,
                    by_month: bool = by_month,
                ) -> None:
                    out.update(
                        process_map(
                            cursor, f, stages, stored=stored, months=None if by_month else False
                        )
                    )

                samples = benchlib.timed(run, runs, min(args.warmup, runs))
                p95 = benchlib.percentile(samples, 95)
                rows.append(
                    benchlib.latency_row(
                        name,
                        samples,
                        (
                            benchlib.count(result["records"]),
                            "yes" if p95 < TARGET_P95 else "NO",
                            f"{benchlib.percentile(samples, 50) / base_p50:.1f}",
                        ),
                    )
                )
            print(
                benchlib.table(
                    "process map (queries.process_map.process_map)",
                    [
                        "what",
                        "runs",
                        "p50 ms",
                        "p95 ms",
                        "p99 ms",
                        "max ms",
                        "mean ms",
                        "records",
                        "p95 < 50 ms",
                        "p50 / baseline",
                    ],
                    rows,
                ),
                flush=True,
            )
            print(f"load average before: {load_before}, at the end: {_load()}", flush=True)
            if not args.no_export:
                export_rows = []
                with open("/dev/null", "wb") as sink:
                    for name, produce, events in (
                        (
                            "XES, out_of_court leads",
                            lambda: process_log.xes(cursor, "lead", "out_of_court"),
                            "SELECT count(*) FROM lead_stage_visits WHERE funnel = 'out_of_court'",
                        ),
                        (
                            "OCEL 2.0 JSON, every record",
                            lambda: process_log.ocel_json(cursor),
                            "SELECT (SELECT count(*) FROM lead_stage_visits)"
                            " + (SELECT count(*) FROM leads WHERE closed_at IS NOT NULL)",
                        ),
                    ):
                        n = cursor.execute(events).fetchall()[0][0]
                        written = 0
                        started = time.perf_counter()
                        for chunk in produce():
                            data = chunk.encode() if isinstance(chunk, str) else chunk
                            written += len(data)
                            sink.write(data)
                        seconds = time.perf_counter() - started
                        export_rows.append(
                            [
                                name,
                                benchlib.count(n),
                                f"{seconds:.1f}",
                                benchlib.count(n / seconds),
                                benchlib.mib(written),
                            ]
                        )
                print(
                    benchlib.table(
                        "process log export (streamed to /dev/null)",
                        ["what", "events", "seconds", "events/s", "MiB"],
                        export_rows,
                    ),
                    flush=True,
                )
        finally:
            db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
