"""The sales pack's latency (issue 16 §1) at 1M leads and 10,000 projects (target: p95 <
50 ms per report).

The read models are created by the platform (every projection's tables) in a fresh file;
``leads`` is filled with the funnel bench's synthetic rows (``bench_funnel_report``), then,
in DuckDB: the quality leads get the moment they were found quality, a share of them a
deal (``deals``: won, lost or open, with a proposal recorded), the won deals a project
(``projects``, up to --projects, most of them delivered over two years), and the
managers a department in ``users``. Then, on a cursor as the API uses it, each report's
query over all time and over a quarter, and (``--http``) the endpoints through FastAPI's
TestClient as top management. Run from the project root:

    .venv/bin/python -m bench.bench_sales_pack                 # 1,000,000 leads
    .venv/bin/python -m bench.bench_sales_pack --leads 50000 --runs 30
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import benchlib
from bench.bench_funnel_report import END, fill_read_model, verdict
from leadledger.demo import MANAGERS
from leadledger.settings import Settings
from leadledger.wiring import build, load_funnels
from projections.cohorts import CohortProjection
from projections.database import ReadModelDatabase
from projections.lead_days import LeadDayProjection
from queries import conversion, sales, sales_stats

DEPARTMENTS = ("sales", "b2b", "retail")


def derive_records(path: Path, projects: int) -> dict[str, int]:
    """Deals and projects from the synthetic leads, and the managers' departments."""
    db = ReadModelDatabase(path)
    try:
        cursor = db.cursor()
        cursor.execute(
            "UPDATE leads SET qualified_at ="
            " created_at + to_seconds((hash(lead_id) % 864000)::BIGINT) WHERE quality"
        )
        cursor.execute(
            "UPDATE leads SET deal_id = 'd-' || lead_id WHERE quality AND hash(lead_id) % 4 = 0"
        )
        cursor.execute(
            "INSERT INTO deals (deal_id, funnel, stage, status, title, company_name, source,"
            " manager, amount, lead_id, proposal_total, proposal_services, proposal_at,"
            " created_at, closed_at, version)"
            " SELECT deal_id, 'turnkey', 'new',"
            " CASE hash(lead_id) % 3 WHEN 0 THEN 'won' WHEN 1 THEN 'lost' ELSE 'open' END,"
            " title, company_name, source, manager, amount, lead_id, amount, 1,"
            " qualified_at + INTERVAL 2 DAY, qualified_at + INTERVAL 1 DAY,"
            " CASE WHEN hash(lead_id) % 3 < 2 THEN qualified_at + INTERVAL 20 DAY END, 1"
            " FROM leads WHERE deal_id IS NOT NULL"
        )
        cursor.execute(
            "INSERT INTO projects (project_id, title, company_name, amount, lead_id, deal_id,"
            " funnel, manager, department, status, status_entered_at, created_at, version)"
            " SELECT 'p-' || deal_id, title, company_name, amount, lead_id, deal_id, funnel,"
            " manager, CASE hash(deal_id) % 2 WHEN 0 THEN 'production' ELSE 'logistics' END,"
            " CASE WHEN hash(deal_id) % 5 = 0 THEN 'in_production' ELSE 'done' END,"
            " closed_at + to_days((hash(deal_id) % 60)::INTEGER), closed_at + INTERVAL 1 DAY, 1"
            " FROM deals WHERE status = 'won' ORDER BY deal_id LIMIT ?",
            [projects],
        )
        cursor.execute(
            "UPDATE deals SET project_id = 'p-' || deal_id WHERE deal_id IN"
            " (SELECT deal_id FROM projects)"
        )
        cursor.executemany(
            "INSERT INTO users (username, name, role, department, active) VALUES (?, ?, ?, ?, ?)",
            [
                (m, m, "manager", DEPARTMENTS[n % len(DEPARTMENTS)], True)
                for n, m in enumerate(MANAGERS)
            ],
        )
        # the cohorts' read models, derived from the records as the projector folds them
        started = time.perf_counter()
        CohortProjection().derive_all(cursor)
        print(
            f"lead_cohorts and cohort_months derived in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        # the leads of each day, counted by the projection's own statement
        started = time.perf_counter()
        LeadDayProjection().derive_all(cursor)
        print(
            f"lead_days derived in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        cursor.execute("CHECKPOINT")
        counts = {
            table: int((cursor.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,))[0])
            for table in (
                "leads",
                "deals",
                "projects",
                "users",
                "lead_cohorts",
                "cohort_months",
                "lead_days",
            )
        }
        cursor.close()
    finally:
        db.close()
    return counts


def reports(cursor: Any) -> list[tuple[str, Callable[[], Any]]]:
    quarter = (END - timedelta(days=91), END)
    calls: list[tuple[str, Callable[[], Any]]] = []
    # a period whose bounds cut their days (read from the leads, not from lead_days)
    cut = (END - timedelta(days=91, hours=5), END - timedelta(hours=3))
    periods = (("all time", (None, None)), ("3 months", quarter), ("3 months, cut days", cut))
    for label, (start, stop) in periods:
        for split in ("month", "department", "source"):
            # the old query (every lead of the period) beside the days' read model
            for stored, how in ((False, "old: every lead"), (True, "lead_days")):
                calls.append(
                    (
                        f"leads_period split={split}, {label} ({how})",
                        functools.partial(
                            sales.leads_period,
                            cursor,
                            funnel=None,
                            split=split,
                            start=start,
                            end=stop,
                            limit=50,
                            offset=0,
                            stored=stored,
                        ),
                    )
                )
        if label == "3 months, cut days":
            continue
        calls += [
            (
                f"proposals, {label}",
                functools.partial(sales.proposals, cursor, funnel=None, start=start, end=stop),
            ),
            (
                f"average_check split=department, {label}",
                functools.partial(
                    sales.average_check,
                    cursor,
                    funnel=None,
                    split="department",
                    start=start,
                    end=stop,
                ),
            ),
            (
                f"conversion_cohorts, {label}",
                functools.partial(
                    conversion.conversion_cohorts, cursor, funnel=None, start=start, end=stop
                ),
            ),
        ]
    calls.append(
        (
            "delivered_sales (year, forecast, backtest)",
            functools.partial(
                sales_stats.delivered_sales,
                cursor,
                done_status="done",
                year=END.year,
                as_of=END,
                funnel=None,
                department=None,
            ),
        )
    )
    return calls


def query_benchmarks(path: Path, runs: int, warmup: int) -> list[list[Any]]:
    db = ReadModelDatabase(path)
    rows: list[list[Any]] = []
    try:
        cursor = db.cursor()
        baseline = benchlib.timed(
            lambda: cursor.execute(
                "SELECT count(*) FROM leads WHERE funnel = 'out_of_court'"
            ).fetchall(),
            runs,
            warmup,
        )
        rows.append(
            benchlib.latency_row("baseline: count(*) of leads in a funnel", baseline, ("",))
        )
        for label, call in reports(cursor):
            samples = benchlib.timed(call, runs, warmup)
            # an "(old: ...)" row times the way before the read model, for comparison: it
            # is no path anyone calls, so it is not judged
            judged = "reference" if "(old" in label else verdict(samples)
            rows.append(benchlib.latency_row(label, samples, (judged,)))
        cursor.close()
    finally:
        db.close()
    return rows


HTTP: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("GET /reports/leads-period?split=month", "/reports/leads-period", {"split": "month"}),
    (
        "GET /reports/leads-period?split=department",
        "/reports/leads-period",
        {"split": "department"},
    ),
    ("GET /reports/proposals", "/reports/proposals", {}),
    ("GET /reports/average-check", "/reports/average-check", {}),
    ("GET /reports/conversion-cohorts", "/reports/conversion-cohorts", {}),
    (
        "GET /reports/delivered-sales",
        "/reports/delivered-sales",
        {"year": str(END.year), "as_of": END.date().isoformat()},
    ),
)


