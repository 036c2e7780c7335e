"""Estimate hand-off latency on PostgreSQL: a deal enters a stage that needs an estimate,
how long until its request to the department can be read (target p99 < 500 ms)?

The process managers run as their own OS process (``leadledger process``, as in
production next to ``leadledger serve`` with ``LEADLEDGER_PROCESS_MANAGERS=false``),
following a fresh PostgreSQL schema with a short poll (``--process-poll-seconds``,
0.02 s). This process prepares N deals (default 1,000) in the ``transport`` funnel through
the command handlers (a lead created, assessed, qualified as quality and converted), waits
until the process managers have read all of it, then, from ``--threads`` threads (8), for
each deal:

1. t0; the deal moves to ``estimate`` (``handle_deal_command`` with ``MoveDealToStage``,
   the stage needs ``logistics``);
2. every ``--poll-ms`` (2 ms) the deal is read (``commands.deals.load_deal``) until its
   ``handoffs`` view shows the request, and the request's own stream is read
   (``commands.handoffs.load_handoff``): the time since t0 is the deal's latency.

The latency is also given from the moment the move was appended (without the command's
own time). The schema is dropped, the process stopped and files removed at the end. Run
from the project root:

    .venv/bin/python -m bench.bench_handoff_latency                 # 1,000 deals
    .venv/bin/python -m bench.bench_handoff_latency --deals 100
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from aggregates import deal, lead
from bench import benchlib
from commands.context import CommandContext, StreamNotFound
from commands.deals import convert_lead, handle_deal_command, load_deal
from commands.handoffs import load_handoff, request_id_for_round
from commands.leads import create_lead, handle_lead_command
from leadledger.demo import MANAGERS, TITLES
from leadledger.settings import Settings
from leadledger.wiring import CommandSide, build_command_side
from process_managers.deadlines import Deadlines
from process_managers.estimate_handoff import EstimateHandoff
from process_managers.lead_conversion import LeadConversion
from process_managers.state import ProcessStore

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PREFIX = "bench_handoff_"
TARGET_P99 = 0.500
DEAL_FUNNEL = "transport"
ESTIMATE_STAGE = "estimate"
DEPARTMENT = "logistics"
MANAGER_NAMES = (EstimateHandoff.name, LeadConversion.name, Deadlines.name)
CATCH_UP_TIMEOUT = 300.0


@dataclass
class Measured:
    from_command: list[float] = field(default_factory=list)
    from_append: list[float] = field(default_factory=list)
    command: list[float] = field(default_factory=list)
    timeouts: int = 0
    wrong_request: int = 0
    polls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


# --- the process managers' process ------------------------------------------------------


@contextmanager
def process_managers(
    event_store_url: str, poll_seconds: float, workdir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``leadledger process`` on the event store; stopped (SIGTERM) on exit."""
    env = {
        "LEADLEDGER_EVENT_STORE_URL": event_store_url,
        "LEADLEDGER_PROCESS_POLL_SECONDS": str(poll_seconds),
        "LEADLEDGER_DUCKDB_PATH": str(workdir / "unused.duckdb"),
    }
    with benchlib.leadledger_command(["process"], env, workdir / "process.log", ROOT) as proc:
        yield proc


def process_log(workdir: Path, lines: int = 20) -> str:
    log = workdir / "process.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.strip().splitlines()[-lines:])


def require_running(proc: subprocess.Popen[bytes], workdir: Path) -> None:
    if proc.poll() is not None:
        raise RuntimeError(
            f"leadledger process exited ({proc.returncode}):\n{process_log(workdir, 30)}"
        )


def wait_for_catch_up(
    side: CommandSide, positions: ProcessStore, proc: subprocess.Popen[bytes], workdir: Path
) -> float:
    """Seconds until every process manager has read the log up to its current end."""
    target = side.store.last_position()
    started = time.perf_counter()
    while min(positions.position(name) for name in MANAGER_NAMES) < target:
        require_running(proc, workdir)
        if time.perf_counter() - started > CATCH_UP_TIMEOUT:
            raise RuntimeError(f"the process managers did not reach position {target}")
        time.sleep(0.05)
    return time.perf_counter() - started


# --- preparation ------------------------------------------------------------------------


