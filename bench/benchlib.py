"""What the benchmark scripts share: tables, percentiles, PostgreSQL schemas, memory
figures, and a generator of valid lead histories driven by the Lead decider."""

from __future__ import annotations

import heapq
import math
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from aggregates import company, lead
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import DomainError
from aggregates.funnels import FunnelCatalog
from leadledger.demo import (
    COMPANY_KINDS,
    COMPANY_WORDS,
    EXPERTS,
    LOST_REASONS,
    MANAGERS,
    MATURITY,
    NON_QUALITY_REASONS,
    PAUSE_REASONS,
    SOURCES,
    TITLES,
)

DEFAULT_POSTGRES_URL = os.environ.get(
    "LEADLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
HISTORY_START = datetime(2025, 11, 1, tzinfo=UTC)
"""The generated histories begin here (a fixed instant: runs are reproducible)."""

# --- printing ---------------------------------------------------------------------------


# The benchmarks build platforms of their own on PostgreSQL too, where a token secret
# must be configured: one for the benchmarks, unless the caller set one.
os.environ.setdefault("LEADLEDGER_AUTH_SECRET", "leadledger-bench-secret-0123456789abcdef")


def _is_number(text: str) -> bool:
    stripped = text.replace(",", "").replace("%", "").replace("x", "").strip()
    try:
        float(stripped)
    except ValueError:
        return False
    return True


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: numbers right-aligned, text left-aligned."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [
        all(_is_number(r[i]) or r[i] in ("", "-") for r in cells[1:]) and len(cells) > 1
        for i in range(len(headers))
    ]

    def line(row: list[str]) -> str:
        parts = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [title, "=" * len(title), line(cells[0]), rule]
    out.extend(line(r) for r in cells[1:])
    return "\n".join(out) + "\n"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def count(n: float) -> str:
    return f"{n:,.0f}"


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.1f}"


def timed(fn: Callable[[], object], runs: int, warmup: int) -> list[float]:
    """Seconds per call of ``fn`` over ``runs`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_row(name: str, samples: Sequence[float], extra: Sequence[Any] = ()) -> list[Any]:
    """name, runs, p50, p95, p99, max, mean (milliseconds)."""
    mean = sum(samples) / len(samples) if samples else math.nan
    return [
        name,
        len(samples),
        ms(percentile(samples, 50)),
        ms(percentile(samples, 95)),
        ms(percentile(samples, 99)),
        ms(max(samples) if samples else math.nan),
        ms(mean),
        *extra,
    ]


LATENCY_HEADERS = ("what", "runs", "p50 ms", "p95 ms", "p99 ms", "max ms", "mean ms")


# --- PostgreSQL -------------------------------------------------------------------------


def create_schema(url: str, prefix: str) -> str:
    """A fresh schema with a unique name; the caller drops it with ``drop_schema``."""
    schema = f"{prefix}{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return schema


def drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def schema_url(url: str, schema: str) -> str:
    """The event store URL of a schema (``?schema=`` as event_store.store reads it)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}schema={schema}"


def leftover_schemas(url: str, prefix: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", [prefix + "%"]
        ).fetchall()
    return [r[0] for r in rows]


# --- files and memory -------------------------------------------------------------------


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


_PAGE = os.sysconf("SC_PAGE_SIZE")


def current_rss() -> int:
    """Resident set size of this process now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def peak_rss() -> int:
    """Peak resident set size of this process so far (ru_maxrss), in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def children_peak_rss() -> int:
    """Largest peak RSS among this process's finished, waited-for children, in bytes."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


class RssSampler:
    """Samples this process's RSS in a thread; ``peak`` is the largest value seen."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.baseline = current_rss()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, current_rss())

    def __enter__(self) -> RssSampler:
        self.baseline = current_rss()
        self.peak = self.baseline
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss())


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


# --- lead histories ---------------------------------------------------------------------

GeneratedEvent = tuple[UUID, int, DomainEvent]
"""(stream id, version, event)"""

