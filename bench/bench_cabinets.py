"""Latency of the two cabinets and the sales indicators (target: p95 < 50 ms each).

Two data sets, each on a fresh embedded store and DuckDB file:

- ``demo``: ``serve --demo``'s data (2,000 leads, 40 deals with their hand-offs, the
  demo's people in their regions and cities, their plans);
- ``scale``: the demo's people plus 100 synthetic managers (5 regions, 20 cities) with
  two years of read-model rows written directly into DuckDB: 200,000 leads over 30,000
  companies (and each company's first lead), 60,000 deals (open, won, lost over every
  stage), 40,000 invoices on the won ones and a plan per manager and month (2,400).

Every endpoint is asked for through the app in process (FastAPI's TestClient, bearer
tokens: the time is the server's handling of the request) as top management, the head of
sales (their department: everyone) and one manager: ``/cabinets/manager``,
``/cabinets/sales`` (and its drill-down), ``/reports/new-leads``, ``new-clients``,
``dormant-clients``, ``invoices`` and ``deals-in-work``. Any answer other than 200 fails
the run (exit 1). Run from the project root:

    .venv/bin/python -m bench.bench_cabinets                 # demo and scale, 30 runs each
    .venv/bin/python -m bench.bench_cabinets --sets scale --runs 50
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from aggregates.users import Principal, Role
from bench import benchlib
from leadledger.demo import MANAGERS, SALES_HEAD, load_demo, load_demo_deals, load_demo_users
from leadledger.settings import Settings
from leadledger.wiring import Platform, build
from read_api.app import create_app

TARGET_P95 = 0.050
NOW = datetime(2026, 11, 16, 12, 0, tzinfo=UTC)
SYNTHETIC_MANAGERS = 100
LEADS = 200_000
DEALS = 60_000
INVOICES = 40_000
COMPANIES = 30_000
DAYS = 730


def fill_scale(platform: Platform) -> None:
    """Two years of synthetic rows for 100 managers, written straight into the read
    models (the projector made the tables; no events stand behind these rows)."""
    cursor = platform.db.cursor()
    end = NOW.replace(tzinfo=None)
    stages = [(f.id, s.id) for f in platform.rules.deal_funnels.values() for s in f.stages]
    try:
        cursor.execute("BEGIN TRANSACTION")
        cursor.execute(
            "INSERT INTO users (username, name, role, department, region, city, active,"
            " created_at, version) SELECT printf('m%03d', i), printf('Manager %03d', i),"
            " 'manager', 'sales', printf('Region %d', i % 5), printf('City %02d', i % 20),"
            " true, ?::TIMESTAMPTZ, 1 FROM range(?) AS t(i)",
            [end - timedelta(days=DAYS), SYNTHETIC_MANAGERS],
        )
        cursor.execute(
            "INSERT INTO leads (lead_id, funnel, stage, status, title, company_name, company_id,"
            " source, manager, amount, currency, created_at, version, last_position)"
            " SELECT printf('00000000-0000-4000-8000-%012d', i), 'out_of_court', 'new',"
            " (['open', 'won', 'lost', 'paused'])[i % 4 + 1], 'Synthetic lead',"
            " printf('Company %05d', i % ?), printf('co-%05d', i % ?), 'website',"
            " printf('m%03d', i % ?), (i % 997) * 1000, 'RUB',"
            " (?::TIMESTAMP - to_seconds((i * ?)::BIGINT // ?))::TIMESTAMPTZ, 1, 0"
            " FROM range(?) AS t(i)",
            [COMPANIES, COMPANIES, SYNTHETIC_MANAGERS, end, DAYS * 86400, LEADS, LEADS],
        )
        cursor.execute(
            "INSERT INTO deals (deal_id, funnel, stage, status, title, company_name, company_id,"
            " manager, amount, created_at, closed_at, open_requests, version, last_position)"
            " SELECT printf('00000000-0000-4000-9000-%012d', i),"
            " (?::VARCHAR[])[i % ? + 1], (?::VARCHAR[])[i % ? + 1],"
            " (['open', 'won', 'won', 'lost'])[i % 4 + 1], 'Synthetic deal',"
            " printf('Company %05d', i % ?), printf('co-%05d', i % ?), printf('m%03d', i % ?),"
            " (i % 991) * 1500,"
            " (?::TIMESTAMP - to_seconds((i * ?)::BIGINT // ?))::TIMESTAMPTZ,"
            " CASE WHEN i % 4 = 0 THEN NULL ELSE"
            " (?::TIMESTAMP - to_seconds((i * ?)::BIGINT // ?) + INTERVAL 20 DAY)::TIMESTAMPTZ"
            " END, 0, 1, 0 FROM range(?) AS t(i)",
            [
                [f for f, _ in stages],
                len(stages),
                [s for _, s in stages],
                len(stages),
                COMPANIES,
                COMPANIES,
                SYNTHETIC_MANAGERS,
                end,
                DAYS * 86400,
                DEALS,
                end - timedelta(days=20),
                DAYS * 86400,
                DEALS,
                DEALS,
            ],
        )
        cursor.execute(
            "INSERT INTO deal_invoices (deal_id, manager, company_id, company_name, number,"
            " amount, issued_on, prepayment, organisation, approval, issued_at, issued_by,"
            " position) SELECT deal_id, manager, company_id, company_name, 'INV-' || deal_id,"
            " amount, closed_at::DATE, false, 'main',"
            " 'not_required', closed_at, manager, 0 FROM deals"
            " WHERE status = 'won' LIMIT ?",
            [INVOICES],
        )
        cursor.execute(
            "INSERT INTO client_first_leads SELECT company_id, arg_min(company_name,"
            " created_at), arg_min(lead_id, created_at), arg_min(manager, created_at),"
            " min(created_at), 0 FROM leads GROUP BY company_id"
        )
        months = sorted(
            {
                f"{(NOW - timedelta(days=d)).year}-{(NOW - timedelta(days=d)).month:02d}"
                for d in range(0, DAYS, 15)
            }
        )[-24:]
        cursor.execute(
            "INSERT INTO sales_plans (plan_id, manager, month, amount, currency, deals,"
            " department, set_by, set_by_role, set_at, reason, version, last_position)"
            " SELECT printf('plan-%03d-%s', i, m), printf('m%03d', i), m,"
            " 1000000 + (i % 7) * 250000, 'RUB', 3, 'sales', ?, 'head', ?::TIMESTAMPTZ,"
            " 'bench', 1, 0 FROM range(?) AS t(i), (SELECT unnest(?) AS m)",
            [SALES_HEAD, end, SYNTHETIC_MANAGERS, months],
        )
        cursor.execute("COMMIT")
    finally:
        cursor.close()


@contextmanager
def platform_with(data: str, workdir: Path) -> Iterator[Platform]:
    settings = Settings(
        event_store_url=f"sqlite:///{workdir}/events.sqlite",
        duckdb_path=workdir / "read_models.duckdb",
    )
    platform = build(settings, clock=lambda: NOW)
    try:
        if data == "demo":
            load_demo(platform.store, platform.funnels, NOW, leads=2000, seed=7)
            load_demo_deals(platform.store, platform.funnels, platform.rules, NOW, deals=40, seed=7)
        else:
            fill_scale(platform)
        load_demo_users(platform.store, NOW)
        yield platform
    finally:
        platform.close()


def _headers(platform: Platform, principal: Principal) -> dict[str, str]:
    token = platform.signer.issue(principal, now=NOW, ttl=timedelta(days=1))
    return {"Authorization": f"Bearer {token}"}


def requests(platform: Platform, data: str) -> list[tuple[str, dict[str, str], str]]:
    """(name, headers, path) of every endpoint measured."""
    manager = MANAGERS[0] if data == "demo" else "m000"
    top = _headers(platform, Principal("bench.top", Role.TOP))
    head = _headers(platform, Principal(SALES_HEAD, Role.HEAD, "sales"))
    own = _headers(platform, Principal(manager, Role.MANAGER, "sales"))
    month = f"{NOW.year}-{NOW.month:02d}"
    found: list[tuple[str, dict[str, str], str]] = [
        ("cabinet manager (own)", own, "/cabinets/manager"),
        ("cabinet manager (head)", head, f"/cabinets/manager?manager={manager}"),
        ("cabinet sales (top)", top, "/cabinets/sales"),
        ("cabinet sales (head)", head, "/cabinets/sales"),
        ("cabinet sales (manager)", own, "/cabinets/sales"),
        ("cabinet sales drill-down", head, f"/cabinets/sales?manager={manager}"),
    ]
    for who, headers in (("top", top), ("head", head), ("manager", own)):
        found += [
            (f"new-leads, month ({who})", headers, f"/reports/new-leads?from={month}-01"),
            (f"new-leads, 2 years ({who})", headers, "/reports/new-leads?from=2024-11-16"),
            (f"new-clients ({who})", headers, "/reports/new-clients"),
            (f"dormant-clients ({who})", headers, "/reports/dormant-clients"),
            (f"invoices, year ({who})", headers, "/reports/invoices?from=2025-11-16"),
            (f"deals-in-work ({who})", headers, "/reports/deals-in-work"),
        ]
    return found


def _caught_up(api: TestClient) -> None:
    deadline = time.monotonic() + 600
    while api.get("/health").json()["lag"] != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the read models did not catch up within 600 s")
        time.sleep(0.1)


def measure(data: str, runs: int) -> list[list[Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="leadledger-bench-cabinets-"))
    rows: list[list[Any]] = []
    try:
        with (
            platform_with(data, workdir) as platform,
            TestClient(create_app(platform, close_on_exit=False)) as api,
        ):
            _caught_up(api)
            for name, headers, path in requests(platform, data):

                def ask(path: str = path, headers: dict[str, str] = headers) -> None:
                    answer = api.get(path, headers=headers)
                    if answer.status_code != 200:
                        raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:200]}")

                samples = benchlib.timed(ask, runs, warmup=2)
                p95 = benchlib.percentile(samples, 95)
                rows.append(
                    [
                        data,
                        name,
                        benchlib.ms(benchlib.percentile(samples, 50)),
                        benchlib.ms(p95),
                        "ok" if p95 < TARGET_P95 else "over",
                    ]
                )
                print(" | ".join(str(c) for c in rows[-1]), file=sys.stderr, flush=True)
    finally:
        benchlib.remove_tree(workdir)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["demo", "scale"], choices=["demo", "scale"])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    rows: list[list[Any]] = []
    try:
        for data in args.sets:
            rows += measure(data, args.runs)
    except RuntimeError as error:
        print(f"failed: {error}", file=sys.stderr)
        return 1
    headers = ["data", "endpoint", "p50 ms", "p95 ms", f"< {benchlib.ms(TARGET_P95)} ms"]
    print(benchlib.table("Cabinets and sales indicators", headers, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
