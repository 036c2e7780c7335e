"""History and as-of of a lead with 1,000 events, on PostgreSQL and SQLite (target < 50 ms).

For each back-end, a fresh event store (a new PostgreSQL schema, a new SQLite file) gets
one lead with N events (default 1,000: moves, card edits, cost breakdowns, pauses and
resumes, assessments, transfers, decided by the Lead decider) among other leads' events.
Then, through the HTTP app (FastAPI TestClient on the app of ``leadledger.wiring.build``)
and directly on the underlying calls, p50/p95/p99 of:

- ``GET /leads/{id}/history`` / ``queries.history.history(store.load(id))``;
- ``GET /leads/{id}?as_of=`` at the middle and at the end of the history /
  ``store.load(id, as_of=)`` + ``lead.fold`` + ``queries.leads.detail_from_state``;
- the stream read alone (``recorder.select_stream``) and with decoding (``store.load``),
  and ``GET /leads/{id}`` from the read model, for reference.

Schemas are dropped and files removed at the end. Run from the project root:

    .venv/bin/python -m bench.bench_history                  # 1,000 events, 100 runs
    .venv/bin/python -m bench.bench_history --events 200 --runs 20
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from aggregates import lead
from bench import benchlib
from event_store import NewEvent
from leadledger.settings import Settings
from leadledger.wiring import Platform, build, load_funnels
from queries import history as timeline
from queries.leads import detail_from_state

TARGET_P95 = 0.050
SCHEMA_PREFIX = "bench_history_"


@contextmanager
def event_store_url(backend: str, postgres_url: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir}/events.sqlite"
        return
    schema = benchlib.create_schema(postgres_url, SCHEMA_PREFIX)
    try:
        yield benchlib.schema_url(postgres_url, schema)
    finally:
        benchlib.drop_schema(postgres_url, schema)


def load_data(
    platform: Platform, events: int, other_leads: int, seed: int
) -> tuple[UUID, datetime, datetime, int]:
    """Other leads' events, then the lead under test; its id, mid and last instants."""
    funnels = platform.funnels
    store = platform.store
    others = benchlib.LeadHistory(funnels, leads=other_leads, events=other_leads * 6, seed=seed + 1)
    batch: list[NewEvent] = []
    written = 0
    for stream_id, version, event in others:
        batch.append(NewEvent(stream_id, version, event))
        if len(batch) == 500:
            store.append(batch)
            written += len(batch)
            batch = []
    if batch:
        store.append(batch)
        written += len(batch)
    history = benchlib.LeadHistory(funnels, leads=1, events=events, seed=seed).single_lead(events)
    for start in range(0, len(history), 100):
        store.append([NewEvent(s, v, e) for s, v, e in history[start : start + 100]])
    lead_id = history[0][0]
    return lead_id, benchlib.mid_time(history), history[-1][2].at, written + len(history)


