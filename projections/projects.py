"""Read models of delivery: projects, their tasks, time entries, invoices and payments.

- ``projects``: one row per project: the card, status, health (computed, manual and the
  one in force), planned and actual hours, % done, the card's empty mandatory fields and
  the billing figures (invoiced, paid, remaining, payment status);
- ``project_tasks``: one row per task, with the hours logged on it;
- ``time_entries``: one row per time entry, its hours as corrected so far;
- ``project_invoices``: one row per invoice, with what was paid of it;
- ``project_payments``: one row per payment received.

Nothing here depends on the instant it is read at (no "overdue"): queries add that.

Projects see far fewer events than leads, so a page is folded in Python, as the deal
models are (:mod:`projections.deals`): a page without a project or billing event costs
one Arrow scan of its topics; otherwise the page's events of these topics are decoded
once (but a project's computed health and status changes before its last one of the
page, which nothing reads), the rows they touch are read in one query per table (of a
project's tasks only those its events name), the events are applied in log order, and
each table gets its touched rows back with two set-based statements (delete the touched
keys, insert from an Arrow table), all in the projector's transaction. What is derived
from a whole row (health, empty mandatory fields, time and version of the last event)
is set once per touched project at the end of the page, and a project's task figures
are summed by DuckDB over its written-back tasks. A row keeps everything the next page
needs (a task's hours, an entry's task, a project's task count), so folding the log in
any page sizes gives exactly the rows one rebuild gives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from aggregates.billing import payment_status
from aggregates.rules import ProjectRules, Rules
from projections.base import Projection
from projections.deals import CENT, Column, MissingCreation, ddl

Row = dict[str, Any]
ZERO = Decimal("0.00")

_SOURCE_DIGEST = hashlib.sha256(
    Path(__file__).read_bytes() + Path(__file__).with_name("deals.py").read_bytes()
).hexdigest()
"""The folds are this module's code and the page helpers it borrows from the deal models:
any change to either rebuilds the read models."""


def _text(name: str) -> Column:
    return Column(name, "VARCHAR", pa.string())


def _texts(name: str) -> Column:
    return Column(name, "VARCHAR[]", pa.list_(pa.string()))


def _int(name: str) -> Column:
    return Column(name, "INTEGER", pa.int32())


def _bigint(name: str) -> Column:
    return Column(name, "BIGINT", pa.int64())


def _money(name: str) -> Column:
    # 38 digits: a project's invoiced total adds up amounts each below 10^15
    return Column(name, "DECIMAL(38,2)", pa.decimal128(38, 2))


def _hours(name: str) -> Column:
    return Column(name, "DECIMAL(18,2)", pa.decimal128(18, 2))


def _double(name: str) -> Column:
    return Column(name, "DOUBLE", pa.float64())


def _day(name: str) -> Column:
    return Column(name, "DATE", pa.date32())


def _moment(name: str) -> Column:
    return Column(name, "TIMESTAMPTZ", pa.timestamp("us", tz="UTC"))


PROJECT_COLUMNS: tuple[Column, ...] = (
    _text("project_id"),
    _text("title"),
    _text("company_name"),
    _text("company_id"),
    _money("amount"),
    _text("lead_id"),
    _text("deal_id"),
    _text("funnel"),
    _text("manager"),
    _text("department"),
    _text("direction"),
    _text("category"),
    _text("pm"),
    _text("curator"),
    _day("planned_start"),
    _day("planned_end"),
    _text("status"),
    _moment("status_entered_at"),
    _text("computed_health"),
    _texts("computed_reasons"),
    _text("manual_health"),
    _text("manual_comment"),
    _text("manual_health_set_by"),
    _moment("manual_health_set_at"),
    _text("health"),
    _hours("planned_hours"),
    _hours("actual_hours"),
    _double("percent_done"),
    _int("tasks"),
    _int("tasks_done"),
    _texts("empty_mandatory_fields"),
    _money("invoiced"),
    _money("paid"),
    _money("remaining"),
    _text("payment_status"),
    _int("invoices"),
    _int("payments"),
    _moment("created_at"),
    _text("created_by"),
    _moment("updated_at"),
    _int("version"),
    _int("billing_version"),
    _bigint("last_position"),
)

TASK_COLUMNS: tuple[Column, ...] = (
    _text("project_id"),
    _text("task_id"),
    _int("task_no"),
    _text("title"),
    _text("assignee"),
    _hours("planned_hours"),
    _day("start"),
    _day("due"),
    _texts("depends_on"),
    _int("percent_done"),
    _moment("completed_at"),
    _hours("actual_hours"),
    _moment("added_at"),
    _moment("updated_at"),
)

ENTRY_COLUMNS: tuple[Column, ...] = (
    _text("project_id"),
    _text("entry_id"),
    _text("person"),
    _text("task_id"),
    _day("day"),
    _hours("hours"),
    _hours("logged_hours"),
    _moment("logged_at"),
    _text("logged_by"),
    _int("corrected"),
    _moment("corrected_at"),
    _bigint("position"),
)

INVOICE_COLUMNS: tuple[Column, ...] = (
    _text("project_id"),
    _text("number"),
    _money("amount"),
    _day("due_date"),
    _day("issued_on"),
    _moment("issued_at"),
    _text("issued_by"),
    _money("paid"),
    _money("remaining"),
    _text("status"),
    _int("payments"),
    _day("last_paid_on"),
    _bigint("position"),
)

PAYMENT_COLUMNS: tuple[Column, ...] = (
    _text("project_id"),
    _text("invoice_number"),
    _money("amount"),
    _day("paid_on"),
    _money("invoice_remaining"),
    _moment("recorded_at"),
    _text("recorded_by"),
    _bigint("position"),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "projects": PROJECT_COLUMNS,
    "project_tasks": TASK_COLUMNS,
    "time_entries": ENTRY_COLUMNS,
    "project_invoices": INVOICE_COLUMNS,
    "project_payments": PAYMENT_COLUMNS,
}

CARD_DATES = frozenset({"planned_start", "planned_end"})
TASK_TOPICS = frozenset({"TaskAdded", "TaskUpdated", "TaskCompleted"})
HOURS_TOPICS = frozenset({"HoursLogged", "HoursCorrected"})
LAST_WINS_TOPICS = frozenset({"ProjectHealthComputed", "ProjectStatusChanged"})
"""Topics whose last event of a project in a page sets everything they set."""
BILLING_TOPICS = frozenset({"ProjectInvoiceIssued", "ProjectPaymentRecorded"})
PROJECT_TOPICS = frozenset(
    {
        "ProjectCreated",
        "ProjectCardUpdated",
        "ProjectStatusChanged",
        "ProjectHealthSet",
        "ProjectHealthCleared",
        "ProjectHealthComputed",
        *TASK_TOPICS,
        *HOURS_TOPICS,
    }
)


class _Event(NamedTuple):
    """One event of the page, its JSON decoded (a tuple: cheaper to make than
    ``projections.deals.PageEvent``, read the same way)."""

    position: int
    stream_id: str
    version: int
    topic: str
    doc: dict[str, Any]

    @property
    def moment(self) -> datetime:
        return datetime.fromisoformat(self.doc["at"])

    def money(self, field: str) -> Decimal | None:
        raw = self.doc.get(field)
        return None if raw is None else Decimal(raw).quantize(CENT)

    def day(self, field: str) -> date | None:
        raw = self.doc.get(field)
        return None if raw is None else date.fromisoformat(raw)


def _money_value(raw: Any) -> Decimal | None:
    return None if raw is None else Decimal(raw).quantize(Decimal("0.01"))


def _day_value(raw: Any) -> date | None:
    return None if raw is None else date.fromisoformat(raw)


def _arrow_rows(columns: Sequence[Column], rows: Iterable[Row]) -> pa.Table:
    listed = list(rows)
    schema = pa.schema([(c.name, c.arrow) for c in columns])
    return pa.table(
        {c.name: pa.array([r[c.name] for r in listed], c.arrow) for c in columns},
        schema=schema,
    )


def percent_done(tasks: Iterable[Row]) -> float:
    """As ``Project.percent_done``: % done weighted by planned hours (plain mean when no
    task has planned hours); a completed task counts as 100 %."""
    listed = list(tasks)
    if not listed:
        return 0.0
    planned = sum((t["planned_hours"] for t in listed), ZERO)

    def done(task: Row) -> int:
        return 100 if task["completed_at"] is not None else int(task["percent_done"])

    if planned > 0:
        weighted = sum(t["planned_hours"] * done(t) for t in listed)
        return float(weighted / planned)
    return sum(done(t) for t in listed) / len(listed)


@dataclass
class _Page:
    """The current rows a page touches, as the fold leaves them."""

    projects: dict[str, Row] = field(default_factory=dict)
    tasks: dict[tuple[str, str], Row] = field(default_factory=dict)
    added_tasks: dict[str, int] = field(default_factory=dict)
    last_events: dict[str, _Event] = field(default_factory=dict)
    """Each project's last event of the page but billing ones: its time and version."""
    entries: dict[tuple[str, str], Row] = field(default_factory=dict)
    invoices: dict[tuple[str, str], Row] = field(default_factory=dict)
    payments: list[Row] = field(default_factory=list)
    changed_tasks: set[tuple[str, str]] = field(default_factory=set)
    changed_entries: set[tuple[str, str]] = field(default_factory=set)
    changed_invoices: set[tuple[str, str]] = field(default_factory=set)
    task_projects: set[str] = field(default_factory=set)