COST_NAMES = ("expertise", "site visit", "laboratory tests", "report", "travel", "court fee")
RESULTS = ("feasible", "complex", "routine", "needs a site visit")


@dataclass
class _Active:
    state: lead.Lead
    remaining: int


class LeadHistory:
    """Valid lead histories, decided and evolved by the Lead decider, in time order.

    Leads arrive uniformly over ``span_days`` from ``start``; each lives through a mix of
    commands (moves mostly forward, card edits, cost breakdowns, pauses and resumes,
    assessments, qualifications, transfers) a few days apart, and usually ends closed
    (won, lost) or qualified as non-quality. A lead with a company id used before is a
    repeat lead; the first lead of a company also registers the company, as the command
    handler does. Iterating yields exactly ``events`` events (fewer only when every lead
    has run out of commands), with non-decreasing timestamps.
    """

    def __init__(
        self,
        funnels: FunnelCatalog,
        *,
        leads: int,
        events: int,
        seed: int = 7,
        start: datetime = HISTORY_START,
        span_days: float = 365.0,
        mean_gap_hours: float = 60.0,
    ) -> None:
        self.funnels = funnels
        self.leads = leads
        self.events = events
        self.rng = random.Random(seed)
        self.start = start
        self.span = span_days * 86400
        self.mean_gap = mean_gap_hours * 3600
        self.company_pool = max(10, leads)
        # 85% of leads name a company drawn from a pool as large as the number of leads,
        # so about 1 - e^-0.85 = 57% of the leads also register their company: leave room
        # for those events so that about ``leads`` leads fit into ``events`` events.
        self.mean_budget = max(1.0, (events - 0.57 * leads) / max(1, leads))
        self.companies_seen: set[str] = set()
        self.created = 0
        self.last_at = start
        self._funnel_ids = list(funnels)

    # --- values -------------------------------------------------------------------------

    def _uuid(self) -> UUID:
        return UUID(int=self.rng.getrandbits(128), version=4)

    def _money(self, low: int, high: int) -> Decimal:
        return Decimal(self.rng.randrange(low, high)).scaleb(-2)

    def _meta(self, actor: str, at: datetime) -> CommandMeta:
        return CommandMeta(actor=actor, at=at, command_id=self._uuid())

    def _budget(self) -> int:
        """How many events a lead's life has (creation included), mean ``mean_budget``."""
        extra = self.mean_budget - 1.5
        if extra <= 0:
            return 1
        return min(80, 2 + int(self.rng.expovariate(1 / extra)))

    # --- commands -----------------------------------------------------------------------

    def create_command(self, lead_id: UUID, at: datetime) -> lead.CreateLead:
        rng = self.rng
        funnel_id = "out_of_court" if rng.random() < 0.6 else "court"
        if funnel_id not in self.funnels:
            funnel_id = rng.choice(self._funnel_ids)
        company_id = None
        number = rng.randrange(self.company_pool)
        if rng.random() < 0.85:
            company_id = f"INN{7700000000 + number}"
        name = f"{COMPANY_WORDS[number % len(COMPANY_WORDS)]} {COMPANY_KINDS[number % 8]} {number}"
        return lead.CreateLead(
            lead_id=lead_id,
            funnel=funnel_id,
            title=rng.choice(TITLES),
            company_name=name,
            company_id=company_id,
            source="court_request" if funnel_id == "court" else rng.choice(SOURCES[1:]),
            manager=rng.choice(MANAGERS),
            expert=rng.choice(EXPERTS) if rng.random() < 0.5 else None,
            need_maturity=rng.choice(MATURITY),
            answer_due=(at + timedelta(days=rng.randint(2, 21))).date(),
            description="Request received by phone; documents to follow",
            amount=self._money(50_000, 2_000_000),
        )

    def _target_stage(self, state: lead.Lead) -> str:
        stages = self.funnels[state.funnel].stages
        index = next(i for i, s in enumerate(stages) if s.id == state.stage)
        roll = self.rng.random()
        if roll < 0.85 and index + 1 < len(stages):
            # from the last regular step, an alternative outcome is sometimes chosen
            if index + 2 < len(stages) and stages[index + 2].step == stages[index + 1].step:
                return stages[index + (2 if self.rng.random() < 0.3 else 1)].id
            return stages[index + 1].id
        if index > 0:
            return stages[index - 1].id
        return stages[1].id

    def _card(self, state: lead.Lead) -> lead.UpdateLeadCard:
        rng = self.rng
        roll = rng.random()
        changes: dict[str, Any] = {"description": f"Note {state.version + 1}: client called back"}
        if roll < 0.25:
            changes["manager"] = rng.choice(MANAGERS)
        elif roll < 0.45 and not state.cost_components:
            changes["amount"] = self._money(50_000, 2_000_000)
        elif roll < 0.6:
            changes["need_maturity"] = rng.choice(MATURITY)
        elif roll < 0.75:
            due = state.answer_due or state.created_at.date()
            changes["answer_due"] = due + timedelta(days=rng.randint(1, 14))
        elif roll < 0.85:
            changes["expert"] = rng.choice(EXPERTS)
        return lead.UpdateLeadCard(changes)

    def _cost(self) -> lead.SetLeadCostBreakdown:
        names = self.rng.sample(COST_NAMES, self.rng.randint(1, 3))
        return lead.SetLeadCostBreakdown(
            tuple(lead.CostComponent(n, self._money(5_000, 500_000)) for n in names)
        )

    def _choose(self, state: lead.Lead, terminal: bool) -> lead.LeadCommand:
        rng = self.rng
        roll = rng.random()
        paused = state.status is lead.LeadStatus.PAUSED
        if terminal and roll < 0.8:
            roll = rng.random()
            if roll < 0.4:
                return lead.CloseLead("won")
            if roll < 0.75 or paused or state.assessment is None:
                return lead.CloseLead("lost", rng.choice(LOST_REASONS))
            return lead.QualifyLead(False, rng.choice(NON_QUALITY_REASONS))
        if paused:
            if roll < 0.8:
                return lead.ResumeLead()
            return self._card(state) if roll < 0.95 else self._cost()
        if roll < 0.42:
            return lead.MoveLeadToStage(self._target_stage(state))
        if roll < 0.56:
            return self._card(state)
        if roll < 0.61:
            return self._cost()
        if roll < 0.69:
            return lead.PauseLead(rng.choice(PAUSE_REASONS))
        if roll < 0.82:
            hours = Decimal(rng.randint(1, 64)) / 2
            return lead.RecordLeadAssessment(rng.choice(EXPERTS), rng.choice(RESULTS), hours)
        if roll < 0.92:
            if state.assessment is not None and state.quality is not True:
                return lead.QualifyLead(True)
            return lead.MoveLeadToStage(self._target_stage(state))
        if roll < 0.94:
            others = [f for f in self._funnel_ids if f != state.funnel]
            if others:
                target = self.funnels[rng.choice(others)]
                stage = None if rng.random() < 0.7 else rng.choice(target.stages[:3]).id
                return lead.TransferLead(target.id, stage)
        return lead.MoveLeadToStage(self._target_stage(state))

    def next_event(self, state: lead.Lead, at: datetime, *, terminal: bool) -> DomainEvent:
        """One valid event for the lead (a fallback card edit when the draws are refused)."""
        actor = state.manager
        for _ in range(4):
            command = self._choose(state, terminal)
            try:
                return lead.decide(state, command, self.funnels, self._meta(actor, at))
            except DomainError:
                continue
        fallback = lead.UpdateLeadCard({"description": f"Note {state.version + 1}"})
        return lead.decide(state, fallback, self.funnels, self._meta(actor, at))

    def _created(self, at: datetime) -> tuple[lead.LeadCreated, company.CompanyRegistered | None]:
        command = self.create_command(self._uuid(), at)
        known = command.company_id in self.companies_seen
        meta = self._meta(command.manager, at)
        created = lead.create(command, self.funnels, meta, company_known=known)
        registration = None
        if command.company_id is not None and not known:
            self.companies_seen.add(command.company_id)
            registration = company.register(
                command.company_id, created.company_name, created.lead_id, meta
            )
        self.created += 1
        return created, registration

    # --- the stream ---------------------------------------------------------------------

    def __iter__(self) -> Iterator[GeneratedEvent]:
        rng = self.rng
        arrivals = sorted(rng.uniform(0, self.span) for _ in range(self.leads))
        heap: list[tuple[float, int, int]] = []
        active: dict[int, _Active] = {}
        next_arrival = 0
        emitted = 0
        seq = 0
        while emitted < self.events:
            arrival_t = arrivals[next_arrival] if next_arrival < len(arrivals) else math.inf
            if heap and heap[0][0] <= arrival_t:
                t, _, key = heapq.heappop(heap)
                item = active[key]
                at = self.start + timedelta(seconds=t)
                event = self.next_event(item.state, at, terminal=item.remaining == 1)
                item.state = lead.evolve(item.state, event)
                item.remaining -= 1
                yield item.state.lead_id, item.state.version, event
                emitted += 1
                if item.remaining > 0 and not item.state.status.closed:
                    gap = rng.expovariate(1 / self.mean_gap)
                    heapq.heappush(heap, (t + gap, seq, key))
                    seq += 1
                else:
                    del active[key]
            elif next_arrival < len(arrivals):
                next_arrival += 1
                at = self.start + timedelta(seconds=arrival_t)
                created, registration = self._created(at)
                state = lead.evolve(None, created)
                yield created.lead_id, 1, created
                emitted += 1
                if registration is not None and emitted < self.events:
                    stream = company.company_stream_id(registration.company_id)
                    yield stream, 1, registration
                    emitted += 1
                budget = self._budget()
                if budget > 1:
                    active[next_arrival] = _Active(state, budget - 1)
                    gap = rng.expovariate(1 / self.mean_gap)
                    heapq.heappush(heap, (arrival_t + gap, seq, next_arrival))
                    seq += 1
            else:
                return

    def single_lead(self, events: int, *, gap_minutes: float = 90.0) -> list[GeneratedEvent]:
        """One lead with exactly ``events`` events, still open at the end (no company)."""
        at = self.start
        command = self.create_command(self._uuid(), at)
        command = lead.CreateLead(**{**command.__dict__, "company_id": None})
        created = lead.create(
            command, self.funnels, self._meta(command.manager, at), company_known=False
        )
        state = lead.evolve(None, created)
        out: list[GeneratedEvent] = [(state.lead_id, 1, created)]
        while len(out) < events:
            at += timedelta(minutes=self.rng.expovariate(1 / gap_minutes))
            event = self.next_event(state, at, terminal=False)
            state = lead.evolve(state, event)
            out.append((state.lead_id, state.version, event))
        return out


def mid_time(events: Sequence[GeneratedEvent]) -> datetime:
    """The timestamp of the middle event of a history."""
    return events[len(events) // 2][2].at


# --- worker processes -------------------------------------------------------------------


@contextmanager
def leadledger_command(
    args: Sequence[str], env: dict[str, str], log: Path, cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m leadledger.cli <args>`` with ``env`` added to this environment, its
    output appended to ``log``; stopped (SIGTERM, then SIGKILL after 20 s) on exit."""
    command = [sys.executable, "-m", "leadledger.cli", *args]
    with open(log, "ab") as log_file:
        proc = subprocess.Popen(
            command, cwd=cwd, env={**os.environ, **env}, stdout=log_file, stderr=log_file
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def top_management_headers(platform: Any) -> dict[str, str]:
    """Authorization for a benchmark reading through the API as top management (who sees
    everything: the figures are those of the unscoped queries)."""
    from aggregates.users import Principal, Role

    token = platform.signer.issue(
        Principal("bench.top", Role.TOP), now=platform.clock(), ttl=timedelta(days=1)
    )
    return {"Authorization": f"Bearer {token}"}