def http_benchmarks(path: Path, workdir: Path, runs: int, warmup: int) -> list[list[Any]]:
    with warnings.catch_warnings():  # starlette's notice about httpx, not ours to act on
        warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient")
        from fastapi.testclient import TestClient  # dev dependency

    from read_api.app import create_app

    settings = Settings(event_store_url=f"sqlite:///{workdir}/events.sqlite", duckdb_path=path)
    platform = build(settings)
    app = create_app(platform, background=False)
    rows: list[list[Any]] = []
    with TestClient(app, headers=benchlib.top_management_headers(platform)) as client:
        for label, url, params in HTTP:
            response = client.get(url, params=params)
            if response.status_code != 200:
                raise RuntimeError(f"{label}: HTTP {response.status_code}: {response.text}")

            def call(u: str = url, p: dict[str, str] = params) -> None:
                client.get(u, params=p).raise_for_status()

            samples = benchlib.timed(call, runs, warmup)
            rows.append(benchlib.latency_row(label, samples, (verdict(samples),)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--leads", type=int, default=1_000_000, help="rows in the leads table")
    parser.add_argument("--projects", type=int, default=10_000, help="projects at most")
    parser.add_argument("--runs", type=int, default=100, help="timed runs per query")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before each")
    parser.add_argument("--seed", type=int, default=11, help="random seed")
    parser.add_argument(
        "--http",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the endpoints through FastAPI's TestClient (default: yes)",
    )
    args = parser.parse_args(argv)
    load_before = _load()
    print(
        f"bench_sales_pack: leads={args.leads:,} projects<={args.projects:,} runs={args.runs} "
        f"warmup={args.warmup} http={'yes' if args.http else 'no'}",
        flush=True,
    )
    settings = Settings()
    funnels = load_funnels(settings.funnels_file)
    workdir = Path(tempfile.mkdtemp(prefix="bench_sales_pack_"))
    path = workdir / "read_models.duckdb"
    try:
        print("creating the read models ...", file=sys.stderr, flush=True)
        build(
            Settings(event_store_url=f"sqlite:///{workdir}/events.sqlite", duckdb_path=path)
        ).close()
        fill_read_model(path, funnels, args.leads, args.seed)
        counts = derive_records(path, args.projects)
        print("timing the queries ...", file=sys.stderr, flush=True)
        query_rows = query_benchmarks(path, args.runs, args.warmup)
        http_rows = http_benchmarks(path, workdir, args.runs, args.warmup) if args.http else []
    finally:
        benchlib.remove_tree(workdir)

    print()
    print(benchlib.table("Read model", ("table", "rows"), list(counts.items())))
    headers = (*benchlib.LATENCY_HEADERS, "p95 < 50 ms")
    print(
        benchlib.table(
            "Sales pack queries (queries.sales, conversion, sales_stats)", headers, query_rows
        )
    )
    if http_rows:
        print(benchlib.table("Through HTTP (FastAPI TestClient, in-process)", headers, http_rows))
    print(f"load average (1/5/15 min) before: {load_before}, at the end: {_load()}")
    return 0


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