class ProjectProjection:
    """Every delivery table, folded together so that a project's row sees its tasks,
    hours and billing in log order."""

    name = "projects"
    tables: tuple[str, ...] = tuple(TABLES)
    topics: frozenset[str] = PROJECT_TOPICS | BILLING_TOPICS

    def __init__(self, rules: ProjectRules) -> None:
        self.rules = rules
        self._topic_values = pa.array(sorted(self.topics), pa.string())

    def config(self) -> str:
        """What the fold reads from the configuration: the card's mandatory fields."""
        return repr(tuple(self.rules.mandatory_fields))

    @property
    def fingerprint(self) -> str:
        parts = [self.name, *(ddl(t, c) for t, c in TABLES.items()), self.config()]
        parts.append(_SOURCE_DIGEST)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        for table, columns in TABLES.items():
            cursor.execute(ddl(table, columns))

    # --- one page ---------------------------------------------------------------------

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        # most pages of a lead-heavy log hold no delivery event: one Arrow scan says so
        if not pc.any(pc.is_in(page["topic"], value_set=self._topic_values)).as_py():
            return
        events = self._events(page)
        if not events:
            return
        state = self._read(cursor, events)
        for event in events:
            self._fold(state, event)
        self._write(cursor, state)

    def _events(self, page: pa.Table) -> list[_Event]:
        """The page's events this fold needs, in log order, each JSON decoded once. A
        project's health and status take the last computed health and status change of the
        page, so the earlier ones of the same project are not decoded at all."""
        picked = page.filter(pc.is_in(page["topic"], value_set=self._topic_values))
        if picked.num_rows == 0:
            return []
        picked = picked.sort_by("position")
        positions = picked["position"].to_pylist()
        stream_ids = picked["stream_id"].to_pylist()
        versions = picked["version"].to_pylist()
        topics = picked["topic"].to_pylist()
        states = picked["state"].to_pylist()
        last: dict[tuple[str, str], int] = {}
        for i, (topic, stream_id) in enumerate(zip(topics, stream_ids, strict=True)):
            if topic in LAST_WINS_TOPICS:
                last[(topic, stream_id)] = i
        return [
            _Event(positions[i], stream_ids[i], versions[i], topic, orjson.loads(states[i]))
            for i, topic in enumerate(topics)
            if topic not in LAST_WINS_TOPICS or last[(topic, stream_ids[i])] == i
        ]

    @staticmethod
    def _project_of(event: _Event) -> str:
        return str(event.doc["project_id"]) if event.topic in BILLING_TOPICS else event.stream_id

    @staticmethod
    def _invoice_of(event: _Event) -> str:
        number: str = event.doc[
            "number" if event.topic == "ProjectInvoiceIssued" else "invoice_number"
        ]
        return number

    def _read(self, cursor: duckdb.DuckDBPyConnection, events: list[_Event]) -> _Page:
        """The stored rows the page's events touch, one query per table: a project's tasks
        only as far as the page's events name them (its task count is on its row)."""
        state = _Page()
        project_ids = sorted({self._project_of(e) for e in events})
        corrected = sorted(
            {(e.stream_id, e.doc["entry_id"]) for e in events if e.topic == "HoursCorrected"}
        )
        billed = sorted(
            {
                (self._project_of(e), self._invoice_of(e))
                for e in events
                if e.topic in BILLING_TOPICS
            }
        )
        for row in _select(cursor, "projects", PROJECT_COLUMNS, ["project_id"], project_ids):
            state.projects[row["project_id"]] = row
        for row in _select(
            cursor, "time_entries", ENTRY_COLUMNS, ["project_id", "entry_id"], corrected
        ):
            state.entries[(row["project_id"], row["entry_id"])] = row
        named: set[tuple[str, str]] = set()
        for e in events:
            if e.topic in TASK_TOPICS:
                state.task_projects.add(e.stream_id)
                named.add((e.stream_id, e.doc["task_id"]))
            elif e.topic in HOURS_TOPICS:
                state.task_projects.add(e.stream_id)
                task_id = e.doc.get("task_id") if e.topic == "HoursLogged" else None
                if task_id is not None:
                    named.add((e.stream_id, task_id))
        for entry in state.entries.values():
            if entry["task_id"] is not None:
                named.add((entry["project_id"], entry["task_id"]))
        for row in _select(
            cursor, "project_tasks", TASK_COLUMNS, ["project_id", "task_id"], sorted(named)
        ):
            state.tasks[(row["project_id"], row["task_id"])] = row
        for row in _select(
            cursor, "project_invoices", INVOICE_COLUMNS, ["project_id", "number"], billed
        ):
            state.invoices[(row["project_id"], row["number"])] = row
        return state

    def _write(self, cursor: duckdb.DuckDBPyConnection, state: _Page) -> None:
        _replace(
            cursor,
            "project_tasks",
            TASK_COLUMNS,
            ["project_id", "task_id"],
            {key: state.tasks[key] for key in state.changed_tasks},
        )
        self._summarise_tasks(cursor, state)
        for project_id, event in state.last_events.items():
            project = state.projects[project_id]
            project["updated_at"] = event.moment
            project["version"] = event.version
            last = project["last_position"]
            project["last_position"] = event.position if last is None else max(last, event.position)
        mandatory = tuple(self.rules.mandatory_fields)
        for project in state.projects.values():
            project["health"] = project["manual_health"] or project["computed_health"]
            project["empty_mandatory_fields"] = [
                f for f in mandatory if project.get(f) in (None, "")
            ]
        _replace(cursor, "projects", PROJECT_COLUMNS, ["project_id"], state.projects)
        _replace(
            cursor,
            "time_entries",
            ENTRY_COLUMNS,
            ["project_id", "entry_id"],
            {key: state.entries[key] for key in state.changed_entries},
        )
        _replace(
            cursor,
            "project_invoices",
            INVOICE_COLUMNS,
            ["project_id", "number"],
            {key: state.invoices[key] for key in state.changed_invoices},
        )
        if state.payments:
            _insert(cursor, "project_payments", PAYMENT_COLUMNS, state.payments)

    @staticmethod
    def _summarise_tasks(cursor: duckdb.DuckDBPyConnection, state: _Page) -> None:
        """Each project with a task or hours event gets its tasks' figures, summed by
        DuckDB over its stored tasks (already written back), exactly as ``percent_done``
        sums them: the sums are exact decimals, the division is Python's."""
        summarised = sorted(p for p in state.task_projects if p in state.projects)
        if not summarised:
            return
        for project_id in summarised:
            project = state.projects[project_id]
            project["planned_hours"] = ZERO
            project["percent_done"] = 0.0
            project["tasks"] = 0
            project["tasks_done"] = 0
        view = "_keys_summary"
        cursor.register(view, _keys_view(summarised, ["project_id"]))
        try:
            cursor.execute(
                "SELECT t.project_id, sum(t.planned_hours), "
                "sum(t.planned_hours * CASE WHEN t.completed_at IS NOT NULL THEN 100 "
                "ELSE t.percent_done END), "
                "sum(CASE WHEN t.completed_at IS NOT NULL THEN 100 ELSE t.percent_done END), "
                "count(*), count(t.completed_at) "
                f"FROM project_tasks t JOIN {view} k ON t.project_id = k.project_id "
                "GROUP BY t.project_id"
            )
            sums = cursor.fetchall()
        finally:
            cursor.unregister(view)
        for project_id, planned, weighted, done, tasks, tasks_done in sums:
            project = state.projects[project_id]
            project["planned_hours"] = planned
            if planned > 0:
                project["percent_done"] = float(weighted / planned)
            else:
                project["percent_done"] = int(done) / int(tasks)
            project["tasks"] = int(tasks)
            project["tasks_done"] = int(tasks_done)

    # --- the fold ---------------------------------------------------------------------

    def _fold(self, state: _Page, event: _Event) -> None:
        if event.topic in BILLING_TOPICS:
            self._fold_billing(state, event)
            return
        if event.topic == "ProjectCreated":
            project = self._created(event)
            state.projects[event.stream_id] = project
        else:
            found = state.projects.get(event.stream_id)
            if found is None:
                raise MissingCreation("project", event.stream_id)
            project = found
            self._fold_project(state, project, event)
        state.last_events[event.stream_id] = event

    def _created(self, event: _Event) -> Row:
        doc = event.doc
        project: Row = dict.fromkeys(c.name for c in PROJECT_COLUMNS)
        project.update(
            project_id=event.stream_id,
            title=doc["title"],
            company_name=doc["company_name"],
            company_id=doc.get("company_id"),
            amount=event.money("amount"),
            lead_id=doc.get("lead_id"),
            deal_id=doc.get("deal_id"),
            funnel=doc.get("funnel"),
            manager=doc.get("manager"),
            department=doc.get("department"),
            direction=doc.get("direction"),
            category=doc.get("category"),
            pm=doc.get("pm"),
            curator=doc.get("curator"),
            planned_start=event.day("planned_start"),
            planned_end=event.day("planned_end"),
            status=doc["status"],
            status_entered_at=event.moment,
            computed_health="good",
            computed_reasons=[],
            planned_hours=ZERO,
            actual_hours=ZERO,
            percent_done=0.0,
            tasks=0,
            tasks_done=0,
            invoiced=ZERO,
            paid=ZERO,
            remaining=ZERO,
            payment_status=payment_status(ZERO, ZERO),
            invoices=0,
            payments=0,
            created_at=event.moment,
            created_by=doc["actor"],
            billing_version=0,
        )
        return project

    def _fold_project(self, state: _Page, project: Row, event: _Event) -> None:
        doc = event.doc
        match event.topic:
            case "ProjectCardUpdated":
                for name, change in doc["changes"].items():
                    new = change["new"]
                    if name in CARD_DATES:
                        project[name] = _day_value(new)
                    elif name == "amount":
                        project[name] = _money_value(new)
                    else:
                        project[name] = new
            case "ProjectStatusChanged":
                project["status"] = doc["to_status"]
                project["status_entered_at"] = event.moment
            case "ProjectHealthSet":
                project["manual_health"] = doc["level"]
                project["manual_comment"] = doc["comment"]
                project["manual_health_set_by"] = doc["actor"]
                project["manual_health_set_at"] = event.moment
            case "ProjectHealthCleared":
                project["manual_health"] = None
                project["manual_comment"] = None
                project["manual_health_set_by"] = None
                project["manual_health_set_at"] = None
            case "ProjectHealthComputed":
                project["computed_health"] = doc["level"]
                project["computed_reasons"] = list(doc["reasons"])
            case "TaskAdded" | "TaskUpdated" | "TaskCompleted":
                self._fold_task(state, event)
            case "HoursLogged" | "HoursCorrected":
                self._fold_hours(state, project, event)

    def _fold_task(self, state: _Page, event: _Event) -> None:
        doc = event.doc
        project_id = event.stream_id
        tasks = state.tasks
        task_id = doc["task_id"]
        key = (project_id, task_id)
        if event.topic == "TaskAdded":
            added = state.added_tasks.get(project_id, 0) + 1
            state.added_tasks[project_id] = added
            task: Row = {
                "project_id": project_id,
                "task_id": task_id,
                "task_no": state.projects[project_id]["tasks"] + added,
                "title": doc["title"],
                "assignee": doc.get("assignee"),
                "planned_hours": event.money("planned_hours") or ZERO,
                "start": event.day("start"),
                "due": event.day("due"),
                "depends_on": list(doc.get("depends_on") or []),
                "percent_done": 0,
                "completed_at": None,
                "actual_hours": ZERO,
                "added_at": event.moment,
                "updated_at": event.moment,
            }
            tasks[key] = task
        else:
            found = tasks.get(key)
            if found is None:
                raise MissingCreation("task", f"{task_id} of project {project_id}")
            task = found
            task["updated_at"] = event.moment
            if event.topic == "TaskCompleted":
                task["completed_at"] = event.moment
                task["percent_done"] = 100
            else:
                for name, change in doc["changes"].items():
                    new = change["new"]
                    if name in ("start", "due"):
                        task[name] = _day_value(new)
                    elif name == "planned_hours":
                        task[name] = _money_value(new)
                    elif name == "depends_on":
                        task[name] = list(new or [])
                    else:
                        task[name] = new
        state.changed_tasks.add(key)

    def _fold_hours(self, state: _Page, project: Row, event: _Event) -> None:
        doc = event.doc
        project_id = event.stream_id
        key = (project_id, str(doc["entry_id"]))
        hours = event.money("hours") or ZERO
        if event.topic == "HoursLogged":
            entry: Row = {
                "project_id": project_id,
                "entry_id": key[1],
                "person": doc["person"],
                "task_id": doc.get("task_id"),
                "day": event.day("day"),
                "hours": hours,
                "logged_hours": hours,
                "logged_at": event.moment,
                "logged_by": doc["actor"],
                "corrected": 0,
                "corrected_at": None,
                "position": event.position,
            }
            state.entries[key] = entry
            change = hours
        else:
            found = state.entries.get(key)
            if found is None:
                raise MissingCreation("time entry", f"{key[1]} of project {project_id}")
            entry = found
            change = hours - entry["hours"]
            entry["hours"] = hours
            entry["corrected"] += 1
            entry["corrected_at"] = event.moment
        state.changed_entries.add(key)
        project["actual_hours"] += change
        task_id = entry["task_id"]
        if task_id is not None:
            task = state.tasks.get((project_id, task_id))
            if task is None:
                raise MissingCreation("task", f"{task_id} of project {project_id}")
            task["actual_hours"] += change
            state.changed_tasks.add((project_id, task_id))

    def _fold_billing(self, state: _Page, event: _Event) -> None:
        doc = event.doc
        project_id = self._project_of(event)
        project = state.projects.get(project_id)
        if project is None:
            raise MissingCreation("project", project_id)
        amount = event.money("amount") or ZERO
        if event.topic == "ProjectInvoiceIssued":
            key = (project_id, doc["number"])
            state.invoices[key] = {
                "project_id": project_id,
                "number": doc["number"],
                "amount": amount,
                "due_date": event.day("due_date"),
                "issued_on": event.day("issued_on"),
                "issued_at": event.moment,
                "issued_by": doc["actor"],
                "paid": ZERO,
                "remaining": amount,
                "status": payment_status(amount, ZERO),
                "payments": 0,
                "last_paid_on": None,
                "position": event.position,
            }
            project["invoiced"] += amount
            project["invoices"] += 1
        else:
            key = (project_id, doc["invoice_number"])
            invoice = state.invoices.get(key)
            if invoice is None:
                raise MissingCreation("invoice", f"{key[1]} of project {project_id}")
            paid_on = event.day("paid_on")
            invoice["paid"] += amount
            invoice["remaining"] = invoice["amount"] - invoice["paid"]
            invoice["status"] = payment_status(invoice["amount"], invoice["paid"])
            invoice["payments"] += 1
            last = invoice["last_paid_on"]
            invoice["last_paid_on"] = paid_on if last is None or paid_on > last else last
            state.payments.append(
                {
                    "project_id": project_id,
                    "invoice_number": key[1],
                    "amount": amount,
                    "paid_on": paid_on,
                    "invoice_remaining": event.money("invoice_remaining"),
                    "recorded_at": event.moment,
                    "recorded_by": doc["actor"],
                    "position": event.position,
                }
            )
            project["paid"] += amount
            project["payments"] += 1
        state.changed_invoices.add(key)
        project["remaining"] = project["invoiced"] - project["paid"]
        project["payment_status"] = payment_status(project["invoiced"], project["paid"])
        project["billing_version"] = event.version
        project["last_position"] = event.position


