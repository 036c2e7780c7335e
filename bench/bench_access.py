"""What the read scope costs: the same requests as top management (no scope: the
baseline, measured in the same run), as a head of sales (their department's people) and
as a manager (their own records).

Setup: an embedded platform (SQLite + DuckDB in a temporary directory) with the demo
data (``--leads`` leads, 40 deals) and the demo users, caught up. Each request is sent
through FastAPI's TestClient in-process (``--runs`` times after ``--warmup``); a scoped
request builds its temporary views on its own DuckDB cursor first, which is the cost
measured. Run from the project root:

    .venv/bin/python -m bench.bench_access
    .venv/bin/python -m bench.bench_access --leads 2000 --runs 50
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

from aggregates.users import Principal, Role
from bench import benchlib
from leadledger.demo import MANAGERS, SALES_HEAD, load_demo, load_demo_deals, load_demo_users
from leadledger.settings import Settings
from leadledger.wiring import Platform, build


def _headers(platform: Platform, principal: Principal) -> dict[str, str]:
    token = platform.signer.issue(principal, now=platform.clock(), ttl=timedelta(days=1))
    return {"Authorization": f"Bearer {token}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=10_000, help="demo leads (default 10,000)")
    parser.add_argument("--runs", type=int, default=200, help="timed requests per line")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests first")
    args = parser.parse_args()

    with warnings.catch_warnings():  # starlette's notice about httpx, not ours to act on
        warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient")
        from fastapi.testclient import TestClient  # dev dependency

    from read_api.app import create_app

    with tempfile.TemporaryDirectory(prefix="leadledger-bench-access-") as workdir:
        settings = Settings(
            event_store_url=f"sqlite:///{workdir}/events.sqlite",
            duckdb_path=Path(workdir) / "read_models.duckdb",
        )
        platform = build(settings)
        now = platform.clock()
        load_demo(platform.store, platform.funnels, now, leads=args.leads)
        load_demo_deals(platform.store, platform.funnels, platform.rules, now)
        load_demo_users(platform.store, now)
        platform.projector.catch_up()
        manager = MANAGERS[0]
        cursor = platform.db.cursor()
        row = cursor.execute(
            "SELECT lead_id FROM leads WHERE manager = ? ORDER BY created_at LIMIT 1", [manager]
        ).fetchone()
        counts = cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE manager = ?) FROM leads", [manager]
        ).fetchone()
        cursor.close()
        assert row is not None
        assert counts is not None
        lead_id = row[0]
        viewers = {
            "top (baseline)": Principal("tech.director", Role.TOP),
            "head of sales": Principal(SALES_HEAD, Role.HEAD, "sales"),
            f"manager ({counts[1]:,} of {counts[0]:,} leads)": Principal(manager, Role.MANAGER),
        }
        requests: list[tuple[str, str, dict[str, Any]]] = [
            ("GET /leads (50 newest)", "/leads", {"limit": 50}),
            ("GET /reports/funnel", "/reports/funnel", {"funnel": "out_of_court"}),
            ("GET /leads/{id}", f"/leads/{lead_id}", {}),
            ("GET /leads/{id}/history", f"/leads/{lead_id}/history", {}),
            ("GET /events (1,000)", "/events", {"after": 0, "limit": 1000}),
        ]
        rows: list[list[Any]] = []
        app = create_app(platform, background=False)
        with TestClient(app) as client:
            for label, url, params in requests:
                baseline = 0.0
                for who, principal in viewers.items():
                    headers = _headers(platform, principal)
                    first = client.get(url, params=params, headers=headers)
                    if first.status_code != 200:
                        raise RuntimeError(f"{label} as {who}: HTTP {first.status_code}")

                    def call(
                        u: str = url, p: dict[str, Any] = params, h: dict[str, str] = headers
                    ) -> None:
                        client.get(u, params=p, headers=h).raise_for_status()

                    samples = benchlib.timed(call, args.runs, args.warmup)
                    p50 = benchlib.percentile(samples, 50)
                    baseline = baseline or p50
                    rows.append(
                        benchlib.latency_row(
                            f"{label} as {who}", samples, (f"{p50 / baseline:.2f}",)
                        )
                    )
        print(
            benchlib.table(
                f"Read scope cost ({args.leads:,} demo leads; TestClient, in-process)",
                (*benchlib.LATENCY_HEADERS, "p50 / top"),
                rows,
            )
        )


if __name__ == "__main__":
    main()