def run_backend(
    backend: str, args: argparse.Namespace, workdir: Path
) -> tuple[list[list[Any]], dict[str, Any]]:
    with warnings.catch_warnings():  # starlette's notice about httpx, not ours to act on
        warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient")
        from fastapi.testclient import TestClient  # dev dependency

    from read_api.app import create_app

    rows: list[list[Any]] = []
    info: dict[str, Any] = {}
    backend_dir = workdir / backend
    backend_dir.mkdir()
    with event_store_url(backend, args.postgres_url, backend_dir) as url:
        platform = build(Settings(event_store_url=url, duckdb_path=backend_dir / "rm.duckdb"))
        try:
            started = time.perf_counter()
            lead_id, mid, last, total = load_data(
                platform, args.events, args.other_leads, args.seed
            )
            info["load_s"] = time.perf_counter() - started
            info["events_in_store"] = total
            platform.projector.catch_up()
            store = platform.store
            recorder: Any = store.recorder
            records = store.load(lead_id)
            assert len(records) == args.events, (len(records), args.events)
            assert len(store.load(lead_id, as_of=mid)) < args.events

            def history() -> object:
                return timeline.history(store.load(lead_id))

            def as_of(moment: datetime) -> Callable[[], object]:
                def call() -> object:
                    state = lead.fold([r.event for r in store.load(lead_id, as_of=moment)])
                    assert state is not None
                    return detail_from_state(state)

                return call

            calls: list[tuple[str, Callable[[], object]]] = [
                ("recorder.select_stream (rows only)", lambda: recorder.select_stream(lead_id)),
                ("store.load (rows + decode)", lambda: store.load(lead_id)),
                ("queries.history.history(store.load)", history),
                ("as-of middle: load + fold + detail", as_of(mid)),
                ("as-of end: load + fold + detail", as_of(last)),
            ]
            for label, fn in calls:
                rows.append(_row(backend, label, benchlib.timed(fn, args.runs, args.warmup)))

            app = create_app(platform, background=False, close_on_exit=False)
            with TestClient(app, headers=benchlib.top_management_headers(platform)) as client:
                requests = [
                    ("GET /leads/{id}/history", f"/leads/{lead_id}/history", {}),
                    (
                        "GET /leads/{id}?as_of=<middle>",
                        f"/leads/{lead_id}",
                        {"as_of": mid.isoformat()},
                    ),
                    (
                        "GET /leads/{id}?as_of=<end>",
                        f"/leads/{lead_id}",
                        {"as_of": last.isoformat()},
                    ),
                    ("GET /leads/{id} (read model)", f"/leads/{lead_id}", {}),
                ]
                for label, path, params in requests:
                    response = client.get(path, params=params)
                    if response.status_code != 200:
                        raise RuntimeError(f"{label}: HTTP {response.status_code} {response.text}")
                    if label.endswith("/history"):
                        info["history_bytes"] = len(response.content)
                        info["history_entries"] = len(response.json()["events"])

                    def get(p: str = path, q: dict[str, str] = params) -> None:
                        client.get(p, params=q).raise_for_status()

                    rows.append(_row(backend, label, benchlib.timed(get, args.runs, args.warmup)))
        finally:
            platform.close()
    return rows, info


def _row(backend: str, label: str, samples: list[float]) -> list[Any]:
    verdict = "PASS" if benchlib.percentile(samples, 95) < TARGET_P95 else "FAIL"
    return benchlib.latency_row(f"{backend:8s} {label}", samples, (verdict,))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=1_000, help="events of the lead")
    parser.add_argument(
        "--other-leads", type=int, default=2_000, help="other leads in the store (~6 events each)"
    )
    parser.add_argument("--runs", type=int, default=100, help="timed runs per call")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs before each")
    parser.add_argument("--seed", type=int, default=5, help="random seed")
    parser.add_argument(
        "--backends", default="postgres,sqlite", help="comma-separated: postgres, sqlite"
    )
    parser.add_argument(
        "--postgres-url", default=benchlib.DEFAULT_POSTGRES_URL, help="PostgreSQL to use"
    )
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"postgres", "sqlite"}
    if unknown:
        parser.error(f"unknown back-end(s): {', '.join(sorted(unknown))}")
    load_funnels(Settings().funnels_file)  # fail early on a broken configuration
    print(
        f"bench_history: events={args.events:,} other_leads={args.other_leads:,} "
        f"runs={args.runs} warmup={args.warmup} backends={','.join(backends)}",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench_history_"))
    rows: list[list[Any]] = []
    infos: list[list[Any]] = []
    try:
        for backend in backends:
            print(f"{backend}: loading and timing ...", file=sys.stderr, flush=True)
            backend_rows, info = run_backend(backend, args, workdir)
            rows.extend(backend_rows)
            infos.append(
                [
                    backend,
                    benchlib.count(info["events_in_store"]),
                    f"{info['load_s']:.1f}",
                    info.get("history_entries", "-"),
                    f"{info.get('history_bytes', 0) / 1024:,.0f}",
                ]
            )
    finally:
        benchlib.remove_tree(workdir)
    print()
    print(
        benchlib.table(
            "Event stores",
            ("back-end", "events in store", "load s", "history entries", "history KiB"),
            infos,
        )
    )
    print(
        benchlib.table(
            f"Lead with {args.events:,} events: history and as-of (target p95 < 50 ms)",
            (*benchlib.LATENCY_HEADERS, "p95 < 50 ms"),
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