# --- set-based reads and writes ---------------------------------------------------------


def _keys_view(keys: Sequence[Any], key_columns: Sequence[str]) -> pa.Table:
    if len(key_columns) == 1:
        return pa.table({key_columns[0]: pa.array([str(k) for k in keys], pa.string())})
    return pa.table(
        {
            name: pa.array([str(k[i]) for k in keys], pa.string())
            for i, name in enumerate(key_columns)
        }
    )


def _on(table: str, key_columns: Sequence[str]) -> str:
    return " AND ".join(f"{table}.{c} = k.{c}" for c in key_columns)


def _select(
    cursor: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[Column],
    key_columns: Sequence[str],
    keys: Sequence[Any],
) -> list[Row]:
    """The rows of these keys, read in one query."""
    if not keys:
        return []
    view = f"_keys_{table}"
    cursor.register(view, _keys_view(keys, key_columns))
    try:
        names = [c.name for c in columns]
        selected = ", ".join(f"{table}.{n}" for n in names)
        query = f"SELECT {selected} FROM {table} JOIN {view} k ON {_on(table, key_columns)}"
        # through Arrow: far cheaper than the DB-API's row conversion of TIMESTAMPTZ
        rows: list[Row] = cursor.sql(query).to_arrow_table().to_pylist()
        return rows
    finally:
        cursor.unregister(view)


def _insert(
    cursor: duckdb.DuckDBPyConnection, table: str, columns: Sequence[Column], rows: list[Row]
) -> None:
    """Insert rows from one registered Arrow table: one statement, whatever their number."""
    view = f"_new_{table}"
    cursor.register(view, _arrow_rows(columns, rows))
    try:
        names = ", ".join(c.name for c in columns)
        cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {view}")
    finally:
        cursor.unregister(view)


def _replace(
    cursor: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[Column],
    key_columns: Sequence[str],
    rows: dict[Any, Row],
) -> None:
    """Delete the rows of these keys and insert their new versions: two statements."""
    if not rows:
        return
    keys = sorted(rows)
    view = f"_keys_{table}"
    cursor.register(view, _keys_view(keys, key_columns))
    try:
        cursor.execute(f"DELETE FROM {table} USING {view} k WHERE {_on(table, key_columns)}")
    finally:
        cursor.unregister(view)
    _insert(cursor, table, columns, [rows[k] for k in keys])


def project_projections(rules: Rules) -> list[Projection]:
    return [ProjectProjection(rules.project)]
