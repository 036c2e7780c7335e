"""Funnel report latency with N leads in the read model (target: p95 < 50 ms).

The DuckDB ``leads`` table is created by ``LeadProjection.create_tables`` in a fresh file
and filled directly with a synthetic Arrow table of N rows: both funnels, stages decaying
along the funnel, statuses (open, paused, won, lost, non-quality), new vs repeat, amounts
spread over three orders of magnitude, created_at over 12 months. Then, on a cursor of
``ReadModelDatabase`` as the API uses it:

- ``queries.leads.funnel_report(cursor, funnel, from, to)``, for each funnel, over all
  time and over a 3-month and a 1-month period;
- ``queries.leads.list_leads`` with filters (first page, a deep page, a period);
- optionally the same through HTTP (``GET /reports/funnel``, ``GET /leads``) with
  FastAPI's TestClient on the app built by ``leadledger.wiring.build``.

The DuckDB file and the SQLite file the app needs are removed at the end. Run from the
project root:

    .venv/bin/python -m bench.bench_funnel_report            # 1,000,000 leads
    .venv/bin/python -m bench.bench_funnel_report --leads 50000 --runs 50
"""

from __future__ import annotations

import argparse
import functools
import math
import random
import sys
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from aggregates.funnels import Funnel, FunnelCatalog
from bench import benchlib
from leadledger.demo import EXPERTS, LOST_REASONS, MANAGERS, MATURITY, NON_QUALITY_REASONS, TITLES
from leadledger.settings import Settings
from leadledger.wiring import build, load_funnels
from projections.database import ReadModelDatabase
from projections.leads import LeadProjection
from queries import leads as lead_queries

TARGET_P95 = 0.050
END = datetime(2026, 11, 1, tzinfo=UTC)
"""The synthetic leads were created in the 12 months before this instant."""
US = 1_000_000


# --- the synthetic read model -----------------------------------------------------------


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * US)


CHUNK = 100_000


def synthetic_leads(funnels: FunnelCatalog, n: int, seed: int) -> pa.Table:
    """N rows of the ``leads`` read model with realistic distributions."""
    rng = random.Random(seed)
    chunks = []
    position = 0
    for start in range(0, n, CHUNK):
        chunk, position = _synthetic_chunk(funnels, rng, min(CHUNK, n - start), position)
        chunks.append(chunk)
    return pa.concat_tables(chunks)


