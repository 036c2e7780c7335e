"""Importing an existing base (issue 18 §2) on PostgreSQL: rows checked and events written
per second, against the same run's baseline of the command handlers one by one.

1. A CSV of ``--rows`` leads (default 1,000,000) is generated: a tenth of them name one of
   ``rows / 10`` companies, stages and statuses spread over the funnel, creation dates
   over three years.
2. ``leadledger import leads`` (mode all) on a fresh schema: every row decided by the
   Lead decider (in ``--workers`` processes: default, the cores), the events written with
   the bulk path (COPY, one transaction; pooled, pipelined with the deciding). Printed:
   rows/s of the whole import, events/s of the whole import and of its write phase (the
   time the writing process spent writing, not waiting for decided rows).
2b. The write phase alone: the imported log copied by ``bulk_append`` into another fresh
   schema (the time reading it back not counted), with the chain.
3. The baseline, on another fresh schema: the first ``--sample`` rows (default 2,000)
   sent through the command handlers one by one (create, then move, qualify, pause or
   close as the row says), events/s, and the time the whole file would take so.
4. The projections catching up on the imported log (a rebuild into a fresh DuckDB file),
   events/s.
5. The log's positions are gap-free and its hash chain verifies; the bench fails on any
   refused row or error.
6. The import's CPU per row: this process's and its workers' (ended children's), which
   a loaded machine does not blur as it blurs the rates.

The load average is printed before and after (the machine is shared). Run from the
project root:

    .venv/bin/python -m bench.bench_import               # 1M rows
    .venv/bin/python -m bench.bench_import --rows 20000  # a smoke run
    .venv/bin/python -m bench.bench_import --workers 1   # decided in this process
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

from bench import benchlib
from commands.context import CommandContext
from commands.imports import import_file
from commands.leads import create_lead, handle_lead_command
from event_store import EventStore, open_event_store, verify
from event_store.bulk import StoredRow, bulk_append
from leadledger.settings import DEFAULT_FUNNELS_FILE, DEFAULT_RULES_FILE
from leadledger.wiring import event_codec, load_funnels, load_rules, read_model_projections

SCHEMA_PREFIX = "bench_import_"
TARGET = 100_000
HEADER = (
    "external_id",
    "title",
    "company_name",
    "company_id",
    "source",
    "manager",
    "funnel",
    "stage",
    "status",
    "created_at",
    "stage_entered_at",
    "closed_at",
    "amount",
    "reason",
    "quality",
)
STAGES = ("new", "assessment", "proposal_preparation", "proposal_sent", "contract", "invoice")
NOW = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


def generate(path: Path, rows: int, seed: int = 18) -> None:
    rnd = random.Random(seed)
    start = datetime(2022, 12, 1, tzinfo=UTC)  # three years and a month before NOW
    companies = max(1, rows // 10)
    with open(path, "w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for n in range(rows):
            created = start + timedelta(minutes=rnd.randrange(0, 3 * 365 * 24 * 60))
            entered = created + timedelta(hours=rnd.randrange(0, 500))
            closed = entered + timedelta(hours=rnd.randrange(0, 200))
            stage = rnd.choice(STAGES)
            roll = rnd.random()
            status, reason, quality = "open", "", ""
            if roll < 0.15:
                status, reason = "lost", "price"
            elif roll < 0.25:
                status, reason, quality = "won", "", "yes"
            elif roll < 0.30:
                status, reason, stage = "non_quality", "not our case", "new"
            elif roll < 0.35:
                status, reason = "paused", "client on vacation"
            elif roll < 0.55:
                quality = "yes"
            company = rnd.randrange(companies) if rnd.random() < 0.9 else None
            out.writerow(
                (
                    f"B-{n}",
                    f"Profiled sheet order {n}",
                    f"Client {company}" if company is not None else f"Private person {n}",
                    f"77{company:08d}" if company is not None else "",
                    rnd.choice(("website", "referral", "phone", "exhibition")),
                    f"manager{rnd.randrange(100)}",
                    "out_of_court",
                    stage,
                    status,
                    created.strftime("%Y-%m-%d %H:%M"),
                    entered.strftime("%Y-%m-%d %H:%M") if stage != "new" else "",
                    closed.strftime("%Y-%m-%d %H:%M") if status in ("won", "lost") else "",
                    f"{rnd.randrange(1000, 5_000_000)}.{rnd.randrange(100):02d}",
                    reason,
                    quality,
                )
            )


def _ctx(at: datetime) -> CommandContext:
    return CommandContext(actor="bench", at=at, command_id=uuid4(), actor_role="admin")


def baseline(url: str, path: Path, sample: int, funnels: object) -> tuple[int, float]:
    """The first ``sample`` rows through the command handlers one by one: (events, s)."""
    from aggregates import lead

    store = open_event_store(url, event_codec())
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))[:sample]
        began = time.perf_counter()
        for row in rows:
            created = datetime.fromisoformat(row["created_at"]).replace(tzinfo=UTC)
            command = lead.CreateLead(
                lead_id=uuid4(),
                funnel=row["funnel"],
                title=row["title"],
                company_name=row["company_name"],
                source=row["source"],
                manager=row["manager"],
                company_id=row["company_id"] or None,
                amount=row["amount"],  # type: ignore[arg-type]
            )
            create_lead(store, funnels, command, _ctx(created))  # type: ignore[arg-type]
            steps: list[lead.LeadCommand] = []
            if row["stage"] != "new":
                steps.append(lead.MoveLeadToStage(row["stage"]))
            if row["quality"]:
                steps.append(lead.QualifyLead(True))
            if row["status"] == "non_quality":
                steps.append(lead.QualifyLead(False, row["reason"]))
            elif row["status"] in ("won", "lost"):
                steps.append(lead.CloseLead(row["status"], row["reason"] or None))
            elif row["status"] == "paused":
                steps.append(lead.PauseLead(row["reason"]))
            for step in steps:
                handle_lead_command(store, funnels, command.lead_id, step, _ctx(created))  # type: ignore[arg-type]
        seconds = time.perf_counter() - began
        return store.last_position(), seconds
    finally:
        store.close()


def write_alone(url: str, source: EventStore) -> tuple[int, float]:
    """The log of ``source`` appended in bulk to the store at ``url``: (events, seconds
    spent writing, reading it back excluded)."""
    target = open_event_store(url, event_codec())
    reading = 0.0

    def chunks() -> object:
        nonlocal reading
        after = 0
        while True:
            began = time.perf_counter()
            rows = source.read_rows(after, 20_000)
            chunk: list[StoredRow] = [(UUID(r[1]), r[2], r[3], bytes(r[4])) for r in rows]
            reading += time.perf_counter() - began
            if not chunk:
                return
            after = rows[-1][0]
            yield chunk

    try:
        began = time.perf_counter()
        result = bulk_append(target, chunks())  # type: ignore[arg-type]
        seconds = time.perf_counter() - began - reading
        chain = verify(target)
        if not chain.ok or result.events != chain.events:
            raise SystemExit(f"write alone: {chain.message()}")
        return result.events, seconds
    finally:
        target.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=2_000)
    parser.add_argument("--url", default=benchlib.DEFAULT_POSTGRES_URL)
    parser.add_argument(
        "--workers", type=int, default=None, help="processes deciding rows (default: the cores)"
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    funnels = load_funnels(DEFAULT_FUNNELS_FILE)
    rules = load_rules(DEFAULT_FUNNELS_FILE, DEFAULT_RULES_FILE)
    folder = Path(tempfile.mkdtemp(prefix="bench-import-"))
    schemas = [
        benchlib.create_schema(args.url, SCHEMA_PREFIX),
        benchlib.create_schema(args.url, SCHEMA_PREFIX),
        benchlib.create_schema(args.url, SCHEMA_PREFIX),
    ]
    loads: dict[str, tuple[float, float, float]] = {}
    failures: list[str] = []
    try:
        path = folder / "leads.csv"
        began = time.perf_counter()
        generate(path, args.rows)
        print(
            f"generated {args.rows:,} rows ({path.stat().st_size / 2**20:,.0f} MiB) in "
            f"{time.perf_counter() - began:,.1f} s",
            file=sys.stderr,
        )
        store = open_event_store(benchlib.schema_url(args.url, schemas[0]), event_codec())
        try:
            loads["import"] = os.getloadavg()
            cpu_before = time.process_time(), _children_cpu()
            report, _ = import_file(
                store, funnels, rules, _ctx(NOW), "leads", path, workers=args.workers
            )
            own_cpu = time.process_time() - cpu_before[0]
            workers_cpu = _children_cpu() - cpu_before[1]
            if report.status != "imported" or report.errors:
                for error in report.errors[:10]:
                    print(f"  row {error.row}: {error.column}: {error.reason}", file=sys.stderr)
                raise SystemExit(f"import: {report.status}, {len(report.errors)} refused")
            last = store.last_position()
            if last != report.events:
                failures.append(f"positions: last {last}, {report.events} events written")
            chain = verify(store)
            if not chain.ok or chain.events != report.events:
                failures.append(f"chain: {chain.message()}")
            check_seconds = report.seconds - report.write_seconds
            loads["bulk write alone"] = os.getloadavg()
            alone_events, alone_seconds = write_alone(
                benchlib.schema_url(args.url, schemas[2]), store
            )
            # the projections catching up on the imported log
            from projections.database import ReadModelDatabase
            from projections.projector import rebuild

            db = ReadModelDatabase(folder / "read_models.duckdb")
            try:
                loads["projections"] = os.getloadavg()
                began = time.perf_counter()
                projector = rebuild(store, db, read_model_projections(funnels, rules))
                projection_seconds = time.perf_counter() - began
                leads = db.cursor().execute("SELECT count(*) FROM leads").fetchone()
                if projector.position != last or leads is None or leads[0] != args.rows:
                    failures.append(f"projections: position {projector.position}, leads {leads}")
            finally:
                db.close()
        finally:
            store.close()
        loads["baseline"] = os.getloadavg()
        base_events, base_seconds = baseline(
            benchlib.schema_url(args.url, schemas[1]), path, args.sample, funnels
        )
        base_rate = base_events / base_seconds
        import_rate = report.events / report.seconds
        write_rate = report.events / report.write_seconds
        per_row_events = report.events / args.rows
        rows = [
            [
                "import (decide + bulk write)",
                f"{args.rows:,}",
                f"{report.events:,}",
                f"{report.seconds:,.1f}",
                f"{args.rows / report.seconds:,.0f}",
                f"{import_rate:,.0f}",
                f"{import_rate / base_rate:,.1f}x",
            ],
            [
                "  of which: checking rows",
                f"{args.rows:,}",
                "",
                f"{check_seconds:,.1f}",
                f"{args.rows / check_seconds:,.0f}",
                "",
                "",
            ],
            [
                "  of which: bulk write (COPY)",
                "",
                f"{report.events:,}",
                f"{report.write_seconds:,.1f}",
                "",
                f"{write_rate:,.0f}",
                f"{write_rate / base_rate:,.1f}x",
            ],
            [
                "bulk write alone (COPY + chain)",
                "",
                f"{alone_events:,}",
                f"{alone_seconds:,.1f}",
                "",
                f"{alone_events / alone_seconds:,.0f}",
                f"{alone_events / alone_seconds / base_rate:,.1f}x",
            ],
            [
                f"baseline: command handlers (sample {args.sample:,})",
                f"{args.sample:,}",
                f"{base_events:,}",
                f"{base_seconds:,.1f}",
                f"{args.sample / base_seconds:,.0f}",
                f"{base_rate:,.0f}",
                "1.0x",
            ],
            [
                "  extrapolated to the file",
                f"{args.rows:,}",
                f"≈{args.rows * base_events / args.sample:,.0f}",
                f"≈{args.rows * base_seconds / args.sample:,.0f}",
                "",
                "",
                "",
            ],
            [
                "projections catching up (rebuild)",
                "",
                f"{last:,}",
                f"{projection_seconds:,.1f}",
                "",
                f"{last / projection_seconds:,.0f}",
                "",
            ],
        ]
        print(
            benchlib.table(
                f"Import of {args.rows:,} leads on PostgreSQL ({per_row_events:.2f} events "
                "per row: LeadImported, and CompanyRegistered for each company's first lead)",
                ["what", "rows", "events", "s", "rows/s", "events/s", "vs handlers", "load"],
                [[*r, _load(loads, r[0])] for r in rows],
            )
        )
        verdict = "meets" if import_rate >= TARGET else "below"
        print(
            f"\nwhole import {import_rate:,.0f} events/s ({verdict} the {TARGET:,} target); "
            f"write phase {write_rate:,.0f} events/s; positions gap-free and chain intact: "
            f"{'yes' if not failures else 'NO'}"
        )
        own, workers = (own_cpu / args.rows * 1e6, workers_cpu / args.rows * 1e6)
        print(
            f"CPU per row of the import (what a loaded machine does not blur): importing "
            f"process {own:,.1f} µs, workers {workers:,.1f} µs, total {own + workers:,.1f} µs "
            "(PostgreSQL's own not counted)"
        )
        load_after = os.getloadavg()
        print(
            "load average before: "
            + " ".join(f"{x:.2f}" for x in load_before)
            + ", after: "
            + " ".join(f"{x:.2f}" for x in load_after)
            + f" ({os.cpu_count()} cores, shared); workers: "
            + (str(args.workers) if args.workers else "default (the cores)")
        )
    finally:
        for schema in schemas:
            benchlib.drop_schema(args.url, schema)
        benchlib.remove_tree(folder)
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


def _children_cpu() -> float:
    """CPU seconds of this process's children that ended (the import's workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load(loads: dict[str, tuple[float, float, float]], what: str) -> str:
    for key, value in loads.items():
        if what.strip().startswith(key) or (key == "import" and "of which" in what):
            return f"{value[0]:.1f}"
    return ""


if __name__ == "__main__":
    raise SystemExit(main())
