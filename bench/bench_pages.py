"""Server time of the workspace's main pages (target: p95 < 150 ms per page).

Two data sets, each on a fresh embedded store and DuckDB file:

- ``demo``: ``serve --demo``'s data (2,000 leads, 40 deals with their hand-offs, the
  lead projects, the demo's people);
- ``100k``: the read model's ``leads`` table filled directly with 100,000 synthetic rows
  (``bench_funnel_report.fill_read_model``, as bench_excel does) and the demo's people.

Each page is asked for by a signed-in session of the role through the app in process
(FastAPI's TestClient: the time is the server's handling of the request, no network):
the home page of one user per role, the leads list, a lead card, the deal kanban and a
deal card, the department queue and a request, the portfolio, a project card and the
timesheet (where the data set has such records), and every report page (as top
management). Any answer other than 2xx fails the run (exit 1). Run from the project
root:

    .venv/bin/python -m bench.bench_pages                  # demo and 100k, 20 runs each
    .venv/bin/python -m bench.bench_pages --sets demo --runs 50
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from bench import benchlib
from bench.bench_funnel_report import fill_read_model
from leadledger.demo import (
    DEMO_USERS,
    load_demo,
    load_demo_deals,
    load_demo_lead_projects,
    load_demo_users,
)
from leadledger.settings import Settings
from leadledger.wiring import Platform, build, load_funnels
from read_api.app import create_app
from workspace.reports import REPORTS

TARGET_P95 = 0.150
PASSWORD = "bench-password-1"
ROLES = ("manager", "head", "top", "pm", "department", "analyst", "auditor")


@contextmanager
def platform_with(data: str, workdir: Path) -> Iterator[Platform]:
    settings = Settings(
        event_store_url=f"sqlite:///{workdir}/events.sqlite",
        duckdb_path=workdir / "read_models.duckdb",
        signin_delay_seconds=0,
    )
    if data == "100k":
        fill_read_model(settings.duckdb_path, load_funnels(settings.funnels_file), 100_000, 7)
    platform = build(settings)
    try:
        now = platform.clock()
        if data == "demo":
            load_demo(platform.store, platform.funnels, now, leads=2000, seed=7)
            load_demo_lead_projects(platform.store, platform.funnels, platform.rules, now, seed=7)
            load_demo_deals(platform.store, platform.funnels, platform.rules, now, deals=40, seed=7)
        load_demo_users(platform.store, now)
        yield platform
    finally:
        platform.close()


def _caught_up(api: TestClient) -> None:
    deadline = time.monotonic() + 300
    while api.get("/health").json()["lag"] != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the read models did not catch up within 300 s")
        time.sleep(0.1)


def _session(api: TestClient, platform: Platform, user: str) -> dict[str, str]:
    platform.credentials.set_password(user, PASSWORD, set_by="bench")
    api.cookies.clear()
    form = api.get("/workspace/sign-in").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    if token is None:
        raise RuntimeError("no CSRF token on the sign-in page")
    answer = api.post(
        "/workspace/sign-in",
        data={"username": user, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    if answer.status_code != 303:
        raise RuntimeError(f"{user} could not sign in: {answer.status_code}")
    cookies = dict(api.cookies.items())
    api.cookies.clear()
    return cookies


def pages(platform: Platform) -> list[tuple[str, str, str]]:
    """(page, user, path) of every main page."""
    users: dict[str, str] = {}
    for username, _, role, _, _ in DEMO_USERS:
        users.setdefault(role, username)
    top, manager = users["top"], users["manager"]
    with platform.db.cursor() as cursor:
        row = cursor.execute("SELECT lead_id FROM leads ORDER BY created_at DESC LIMIT 1")
        lead = row.fetchone()
        deal = cursor.execute("SELECT deal_id FROM deals ORDER BY created_at LIMIT 1").fetchone()
        request = cursor.execute(
            "SELECT request_id FROM handoffs ORDER BY created_at LIMIT 1"
        ).fetchone()
        project = cursor.execute(
            "SELECT project_id FROM projects ORDER BY created_at LIMIT 1"
        ).fetchone()
    found = [(f"home ({role})", users[role], "/") for role in ROLES]
    found += [
        ("leads list (manager)", manager, "/workspace/leads"),
        ("leads list (top)", top, "/workspace/leads"),
        ("leads list, page 50 (top)", top, "/workspace/leads?page=50"),
    ]
    if lead is not None:
        found.append(("lead card (top)", top, f"/workspace/leads/{lead[0]}"))
    found += [
        ("deal kanban (top)", top, "/workspace/deals"),
        ("department queue (top)", top, "/workspace/queue"),
        ("portfolio (top)", top, "/workspace/projects"),
        ("timesheet (top)", top, "/workspace/timesheet"),
    ]
    if deal is not None:
        found.append(("deal card (top)", top, f"/workspace/deals/{deal[0]}"))
    if request is not None:
        found.append(("request (top)", top, f"/workspace/handoffs/{request[0]}"))
    if project is not None:
        found.append(("project card (top)", top, f"/workspace/projects/{project[0]}"))
    found += [(f"report {r.slug}", top, f"/workspace/reports/{r.slug}") for r in REPORTS]
    return found


def measure(data: str, runs: int) -> list[list[Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="leadledger-bench-pages-"))
    rows: list[list[Any]] = []
    try:
        with (
            platform_with(data, workdir) as platform,
            TestClient(create_app(platform, close_on_exit=False)) as api,
        ):
            _caught_up(api)
            sessions: dict[str, dict[str, str]] = {}
            for name, user, path in pages(platform):
                if user not in sessions:
                    sessions[user] = _session(api, platform, user)
                cookies = sessions[user]

                def ask(path: str = path, cookies: dict[str, str] = cookies) -> None:
                    answer = api.get(path, cookies=cookies, follow_redirects=False)
                    if not 200 <= answer.status_code < 300:
                        raise RuntimeError(f"{path}: {answer.status_code}")

                samples = benchlib.timed(ask, runs, warmup=2)
                p95 = benchlib.percentile(samples, 95)
                verdict = "ok" if p95 < TARGET_P95 else "over"
                rows.append(
                    [
                        data,
                        name,
                        benchlib.ms(benchlib.percentile(samples, 50)),
                        benchlib.ms(p95),
                        verdict,
                    ]
                )
                print(" | ".join(str(c) for c in rows[-1]), file=sys.stderr, flush=True)
    finally:
        benchlib.remove_tree(workdir)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=("demo", "100k"), default=["demo", "100k"])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    rows: list[list[Any]] = []
    try:
        for data in args.sets:
            rows += measure(data, args.runs)
    except RuntimeError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print(benchlib.table("Workspace pages", ["data", "page", "p50", "p95", "p95<150ms"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
