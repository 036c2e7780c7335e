"""The fixed cost of a small live page in every projection, as ``leadledger serve`` folds it.

A lead history of ``--leads`` leads (``benchlib.LeadHistory``, the rebuild bench's
generator) is encoded into the log's page form (``PAGE_SCHEMA``) and kept as a parquet
file. Its first part is rebuilt into a fresh DuckDB file (``projections.projector.rebuild``);
then a live ``Projector`` (as ``serve`` opens it: every projection, derived ones included)
folds ``--pages`` pages of 1, 5 and 50 events of the rest of the history (creations,
moves, pauses, card edits: the commands' mix), and each projection's ``apply`` is timed.

``--compare-with /work/main`` runs the same bench with another checkout's code first on
the path (a child process, same log file), so both figures come from one window. Run from
the project root:

    .venv/bin/python -m bench.bench_live_fold --leads 200000 --compare-with /work/main
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench import benchlib
from leadledger.settings import Settings
from leadledger.wiring import event_codec, load_funnels, load_rules, read_model_projections
from projections.base import PAGE_SCHEMA
from projections.database import ReadModelDatabase
from projections.projector import Projector, rebuild

SIZES = (1, 5, 50)


class ArrowLog:
    """The log as an Arrow table in memory: what the projector reads of an event store."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def read_page(self, after: int, limit: int) -> pa.Table:
        return self.table.slice(after, limit)

    def last_position(self) -> int:
        return int(self.table.num_rows)


def generate(path: Path, leads: int, live_events: int, seed: int) -> None:
    """The history of ``leads`` leads plus ``live_events`` more, as a parquet file."""
    funnels = load_funnels(Settings().funnels_file)
    codec = event_codec()
    events = int(leads * 1_000_000 / 150_000) + live_events
    history = benchlib.LeadHistory(funnels, leads=leads, events=events, seed=seed)
    columns: dict[str, list[Any]] = {name: [] for name in PAGE_SCHEMA.names}
    for position, (stream_id, version, event) in enumerate(history, start=1):
        columns["position"].append(position)
        columns["stream_id"].append(str(stream_id))
        columns["version"].append(version)
        columns["topic"].append(codec.topic(event))
        columns["state"].append(codec.encode(event).decode())
    pq.write_table(pa.Table.from_pydict(columns, schema=PAGE_SCHEMA), path)


def timed(name: str, apply: Callable[..., None], spent: dict[str, float]) -> Callable[..., None]:
    """``apply`` measured in CPU time of the process (DuckDB's threads included): wall
    time on a loaded machine is mostly waiting."""

    def apply_timed(*args: Any) -> None:
        started = time.process_time()
        apply(*args)
        spent[name] += time.process_time() - started

    return apply_timed


def measure(log_path: Path, workdir: Path, pages: int) -> dict[str, Any]:
    """Rebuild all but the live tail, then fold the tail in small pages; ms per page."""
    table = pq.read_table(log_path)
    live = pages * sum(SIZES)
    base = table.num_rows - live
    store: Any = ArrowLog(table.slice(0, base))
    settings = Settings()
    funnels = load_funnels(settings.funnels_file)
    rules = load_rules(settings.funnels_file, settings.rules_file)
    db = ReadModelDatabase(workdir / "live.duckdb")
    started = time.perf_counter()
    rebuild(store, db, read_model_projections(funnels, rules))
    rebuild_seconds = time.perf_counter() - started
    projections = read_model_projections(funnels, rules)
    store.table = table
    projector = Projector(store, db, projections)
    figures: dict[str, Any] = {"rebuild_seconds": rebuild_seconds, "base_events": base}
    position = base
    for size in SIZES:
        spent: dict[str, float] = collections.defaultdict(float)
        for projection in projections:
            apply = type(projection).apply.__get__(projection)
            projection.apply = timed(projection.name, apply, spent)  # type: ignore[method-assign]
        cpu = time.process_time()
        wall = time.perf_counter()
        for _ in range(pages):
            projector._apply(table.slice(position, size))
            position += size
        figures[str(size)] = {
            "page_ms": (time.perf_counter() - wall) * 1000 / pages,
            "page_cpu_ms": (time.process_time() - cpu) * 1000 / pages,
            "projections": {k: v * 1000 / pages for k, v in spent.items()},
        }
    db.close()
    return figures


def run_child(checkout: Path, log_path: Path, workdir: Path, pages: int) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--log",
            str(log_path),
            "--pages",
            str(pages),
            "--json",
            "--workdir",
            str(workdir),
        ],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the bench with {checkout} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def report(runs: list[tuple[str, dict[str, Any]]]) -> str:
    out = []
    for size in SIZES:
        names: dict[str, None] = {}
        for _, r in runs:
            names.update(dict.fromkeys(r[str(size)]["projections"]))
        rows = [
            (
                name,
                *(f"{r[str(size)]['projections'].get(name, 0.0):.2f}" for _, r in runs),
            )
            for name in sorted(
                names, key=lambda n: -max(r[str(size)]["projections"].get(n, 0.0) for _, r in runs)
            )
            if max(r[str(size)]["projections"].get(name, 0.0) for _, r in runs) >= 0.05
        ]
        rows.insert(0, ("(whole page, wall)", *(f"{r[str(size)]['page_ms']:.2f}" for _, r in runs)))
        rows.insert(
            1, ("(whole page, CPU)", *(f"{r[str(size)]['page_cpu_ms']:.2f}" for _, r in runs))
        )
        out.append(
            benchlib.table(
                f"Pages of {size} event(s): CPU ms per page (whole page: wall too)",
                ("projection", *(code for code, _ in runs)),
                rows,
            )
        )
    out.append(
        "rebuild (setup) s: "
        + ", ".join(f"{code} {r['rebuild_seconds']:.1f}" for code, r in runs)
        + f"; events rebuilt {runs[0][1]['base_events']:,}; load {os.getloadavg()[0]:.1f}"
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--leads", type=int, default=200_000, help="leads in the history")
    parser.add_argument("--pages", type=int, default=200, help="live pages of each size")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument("--log", help="a parquet log written before (skips the generation)")
    parser.add_argument("--workdir", help="where the DuckDB files go (default: a temp dir)")
    parser.add_argument("--compare-with", help="another checkout, run in the same window")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_live_fold_") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        log_path = Path(args.log) if args.log else workdir / "log.parquet"
        if not log_path.exists():
            started = time.perf_counter()
            generate(log_path, args.leads, args.pages * sum(SIZES), args.seed)
            print(f"generated in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        runs: list[tuple[str, dict[str, Any]]] = []
        if args.compare_with:
            other = Path(args.compare_with).resolve()
            other_dir = Path(tempfile.mkdtemp(prefix="other_", dir=workdir))
            runs.append((str(other), run_child(other, log_path, other_dir, args.pages)))
        mine_dir = Path(tempfile.mkdtemp(prefix="mine_", dir=workdir))
        runs.append(("this checkout", measure(log_path, mine_dir, args.pages)))
        if args.json:
            print(json.dumps(runs[-1][1]))
        else:
            print(report(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
