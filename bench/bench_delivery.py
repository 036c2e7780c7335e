"""Delivery read models with 10,000 projects in a log of 1M events: rebuild rate and the
latency of the portfolio, status-time and plan/fact queries.

Targets: each query's p95 < 50 ms; the projector's rebuild ≥ 100k events/s with every
read model (leads, deals, projects, status time) folded together.

Setup (in a child process, so that it does not count in this process's peak RSS): a
delivery history is decided and evolved by the deciders themselves
(``aggregates.project``, ``aggregates.billing``, ``aggregates.timesheets``,
``aggregates.health``): projects created by hand, their cards filled in, tasks with
dependencies, status moves over weeks (on hold and rework among them), hours logged by
the team's people (each person's day at most 24 h across all projects, booked on the
person's day as the command handler does), a few corrections, the computed health the
health process manager records (after every change and when time alone changes it),
manual health set and cleared by PMs, invoices and payments. The log is padded with lead
histories from ``benchlib.LeadHistory`` up to the number of events asked for, merged in
time order (and cut at that number, a few days before the end of the 12 months), and
COPY-ed into a fresh PostgreSQL schema by ``bench_projection.load_history`` (gap-free
positions). Then, in this process:

1. ``projections.projector.rebuild()`` into a fresh DuckDB file, once with the lead
   projection alone and once with every read model: events/s, peak RSS, the ratio of the
   two, and the time each projection spends folding;
2. the query functions behind the portfolio, status-time, plan/fact and resource-load
   endpoints, called on a ``ReadModelDatabase`` cursor as the API does: p50/p95/p99;
3. some of the same requests over HTTP (FastAPI TestClient, in-process, projector and
   process managers off) to show what the HTTP layer adds.

The schema is dropped and the files removed at the end. Run from the project root:

    .venv/bin/python -m bench.bench_delivery                               # full scale
    .venv/bin/python -m bench.bench_delivery --projects 500 --events 60000 --runs 20
"""

from __future__ import annotations

import argparse
import concurrent.futures
import cProfile
import functools
import heapq
import io
import math
import multiprocessing
import os
import platform as platform_info
import pstats
import random
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast
from unittest import mock
from uuid import UUID

import duckdb
import orjson
import psycopg

from aggregates import billing, lead, project, timesheets
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import DomainError
from aggregates.funnels import FunnelCatalog
from aggregates.health import compute_health, next_change
from aggregates.rules import ProjectRules, Rules
from bench import bench_projection, benchlib
from commands.projects import project_id_for
from event_store import EventStore, open_event_store
from leadledger.demo import COMPANY_KINDS, COMPANY_WORDS
from leadledger.settings import Settings
from leadledger.wiring import build, event_codec, load_funnels, load_rules, read_model_projections
from projections.base import DerivedProjection, Projection
from projections.database import ReadModelDatabase
from projections.project_labour import ProjectLabourProjection
from projections.projector import rebuild
from queries import check_growth, project_costs, status_time
from queries import projects as project_queries
from queries.common import Filters
from queries.projects import Days, Span

TARGET_P95 = 0.050
TARGET_EVENTS_PER_S = bench_projection.TARGET_EVENTS_PER_S
SCHEMA_PREFIX = "bench_delivery_"
HISTORY_DAYS = 365.0
END = benchlib.HISTORY_START + timedelta(days=HISTORY_DAYS)
"""Projects are created and worked on until here, and the log is cut here at the latest;
the queries ask "as of" the log's last event."""
LEADS_PER_LEAD_EVENT = 0.15
"""Leads per lead event, as in bench_projection (150k leads in 1M events)."""
LEAD_OVERRUN = 1.5
"""The lead histories are generated over 1.5x the span and cut at its end."""
LEAD_PACE = 1.03
"""A little more than the events asked for fall before the end (about 98.6-100 % would at
the bare pace): the log then ends at exactly ``--events`` events, shortly before it."""

# --- who works on projects ----------------------------------------------------------------

PMS = tuple(f"pm.{i:02d}" for i in range(1, 41))
CURATORS = tuple(f"curator.{i:02d}" for i in range(1, 11))
ROLES = ("engineer", "designer", "fitter", "surveyor", "estimator")
PEOPLE = tuple(f"{ROLES[i % len(ROLES)]}.{i:03d}" for i in range(200))
CATEGORIES = ("construction", "reconstruction", "survey", "maintenance", "audit")
OTHER_DEPARTMENTS = ("engineering", "design")
ACCOUNTING = "accounting.desk"
HEALTH_ACTOR = "leadledger.project-health"
PROJECT_TITLES = (
    "Warehouse fit-out",
    "Office reconstruction",
    "Pipeline survey",
    "Cold-chain delivery",
    "Boiler house retrofit",
    "Road bridge inspection",
    "Heavy cargo transport",
    "Roof repair",
)
TASK_TITLES = (
    "Site survey",
    "Design",
    "Bill of quantities",
    "Procurement",
    "Mobilisation",
    "Installation",
    "Commissioning",
    "As-built documents",
    "Handover",
    "Client training",
)
CORRECTION_REASONS = ("logged on the wrong day", "double entry", "task was cancelled")
HOLD_COMMENTS = ("client delays the approval", "materials late", "waiting for access")

DELIVERY_TOPICS = frozenset(
    t.__name__
    for t in (
        *project.PROJECT_EVENT_TYPES,
        *billing.BILLING_EVENT_TYPES,
        *timesheets.TIMESHEET_EVENT_TYPES,
    )
)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def _at(day: date, hours: float) -> datetime:
    """An instant on ``day``, ``hours`` after midnight UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hours)


def _half_hours(low: int, high: int, rng: random.Random) -> Decimal:
    """A whole number of half hours from ``low``/2 to ``high``/2."""
    return Decimal(rng.randint(low, high)) / 2


@dataclass(order=True)
class _Step:
    """One command of a project's life, at the instant it is sent."""

    at: datetime
    seq: int
    actor: str = field(compare=False)
    command: Any = field(compare=False)


@dataclass(frozen=True)
class _Booking:
    """Hours to book on a person's day, in the same write as their project event: the
    event is made when the log is merged, so that each person-day stream's versions and
    running totals follow the log's order."""

    meta: CommandMeta
    person: str
    day: date
    project_id: UUID
    entry_id: UUID
    change: Decimal


DeliveryItem = tuple[datetime, int, UUID, int, DomainEvent | _Booking]
"""(instant, order of generation, stream id, version, event or booking)"""


@dataclass
class _Run:
    """A project while its history is being decided."""

    project_id: UUID
    state: project.Project
    bills: billing.Billing | None
    last_at: datetime


@dataclass
class DeliveryFigures:
    refused: int = 0
    """Commands the deciders refused (dropped)."""
    capped_entries: int = 0
    """Time entries not made because the person's day was full."""


