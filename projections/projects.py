"""Read models of delivery: projects, their tasks, time entries, invoices and payments.

- ``projects``: one row per project: the card, status, health (computed, manual and the
  one in force), planned and actual hours, % done, the card's empty mandatory fields and
  the billing figures (invoiced, paid, invoiced and not paid yet; the payment status and
  what is left to pay measured against the project's amount);
- ``project_tasks``: one row per task, with the hours logged on it;
- ``time_entries``: one row per time entry, its hours as corrected so far;
- ``project_invoices``: one row per invoice, with what was paid of it;
- ``project_payments``: one row per payment received;
- ``project_acts``: one row per act of completed work (the tasks and services it covers,
  its invoice); the invoice's row sums its acts (``acted``, ``acts``).

Nothing here depends on the instant it is read at (no "overdue"): queries add that.

A page without a project or billing event costs one Arrow scan of its topics. Otherwise
the page's project events are parsed once by DuckDB (``json_transform``) into a temporary
table of flat columns, and the frequent ones are folded set-based, as the lead model is
(:mod:`projections.leads`): task additions are inserted (numbered after the project's
stored tasks, in log order), hours logged are inserted, and task updates and completions
update each task once (every field takes its last change of the page; % done the last of
its changes and completions). Only ordering within a project matters, and these touch no
row the rare events touch but the task and entry rows they themselves insert first. The
rare events (creation, card, manual health, corrections, acts) are then folded in
Python, as the deal models are (:mod:`projections.deals`): decoded once, the rows they
touch read in one query per table (a project's row only for the events that change it),
applied in log order and written back with two set-based statements per table (delete
the touched keys, insert from an Arrow table). Billing (invoices, payments, acts on
invoices) is folded set-based after them: its figures depend on the project's amount as
it stands, not on the order of a card's change and an invoice.
A project's computed health and status (the most frequent project events: the health
process manager records the health after every change) set only their own fields, so
only the last of each in the page counts, and they are not folded in Python: a page whose
projects see only these, tasks and hours reads and rewrites no project row in Python.
Last, DuckDB sums each touched task's hours and each touched project's task figures and
hours over the stored rows (the % done divided by Python, as ``Project.percent_done``),
and sets each project's time, version and position of its last event, with its last
computed health (and the health in force) and its last status, all in the projector's
transaction. A row keeps everything the next page needs, so folding the log in any page
sizes gives exactly the rows one rebuild gives.
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

from aggregates.billing import project_payment
from aggregates.rules import ProjectRules, Rules
from aggregates.values import DEFAULT_CURRENCY
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
    # the lead card a project delivered directly from a lead carries (ProjectCreated v2)
    _text("currency"),
    _text("contact"),
    _text("source"),
    _text("need_maturity"),
    _text("expert"),
    _text("description"),
    _day("answer_due"),
    _text("cost_components"),
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
    _money("invoiced_unpaid"),
    _text("payment_measured_against"),
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
    _text("deal_id"),
    _text("organisation"),
    Column("prepayment", "BOOLEAN", pa.bool_()),
    _money("paid"),
    _money("remaining"),
    _text("status"),
    _int("payments"),
    _day("last_paid_on"),
    _bigint("position"),
    _money("acted"),
    _texts("acts"),
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

ACT_COLUMNS: tuple[Column, ...] = (
    _text("project_id"),
    _text("number"),
    _day("act_date"),
    _money("amount"),
    _texts("task_ids"),
    _texts("services"),
    _text("invoice_number"),
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
    "project_acts": ACT_COLUMNS,
}

CARD_DATES = frozenset({"planned_start", "planned_end"})
TASK_TOPICS = frozenset({"TaskAdded", "TaskUpdated", "TaskCompleted"})
HOURS_TOPICS = frozenset({"HoursLogged", "HoursCorrected"})
LAST_WINS_TOPICS = frozenset({"ProjectHealthComputed", "ProjectStatusChanged"})
"""Topics whose last event of a project in a page sets everything they set (DuckDB sets
it with the project's last event, ``LAST_EVENT_SQL``)."""
BULK_TOPICS = frozenset(
    {"TaskAdded", "TaskUpdated", "TaskCompleted", "HoursLogged", *LAST_WINS_TOPICS}
)
"""Topics folded set-based by DuckDB; the others are folded in Python."""
BILLING_TOPICS = frozenset(
    {"ProjectInvoiceIssued", "ProjectPaymentRecorded", "ProjectInvoiceActed"}
)
"""Folded set-based by DuckDB after the Python fold (``BILLING_SQL``)."""
ROW_TOPICS = frozenset(
    {"ProjectCreated", "ProjectCardUpdated", "ProjectHealthSet", "ProjectHealthCleared"}
)
"""The topics folded in Python that change a project's row: only their projects' rows are
read and rewritten by Python."""
PROJECT_TOPICS = frozenset(
    {
        "ProjectCreated",
        "ProjectCardUpdated",
        "ProjectStatusChanged",
        "ProjectHealthSet",
        "ProjectHealthCleared",
        "ProjectHealthComputed",
        "ProjectServicesLaunched",
        "ProjectActRecorded",
        *TASK_TOPICS,
        *HOURS_TOPICS,
    }
)


_SHAPE = orjson.dumps(
    {
        "at": "VARCHAR",
        "actor": "VARCHAR",
        "task_id": "VARCHAR",
        "entry_id": "VARCHAR",
        "person": "VARCHAR",
        "day": "VARCHAR",
        "hours": "VARCHAR",
        "title": "VARCHAR",
        "assignee": "VARCHAR",
        "planned_hours": "VARCHAR",
        "start": "VARCHAR",
        "due": "VARCHAR",
        "depends_on": ["VARCHAR"],
        "to_status": "VARCHAR",
        "level": "VARCHAR",
        "reasons": ["VARCHAR"],
    }
).decode()
_BULK_LIST = ", ".join(f"'{t}'" for t in sorted(BULK_TOPICS))
_PROJECT_TOPIC_LIST = ", ".join(f"'{t}'" for t in sorted(PROJECT_TOPICS))

# The page's project events (not billing), each parsed once into flat columns; ``bulk``
# marks those folded set-based (tasks, hours logged, computed health, status changes).
EVENTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE _delivery_events AS
WITH parsed AS (
  SELECT position, stream_id, version, topic, state,
    json_transform(state, '{_SHAPE}') AS doc
  FROM _page WHERE topic IN ({_PROJECT_TOPIC_LIST})
),
flat AS (
  SELECT position, stream_id, version, topic,
    doc.at::TIMESTAMPTZ AS event_at,
    doc.actor AS actor,
    doc.task_id AS task_id,
    doc.entry_id AS entry_id,
    doc.person AS person,
    doc.day::DATE AS day,
    doc.hours::DECIMAL(18,2) AS hours,
    doc.title AS title,
    doc.assignee AS assignee,
    doc.planned_hours::DECIMAL(18,2) AS planned_hours,
    doc.start::DATE AS start,
    doc.due::DATE AS due,
    doc.depends_on AS depends_on,
    doc.to_status AS to_status,
    doc.level AS level,
    doc.reasons AS reasons,
    CASE WHEN topic = 'TaskUpdated' THEN json_extract(state, '$.changes') END AS changes
  FROM parsed
)
SELECT *, topic IN ({_BULK_LIST}) AS bulk FROM flat
"""

MISSING_PROJECT_SQL = """
SELECT e.stream_id FROM _delivery_events e
WHERE e.topic <> 'ProjectCreated'
  AND NOT EXISTS (SELECT 1 FROM projects p WHERE p.project_id = e.stream_id)
  AND NOT EXISTS (
    SELECT 1 FROM _delivery_events c
    WHERE c.topic = 'ProjectCreated' AND c.stream_id = e.stream_id AND c.position < e.position
  )
ORDER BY e.position LIMIT 1
"""

INSERT_TASKS_SQL = """
INSERT INTO project_tasks (project_id, task_id, task_no, title, assignee, planned_hours,
  start, due, depends_on, percent_done, completed_at, actual_hours, added_at, updated_at)
SELECT e.stream_id, e.task_id,
  coalesce(c.n, 0) + row_number() OVER (PARTITION BY e.stream_id ORDER BY e.position),
  e.title, e.assignee, coalesce(e.planned_hours, 0), e.start, e.due,
  coalesce(e.depends_on, []::VARCHAR[]), 0, NULL, 0, e.event_at, e.event_at
FROM _delivery_events e
LEFT JOIN (
  SELECT project_id, count(*) AS n FROM project_tasks
  WHERE project_id IN (SELECT stream_id FROM _delivery_events WHERE topic = 'TaskAdded')
  GROUP BY project_id
) c ON c.project_id = e.stream_id
WHERE e.topic = 'TaskAdded'
ORDER BY e.stream_id, e.task_id
"""

INSERT_ENTRIES_SQL = """
INSERT INTO time_entries (project_id, entry_id, person, task_id, day, hours, logged_hours,
  logged_at, logged_by, corrected, corrected_at, position)
SELECT stream_id, entry_id, person, task_id, day, coalesce(hours, 0), coalesce(hours, 0),
  event_at, actor, 0, NULL, position
FROM _delivery_events WHERE topic = 'HoursLogged'
ORDER BY stream_id, entry_id
"""

MISSING_TASK_SQL = """
SELECT e.stream_id, e.task_id FROM _delivery_events e
WHERE ((e.topic = 'HoursLogged' AND e.task_id IS NOT NULL)
       OR e.topic IN ('TaskUpdated', 'TaskCompleted'))
  AND (
    NOT EXISTS (
      SELECT 1 FROM project_tasks t WHERE t.project_id = e.stream_id AND t.task_id = e.task_id
    )
    OR EXISTS (
      SELECT 1 FROM _delivery_events a
      WHERE a.topic = 'TaskAdded' AND a.stream_id = e.stream_id AND a.task_id = e.task_id
        AND a.position > e.position
    )
  )
ORDER BY e.position LIMIT 1
"""

# a page's task updates and completions, set-based: each field takes its last change
# of the page; % done the last of its changes and the completions (100)
UPDATE_TASKS_SQL = """
UPDATE project_tasks SET
  title = CASE WHEN c.title_at IS NULL THEN project_tasks.title
    ELSE c.title END,
  assignee = CASE WHEN c.assignee_at IS NULL THEN project_tasks.assignee
    ELSE c.assignee END,
  planned_hours = CASE WHEN c.planned_hours_at IS NULL THEN project_tasks.planned_hours
    ELSE c.planned_hours END,
  start = CASE WHEN c.start_at IS NULL THEN project_tasks.start
    ELSE c.start END,
  due = CASE WHEN c.due_at IS NULL THEN project_tasks.due
    ELSE c.due END,
  depends_on = CASE WHEN c.depends_on_at IS NULL THEN project_tasks.depends_on
    ELSE c.depends_on END,
  percent_done = CASE
    WHEN c.completed_pos IS NOT NULL AND c.completed_pos > coalesce(c.percent_done_at, -1)
      THEN 100
    WHEN c.percent_done_at IS NOT NULL THEN c.percent_done
    ELSE project_tasks.percent_done
  END,
  completed_at = coalesce(c.completed_at, project_tasks.completed_at),
  updated_at = c.updated_at
FROM (
  WITH u AS (
    SELECT stream_id, task_id, position, topic, event_at,
    json_extract(changes, '$.title') IS NOT NULL AS has_title,
    json_extract_string(changes, '$.title.new')::VARCHAR AS new_title,
    json_extract(changes, '$.assignee') IS NOT NULL AS has_assignee,
    json_extract_string(changes, '$.assignee.new')::VARCHAR AS new_assignee,
    json_extract(changes, '$.planned_hours') IS NOT NULL AS has_planned_hours,
    json_extract_string(changes, '$.planned_hours.new')::DECIMAL(18,2) AS new_planned_hours,
    json_extract(changes, '$.start') IS NOT NULL AS has_start,
    json_extract_string(changes, '$.start.new')::DATE AS new_start,
    json_extract(changes, '$.due') IS NOT NULL AS has_due,
    json_extract_string(changes, '$.due.new')::DATE AS new_due,
    json_extract(changes, '$.depends_on') IS NOT NULL AS has_depends_on,
    coalesce(json_transform(json_extract(changes, '$.depends_on.new'), '["VARCHAR"]'),
      []::VARCHAR[]) AS new_depends_on,
    json_extract(changes, '$.percent_done') IS NOT NULL AS has_percent_done,
    json_extract_string(changes, '$.percent_done.new')::INTEGER AS new_percent_done
    FROM _delivery_events WHERE topic IN ('TaskUpdated', 'TaskCompleted')
  )
  SELECT stream_id, task_id,
    max(position) FILTER (WHERE has_title) AS title_at,
    arg_max_null(new_title, position) FILTER (WHERE has_title) AS title,
    max(position) FILTER (WHERE has_assignee) AS assignee_at,
    arg_max_null(new_assignee, position) FILTER (WHERE has_assignee) AS assignee,
    max(position) FILTER (WHERE has_planned_hours) AS planned_hours_at,
    arg_max_null(new_planned_hours, position) FILTER (WHERE has_planned_hours) AS planned_hours,
    max(position) FILTER (WHERE has_start) AS start_at,
    arg_max_null(new_start, position) FILTER (WHERE has_start) AS start,
    max(position) FILTER (WHERE has_due) AS due_at,
    arg_max_null(new_due, position) FILTER (WHERE has_due) AS due,
    max(position) FILTER (WHERE has_depends_on) AS depends_on_at,
    arg_max_null(new_depends_on, position) FILTER (WHERE has_depends_on) AS depends_on,
    max(position) FILTER (WHERE has_percent_done) AS percent_done_at,
    arg_max_null(new_percent_done, position) FILTER (WHERE has_percent_done) AS percent_done,
    max(position) FILTER (WHERE topic = 'TaskCompleted') AS completed_pos,
    arg_max(event_at, position) FILTER (WHERE topic = 'TaskCompleted') AS completed_at,
    arg_max(event_at, position) AS updated_at
  FROM u
  GROUP BY stream_id, task_id
) c
WHERE project_tasks.project_id = c.stream_id AND project_tasks.task_id = c.task_id
"""

# a task's hours: the sum of its entries' (as corrected), for the tasks the page logs or
# corrects hours on
TASK_HOURS_SQL = """
UPDATE project_tasks SET actual_hours = s.hours
FROM (
  SELECT te.project_id, te.task_id, sum(te.hours)::DECIMAL(18,2) AS hours
  FROM time_entries te
  JOIN (
    SELECT DISTINCT stream_id, task_id FROM _delivery_events
    WHERE topic = 'HoursLogged' AND task_id IS NOT NULL
    UNION
    SELECT x.project_id, x.task_id FROM time_entries x
    JOIN _delivery_events c
      ON c.topic = 'HoursCorrected' AND x.project_id = c.stream_id AND x.entry_id = c.entry_id
    WHERE x.task_id IS NOT NULL
  ) k ON te.project_id = k.stream_id AND te.task_id = k.task_id
  GROUP BY te.project_id, te.task_id
) s
WHERE project_tasks.project_id = s.project_id AND project_tasks.task_id = s.task_id
"""

SUMMARY_SQL = """
WITH touched AS (
  SELECT DISTINCT stream_id AS project_id FROM _delivery_events
  WHERE topic IN ('TaskAdded', 'TaskUpdated', 'TaskCompleted', 'HoursLogged', 'HoursCorrected')
),
t AS (
  SELECT t.project_id, sum(t.planned_hours) AS planned,
    sum(t.planned_hours * CASE WHEN t.completed_at IS NOT NULL THEN 100
      ELSE t.percent_done END) AS weighted,
    sum(CASE WHEN t.completed_at IS NOT NULL THEN 100 ELSE t.percent_done END) AS done,
    count(*) AS tasks, count(t.completed_at) AS tasks_done
  FROM project_tasks t JOIN touched k ON t.project_id = k.project_id
  GROUP BY t.project_id
),
h AS (
  SELECT e.project_id, sum(e.hours) AS hours
  FROM time_entries e JOIN touched k ON e.project_id = k.project_id
  GROUP BY e.project_id
)
SELECT k.project_id, t.planned, t.weighted, t.done, coalesce(t.tasks, 0),
  coalesce(t.tasks_done, 0), coalesce(h.hours, 0)::DECIMAL(18,2)
FROM touched k LEFT JOIN t ON t.project_id = k.project_id
LEFT JOIN h ON h.project_id = k.project_id
ORDER BY k.project_id
"""

# each project's last event of the page (but billing ones): its time and version; and its
# last computed health and last status change (after the Python fold: a project created
# in the page has its row), all they set, with the health in force (the manual one, else
# the computed one, as ``Project.health``)
LAST_EVENT_SQL = """
UPDATE projects SET updated_at = l.at, version = l.version,
  last_position = greatest(coalesce(projects.last_position, l.position), l.position),
  computed_health = CASE WHEN l.health_at IS NULL THEN projects.computed_health
    ELSE l.level END,
  computed_reasons = CASE WHEN l.health_at IS NULL THEN projects.computed_reasons
    ELSE l.reasons END,
  health = CASE WHEN l.health_at IS NULL THEN projects.health
    ELSE coalesce(nullif(projects.manual_health, ''), l.level) END,
  status = CASE WHEN l.status_at IS NULL THEN projects.status ELSE l.status END,
  status_entered_at = CASE WHEN l.status_at IS NULL THEN projects.status_entered_at
    ELSE l.status_entered_at END
FROM (
  SELECT stream_id, arg_max(event_at, position) AS at, arg_max(version, position) AS version,
    max(position) AS position,
    max(position) FILTER (WHERE topic = 'ProjectHealthComputed') AS health_at,
    arg_max(level, position) FILTER (WHERE topic = 'ProjectHealthComputed') AS level,
    arg_max(reasons, position) FILTER (WHERE topic = 'ProjectHealthComputed') AS reasons,
    max(position) FILTER (WHERE topic = 'ProjectStatusChanged') AS status_at,
    arg_max(to_status, position) FILTER (WHERE topic = 'ProjectStatusChanged') AS status,
    arg_max(event_at, position) FILTER (WHERE topic = 'ProjectStatusChanged')
      AS status_entered_at
  FROM _delivery_events GROUP BY stream_id
) l
WHERE projects.project_id = l.stream_id
"""


_BILLING_SHAPE = orjson.dumps(
    {
        "at": "VARCHAR",
        "actor": "VARCHAR",
        "project_id": "VARCHAR",
        "number": "VARCHAR",
        "invoice_number": "VARCHAR",
        "act_number": "VARCHAR",
        "amount": "VARCHAR",
        "due_date": "VARCHAR",
        "issued_on": "VARCHAR",
        "deal_id": "VARCHAR",
        "organisation": "VARCHAR",
        "prepayment": "BOOLEAN",
        "paid_on": "VARCHAR",
        "invoice_remaining": "VARCHAR",
    }
).decode()
_BILLING_LIST = ", ".join(f"'{t}'" for t in sorted(BILLING_TOPICS))

# The page's billing events, parsed once into flat columns: ``invoice`` is the number of
# the invoice each names (issued, paid or acted on).
BILLING_EVENTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE _billing_events AS
WITH parsed AS (
  SELECT position, version, topic, json_transform(state, '{_BILLING_SHAPE}') AS doc
  FROM _page WHERE topic IN ({_BILLING_LIST})
)
SELECT position, version, topic,
  doc.at::TIMESTAMPTZ AS event_at,
  doc.actor AS actor,
  doc.project_id AS project_id,
  CASE WHEN topic = 'ProjectInvoiceIssued' THEN doc.number ELSE doc.invoice_number END
    AS invoice,
  doc.act_number AS act_number,
  coalesce(doc.amount::DECIMAL(38,2), 0) AS amount,
  doc.due_date::DATE AS due_date,
  doc.issued_on::DATE AS issued_on,
  doc.deal_id AS deal_id,
  doc.organisation AS organisation,
  coalesce(doc.prepayment, false) AS prepayment,
  doc.paid_on::DATE AS paid_on,
  doc.invoice_remaining::DECIMAL(38,2) AS invoice_remaining
FROM parsed
"""

# a billing event needs its project's row (after the Python fold of the page's creations)
# and no creation of it later in the page; a payment or act its invoice, issued earlier
MISSING_BILLING_SQL = """
SELECT 'project', b.project_id, NULL FROM _billing_events b
WHERE NOT EXISTS (SELECT 1 FROM projects p WHERE p.project_id = b.project_id)
  OR EXISTS (
    SELECT 1 FROM _delivery_events c
    WHERE c.topic = 'ProjectCreated' AND c.stream_id = b.project_id
      AND c.position > b.position
  )
UNION ALL
SELECT 'invoice', b.project_id, b.invoice FROM _billing_events b
WHERE b.topic <> 'ProjectInvoiceIssued'
  AND NOT EXISTS (
    SELECT 1 FROM project_invoices i
    WHERE i.project_id = b.project_id AND i.number = b.invoice
  )
  AND NOT EXISTS (
    SELECT 1 FROM _billing_events a
    WHERE a.topic = 'ProjectInvoiceIssued' AND a.project_id = b.project_id
      AND a.invoice = b.invoice AND a.position < b.position
  )
LIMIT 1
"""

INSERT_INVOICES_SQL = """
INSERT INTO project_invoices (project_id, number, amount, due_date, issued_on, issued_at,
  issued_by, deal_id, organisation, prepayment, paid, remaining, status, payments,
  last_paid_on, position, acted, acts)
SELECT project_id, invoice, amount, due_date, issued_on, event_at, actor, deal_id,
  organisation, prepayment, 0, amount, 'not_paid', 0, NULL, position, 0, []::VARCHAR[]
FROM _billing_events WHERE topic = 'ProjectInvoiceIssued'
ORDER BY project_id, invoice
"""

INSERT_PAYMENTS_SQL = """
INSERT INTO project_payments (project_id, invoice_number, amount, paid_on,
  invoice_remaining, recorded_at, recorded_by, position)
SELECT project_id, invoice, amount, paid_on, invoice_remaining, event_at, actor, position
FROM _billing_events WHERE topic = 'ProjectPaymentRecorded'
ORDER BY position
"""

# each invoice paid or acted on in the page: its payments and acts added, its status
# (as ``aggregates.billing.payment_status``) of what it has been paid
UPDATE_INVOICES_SQL = """
UPDATE project_invoices SET
  paid = s.paid, remaining = project_invoices.amount - s.paid,
  status = CASE WHEN s.paid <= 0 THEN 'not_paid'
    WHEN s.paid >= project_invoices.amount THEN 'paid' ELSE 'partially_paid' END,
  payments = project_invoices.payments + s.payments,
  last_paid_on = CASE WHEN s.last_paid_on IS NULL THEN project_invoices.last_paid_on
    ELSE greatest(coalesce(project_invoices.last_paid_on, s.last_paid_on), s.last_paid_on)
    END,
  acted = coalesce(project_invoices.acted, 0) + s.acted,
  acts = CASE WHEN s.acts IS NULL THEN project_invoices.acts
    ELSE list_concat(coalesce(project_invoices.acts, []::VARCHAR[]), s.acts) END
FROM (
  SELECT b.project_id, b.invoice,
    any_value(i.paid) + coalesce(sum(b.amount) FILTER (WHERE b.topic = 'ProjectPaymentRecorded'), 0)
      AS paid,
    count(*) FILTER (WHERE b.topic = 'ProjectPaymentRecorded') AS payments,
    max(b.paid_on) FILTER (WHERE b.topic = 'ProjectPaymentRecorded') AS last_paid_on,
    coalesce(sum(b.amount) FILTER (WHERE b.topic = 'ProjectInvoiceActed'), 0) AS acted,
    list(b.act_number ORDER BY b.position) FILTER (WHERE b.topic = 'ProjectInvoiceActed')
      AS acts
  FROM _billing_events b
  JOIN project_invoices i ON i.project_id = b.project_id AND i.number = b.invoice
  WHERE b.topic <> 'ProjectInvoiceIssued'
  GROUP BY b.project_id, b.invoice
) s
WHERE project_invoices.project_id = s.project_id AND project_invoices.number = s.invoice
"""

# each project billed in the page: its invoices and payments added, its payment figures
# measured against its amount (as ``aggregates.billing.project_payment``), the version of
# its billing and the position of its last billing event
UPDATE_BILLED_SQL = """
UPDATE projects SET
  invoiced = s.invoiced, paid = s.paid,
  invoices = s.invoices, payments = s.payments,
  remaining = greatest(s.base - s.paid, 0),
  payment_status = CASE WHEN s.paid <= 0 THEN 'not_paid'
    WHEN s.paid >= s.base THEN 'paid' ELSE 'partially_paid' END,
  invoiced_unpaid = greatest(s.invoiced - s.paid, 0),
  payment_measured_against = s.against,
  billing_version = s.version,
  last_position = greatest(coalesce(projects.last_position, s.position), s.position)
FROM (
  SELECT p.project_id, p.invoiced + b.invoiced AS invoiced, p.paid + b.paid AS paid,
    p.invoices + b.invoices AS invoices, p.payments + b.payments AS payments,
    CASE WHEN coalesce(p.amount, 0) > 0 THEN p.amount ELSE p.invoiced + b.invoiced END
      AS base,
    CASE WHEN coalesce(p.amount, 0) > 0 THEN 'amount' ELSE 'invoiced' END AS against,
    b.version, b.position
  FROM projects p JOIN (
    SELECT project_id,
      coalesce(sum(amount) FILTER (WHERE topic = 'ProjectInvoiceIssued'), 0) AS invoiced,
      count(*) FILTER (WHERE topic = 'ProjectInvoiceIssued') AS invoices,
      coalesce(sum(amount) FILTER (WHERE topic = 'ProjectPaymentRecorded'), 0) AS paid,
      count(*) FILTER (WHERE topic = 'ProjectPaymentRecorded') AS payments,
      arg_max(version, position) AS version, max(position) AS position
    FROM _billing_events GROUP BY project_id
  ) b ON b.project_id = p.project_id
) s
WHERE projects.project_id = s.project_id
"""


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


@dataclass
class _Page:
    """The current rows a page touches, as the fold leaves them."""

    projects: dict[str, Row] = field(default_factory=dict)
    entries: dict[tuple[str, str], Row] = field(default_factory=dict)
    acts: list[Row] = field(default_factory=list)
    changed_entries: set[tuple[str, str]] = field(default_factory=set)


class ProjectProjection:
    """Every delivery table, folded together so that a project's row sees its tasks,
    hours and billing in log order."""

    name = "projects"
    tables: tuple[str, ...] = tuple(TABLES)
    topics: frozenset[str] = PROJECT_TOPICS | BILLING_TOPICS

    def __init__(self, rules: ProjectRules) -> None:
        self.rules = rules
        self._topic_values = pa.array(sorted(self.topics), pa.string())
        self._billing_values = pa.array(sorted(BILLING_TOPICS), pa.string())

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
        picked = page.filter(pc.is_in(page["topic"], value_set=self._topic_values))
        if picked.num_rows == 0:
            return
        cursor.execute(EVENTS_SQL)
        self._check_projects(cursor)
        cursor.execute(INSERT_TASKS_SQL)
        cursor.execute(INSERT_ENTRIES_SQL)
        self._check_tasks(cursor)
        cursor.execute(UPDATE_TASKS_SQL)
        kept = cursor.sql("SELECT position FROM _delivery_events WHERE NOT bulk").to_arrow_table()[
            "position"
        ]
        events = self._events(picked.filter(pc.is_in(picked["position"], value_set=kept)))
        if events:
            state = self._read(cursor, events)
            for event in events:
                self._fold(state, event)
            self._write(cursor, state)
        if pc.any(pc.is_in(picked["topic"], value_set=self._billing_values)).as_py():
            self._bill(cursor)
        cursor.execute(TASK_HOURS_SQL)
        self._summarise(cursor)
        cursor.execute(LAST_EVENT_SQL)
        cursor.execute("DROP TABLE _delivery_events")

    @staticmethod
    def _events(picked: pa.Table) -> list[_Event]:
        """The page's events folded in Python, in log order, each JSON decoded once."""
        if picked.num_rows == 0:
            return []
        picked = picked.sort_by("position")
        return [
            _Event(position, stream_id, version, topic, orjson.loads(state))
            for position, stream_id, version, topic, state in zip(
                picked["position"].to_pylist(),
                picked["stream_id"].to_pylist(),
                picked["version"].to_pylist(),
                picked["topic"].to_pylist(),
                picked["state"].to_pylist(),
                strict=True,
            )
        ]

    @staticmethod
    def _check_projects(cursor: duckdb.DuckDBPyConnection) -> None:
        """A project's events folded set-based need its row, or its creation earlier."""
        cursor.execute(MISSING_PROJECT_SQL)
        missing = cursor.fetchone()
        if missing is not None:
            raise MissingCreation("project", str(missing[0]))

    @staticmethod
    def _bill(cursor: duckdb.DuckDBPyConnection) -> None:
        """The page's invoices, payments and acts, folded set-based after the Python fold
        (a project's payment figures depend on its amount, which a card update changes,
        but only on its amount as it stands: not on the order of the two)."""
        cursor.execute(BILLING_EVENTS_SQL)
        cursor.execute(MISSING_BILLING_SQL)
        missing = cursor.fetchone()
        if missing is not None:
            kind, project_id, invoice = missing
            raise MissingCreation(
                kind, project_id if invoice is None else f"{invoice} of project {project_id}"
            )
        cursor.execute(INSERT_INVOICES_SQL)
        cursor.execute(UPDATE_INVOICES_SQL)
        cursor.execute(INSERT_PAYMENTS_SQL)
        cursor.execute(UPDATE_BILLED_SQL)
        cursor.execute("DROP TABLE _billing_events")

    @staticmethod
    def _check_tasks(cursor: duckdb.DuckDBPyConnection) -> None:
        """Hours on a task and a task's completion need the task, added earlier."""
        cursor.execute(MISSING_TASK_SQL)
        missing = cursor.fetchone()
        if missing is not None:
            raise MissingCreation("task", f"{missing[1]} of project {missing[0]}")

    def _summarise(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Each project with a task or hours event gets its tasks' figures and hours,
        summed by DuckDB over its stored tasks and entries, exactly as
        ``Project.percent_done`` sums them: the sums are exact decimals, the division is
        Python's."""
        sums = cursor.sql(SUMMARY_SQL).fetchall()
        if not sums:
            return
        ids: list[str] = []
        planned_hours: list[Decimal] = []
        actual_hours: list[Decimal] = []
        percents: list[float] = []
        counts: list[int] = []
        done_counts: list[int] = []
        for project_id, planned, weighted, done, tasks, tasks_done, actual in sums:
            ids.append(project_id)
            if not tasks:
                planned_hours.append(ZERO)
                percents.append(0.0)
            else:
                planned_hours.append(planned)
                if planned > 0:
                    percents.append(float(weighted / planned))
                else:
                    percents.append(int(done) / int(tasks))
            actual_hours.append(actual)
            counts.append(int(tasks))
            done_counts.append(int(tasks_done))
        view = "_project_summary"
        cursor.register(
            view,
            pa.table(
                {
                    "project_id": pa.array(ids, pa.string()),
                    "planned_hours": pa.array(planned_hours, pa.decimal128(18, 2)),
                    "actual_hours": pa.array(actual_hours, pa.decimal128(18, 2)),
                    "percent_done": pa.array(percents, pa.float64()),
                    "tasks": pa.array(counts, pa.int32()),
                    "tasks_done": pa.array(done_counts, pa.int32()),
                }
            ),
        )
        try:
            cursor.execute(
                f"UPDATE projects SET planned_hours = s.planned_hours, "
                "actual_hours = s.actual_hours, percent_done = s.percent_done, "
                "tasks = s.tasks, tasks_done = s.tasks_done "
                f"FROM {view} s WHERE projects.project_id = s.project_id"
            )
        finally:
            cursor.unregister(view)

    def _read(self, cursor: duckdb.DuckDBPyConnection, events: list[_Event]) -> _Page:
        """The stored rows the page's events touch, one query per table: the projects
        only of the events that change a project's row."""
        state = _Page()
        project_ids = sorted({e.stream_id for e in events if e.topic in ROW_TOPICS})
        corrected = sorted(
            {(e.stream_id, e.doc["entry_id"]) for e in events if e.topic == "HoursCorrected"}
        )
        for row in _select(cursor, "projects", PROJECT_COLUMNS, ["project_id"], project_ids):
            state.projects[row["project_id"]] = row
        for row in _select(
            cursor, "time_entries", ENTRY_COLUMNS, ["project_id", "entry_id"], corrected
        ):
            state.entries[(row["project_id"], row["entry_id"])] = row
        return state

    def _write(self, cursor: duckdb.DuckDBPyConnection, state: _Page) -> None:
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
        if state.acts:
            _insert(cursor, "project_acts", ACT_COLUMNS, state.acts)

    # --- the fold ---------------------------------------------------------------------

    def _fold(self, state: _Page, event: _Event) -> None:
        """One event folded in Python (the set-based check found the project of each
        event that does not change the project's row)."""
        if event.topic == "ProjectCreated":
            state.projects[event.stream_id] = self._created(event)
        elif event.topic == "HoursCorrected":
            self._fold_hours(state, event)
        elif event.topic == "ProjectActRecorded":
            self._fold_act(state, event)
        elif event.topic in ROW_TOPICS:
            found = state.projects.get(event.stream_id)
            if found is None:
                raise MissingCreation("project", event.stream_id)
            self._fold_project(found, event)

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
            # ProjectCreated v1 carried no lead card: default currency, none of the rest
            # (the same rule as aggregates.project.upcast_project_created_v1)
            currency=doc.get("currency") or DEFAULT_CURRENCY,
            contact=doc.get("contact"),
            source=doc.get("source"),
            need_maturity=doc.get("need_maturity"),
            expert=doc.get("expert"),
            description=doc.get("description"),
            answer_due=event.day("answer_due"),
            cost_components=orjson.dumps(doc.get("cost_components") or []).decode(),
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
            invoices=0,
            payments=0,
            created_at=event.moment,
            created_by=doc["actor"],
            billing_version=0,
        )
        _owed(project)
        return project

    def _fold_project(self, project: Row, event: _Event) -> None:
        doc = event.doc
        match event.topic:
            case "ProjectCardUpdated":
                for name, change in doc["changes"].items():
                    new = change["new"]
                    if name in CARD_DATES:
                        project[name] = _day_value(new)
                    elif name == "amount":
                        project[name] = _money_value(new)
                        _owed(project)
                    else:
                        project[name] = new
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

    @staticmethod
    def _fold_act(state: _Page, event: _Event) -> None:
        doc = event.doc
        state.acts.append(
            {
                "project_id": event.stream_id,
                "number": doc["number"],
                "act_date": event.day("act_date"),
                "amount": event.money("amount"),
                "task_ids": list(doc["task_ids"]),
                "services": list(doc["services"]),
                "invoice_number": doc.get("invoice_number"),
                "recorded_at": event.moment,
                "recorded_by": doc["actor"],
                "position": event.position,
            }
        )

    def _fold_hours(self, state: _Page, event: _Event) -> None:
        """A correction: the entry's hours; its task's and project's sums are DuckDB's."""
        project_id = event.stream_id
        key = (project_id, str(event.doc["entry_id"]))
        found = state.entries.get(key)
        if found is None:
            raise MissingCreation("time entry", f"{key[1]} of project {project_id}")
        found["hours"] = event.money("hours") or ZERO
        found["corrected"] += 1
        found["corrected_at"] = event.moment
        state.changed_entries.add(key)


def _owed(project: Row) -> None:
    """The project's payment figures, measured against its amount (as
    :func:`aggregates.billing.project_payment`): on its creation, a change of its amount
    and each invoice and payment."""
    owed = project_payment(project["amount"] or ZERO, project["invoiced"], project["paid"])
    project["remaining"] = owed.remaining
    project["payment_status"] = owed.status
    project["invoiced_unpaid"] = owed.invoiced_unpaid
    project["payment_measured_against"] = owed.measured_against


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