def context(side: CommandSide, actor: str = "anna.sales") -> CommandContext:
    return CommandContext.new(actor=actor, clock=side.clock)


def prepare_deal(side: CommandSide, n: int) -> UUID:
    """A lead created, assessed, qualified as quality and converted into a transport deal
    (in its first stage, ``new``)."""
    store, funnels = side.store, side.funnels
    lead_id = uuid4()
    create_lead(
        store,
        funnels,
        lead.CreateLead(
            lead_id=lead_id,
            funnel="out_of_court",
            title=TITLES[n % len(TITLES)],
            company_name=f"Hauliers {n} LLC",
            source="website",
            manager=MANAGERS[n % len(MANAGERS)],
            description="Machinery to move between two sites",
        ),
        context(side),
    )
    for command in (
        lead.RecordLeadAssessment("ivan.expert", "feasible", Decimal("1.5")),
        lead.QualifyLead(True),
    ):
        handle_lead_command(store, funnels, lead_id, command, context(side))
    result = convert_lead(store, funnels, side.rules, lead_id, DEAL_FUNNEL, context(side))
    return result.stream_id


# --- measurement ------------------------------------------------------------------------


def request_is_readable(side: CommandSide, deal_id: UUID, round_no: int) -> bool | None:
    """True when the deal shows its estimate request and the request can be read; None
    when the deal shows a request that is not the round's."""
    state, _ = load_deal(side.store, deal_id)
    if not state.handoffs:
        return False
    expected = request_id_for_round(deal_id, round_no, DEPARTMENT)
    if all(view.request_id != expected for view in state.handoffs):
        return None
    try:
        request, _ = load_handoff(side.store, side.rules, expected)
    except StreamNotFound:
        return False
    return request.deal_id == deal_id


def measure_deal(
    side: CommandSide, deal_id: UUID, args: argparse.Namespace, measured: Measured
) -> None:
    poll = args.poll_ms / 1000
    t0 = time.perf_counter()
    result = handle_deal_command(
        side.store,
        side.rules,
        deal_id,
        deal.MoveDealToStage(ESTIMATE_STAGE),
        context(side, "boris"),
    )
    appended = time.perf_counter()
    polls = 0
    while True:
        polls += 1
        readable = request_is_readable(side, deal_id, result.version)
        seen = time.perf_counter()
        if readable is None:
            with measured.lock:
                measured.wrong_request += 1
                measured.polls += polls
            return
        if readable:
            with measured.lock:
                measured.from_command.append(seen - t0)
                measured.from_append.append(seen - appended)
                measured.command.append(appended - t0)
                measured.polls += polls
            return
        if seen - t0 > args.timeout:
            with measured.lock:
                measured.timeouts += 1
                measured.polls += polls
            return
        time.sleep(poll)