class DeliveryHistory:
    """Valid project histories, decided and evolved by the Project, Billing and
    timesheet deciders, over ``span_days`` from ``start``.

    ``generate()`` decides every project (creation times uniform over the span; a project
    lives weeks to months; what would happen after the end of the span is left out) and
    returns the items in log order. Commands the deciders refuse (a task completed before
    what it depends on, hours on a done project) are dropped, as a client would see a
    422 and move on; ``figures.refused`` counts them.
    """

    def __init__(
        self,
        rules: ProjectRules,
        directions: Sequence[str],
        *,
        projects: int,
        seed: int,
        start: datetime = benchlib.HISTORY_START,
        span_days: float = HISTORY_DAYS,
    ) -> None:
        self.rules = rules
        self.directions = list(directions) or ["general"]
        self.projects = projects
        self.rng = random.Random(seed)
        self.start = start
        self.end = start + timedelta(days=span_days)
        self.span = span_days * 86400
        self.figures = DeliveryFigures()
        self._seq = 0
        self._items: list[DeliveryItem] = []
        self._day_hours: dict[tuple[str, date], Decimal] = {}
        # PMs belong to departments: a department's projects go to its PMs
        departments = sorted(
            {rules.department_for(d) for d in self.directions} | set(OTHER_DEPARTMENTS)
        )
        self._pms = {d: PMS[i :: len(departments)] for i, d in enumerate(departments)}

    # --- values -------------------------------------------------------------------------

    def _uuid(self) -> UUID:
        return UUID(int=self.rng.getrandbits(128), version=4)

    def _meta(self, actor: str, at: datetime) -> CommandMeta:
        return CommandMeta(actor=actor, at=at, command_id=self._uuid())

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _step(self, steps: list[_Step], at: datetime, actor: str, command: Any) -> None:
        if at < self.end:
            steps.append(_Step(at, self._next_seq(), actor, command))

    # --- the plan of one project ------------------------------------------------------------

    def _plan(
        self, index: int, created_at: datetime
    ) -> tuple[CommandMeta, project.CreateProject, list[_Step]]:
        """The creation command (a project started by hand: its id follows from the
        command's, as ``POST /projects`` makes it) and every later command of its life."""
        rng = self.rng
        direction = rng.choice(self.directions)
        department = (
            self.rules.department_for(direction)
            if rng.random() < 0.8
            else rng.choice(OTHER_DEPARTMENTS)
        )
        pm = rng.choice(self._pms[department])
        number = rng.randrange(20_000)
        amount = Decimal(int(math.exp(rng.gauss(math.log(150_000_000), 0.9)))).scaleb(-2)
        creation_meta = self._meta(rng.choice(PMS), created_at)
        create = project.CreateProject(
            project_id=project_id_for(creation_meta.command_id),
            title=f"{rng.choice(PROJECT_TITLES)} #{index + 1}",
            company_name=f"{COMPANY_WORDS[number % len(COMPANY_WORDS)]} "
            f"{COMPANY_KINDS[number % len(COMPANY_KINDS)]} {number}",
            company_id=f"INN{7700000000 + number}" if rng.random() < 0.9 else None,
            amount=amount,
            department=department,
            direction=direction,
            pm=pm if rng.random() < 0.4 else None,
        )
        steps: list[_Step] = []
        team = rng.sample(PEOPLE, rng.randint(2, 6))

        # the card: PM, curator, category and the planned dates, a day or two later
        planned_start = (created_at + timedelta(days=rng.uniform(1, 10))).date()
        weeks = rng.randint(3, 16)
        planned_end = planned_start + timedelta(weeks=weeks)
        card: dict[str, Any] = {
            "pm": pm,
            "curator": rng.choice(CURATORS),
            "category": rng.choice(CATEGORIES),
            "planned_start": planned_start,
            "planned_end": planned_end,
        }
        if rng.random() < 0.08:  # a card left incomplete: the deviations report lists it
            del card[rng.choice(["curator", "category", "planned_end"])]
        at = created_at + timedelta(hours=rng.uniform(0.5, 48))
        self._step(steps, at, pm, project.UpdateProjectCard(card))

        # tasks, each depending on earlier ones
        n_tasks = rng.randint(5, 10)
        duration = (planned_end - planned_start).days
        windows: list[tuple[date, date]] = []
        for i in range(n_tasks):
            at += timedelta(minutes=rng.uniform(2, 30))
            earlier = [f"T{j + 1}" for j in range(i)]
            roll = rng.random()
            if not earlier or roll < 0.15:
                depends: tuple[str, ...] = ()
            elif roll < 0.75:
                depends = (earlier[-1],)
            else:
                depends = tuple(rng.sample(earlier, min(2, len(earlier))))
            task_start = planned_start + timedelta(days=int(duration * 0.85 * i / n_tasks))
            due = task_start + timedelta(days=max(2, int(duration / n_tasks * rng.uniform(1, 2))))
            windows.append((task_start, due))
            self._step(
                steps,
                at,
                pm,
                project.AddTask(
                    task_id=f"T{i + 1}",
                    title=TASK_TITLES[i % len(TASK_TITLES)],
                    assignee=rng.choice(team),
                    planned_hours=_half_hours(4, 16, rng),
                    start=task_start,
                    due=due,
                    depends_on=depends,
                ),
            )

        # status moves: production (maybe on hold for a while), approval (maybe rework),
        # closing, done
        production = _at(planned_start, rng.uniform(8, 12))
        length = timedelta(days=duration * rng.uniform(0.7, 1.4))
        self._step(steps, production, pm, project.MoveProjectToStatus("in_production"))
        working: list[tuple[datetime, datetime]] = []
        approval = production + length
        if rng.random() < 0.15:
            hold = production + length * rng.uniform(0.2, 0.7)
            resume = hold + timedelta(days=rng.uniform(5, 30))
            self._step(steps, hold, pm, project.MoveProjectToStatus("on_hold"))
            self._step(steps, resume, pm, project.MoveProjectToStatus("in_production"))
            approval += resume - hold
            working += [(production, hold), (resume, approval)]
        else:
            working.append((production, approval))
        self._step(steps, approval, pm, project.MoveProjectToStatus("approval"))
        last_approval = approval
        if rng.random() < 0.25:
            rework = approval + timedelta(days=rng.uniform(1, 5))
            last_approval = rework + timedelta(days=rng.uniform(3, 15))
            self._step(steps, rework, pm, project.MoveProjectToStatus("rework"))
            self._step(steps, last_approval, pm, project.MoveProjectToStatus("approval"))
            working.append((rework, last_approval))
        closing = last_approval + timedelta(days=rng.uniform(1, 4))
        done = closing + timedelta(days=rng.uniform(2, 15))
        self._step(steps, closing, pm, project.MoveProjectToStatus("closing"))
        self._step(steps, done, pm, project.MoveProjectToStatus("done"))

        # task progress and completions, in dependency order
        completed_at: list[datetime] = []
        for i, (task_start, due) in enumerate(windows):
            task_id = f"T{i + 1}"
            if rng.random() < 0.5:
                moment = _at(task_start, 10) + timedelta(days=rng.uniform(0.5, 3))
                progress = {"percent_done": rng.choice((25, 50, 75))}
                self._step(
                    steps, moment, team[i % len(team)], project.UpdateTask(task_id, progress)
                )
            if rng.random() < 0.12:
                moment = _at(task_start, 11) + timedelta(days=rng.uniform(0.5, 2))
                self._step(steps, moment, pm, project.UpdateTask(task_id, {"due": due + 7 * DAY}))
            # mostly around the due day (some late: overdue), before the project closes
            finish = min(_at(due, 15) + timedelta(days=rng.uniform(-3, 4)), closing - HOUR)
            finish = max(finish, _at(task_start, 16), *completed_at[-1:]) + timedelta(
                minutes=rng.uniform(5, 90)
            )
            completed_at.append(finish)
            self._step(steps, finish, pm, project.CompleteTask(task_id))

        # hours: about the plan (60-140 %), on working days of the working periods
        planned = sum(
            (s.command.planned_hours for s in steps if isinstance(s.command, project.AddTask)),
            Decimal(0),
        )
        target = planned * Decimal(str(round(rng.uniform(0.6, 1.4), 2)))
        days = [
            d
            for begin, until in working
            for d in _days(begin.date(), until.date())
            if d.isoweekday() <= 5
        ]
        logged = Decimal(0)
        attempts = 0
        while days and logged < target and attempts < 200:
            attempts += 1
            day = rng.choice(days)
            person = rng.choice(team)
            used = self._day_hours.get((person, day), Decimal(0))
            hours = min(_half_hours(2, 16, rng), Decimal(24) - used)
            if hours < Decimal("0.5"):
                self.figures.capped_entries += 1
                continue
            moment = _at(day, rng.uniform(16, 21))
            if rng.random() < 0.2:
                moment += timedelta(hours=rng.uniform(12, 40))
            if moment >= self.end:
                continue
            self._day_hours[(person, day)] = used + hours
            logged += hours
            on_task = [f"T{i + 1}" for i, (a, b) in enumerate(windows) if a <= day <= b]
            worked_on = rng.choice(on_task) if on_task and rng.random() < 0.9 else None
            entry_id = self._uuid()
            self._step(
                steps, moment, person, project.LogHours(entry_id, person, day, hours, worked_on)
            )
            if rng.random() < 0.04:  # a correction down, sometimes to nothing
                right = Decimal(rng.randint(0, int(hours * 2) - 1)) / 2
                fixed = moment + timedelta(days=rng.uniform(1, 6))
                reason = rng.choice(CORRECTION_REASONS)
                self._step(steps, fixed, person, project.CorrectHours(entry_id, right, reason))

        # manual health, set by the PM and usually cleared later
        if rng.random() < 0.04:
            moment = production + length * rng.uniform(0.3, 0.8)
            level = rng.choice(("some_difficulties", "big_difficulties"))
            self._step(steps, moment, pm, project.SetHealth(level, rng.choice(HOLD_COMMENTS)))
            if rng.random() < 0.7:
                self._step(
                    steps, moment + timedelta(days=rng.uniform(3, 20)), pm, project.ClearHealth()
                )

        # billing: an advance now and then, the rest when closing; most invoices paid
        advance = Decimal(0)
        invoices: list[tuple[datetime, str, Decimal, int]] = []
        if rng.random() < 0.3:
            advance = (amount * Decimal("0.3")).quantize(Decimal("0.01"))
            invoices.append((production + timedelta(days=rng.uniform(1, 5)), "A", advance, 14))
        invoices.append(
            (
                closing + timedelta(days=rng.uniform(0, 2)),
                "F",
                amount - advance,
                rng.randint(10, 30),
            )
        )
        for issued, kind, invoice_amount, due_days in invoices:
            if invoice_amount <= 0:
                continue
            invoice_no = f"{kind}-{index + 1:05d}"
            due_date = issued.date() + timedelta(days=due_days)
            self._step(
                steps,
                issued,
                pm,
                billing.IssueProjectInvoice(invoice_no, invoice_amount, due_date, issued.date()),
            )
            roll = rng.random()
            if roll < 0.12:
                continue  # never paid: overdue, the project's health suffers
            parts = [invoice_amount]
            if roll < 0.3:
                first = (invoice_amount * Decimal(str(round(rng.uniform(0.2, 0.8), 2)))).quantize(
                    Decimal("0.01")
                )
                parts = [first, invoice_amount - first]
            moment = issued
            for part in parts:
                moment += timedelta(days=rng.uniform(3, due_days + 25))
                self._step(
                    steps,
                    moment,
                    ACCOUNTING,
                    billing.RecordPayment(invoice_no, part, moment.date()),
                )
        steps.sort()
        return creation_meta, create, steps

    # --- deciding it --------------------------------------------------------------------

    def _emit(
        self, at: datetime, stream_id: UUID, version: int, event: DomainEvent | _Booking
    ) -> None:
        self._items.append((at, self._next_seq(), stream_id, version, event))

    def _record_health(self, run: _Run, now: datetime) -> None:
        """As the health process manager: record the computed health when it changed."""
        level, reasons = compute_health(run.state, run.bills, now, self.rules)
        if (level, reasons) == (run.state.computed_health, run.state.computed_reasons):
            return
        at = max(now, run.last_at) + timedelta(seconds=self.rng.uniform(0.05, 1.5))
        if at >= self.end:
            return
        event = project.decide(
            run.state,
            project.RecordComputedHealth(level, reasons),
            self.rules,
            self._meta(HEALTH_ACTOR, at),
        )
        run.state = project.evolve(run.state, event)
        run.last_at = at
        self._emit(at, run.project_id, run.state.version, event)

    def _deadlines(self, run: _Run, until: datetime) -> None:
        """The health checks the passing of time alone calls for, before ``until``."""
        while True:
            moment = next_change(run.state, run.bills, run.last_at, self.rules)
            if moment is None or moment >= until:
                return
            run.last_at = moment
            self._record_health(run, moment)

    def _apply(self, run: _Run, step: _Step) -> None:
        at = max(step.at, run.last_at + timedelta(milliseconds=1))
        meta = self._meta(step.actor, at)
        command = step.command
        try:
            if isinstance(command, billing.IssueProjectInvoice | billing.RecordPayment):
                current = run.bills or billing.empty_billing(run.project_id, at)
                event = billing.decide(current, command, meta)
                run.bills = billing.evolve(run.bills, event)
                run.last_at = at
                self._emit(at, billing.billing_stream_id(run.project_id), run.bills.version, event)
            else:
                event = project.decide(run.state, command, self.rules, meta)
                run.state = project.evolve(run.state, event)
                run.last_at = at
                self._emit(at, run.project_id, run.state.version, event)
                if isinstance(event, project.HoursLogged | project.HoursCorrected):
                    change = (
                        event.hours - event.old_hours
                        if isinstance(event, project.HoursCorrected)
                        else event.hours
                    )
                    booking = _Booking(
                        meta, event.person, event.day, run.project_id, event.entry_id, change
                    )
                    self._emit(
                        at, timesheets.person_day_stream_id(event.person, event.day), 0, booking
                    )
        except DomainError:
            self.figures.refused += 1
            return
        self._record_health(run, at)

    def _project(self, index: int, created_at: datetime) -> None:
        meta, create, steps = self._plan(index, created_at)
        created = project.create(create, self.rules, meta)
        run = _Run(create.project_id, project.evolve(None, created), None, created_at)
        self._emit(created_at, run.project_id, 1, created)
        for step in steps:
            self._deadlines(run, step.at)
            self._apply(run, step)
        self._deadlines(run, self.end)

    def generate(self) -> list[DeliveryItem]:
        """Every project's events (and the bookings of their hours) in log order."""
        arrivals = sorted(self.rng.uniform(0, self.span * 0.97) for _ in range(self.projects))
        for index, offset in enumerate(arrivals):
            self._project(index, self.start + timedelta(seconds=offset))
        items, self._items = self._items, []
        items.sort(key=lambda item: (item[0], item[1]))
        return items


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += DAY


