"""Excel export rate: ``GET /exports/leads?format=xlsx`` of N leads (target: 100,000 rows
in < 5 s) while the server keeps answering, and a report's workbook.

For each N: a fresh DuckDB ``leads`` read model is filled with bench_funnel_report's
synthetic rows (42 columns: ids, text, amounts, dates, timestamps, booleans), LeadLedger
is served by uvicorn in a subprocess on it (as ``leadledger serve``), and then, as top
management:

- the export is asked for once; meanwhile ``GET /health`` is asked every 50 ms on other
  connections (its slowest answer shows whether the server kept answering);
- the server's CPU time during the export (user + system: on a busy machine the wall
  time grows with the load, this much less);
- the server's peak RSS during the export, against its RSS before it (sampled every
  20 ms): constant memory means this stays flat as N grows;
- ``GET /reports/funnel?format=xlsx`` (the one-renderer path) and its JSON, 10 runs each.

Any answer other than 2xx fails the run (exit 1). Run from the project root:

    .venv/bin/python -m bench.bench_excel                    # 10,000 and 100,000 rows
    .venv/bin/python -m bench.bench_excel --rows 20000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import benchlib
from bench.bench_funnel_report import fill_read_model
from bench.streamlib import (
    NotOk,
    PeakRss,
    cpu_seconds,
    request,
    rss,
    served,
    server_env,
    top_token,
)
from leadledger.settings import Settings
from leadledger.wiring import load_funnels

TARGET_SECONDS_100K = 5.0
PING_EVERY = 0.05


async def export_while_pinging(port: int, token: str, server: Any) -> dict[str, float]:
    """The export, with /health asked every 50 ms until it is done."""
    pings: list[float] = []
    done = asyncio.Event()

    async def ping() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await request(port, "GET", "/health", token)
            pings.append(time.perf_counter() - started)
            await asyncio.sleep(PING_EVERY)

    before = rss(server)
    cpu_before = cpu_seconds(server)
    pinger = asyncio.create_task(ping())
    async with PeakRss(server) as peak:
        started = time.perf_counter()
        try:
            _, body = await request(port, "GET", "/exports/leads?format=xlsx", token)
        finally:
            done.set()
        seconds = time.perf_counter() - started
    cpu = cpu_seconds(server) - cpu_before
    await pinger
    return {
        "seconds": seconds,
        "cpu": cpu,
        "bytes": len(body),
        "rss_delta": peak.value - before,
        "pings": len(pings),
        "ping_max": max(pings, default=0.0),
        "ping_median": statistics.median(pings) if pings else 0.0,
    }


async def report_times(port: int, token: str, runs: int) -> dict[str, float]:
    medians = {}
    for fmt in ("json", "xlsx"):
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            await request(port, "GET", f"/reports/funnel?funnel=out_of_court&format={fmt}", token)
            samples.append(time.perf_counter() - started)
        medians[fmt] = statistics.median(samples)
    return medians


def measure(rows: int, runs: int, seed: int) -> list[Any]:
    workdir = Path(tempfile.mkdtemp(prefix="leadledger-bench-excel-"))
    try:
        env = server_env(workdir)
        settings = Settings(funnels_file=Settings().funnels_file)
        filled = fill_read_model(
            workdir / "read_models.duckdb", load_funnels(settings.funnels_file), rows, seed
        )
        if filled["rows"] != rows:
            raise RuntimeError(f"filled {filled['rows']} rows, not {rows}")
        with served(env, workdir / "server.log") as (port, server):
            token = top_token()
            export = asyncio.run(export_while_pinging(port, token, server))
            report = asyncio.run(report_times(port, token, runs))
    finally:
        benchlib.remove_tree(workdir)
    verdict = "-"
    if rows >= 100_000:
        scaled = export["seconds"] * 100_000 / rows
        verdict = "ok" if scaled < TARGET_SECONDS_100K else "over"
    return [
        benchlib.count(rows),
        f"{export['seconds']:.2f}",
        f"{export['cpu']:.2f}",
        benchlib.count(rows / export["seconds"]),
        benchlib.mib(export["bytes"]),
        benchlib.mib(export["rss_delta"]),
        f"{export['pings']:.0f}",
        benchlib.ms(export["ping_median"]),
        benchlib.ms(export["ping_max"]),
        benchlib.ms(report["json"]),
        benchlib.ms(report["xlsx"]),
        verdict,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--rows", default="10000,100000", help="leads per run, comma-separated (%(default)s)"
    )
    parser.add_argument("--runs", type=int, default=10, help="report runs per format")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    table_rows = []
    try:
        for rows in (int(n) for n in args.rows.split(",")):
            table_rows.append(measure(rows, args.runs, args.seed))
    except NotOk as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print(
        benchlib.table(
            "Excel export of the leads read model (GET /exports/leads?format=xlsx)",
            [
                "rows",
                "seconds",
                "server CPU s",
                "rows/s",
                "file MiB",
                "peak RSS delta MiB",
                "health pings",
                "ping p50 ms",
                "ping max ms",
                "funnel JSON ms",
                "funnel xlsx ms",
                "100k < 5 s",
            ],
            table_rows,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