def latency_row(name: str, samples: list[float]) -> list[Any]:
    return [
        name,
        len(samples),
        benchlib.ms(benchlib.percentile(samples, 50)),
        benchlib.ms(benchlib.percentile(samples, 90)),
        benchlib.ms(benchlib.percentile(samples, 99)),
        benchlib.ms(max(samples)) if samples else "-",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--deals", type=int, default=1000, help="deals sent to the estimate")
    parser.add_argument("--threads", type=int, default=8, help="deals driven at once")
    parser.add_argument("--poll-ms", type=float, default=2.0, help="read interval while waiting")
    parser.add_argument(
        "--process-poll-seconds",
        type=float,
        default=0.02,
        help="LEADLEDGER_PROCESS_POLL_SECONDS of the process managers' process",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds a deal may wait for its request"
    )
    parser.add_argument(
        "--postgres-url", default=benchlib.DEFAULT_POSTGRES_URL, help="PostgreSQL to use"
    )
    args = parser.parse_args(argv)
    if args.deals < 1 or args.threads < 1:
        parser.error("--deals and --threads must be at least 1")

    print(
        f"hand-off latency: {args.deals:,} deals, {args.threads} threads, process managers "
        f"polling every {args.process_poll_seconds:g} s, reads every {args.poll_ms:g} ms",
        file=sys.stderr,
        flush=True,
    )
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="bench_handoff_"))
    schema = benchlib.create_schema(args.postgres_url, SCHEMA_PREFIX)
    url = benchlib.schema_url(args.postgres_url, schema)
    measured = Measured()
    details: dict[str, Any] = {}
    log_tail = ""
    try:
        side = build_command_side(
            Settings(event_store_url=url, duckdb_path=workdir / "unused.duckdb")
        )
        try:
            # The tables exist before the other process opens the same schema.
            positions = ProcessStore(side.store)
            with process_managers(url, args.process_poll_seconds, workdir) as proc:
                print("preparing deals ...", file=sys.stderr, flush=True)
                watch = benchlib.Stopwatch()
                with ThreadPoolExecutor(args.threads) as pool:
                    deal_ids = list(pool.map(lambda n: prepare_deal(side, n), range(args.deals)))
                details["prepare"] = watch.elapsed
                details["prepared_events"] = side.store.last_position()
                details["catch_up"] = wait_for_catch_up(side, positions, proc, workdir)

                print("measuring ...", file=sys.stderr, flush=True)
                watch = benchlib.Stopwatch()
                cpu_before = (benchlib.process_cpu(proc.pid), time.process_time())
                with ThreadPoolExecutor(args.threads) as pool:
                    for done in pool.map(
                        lambda deal_id: measure_deal(side, deal_id, args, measured), deal_ids
                    ):
                        assert done is None
                details["measure"] = watch.elapsed
                require_running(proc, workdir)
                details["managers_cpu"] = benchlib.process_cpu(proc.pid) - cpu_before[0]
                details["driver_cpu"] = time.process_time() - cpu_before[1]
                details["events"] = side.store.last_position()
        finally:
            side.close()
    finally:
        benchlib.drop_schema(args.postgres_url, schema)
        log_tail = process_log(workdir)
        benchlib.remove_tree(workdir)

    samples = measured.from_command
    failed = measured.timeouts + measured.wrong_request
    p99 = benchlib.percentile(samples, 99)
    passed = failed == 0 and len(samples) == args.deals and p99 < TARGET_P99
    print()
    print(
        benchlib.table(
            f"Estimate hand-off latency on PostgreSQL, {args.deals:,} deals, "
            f"{args.threads} at a time",
            ("from", "deals", "p50 ms", "p90 ms", "p99 ms", "max ms"),
            [
                latency_row("move sent → request readable", samples),
                latency_row("move appended → request readable", measured.from_append),
                latency_row("the move command itself", measured.command),
            ],
        )
    )
    print(
        benchlib.table(
            "Target",
            ("figure", "target", "measured", "result"),
            [
                [
                    "p99, move sent → request readable",
                    f"< {TARGET_P99 * 1000:.0f} ms",
                    f"{benchlib.ms(p99)} ms",
                    "PASS" if passed else "FAIL",
                ],
                ["deals whose request never came (timeout)", "0", measured.timeouts, ""],
                ["deals with another request than the round's", "0", measured.wrong_request, ""],
            ],
        )
    )
    print(
        benchlib.table(
            "Run details",
            ("what", "value"),
            [
                ["machine", f"{os.cpu_count()} cores (PostgreSQL, both processes share them)"],
                ["load average (1 min) before the run", f"{load_before:.2f}"],
                ["process managers", "`leadledger process`, own OS process"],
                ["their poll interval", f"{args.process_poll_seconds:g} s"],
                ["read interval while waiting", f"{args.poll_ms:g} ms"],
                ["preparation (4 commands a deal)", f"{details['prepare']:.1f} s"],
                ["events after preparation", benchlib.count(details["prepared_events"])],
                ["process managers' catch-up after it", f"{details['catch_up']:.1f} s"],
                ["measurement wall time", f"{details['measure']:.1f} s"],
                ["deals per second", f"{len(samples) / max(1e-9, details['measure']):.1f}"],
                ["reads per deal (mean)", f"{measured.polls / max(1, args.deals):.1f}"],
                [
                    "CPU of the process managers' process",
                    f"{details['managers_cpu']:.1f} s "
                    f"({details['managers_cpu'] * 1000 / args.deals:.1f} ms a deal)",
                ],
                ["CPU of this process (commands and reads)", f"{details['driver_cpu']:.1f} s"],
                ["events at the end", benchlib.count(details["events"])],
            ],
        )
    )
    if any(word in log_tail for word in ("ERROR", "WARNING", "Traceback")):
        print("leadledger process log (last lines):\n" + log_tail)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