def delivery_events(items: list[DeliveryItem]) -> Iterator[benchlib.GeneratedEvent]:
    """The items as (stream id, version, event); each person's day gets its booking at its
    next version with the running total, as ``handle_project_command`` appends it."""
    days: dict[UUID, tuple[int, Decimal]] = {}
    for _, _, stream_id, version, item in items:
        if isinstance(item, _Booking):
            booked, total = days.get(stream_id, (0, Decimal("0.00")))
            event = timesheets.book(
                total, item.person, item.day, item.project_id, item.entry_id, item.change, item.meta
            )
            days[stream_id] = (booked + 1, event.total)
            yield stream_id, booked + 1, event
        else:
            yield stream_id, version, item


# --- setup: generate and COPY, in a child process -----------------------------------------


class LogHistory:
    """The lead histories and the delivery history merged in time order, iterated as
    ``bench_projection.load_history`` iterates a ``benchlib.LeadHistory``.

    The log ends after ``events`` events or at ``end``, whichever comes first (each stream
    keeps a prefix of its history, so every stream stays valid; hours logged keep the
    booking on the person's day that comes with them).
    """

    def __init__(
        self,
        leads: benchlib.LeadHistory,
        delivery: list[DeliveryItem],
        *,
        events: int,
        end: datetime,
    ) -> None:
        self.leads = leads
        self.delivery = delivery
        self.events = events
        self.end = end
        self.created = 0
        """Leads created in the log (what ``load_history`` reports as ``leads``)."""
        self.delivery_events = 0
        self.person_days: set[UUID] = set()

    def __iter__(self) -> Iterator[benchlib.GeneratedEvent]:
        merged = heapq.merge(self.leads, delivery_events(self.delivery), key=lambda e: e[2].at)
        for emitted, (stream_id, version, event) in enumerate(merged):
            paired = isinstance(event, project.HoursLogged | project.HoursCorrected)
            if emitted + paired >= self.events or event.at > self.end:
                return
            if isinstance(event, lead.LeadCreated):
                self.created += 1
            elif type(event).__name__ in DELIVERY_TOPICS:
                self.delivery_events += 1
                if isinstance(event, timesheets.PersonDayHoursBooked):
                    self.person_days.add(stream_id)
            yield stream_id, version, event