def _synthetic_chunk(
    funnels: FunnelCatalog, rng: random.Random, n: int, position: int
) -> tuple[pa.Table, int]:
    """n rows, in Python lists turned into an Arrow table (chunked: memory stays small)."""
    end = _micros(END)
    span = 365 * 86400 * US
    day = 86400 * US
    funnel_ids = (
        ["out_of_court", "court"] if {"out_of_court", "court"} <= set(funnels) else list(funnels)
    )
    funnel_weights = [0.6, 0.4] if len(funnel_ids) == 2 else [1.0] * len(funnel_ids)
    # share of live leads by the step they are at: most stall early in the funnel
    step_weights = [0.30, 0.25, 0.18, 0.13, 0.09, 0.05, 0.03, 0.02]
    statuses = ["open", "paused", "won", "lost", "non_quality"]
    status_weights = [0.42, 0.05, 0.18, 0.25, 0.10]

    cols: dict[str, list[Any]] = {
        name: []
        for name in (
            "lead_id",
            "funnel",
            "stage",
            "stage_step",
            "furthest_step",
            "status",
            "repeat",
            "title",
            "company_name",
            "company_id",
            "source",
            "manager",
            "expert",
            "need_maturity",
            "answer_due",
            "description",
            "amount",
            "cost_components",
            "quality",
            "qualification_reason",
            "assessment_expert",
            "assessment_result",
            "assessment_hours",
            "assessment_hours_total",
            "assessments",
            "pause_reason",
            "paused_since",
            "close_reason",
            "closed_at",
            "created_at",
            "created_by",
            "updated_at",
            "stage_entered_at",
            "visits",
            "version",
            "last_position",
        )
    }
    chosen_funnels = rng.choices(funnel_ids, funnel_weights, k=n)
    chosen_status = rng.choices(statuses, status_weights, k=n)
    stage_cache: dict[str, Funnel] = {f: funnels[f] for f in funnel_ids}
    for i in range(n):
        f = stage_cache[chosen_funnels[i]]
        created = end - int(rng.random() * span)
        age_days = (end - created) / day
        status = chosen_status[i]
        if age_days < 30 and status in ("won", "lost") and rng.random() < 0.7:
            status = "open"  # young leads are mostly still open
        last_step = f.stages[-1].step
        if status == "won":
            step = last_step if rng.random() < 0.7 else max(0, last_step - 1)
        elif status == "non_quality":
            step = rng.choice((0, 1))
        else:
            step = min(last_step, rng.choices(range(len(step_weights)), step_weights)[0])
        candidates = [s for s in f.stages if s.step == step]
        stage = candidates[0] if len(candidates) == 1 or rng.random() < 0.75 else candidates[-1]
        furthest = min(last_step, step + (1 if rng.random() < 0.08 else 0))
        visits = step + 1 + (1 if furthest > step else 0) + (rng.random() < 0.1)
        amount_cents = int(math.exp(rng.gauss(math.log(15_000_000), 1.1)))
        assessed = step >= 1 and rng.random() < 0.85
        hours = Decimal(rng.randint(1, 64)).scaleb(-1) if assessed else None
        updated = min(end, created + int(rng.expovariate(1 / (20 * day))))
        stage_entered = created + int((updated - created) * rng.random())
        closed = status in ("won", "lost", "non_quality")
        version = visits + (2 if assessed else 0) + rng.randint(0, 4)
        position += version
        manager = rng.choice(MANAGERS)
        company_no = rng.randrange(600_000)
        cols["lead_id"].append(str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        cols["funnel"].append(f.id)
        cols["stage"].append(stage.id)
        cols["stage_step"].append(stage.step)
        cols["furthest_step"].append(furthest)
        cols["status"].append(status)
        cols["repeat"].append(rng.random() < 0.32)
        cols["title"].append(rng.choice(TITLES))
        cols["company_name"].append(f"Company {company_no}")
        cols["company_id"].append(f"INN{7700000000 + company_no}" if rng.random() < 0.85 else None)
        cols["source"].append("court_request" if f.id == "court" else "website")
        cols["manager"].append(manager)
        cols["expert"].append(rng.choice(EXPERTS) if rng.random() < 0.5 else None)
        cols["need_maturity"].append(rng.choice(MATURITY))
        cols["answer_due"].append((created + rng.randint(2, 21) * day) // day)
        cols["description"].append("Request received by phone; documents to follow")
        cols["amount"].append(Decimal(amount_cents).scaleb(-2))
        cols["cost_components"].append("[]")
        cols["quality"].append(
            False if status == "non_quality" else (True if assessed and step >= 2 else None)
        )
        cols["qualification_reason"].append(
            rng.choice(NON_QUALITY_REASONS) if status == "non_quality" else None
        )
        cols["assessment_expert"].append(rng.choice(EXPERTS) if assessed else None)
        cols["assessment_result"].append("feasible" if assessed else None)
        cols["assessment_hours"].append(hours)
        cols["assessment_hours_total"].append(hours if hours is not None else Decimal("0.00"))
        cols["assessments"].append(1 if assessed else 0)
        cols["pause_reason"].append("waiting for documents" if status == "paused" else None)
        cols["paused_since"].append(updated if status == "paused" else None)
        cols["close_reason"].append(rng.choice(LOST_REASONS) if status == "lost" else None)
        cols["closed_at"].append(updated if closed else None)
        cols["created_at"].append(created)
        cols["created_by"].append(manager)
        cols["updated_at"].append(updated)
        cols["stage_entered_at"].append(stage_entered)
        cols["visits"].append(visits)
        cols["version"].append(version)
        cols["last_position"].append(position)
    ts = pa.timestamp("us", tz="UTC")
    money = pa.decimal128(18, 2)
    types: dict[str, pa.DataType] = {
        "stage_step": pa.int32(),
        "furthest_step": pa.int32(),
        "assessments": pa.int32(),
        "visits": pa.int32(),
        "version": pa.int32(),
        "last_position": pa.int64(),
        "repeat": pa.bool_(),
        "quality": pa.bool_(),
        "answer_due": pa.date32(),
        "amount": money,
        "assessment_hours": money,
        "assessment_hours_total": money,
        "paused_since": ts,
        "closed_at": ts,
        "created_at": ts,
        "updated_at": ts,
        "stage_entered_at": ts,
    }
    table = pa.table(
        {name: pa.array(values, types.get(name, pa.string())) for name, values in cols.items()}
    )
    return table, position


def fill_read_model(path: Path, funnels: FunnelCatalog, leads: int, seed: int) -> dict[str, Any]:
    """Create the tables with the projection, insert the synthetic rows, checkpoint."""
    started = time.perf_counter()
    data = synthetic_leads(funnels, leads, seed)
    generated = time.perf_counter() - started
    db = ReadModelDatabase(path)
    try:
        cursor = db.cursor()
        LeadProjection(funnels).create_tables(cursor)
        columns = [r[0] for r in cursor.execute("DESCRIBE leads").fetchall()]
        known = [c for c in columns if c in data.column_names]
        unknown = [c for c in columns if c not in data.column_names]
        started = time.perf_counter()
        cursor.register("_synthetic_leads", data)
        names = ", ".join(known)
        cursor.execute(f"INSERT INTO leads ({names}) SELECT {names} FROM _synthetic_leads")
        cursor.unregister("_synthetic_leads")
        cursor.execute("CHECKPOINT")
        inserted = time.perf_counter() - started
        row = cursor.execute("SELECT count(*) FROM leads").fetchone()
        threads = cursor.execute("SELECT current_setting('threads')").fetchone()
        cursor.close()
    finally:
        db.close()
    return {
        "rows": row[0] if row else 0,
        "generate_s": generated,
        "insert_s": inserted,
        "unknown_columns": unknown,
        "threads": threads[0] if threads else "?",
        "file_bytes": sum(p.stat().st_size for p in path.parent.glob(path.name + "*")),
    }


# --- timing -----------------------------------------------------------------------------


def verdict(samples: list[float]) -> str:
    return "PASS" if benchlib.percentile(samples, 95) < TARGET_P95 else "FAIL"


def query_benchmarks(
    path: Path, funnels: FunnelCatalog, runs: int, warmup: int
) -> tuple[list[list[Any]], list[list[Any]], list[str]]:
    db = ReadModelDatabase(path)
    reports: list[list[Any]] = []
    lists: list[list[Any]] = []
    notes: list[str] = []
    periods: list[tuple[str, datetime | None, datetime | None]] = [
        ("all time", None, None),
        ("3 months", END - timedelta(days=91), END),
        ("1 month", END - timedelta(days=30), END),
    ]
    try:
        cursor = db.cursor()
        for funnel_id in funnels:
            funnel = funnels[funnel_id]
            for label, start, stop in periods:
                result = lead_queries.funnel_report(cursor, funnel, start, stop)
                samples = benchlib.timed(
                    functools.partial(lead_queries.funnel_report, cursor, funnel, start, stop),
                    runs,
                    warmup,
                )
                reports.append(
                    benchlib.latency_row(
                        f"funnel_report {funnel_id}, {label}",
                        samples,
                        (benchlib.count(result["totals"]["count"]), verdict(samples)),
                    )
                )
        manager = MANAGERS[0]
        filters = [
            (
                "funnel=out_of_court, status=open, page 1",
                lead_queries.LeadFilters(funnel="out_of_court", status="open"),
                50,
                0,
            ),
            (
                "funnel=court, stage=assessment, page 1",
                lead_queries.LeadFilters(funnel="court", stage="assessment"),
                50,
                0,
            ),
            (
                f"manager={manager}, created last month, page 1",
                lead_queries.LeadFilters(
                    manager=manager, created_from=END - timedelta(days=30), created_to=END
                ),
                50,
                0,
            ),
            (
                "funnel=out_of_court, status=open, offset 10,000",
                lead_queries.LeadFilters(funnel="out_of_court", status="open"),
                50,
                10_000,
            ),
            ("no filter, page 1", lead_queries.LeadFilters(), 50, 0),
        ]
        for label, lead_filters, limit, offset in filters:
            items, total = lead_queries.list_leads(cursor, lead_filters, limit, offset)
            samples = benchlib.timed(
                functools.partial(lead_queries.list_leads, cursor, lead_filters, limit, offset),
                runs,
                warmup,
            )
            lists.append(
                benchlib.latency_row(
                    f"list_leads {label}", samples, (benchlib.count(total), verdict(samples))
                )
            )
            if not items and total:
                notes.append(f"list_leads {label}: empty page")
        cursor.close()
    finally:
        db.close()
    return reports, lists, notes


def http_benchmarks(path: Path, workdir: Path, runs: int, warmup: int) -> list[list[Any]]:
    with warnings.catch_warnings():  # starlette's notice about httpx, not ours to act on
        warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient")
        from fastapi.testclient import TestClient  # dev dependency

    from read_api.app import create_app

    settings = Settings(event_store_url=f"sqlite:///{workdir}/events.sqlite", duckdb_path=path)
    platform = build(settings)
    app = create_app(platform, background=False)
    rows: list[list[Any]] = []
    month_ago = (END - timedelta(days=30)).isoformat()
    quarter_ago = (END - timedelta(days=91)).isoformat()
    requests = [
        ("GET /reports/funnel court, all time", "/reports/funnel", {"funnel": "court"}),
        (
            "GET /reports/funnel out_of_court, all time",
            "/reports/funnel",
            {"funnel": "out_of_court"},
        ),
        (
            "GET /reports/funnel out_of_court, 3 months",
            "/reports/funnel",
            {"funnel": "out_of_court", "from": quarter_ago, "to": END.isoformat()},
        ),
        (
            "GET /leads funnel=out_of_court&status=open",
            "/leads",
            {"funnel": "out_of_court", "status": "open"},
        ),
        (
            "GET /leads manager, created last month",
            "/leads",
            {"manager": MANAGERS[0], "from": month_ago, "to": END.isoformat()},
        ),
    ]
    with TestClient(app, headers=benchlib.top_management_headers(platform)) as client:
        for label, url, params in requests:
            response = client.get(url, params=params)
            if response.status_code != 200:
                raise RuntimeError(f"{label}: HTTP {response.status_code}: {response.text}")

            def call(u: str = url, p: dict[str, str] = params) -> None:
                client.get(u, params=p).raise_for_status()

            samples = benchlib.timed(call, runs, warmup)
            rows.append(benchlib.latency_row(label, samples, ("-", verdict(samples))))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--leads", type=int, default=1_000_000, help="rows in the leads table")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per query")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs before each")
    parser.add_argument("--seed", type=int, default=11, help="random seed")
    parser.add_argument(
        "--http",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the endpoints through FastAPI's TestClient (default: yes)",
    )
    args = parser.parse_args(argv)
    print(
        f"bench_funnel_report: leads={args.leads:,} runs={args.runs} warmup={args.warmup} "
        f"http={'yes' if args.http else 'no'}",
        flush=True,
    )
    funnels = load_funnels(Settings().funnels_file)
    workdir = Path(tempfile.mkdtemp(prefix="bench_funnel_report_"))
    path = workdir / "read_models.duckdb"
    try:
        print("filling the read model ...", file=sys.stderr, flush=True)
        filled = fill_read_model(path, funnels, args.leads, args.seed)
        print("timing the queries ...", file=sys.stderr, flush=True)
        reports, lists, notes = query_benchmarks(path, funnels, args.runs, args.warmup)
        http_rows = http_benchmarks(path, workdir, args.runs, args.warmup) if args.http else []
    finally:
        benchlib.remove_tree(workdir)

    print()
    print(
        benchlib.table(
            "Read model",
            ("what", "value"),
            [
                ("leads rows", benchlib.count(filled["rows"])),
                ("generate Arrow table s", f"{filled['generate_s']:.1f}"),
                ("insert + checkpoint s", f"{filled['insert_s']:.1f}"),
                ("DuckDB file MiB", benchlib.mib(filled["file_bytes"])),
                ("DuckDB threads", filled["threads"]),
                (
                    "columns left NULL (unknown to this script)",
                    ", ".join(filled["unknown_columns"]) or "none",
                ),
            ],
        )
    )
    headers = (*benchlib.LATENCY_HEADERS, "rows", "p95 < 50 ms")
    print(benchlib.table("Funnel report (queries.leads.funnel_report)", headers, reports))
    print(
        benchlib.table(
            "Lead list (queries.leads.list_leads, limit 50; no target in the issue, "
            "50 ms shown for comparison)",
            headers,
            lists,
        )
    )
    if http_rows:
        print(benchlib.table("Through HTTP (FastAPI TestClient, in-process)", headers, http_rows))
    for note in notes:
        print("note:", note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