def load_log(
    postgres_url: str, schema: str, projects: int, events: int, seed: int
) -> dict[str, Any]:
    """Decide the delivery history, then let ``bench_projection.load_history`` generate the
    leads that fill the log up to ``events`` and COPY both, merged, into the schema."""
    settings = Settings()
    rules = load_rules(settings.funnels_file, settings.rules_file)
    started = time.perf_counter()
    history = DeliveryHistory(rules.project, list(rules.deal_funnels), projects=projects, seed=seed)
    items = history.generate()
    generated = time.perf_counter() - started
    lead_events = max(0, events - len(items))
    leads = max(1, round(lead_events * LEADS_PER_LEAD_EVENT))
    lead_history_class = benchlib.LeadHistory
    made: list[LogHistory] = []

    def source(funnels: FunnelCatalog, *, leads: int, events: int, seed: int) -> LogHistory:
        # Leads keep arriving after the end at the same pace, so that the log's last
        # weeks hold open leads as any day would; what falls after the end is cut.
        scale = LEAD_OVERRUN
        lead_history = lead_history_class(
            funnels,
            leads=round(leads * scale * LEAD_PACE),
            events=round(events * scale * LEAD_PACE),
            seed=seed,
            span_days=HISTORY_DAYS * scale,
        )
        made.append(LogHistory(lead_history, items, events=events + len(items), end=END))
        return made[-1]

    # load_history builds its generator with benchlib.LeadHistory: give it the merged log
    with mock.patch.object(benchlib, "LeadHistory", source):
        loaded = bench_projection.load_history(postgres_url, schema, lead_events, leads, seed)
    log = made[0]
    return {
        **loaded,
        "delivery_decided": len(items),
        "delivery_cut": len(items) - log.delivery_events,
        "delivery_generate_s": generated,
        "refused": history.figures.refused,
        "capped": history.figures.capped_entries,
        "person_days": len(log.person_days),
        "peak_rss": benchlib.peak_rss(),
    }


def run_setup(args: argparse.Namespace, schema: str) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(
            load_log, args.postgres_url, schema, args.projects, args.events, args.seed
        )
        return future.result()


# --- rebuilds -------------------------------------------------------------------------------


def projections_for(only_leads: bool) -> list[Projection]:
    settings = Settings()
    funnels = load_funnels(settings.funnels_file)
    rules = load_rules(settings.funnels_file, settings.rules_file)
    projections = read_model_projections(funnels, rules)
    return [p for p in projections if p.name == "leads"] if only_leads else projections


def measure_rebuild(
    store: EventStore,
    path: Path,
    projections: list[Projection],
    page_size: int,
    profile_it: bool = False,
) -> dict[str, Any]:
    """Rebuild into a fresh DuckDB file; the time in the store's reads and in each
    projection's fold or derivation (their instances wrapped, no code changed)."""
    timer = bench_projection.PhaseTimer()
    timer.instrument(store, "read_page", "read")
    for projection in projections:
        timer.instrument(projection, "apply", projection.name)
        # a rebuild skips a derived model's apply and derives it once at the end
        timer.instrument(projection, "derive_all", projection.name)
    db = ReadModelDatabase(path)
    profiler = cProfile.Profile() if profile_it else None
    try:
        with benchlib.RssSampler() as rss:
            started = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            projector = rebuild(store, db, projections, page_size=page_size)
            if profiler is not None:
                profiler.disable()
            seconds = time.perf_counter() - started
        cursor = db.cursor()
        rows = {}
        for projection in projections:
            for table in projection.tables:
                found = cursor.execute(f"SELECT count(*) FROM {table}").fetchone()
                rows[table] = found[0] if found else 0
        cursor.execute("CHECKPOINT")
        cursor.close()
    finally:
        db.close()
        vars(store).pop("read_page", None)  # back to the class's method
    profile_text = ""
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        profile_text = out.getvalue()
    return {
        "profile": profile_text,
        "events": projector.position,
        "seconds": seconds,
        "rss_baseline": rss.baseline,
        "rss_peak": rss.peak,
        "ru_maxrss": benchlib.peak_rss(),
        "phases": dict(timer.seconds),
        "rows": rows,
        "duckdb_bytes": sum(p.stat().st_size for p in path.parent.glob(path.name + "*")),
    }


# --- queries ----------------------------------------------------------------------------------


class StatementLog:
    """A cursor that notes each statement with its parameters and time (for profiling one
    call of a query function; not used while timing)."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self._cursor = cursor
        self.statements: list[tuple[float, str, Any]] = []

    def execute(self, query: str, parameters: Any = None) -> StatementLog:
        started = time.perf_counter()
        self._cursor.execute(query, parameters)
        self.statements.append((time.perf_counter() - started, query, parameters))
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


@dataclass
class Query:
    name: str
    call: Callable[[duckdb.DuckDBPyConnection], Any]
    rows: Callable[[Any], int]
    """What the answer holds, to print beside the latency (a total, a count)."""


@dataclass
class Choices:
    """The filter values the queries use, taken from the built read models."""

    pm: str
    pm_projects: int
    department: str
    direction: str
    category: str
    project_id: str
    month: Span
    as_of: datetime


def choose(cursor: duckdb.DuckDBPyConnection, as_of: datetime) -> Choices:
    """The busiest PM, department, direction and category, the project with the most status
    visits, and the last whole month before ``as_of``."""

    def top(column: str) -> tuple[str, int]:
        row = cursor.execute(
            f"SELECT {column}, count(*) FROM projects WHERE {column} IS NOT NULL "
            f"GROUP BY ALL ORDER BY 2 DESC, 1 LIMIT 1"
        ).fetchone()
        return (str(row[0]), int(row[1])) if row else ("", 0)

    pm, pm_projects = top("pm")
    busiest = cursor.execute(
        "SELECT project_id FROM project_status_visits GROUP BY ALL ORDER BY count(*) DESC, 1 "
        "LIMIT 1"
    ).fetchone()
    last_day = as_of.date().replace(day=1) - DAY
    return Choices(
        pm=pm,
        pm_projects=pm_projects,
        department=top("department")[0],
        direction=top("direction")[0],
        category=top("category")[0],
        project_id=str(busiest[0]) if busiest else "",
        month=Span(last_day.replace(day=1), last_day),
        as_of=as_of,
    )


def queries(rules: Rules, funnels: FunnelCatalog, chosen: Choices) -> list[Query]:
    limits = {kind: status_time.stage_limits(kind, funnels, rules) for kind in ("project", "lead")}

    def visits(kind: status_time.Kind, **extra: Any) -> status_time.StatusTimeFilters:
        return status_time.StatusTimeFilters(kind=kind, as_of=chosen.as_of, **extra)

    def one_project(cursor: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        # as GET /projects/{id}/status-time: the existence check, then the visits
        status_time.created_at(cursor, "project", chosen.project_id)
        filters = visits("project", subject_id=chosen.project_id)
        return status_time.subject_status_time(cursor, filters, limits["project"])

    month = chosen.month
    # a period of the resource load that cuts a month at each end
    cut = Span(month.start + timedelta(days=9), month.end + timedelta(days=20))
    company = Filters(equal={"pm": None, "department": None})
    calendar = rules.project.calendar
    total: Callable[[Any], int] = lambda answer: int(answer[1])  # noqa: E731
    page_total: Callable[[Any], int] = lambda answer: int(answer["total"])  # noqa: E731
    return [
        Query(
            "list_projects, no filter, page 1",
            lambda c: project_queries.list_projects(c, Filters(), 50, 0),
            total,
        ),
        Query(
            f"list_projects pm={chosen.pm}, page 1",
            lambda c: project_queries.list_projects(c, Filters(equal={"pm": chosen.pm}), 50, 0),
            total,
        ),
        Query(
            f"list_projects department={chosen.department}, page 1",
            lambda c: project_queries.list_projects(
                c, Filters(equal={"department": chosen.department}), 50, 0
            ),
            total,
        ),
        Query(
            "portfolio, whole company",
            lambda c: project_queries.portfolio(c, company, rules.project),
            lambda answer: int(answer["projects"]),
        ),
        Query(
            f"portfolio pm={chosen.pm}",
            lambda c: project_queries.portfolio(
                c, Filters(equal={"pm": chosen.pm, "department": None}), rules.project
            ),
            lambda answer: int(answer["projects"]),
        ),
        Query(
            "status-time summary, projects",
            lambda c: status_time.summary(c, visits("project"), limits["project"]),
            lambda answer: int(answer["totals"]["visits"]),
        ),
        Query(
            "status-time visits, projects, page 1",
            lambda c: status_time.list_visits(c, visits("project"), limits["project"], 50, 0),
            total,
        ),
        Query(
            "status-time visits, projects, over limit only, page 1",
            lambda c: status_time.list_visits(
                c, visits("project", over_limit_only=True), limits["project"], 50, 0
            ),
            total,
        ),
        Query(
            "status-time of one project (most visits)",
            one_project,
            lambda answer: len(answer["visits"]),
        ),
        Query(
            "status-time summary, leads",
            lambda c: status_time.summary(c, visits("lead"), limits["lead"]),
            lambda answer: int(answer["totals"]["visits"]),
        ),
        Query(
            "status-time visits, leads, page 1",
            lambda c: status_time.list_visits(c, visits("lead"), limits["lead"], 50, 0),
            total,
        ),
        Query(
            f"plan/fact {month.start:%Y-%m}, all projects",
            lambda c: project_queries.plan_fact(c, Filters(), month.days, 50, 0, calendar),
            page_total,
        ),
        Query(
            f"plan/fact {month.start:%Y-%m}, all projects (old: every task spread when asked)",
            lambda c: project_queries.plan_fact(
                c, Filters(), month.days, 50, 0, calendar, stored=False
            ),
            page_total,
        ),
        Query(
            f"plan/fact {month.start:%Y-%m}, direction={chosen.direction}",
            lambda c: project_queries.plan_fact(
                c, Filters(equal={"direction": chosen.direction}), month.days, 50, 0, calendar
            ),
            page_total,
        ),
        Query(
            f"plan/fact {month.start:%Y-%m}, category={chosen.category}",
            lambda c: project_queries.plan_fact(
                c, Filters(equal={"category": chosen.category}), month.days, 50, 0, calendar
            ),
            page_total,
        ),
        Query(
            f"resource load {month.start:%Y-%m}",
            lambda c: project_queries.resource_load(c, calendar, month, None, 50, 0),
            page_total,
        ),
        Query(
            f"resource load {cut.start:%m-%d}..{cut.end:%m-%d} (cuts two months)",
            lambda c: project_queries.resource_load(c, calendar, cut, None, 50, 0),
            page_total,
        ),
        Query(
            f"resource load {month.start:%Y-%m} (old: every task spread when asked)",
            lambda c: project_queries.resource_load(c, calendar, month, None, 50, 0, stored=False),
            page_total,
        ),
        Query(
            f"deviations {month.start:%Y-%m}",
            lambda c: project_queries.deviations(c, calendar, month, 50, 0),
            lambda answer: int(answer["people"]["total"]) + int(answer["cards"]["total"]),
        ),
        Query(
            f"payments {month.start:%Y-%m}",
            lambda c: project_queries.payments(c, Filters(), month.days, None, 50, 0),
            page_total,
        ),
        *delivery_queries(rules, chosen),
    ]


def delivery_queries(rules: Rules, chosen: Choices) -> list[Query]:
    """Issue 16 §2: the projects' cost and margin (whole company, rolled up by PM,
    department and month, one PM's) and the check's growth."""
    done, now = rules.project.done_status, chosen.as_of
    page_total: Callable[[Any], int] = lambda answer: int(answer["total"])  # noqa: E731

    def costs(
        group: str | None, stored: bool = True, **equal: Any
    ) -> Callable[[duckdb.DuckDBPyConnection], Any]:
        chosen_projects = project_costs.CostFilters(Filters(equal=equal), Days())
        return lambda c: project_costs.project_costs(
            c, chosen_projects, group, done, now, 50, 0, stored=stored
        )

    return [
        Query("project costs, whole company, page 1", costs(None), page_total),
        *(
            Query(f"project costs by {group}", costs(group), page_total)
            for group in project_costs.GROUPS
        ),
        Query(
            "project costs by month (old: every hour priced when asked)",
            costs("month", stored=False),
            page_total,
        ),
        Query(f"project costs pm={chosen.pm}", costs(None, pm=chosen.pm), page_total),
        Query(
            "check growth, whole company, page 1",
            lambda c: check_growth.check_growth(c, Filters(), Days(), 50, 0),
            page_total,
        ),
        Query(
            f"check growth {chosen.month.start:%Y-%m}",
            lambda c: check_growth.check_growth(c, Filters(), chosen.month.days, 50, 0),
            page_total,
        ),
    ]


def add_cost_rates(cursor: duckdb.DuckDBPyConnection, as_of: datetime) -> int:
    """Every person who logged hours gets an hourly rate a year before ``as_of`` and a
    raise half a year before it, written into the read model (the generated log has no
    directory): the labour cost then prices every hour by the ASOF join. The rates set."""
    cursor.execute(
        "INSERT INTO user_cost_rates "
        "SELECT person, day, rate, 'RUB', 'bench', 'bench', ?::TIMESTAMPTZ, 0 FROM ("
        "  SELECT person, ?::DATE AS day, 1000 + 10 * (hash(person) % 100) AS rate "
        "  FROM (SELECT DISTINCT person FROM time_entries) UNION ALL "
        "  SELECT person, ?::DATE, 1200 + 10 * (hash(person) % 100) "
        "  FROM (SELECT DISTINCT person FROM time_entries))",
        [as_of, (as_of - timedelta(days=365)).date(), (as_of - timedelta(days=182)).date()],
    )
    row = cursor.execute("SELECT count(*) FROM user_cost_rates").fetchone()
    return int(row[0]) if row else 0


def verdict(samples: Sequence[float]) -> str:
    return "PASS" if benchlib.percentile(samples, 95) < TARGET_P95 else "FAIL"


def _operators(node: dict[str, Any], depth: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    yield depth, node
    for child in node.get("children", []):
        yield from _operators(child, depth + 1)


def _operator_note(node: dict[str, Any]) -> str:
    extra = node.get("extra_info", {})
    for key in ("Table", "CTE Name", "Conditions", "Groups", "Join Type"):
        if key in extra:
            value = extra[key]
            text = ", ".join(value) if isinstance(value, list) else str(value)
            return f"{key}: {' '.join(text.split())}"[:70]
    return ""


def profile(cursor: duckdb.DuckDBPyConnection, query: Query) -> str:
    """One call's statements with their times, and the costliest operators of DuckDB's
    EXPLAIN ANALYZE of the slowest statement."""
    log = StatementLog(cursor)
    query.call(cast(duckdb.DuckDBPyConnection, log))
    lines = [f"Profile of '{query.name}': {len(log.statements)} statement(s)"]
    for seconds, sql, _ in log.statements:
        lines.append(f"  {benchlib.ms(seconds):>8} ms  {' '.join(sql.split())[:100]}")
    found: list[Any] = []
    # the slowest statement that stands alone (not one reading a temp table the call dropped)
    for _, sql, parameters in sorted(log.statements, key=lambda s: -s[0]):
        try:
            found = cursor.execute("EXPLAIN (ANALYZE, FORMAT json) " + sql, parameters).fetchall()
        except duckdb.CatalogException:
            continue
        break
    plan = orjson.loads(found[0][-1]) if found else {}
    operators = [
        (depth, node) for root in plan.get("operator", []) for depth, node in _operators(root)
    ]
    total = sum(float(node.get("timing", 0.0)) for _, node in operators)
    costly = sorted(operators, key=lambda o: -float(o[1].get("timing", 0.0)))[:8]
    lines.append(
        f"  EXPLAIN ANALYZE of the slowest: operators' time {total * 1000:.1f} ms "
        "(summed over DuckDB's threads); the costliest:"
    )
    lines.append(f"  {'ms':>8}  {'rows out':>9}  {'depth':>5}  operator")
    for depth, node in costly:
        lines.append(
            f"  {float(node.get('timing', 0.0)) * 1000:8.1f}  "
            f"{int(node.get('intermediate_rows', 0) or 0):>9,}  {depth:>5}  "
            f"{node.get('type', '?')} {_operator_note(node)}".rstrip()
        )
    return "\n".join(lines) + "\n"


def query_benchmarks(
    path: Path, rules: Rules, funnels: FunnelCatalog, as_of: datetime, runs: int, warmup: int
) -> tuple[Choices, list[list[Any]], dict[str, list[float]], list[str]]:
    db = ReadModelDatabase(path)
    rows: list[list[Any]] = []
    samples_by_name: dict[str, list[float]] = {}
    profiles: list[str] = []
    try:
        cursor = db.cursor()
        add_cost_rates(cursor, as_of)
        # the rates were written without events: the priced labour is derived again
        ProjectLabourProjection().derive_all(cursor)
        chosen = choose(cursor, as_of)
        for query in queries(rules, funnels, chosen):
            answer = query.call(cursor)
            samples = benchlib.timed(functools.partial(query.call, cursor), runs, warmup)
            samples_by_name[query.name] = samples
            rows.append(
                benchlib.latency_row(
                    query.name, samples, (benchlib.count(query.rows(answer)), verdict(samples))
                )
            )
            if verdict(samples) == "FAIL":
                profiles.append(profile(cursor, query))
        cursor.close()
    finally:
        db.close()
    return chosen, rows, samples_by_name, profiles


def http_benchmarks(
    path: Path,
    workdir: Path,
    chosen: Choices,
    direct: dict[str, list[float]],
    runs: int,
    warmup: int,
) -> list[list[Any]]:
    """A few requests through FastAPI's TestClient on a platform opened on the built file
    (the projector and the process managers stay off; the clock reads the as-of instant)."""
    with warnings.catch_warnings():  # starlette's notice about httpx, not ours to act on
        warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient")
        from fastapi.testclient import TestClient  # dev dependency

    from read_api.app import create_app

    settings = Settings(
        event_store_url=f"sqlite:///{workdir}/events.sqlite",
        duckdb_path=path,
        process_managers=False,
    )
    platform = build(settings, clock=lambda: chosen.as_of)
    app = create_app(platform, background=False)
    as_of = chosen.as_of.isoformat()
    month = {"from": chosen.month.start.isoformat(), "to": chosen.month.end.isoformat()}
    plan_fact = f"plan/fact {chosen.month.start:%Y-%m}, all projects"
    resource = f"resource load {chosen.month.start:%Y-%m}"
    requests: list[tuple[str, str, dict[str, str], str]] = [
        ("GET /projects", "/projects", {}, "list_projects, no filter, page 1"),
        (
            f"GET /projects?pm={chosen.pm}",
            "/projects",
            {"pm": chosen.pm},
            f"list_projects pm={chosen.pm}, page 1",
        ),
        ("GET /reports/portfolio", "/reports/portfolio", {}, "portfolio, whole company"),
        (
            f"GET /reports/portfolio?pm={chosen.pm}",
            "/reports/portfolio",
            {"pm": chosen.pm},
            f"portfolio pm={chosen.pm}",
        ),
        (
            "GET /reports/status-time/summary?kind=project",
            "/reports/status-time/summary",
            {"kind": "project", "as_of": as_of},
            "status-time summary, projects",
        ),
        (
            "GET /reports/status-time?kind=project&over_limit_only=true",
            "/reports/status-time",
            {"kind": "project", "over_limit_only": "true", "as_of": as_of},
            "status-time visits, projects, over limit only, page 1",
        ),
        (
            "GET /reports/status-time/summary?kind=lead",
            "/reports/status-time/summary",
            {"kind": "lead", "as_of": as_of},
            "status-time summary, leads",
        ),
        ("GET /reports/plan-fact (a month)", "/reports/plan-fact", month, plan_fact),
        ("GET /reports/resource-load (a month)", "/reports/resource-load", month, resource),
        (
            "GET /reports/project-costs?group=month",
            "/reports/project-costs",
            {"group": "month"},
            "project costs by month",
        ),
        (
            "GET /reports/check-growth",
            "/reports/check-growth",
            {},
            "check growth, whole company, page 1",
        ),
    ]
    rows: list[list[Any]] = []
    with TestClient(app, headers=benchlib.top_management_headers(platform)) as client:
        for label, url, params, twin in requests:
            response = client.get(url, params=params)
            if response.status_code != 200:
                raise RuntimeError(f"{label}: HTTP {response.status_code}: {response.text}")

            def call(u: str = url, p: dict[str, str] = params) -> None:
                client.get(u, params=p).raise_for_status()

            samples = benchlib.timed(call, runs, warmup)
            base = benchlib.percentile(direct[twin], 50)
            added = benchlib.percentile(samples, 50) - base
            rows.append(
                benchlib.latency_row(
                    label, samples, (benchlib.ms(base), benchlib.ms(added), verdict(samples))
                )
            )
    return rows


# --- report -----------------------------------------------------------------------------------


def machine_note(postgres_url: str, load_before: tuple[float, float, float]) -> str:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return benchlib.table(
        "Machine",
        ("what", "value"),
        [
            ("cores (os.cpu_count)", os.cpu_count() or "?"),
            ("load average before the run (1/5/15 min)", "/".join(f"{x:.2f}" for x in load_before)),
            ("load average at the end", "/".join(f"{x:.2f}" for x in os.getloadavg())),
            ("Python", platform_info.python_version()),
            ("DuckDB", duckdb.__version__),
            ("PostgreSQL (same machine, same cores)", row[0] if row else "?"),
        ],
    )


def setup_tables(setup: dict[str, Any], vacuum: tuple[float, int]) -> str:
    topics: dict[str, int] = setup["topics"]
    total = setup["events"]
    delivery = sum(n for t, n in topics.items() if t in DELIVERY_TOPICS)
    leads = total - delivery
    out = [
        benchlib.table(
            "History: decided by the deciders, COPY-ed into PostgreSQL (child process)",
            ("what", "value"),
            [
                ("events in the log", benchlib.count(total)),
                (
                    "  delivery events (projects, billing, person-days)",
                    f"{benchlib.count(delivery)} ({100 * delivery / max(1, total):.1f} %)",
                ),
                (
                    "  lead events (leads, companies)",
                    f"{benchlib.count(leads)} ({100 * leads / max(1, total):.1f} %)",
                ),
                ("projects", benchlib.count(topics.get("ProjectCreated", 0))),
                ("tasks", benchlib.count(topics.get("TaskAdded", 0))),
                (
                    "time entries (corrections)",
                    f"{benchlib.count(topics.get('HoursLogged', 0))} "
                    f"({benchlib.count(topics.get('HoursCorrected', 0))})",
                ),
                ("people logging hours", benchlib.count(len(PEOPLE))),
                ("person-day streams", benchlib.count(setup["person_days"])),
                (
                    "time entries left out: the person's day was full",
                    benchlib.count(setup["capped"]),
                ),
                (
                    "invoices / payments",
                    f"{benchlib.count(topics.get('ProjectInvoiceIssued', 0))} / "
                    f"{benchlib.count(topics.get('ProjectPaymentRecorded', 0))}",
                ),
                ("commands the deciders refused (dropped)", benchlib.count(setup["refused"])),
                (
                    "delivery events decided after the log's last event (cut)",
                    benchlib.count(setup["delivery_cut"]),
                ),
                ("leads", benchlib.count(setup["leads"])),
                ("history from", f"{setup['first_at']:%Y-%m-%d %H:%M}"),
                ("history to", f"{setup['last_at']:%Y-%m-%d %H:%M}"),
                ("deciding the delivery history s", f"{setup['delivery_generate_s']:.1f}"),
                ("generating leads + merge + encode + COPY s", f"{setup['seconds']:.1f}"),
                ("VACUUM ANALYZE s", f"{vacuum[0]:.1f}"),
                ("stored_events table + indexes MiB", benchlib.mib(vacuum[1])),
                ("child peak RSS MiB", benchlib.mib(setup["peak_rss"])),
            ],
        )
    ]
    out.append(
        benchlib.table(
            "Event mix",
            ("topic", "events", "share %", "part"),
            [
                (
                    t,
                    benchlib.count(n),
                    f"{100 * n / max(1, total):.1f}",
                    "delivery" if t in DELIVERY_TOPICS else "leads",
                )
                for t, n in sorted(topics.items(), key=lambda kv: -kv[1])
            ],
        )
    )
    return "\n".join(out)


def rebuild_tables(
    args: argparse.Namespace,
    topics: dict[str, int],
    leads_only: dict[str, Any],
    everything: dict[str, Any],
    projections: list[Projection],
) -> str:
    def rate(r: dict[str, Any]) -> float:
        return float(r["events"] / r["seconds"])

    def line(name: str, r: dict[str, Any], judged: bool) -> list[Any]:
        return [
            name,
            benchlib.count(r["events"]),
            f"{r['seconds']:.2f}",
            benchlib.count(rate(r)),
            f">= {TARGET_EVENTS_PER_S:,}" if judged else "",
            ("PASS" if rate(r) >= TARGET_EVENTS_PER_S else "FAIL") if judged else "",
            benchlib.mib(r["rss_peak"]),
            benchlib.mib(r["duckdb_bytes"]),
        ]

    out = [
        benchlib.table(
            f"Rebuild PostgreSQL -> fresh DuckDB file (page size {args.page_size:,})",
            (
                "read models",
                "events",
                "seconds",
                "events/s",
                "target",
                "verdict",
                "peak RSS MiB",
                "DuckDB MiB",
            ),
            [
                line("leads only (baseline)", leads_only, False),
                line(f"all {len(projections)} read models", everything, True),
            ],
        )
        + f"ratio all read models / leads only: {rate(everything) / rate(leads_only):.2f} "
        f"(events/s), {everything['seconds'] / leads_only['seconds']:.2f}x the time; "
        f"ru_maxrss of the process {benchlib.mib(everything['ru_maxrss'])} MiB; peak RSS "
        "sampled every 20 ms during each rebuild\n"
    ]
    total = everything["seconds"]
    phases = everything["phases"]
    folded = sum(phases.get(p.name, 0.0) for p in projections)
    rows: list[list[Any]] = []
    for projection in sorted(projections, key=lambda p: -phases.get(p.name, 0.0)):
        seconds = phases.get(projection.name, 0.0)
        events = sum(topics.get(t, 0) for t in projection.topics)
        derived = " (derived at the end)" if isinstance(projection, DerivedProjection) else ""
        rows.append(
            [
                projection.name + derived,
                benchlib.count(events),
                f"{seconds:.2f}",
                f"{100 * seconds / total:.1f}",
                f"{1e6 * seconds / events:.2f}" if events else "-",
            ]
        )
    rows.append(["all projections' folds", "", f"{folded:.2f}", f"{100 * folded / total:.1f}", ""])
    rows.append(
        [
            "reading pages (overlaps the folds: *)",
            "",
            f"{phases.get('read', 0.0):.2f}",
            f"{100 * phases.get('read', 0.0) / total:.1f}",
            "",
        ]
    )
    rows.append(
        [
            "outside the folds (waiting for pages, commits)",
            "",
            f"{total - folded:.2f}",
            f"{100 * (total - folded) / total:.1f}",
            "",
        ]
    )
    leads_fold = leads_only["phases"].get("leads", 0.0)
    out.append(
        benchlib.table(
            "Where the rebuild of every read model went (projection.apply and derive_all "
            "wrapped per instance)",
            ("projection", "events of its topics", "seconds", "share %", "us/event"),
            rows,
        )
        + "(*) the projector reads the next page in a second thread while it folds this one.\n"
        f"leads-only rebuild: leads fold {leads_fold:.2f} s, reading "
        f"{leads_only['phases'].get('read', 0.0):.2f} s, whole {leads_only['seconds']:.2f} s\n"
    )
    counts = everything["rows"]
    expected = {
        "leads": topics.get("LeadCreated", 0),
        "projects": topics.get("ProjectCreated", 0),
        "project_tasks": topics.get("TaskAdded", 0),
        "time_entries": topics.get("HoursLogged", 0),
        "project_invoices": topics.get("ProjectInvoiceIssued", 0),
        "project_payments": topics.get("ProjectPaymentRecorded", 0),
        "project_status_visits": topics.get("ProjectCreated", 0)
        + topics.get("ProjectStatusChanged", 0),
        "lead_pauses": topics.get("LeadPaused", 0),
    }
    out.append(
        benchlib.table(
            "Read model rows after the rebuild",
            ("table", "rows", "events that make rows", "check"),
            [
                (
                    t,
                    benchlib.count(n),
                    benchlib.count(expected[t]) if t in expected else "",
                    ("ok" if n == expected[t] else "MISMATCH") if t in expected else "",
                )
                for t, n in counts.items()
                if n
            ],
        )
    )
    return "\n".join(out)


REFERENCE = "reference"


def _reference(row: list[Any]) -> list[Any]:
    """A query row whose name says it is the old way: its verdict is "reference"."""
    return [*row[:-1], REFERENCE] if "(old" in str(row[0]) else row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--projects", type=int, default=10_000, help="projects in the history")
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log")
    parser.add_argument("--page-size", type=int, default=200_000, help="rebuild page size")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per query")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs before each")
    parser.add_argument("--http-runs", type=int, default=200, help="timed runs per request")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the rebuild of every read model (slows it) and print the top entries",
    )
    parser.add_argument(
        "--rebuild-only",
        action="store_true",
        help="measure the rebuilds only: skip the queries and the requests over HTTP",
    )
    parser.add_argument(
        "--postgres-url", default=benchlib.DEFAULT_POSTGRES_URL, help="PostgreSQL to use"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="copy the built DuckDB file here (to profile the queries again without a rebuild)",
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    print(
        f"bench_delivery: projects={args.projects:,} events={args.events:,} "
        f"page_size={args.page_size:,} runs={args.runs} warmup={args.warmup} "
        f"http_runs={args.http_runs}",
        flush=True,
    )
    settings = Settings()
    funnels = load_funnels(settings.funnels_file)
    rules = load_rules(settings.funnels_file, settings.rules_file)
    schema = benchlib.create_schema(args.postgres_url, SCHEMA_PREFIX)
    workdir = Path(tempfile.mkdtemp(prefix="bench_delivery_"))
    store: EventStore | None = None
    clock = benchlib.Stopwatch()
    try:
        store = open_event_store(benchlib.schema_url(args.postgres_url, schema), event_codec())
        progress("setup: deciding the history and loading it ...")
        setup = run_setup(args, schema)
        vacuum = bench_projection.vacuum_analyze(args.postgres_url, schema)
        progress("rebuilding the lead read model alone ...")
        leads_only = measure_rebuild(
            store, workdir / "leads_only.duckdb", projections_for(True), args.page_size
        )
        for stale in workdir.glob("leads_only.duckdb*"):
            stale.unlink()
        progress("rebuilding every read model ...")
        all_projections = projections_for(False)
        path = workdir / "read_models.duckdb"
        everything = measure_rebuild(store, path, all_projections, args.page_size, args.profile)
        if args.keep is not None:
            shutil.copyfile(path, args.keep)
        chosen: Choices | None = None
        query_rows: list[list[Any]] = []
        http_rows: list[list[Any]] = []
        profiles: list[str] = []
        if not args.rebuild_only:
            progress("timing the queries ...")
            chosen, query_rows, direct, profiles = query_benchmarks(
                path, rules, funnels, setup["last_at"], args.runs, args.warmup
            )
            if args.http_runs:
                progress("timing the requests over HTTP ...")
                http_rows = http_benchmarks(
                    path, workdir, chosen, direct, args.http_runs, args.warmup
                )
    finally:
        if store is not None:
            store.close()
        benchlib.drop_schema(args.postgres_url, schema)
        benchlib.remove_tree(workdir)

    # the "(old: ...)" rows time the way a report was computed before its read model, for
    # comparison only: they are not a path anyone calls, so they are not judged
    query_rows = [_reference(r) for r in query_rows]
    print()
    print(machine_note(args.postgres_url, load_before))
    print(setup_tables(setup, vacuum))
    print(rebuild_tables(args, setup["topics"], leads_only, everything, all_projections))
    headers = (*benchlib.LATENCY_HEADERS, "rows", "p95 < 50 ms")
    if chosen is not None:
        print(
            benchlib.table(
                f"Queries on the read models (as of {chosen.as_of:%Y-%m-%d %H:%M} UTC, the "
                f"last event; pm={chosen.pm} has "
                f"{chosen.pm_projects} projects; a month = {chosen.month.start} .. "
                f"{chosen.month.end})",
                headers,
                query_rows,
            )
        )
    if http_rows:
        print(
            benchlib.table(
                "Through HTTP (FastAPI TestClient, in-process; direct = the query function's "
                "p50 above)",
                (*benchlib.LATENCY_HEADERS, "direct p50 ms", "HTTP adds p50 ms", "p95 < 50 ms"),
                http_rows,
            )
        )
    judged = [r for r in query_rows + http_rows if r[-1] != REFERENCE]
    failed = [r[0] for r in judged if r[-1] == "FAIL"]
    rate = everything["events"] / everything["seconds"]
    print(
        benchlib.table(
            "Targets",
            ("figure", "target", "measured", "result"),
            [
                (
                    "rebuild with every read model",
                    f">= {TARGET_EVENTS_PER_S:,} events/s",
                    f"{rate:,.0f} events/s",
                    "PASS" if rate >= TARGET_EVENTS_PER_S else "FAIL",
                ),
                (
                    "queries and requests with p95 < 50 ms",
                    f"all {len(judged)}",
                    f"{len(judged) - len(failed)} of {len(judged)}",
                    "PASS" if not failed else "FAIL",
                ),
            ],
        )
    )
    for name in failed:
        print(f"over target: {name}")
    if profiles:
        print()
        print("\n".join(profiles))
    if everything["profile"]:
        print("cProfile of the rebuild of every read model (top 25 by own time)")
        print(everything["profile"])
    print(f"whole run {clock.elapsed:.0f} s", flush=True)
    return 0


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
