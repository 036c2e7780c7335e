"""Lead read models: ``leads`` (current state) and ``lead_stage_visits``.

The fold is set-based SQL over a whole page of events at once, inside DuckDB: the
events' JSON is parsed by DuckDB, each field of a lead takes the value of the last event
of the page that sets it (or keeps its stored value), counters add up, and every visit
to a stage is rebuilt from the events that open, pause, resume and close it. Python
touches no event one by one, so the rate is bounded by DuckDB, not by the interpreter.

Each kind of event (``KINDS``: creations, card changes, moves, status changes, work) is
parsed into its own narrow table and folded by the setters of its own topics; a lead's
columns then take the latest of its kinds' setters. Most events set one to five fields:
one table of every field for every event, and every setter over every event, cost most
of a rebuild.

A page is written back with two statements per table: delete the touched rows, insert
their new versions.
"""

from __future__ import annotations

import hashlib
import re

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from aggregates.funnels import FunnelCatalog
from aggregates.values import DEFAULT_CURRENCY

LEADS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("lead_id", "VARCHAR"),
    ("funnel", "VARCHAR"),
    ("stage", "VARCHAR"),
    ("stage_step", "INTEGER"),
    ("furthest_step", "INTEGER"),
    ("status", "VARCHAR"),
    ("repeat", "BOOLEAN"),
    ("title", "VARCHAR"),
    ("company_name", "VARCHAR"),
    ("company_id", "VARCHAR"),
    ("source", "VARCHAR"),
    ("manager", "VARCHAR"),
    ("expert", "VARCHAR"),
    ("need_maturity", "VARCHAR"),
    ("answer_due", "DATE"),
    ("description", "VARCHAR"),
    ("amount", "DECIMAL(18,2)"),
    ("currency", "VARCHAR"),
    ("cost_components", "VARCHAR"),
    ("quality", "BOOLEAN"),
    ("qualification_reason", "VARCHAR"),
    ("assessment_expert", "VARCHAR"),
    ("assessment_result", "VARCHAR"),
    ("assessment_hours", "DECIMAL(18,2)"),
    ("assessment_hours_total", "DECIMAL(18,2)"),
    ("assessments", "INTEGER"),
    ("pause_reason", "VARCHAR"),
    ("paused_since", "TIMESTAMPTZ"),
    ("close_reason", "VARCHAR"),
    ("closed_at", "TIMESTAMPTZ"),
    ("created_at", "TIMESTAMPTZ"),
    ("created_by", "VARCHAR"),
    ("updated_at", "TIMESTAMPTZ"),
    ("stage_entered_at", "TIMESTAMPTZ"),
    ("visits", "INTEGER"),
    ("deal_id", "VARCHAR"),
    ("contact", "VARCHAR"),
    ("assessment_required", "BOOLEAN"),
    ("assessment_required_on_card", "BOOLEAN"),
    ("project_id", "VARCHAR"),
    ("qualified_at", "TIMESTAMPTZ"),
    ("contact_id", "VARCHAR"),
    ("version", "INTEGER"),
    ("last_position", "BIGINT"),
)

VISITS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("lead_id", "VARCHAR"),
    ("visit_no", "INTEGER"),
    ("funnel", "VARCHAR"),
    ("stage", "VARCHAR"),
    ("entered_at", "TIMESTAMPTZ"),
    ("left_at", "TIMESTAMPTZ"),
    ("paused_seconds", "DECIMAL(18,6)"),
    ("paused_since", "TIMESTAMPTZ"),
)

CREATED = "topic = 'LeadCreated'"
IMPORTED = "topic = 'LeadImported'"
"""A lead brought in by an import (issue 18 §2): created at its stage and status, with
its original instants (``created_at``, ``stage_entered_at``, ``closed_at``, ...)."""
BORN = "topic IN ('LeadCreated', 'LeadImported')"
BORN_TOPICS = frozenset({"LeadCreated", "LeadImported"})
"""The topics of a lead's creation: one event per lead, its first."""
CARD_TEXT_FIELDS = (
    "title",
    "company_name",
    "source",
    "manager",
    "expert",
    "need_maturity",
    "description",
    "contact",
)


def _topic(name: str) -> str:
    return f"topic = '{name}'"


def _card(field: str) -> str:
    return f"(topic = 'LeadCardUpdated' AND c_{field}_set)"


def _card_new(field: str) -> str:
    return f"c_{field}"


QUALITY = "e_quality"

CARD_FIELDS = (*CARD_TEXT_FIELDS, "answer_due", "amount", "assessment_required")
# The event JSON is parsed once per event into this structure; a field an event does not
# carry is NULL, and a card change names only the fields it changed.
DOCUMENT_FIELDS: tuple[tuple[str, str], ...] = (
    ("at", "VARCHAR"),
    ("actor", "VARCHAR"),
    ("funnel", "VARCHAR"),
    ("stage", "VARCHAR"),
    ("to_funnel", "VARCHAR"),
    ("to_stage", "VARCHAR"),
    ("title", "VARCHAR"),
    ("company_name", "VARCHAR"),
    ("company_id", "VARCHAR"),
    ("source", "VARCHAR"),
    ("manager", "VARCHAR"),
    ("expert", "VARCHAR"),
    ("need_maturity", "VARCHAR"),
    ("answer_due", "VARCHAR"),
    ("description", "VARCHAR"),
    ("amount", "VARCHAR"),
    ("currency", "VARCHAR"),
    ("repeat", "BOOLEAN"),
    ("total", "VARCHAR"),
    ("components", "JSON"),
    ("reason", "VARCHAR"),
    ("outcome", "VARCHAR"),
    ("quality", "BOOLEAN"),
    ("result", "VARCHAR"),
    ("hours", "VARCHAR"),
    ("paused_seconds", "DOUBLE"),
    ("deal_id", "VARCHAR"),
    ("contact", "VARCHAR"),
    ("assessment_required", "BOOLEAN"),
    ("project_id", "VARCHAR"),
    # LeadImported
    ("status", "VARCHAR"),
    ("created_at", "VARCHAR"),
    ("stage_entered_at", "VARCHAR"),
    ("closed_at", "VARCHAR"),
    ("paused_since", "VARCHAR"),
    ("qualified_at", "VARCHAR"),
    ("qualification_reason", "VARCHAR"),
    ("close_reason", "VARCHAR"),
    ("pause_reason", "VARCHAR"),
    ("contact_id", "VARCHAR"),
)
IMPORT_ONLY_FIELDS = frozenset(
    name for name, _ in DOCUMENT_FIELDS[DOCUMENT_FIELDS.index(("status", "VARCHAR")) : -1]
)
"""The fields only ``LeadImported`` rows are read for (every use is under its topic): a
page without imports parses and carries none of them."""


BORN_FIELDS = (
    "at",
    "actor",
    "funnel",
    "stage",
    "title",
    "company_name",
    "company_id",
    "source",
    "manager",
    "expert",
    "need_maturity",
    "answer_due",
    "description",
    "amount",
    "currency",
    "repeat",
    "contact",
    "assessment_required",
    "contact_id",
)
OPENING = ("LeadCreated", "LeadImported", "LeadStageChanged", "LeadTransferred")
KINDS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("LeadCreated",), BORN_FIELDS),
    (("LeadImported",), tuple(name for name, _ in DOCUMENT_FIELDS)),
    (("LeadCardUpdated",), ("at", "changes")),
    (("LeadStageChanged", "LeadTransferred"), ("at", "funnel", "to_funnel", "to_stage")),
    (
        ("LeadPaused", "LeadResumed", "LeadQualified", "LeadClosed"),
        ("at", "reason", "outcome", "quality", "paused_seconds"),
    ),
    (
        (
            "LeadAssessed",
            "LeadCostBreakdownSet",
            "LeadConvertedToDeal",
            "LeadProjectStarted",
            "LeadAnswerReminderSent",
            "LeadAnswerEscalated",
        ),
        ("at", "expert", "result", "hours", "total", "components", "deal_id", "project_id"),
    ),
)
"""The kinds of lead events, each with the document fields its events are read for (every
other use of a field is under a condition on another topic). A creation carries the card,
a card change its changes, a move its stages, a pause, resumption, qualification or
close (the lead's status) or an assessment, cost or link one to four fields: each
kind is parsed into its own narrow structure and table, and folded by the setters of its
topics only. One structure of every field for every event, and one aggregate of every
setter over every event, cost most of the fold."""

DOCUMENT_TYPES = dict(DOCUMENT_FIELDS)


def _document_shape(fields: tuple[str, ...]) -> str:
    parts = [f'"{name}": "{DOCUMENT_TYPES[name]}"' for name in fields if name != "changes"]
    if "changes" in fields:
        changes = ", ".join(f'"{f}": {{"new": "VARCHAR"}}' for f in CARD_FIELDS)
        parts.append(f'"changes": {{{changes}}}')
    return "{" + ", ".join(parts) + "}"


# Flat columns read from the parsed document: e_<field>, and for a card change of field f
# c_<f>_set (the change names f) and c_<f> (its new value). Wide structs are costly to
# carry through the page's statements; flat columns are not.
def _flat_columns(fields: tuple[str, ...]) -> str:
    columns = [f"doc.{name} AS e_{name}" for name in fields if name != "changes"]
    if "changes" in fields:
        columns += [f"doc.changes.{f} IS NOT NULL AS c_{f}_set" for f in CARD_FIELDS]
        columns += [f"doc.changes.{f}.new AS c_{f}" for f in CARD_FIELDS]
    return ", ".join(columns)


Kind = tuple[tuple[str, ...], tuple[str, ...]]
IMPORT_KIND = 1
"""The index in KINDS of the imports' kind."""


def page_kinds(present: frozenset[str] | set[str]) -> tuple[int, ...]:
    """The indices in KINDS of the kinds with an event among the page's topics: a page
    folds only those (a live page of a few commands has two or three of them, and each
    kind costs its own statements whatever its number of events)."""
    return tuple(i for i, (topics, _) in enumerate(KINDS) if not present.isdisjoint(topics))


def _once(kinds: list[Kind]) -> list[bool]:
    """Per kind: whether a lead has one event of it at most (its creation)."""
    return [set(topics) <= BORN_TOPICS for topics, _ in kinds]


def _kind_columns(fields: tuple[str, ...]) -> str:
    """The columns a kind's table keeps: those every kind has (read by the sequence, the
    visits and the lead's counters), and the kind's own fields for its setters."""
    own = [f"e_{name}" for name in fields if name != "changes"]
    if "changes" in fields:
        own += [f"c_{f}_set" for f in CARD_FIELDS] + [f"c_{f}" for f in CARD_FIELDS]
    return ", ".join([*COMMON_COLUMNS, *(c for c in own if c not in COMMON_COLUMNS)])


def _kind_statement(i: int, topics: tuple[str, ...], fields: tuple[str, ...], imports: bool) -> str:
    missing = ", ".join(
        f"NULL::{sql_type} AS e_{name}"
        for name, sql_type in DOCUMENT_FIELDS
        if name not in fields and (imports or name not in IMPORT_ONLY_FIELDS)
    )
    return KIND_SQL.format(
        i=i,
        columns=_kind_columns(fields),
        flat=_flat_columns(fields) + (f", {missing}" if missing else ""),
        shape=_document_shape(fields),
        topics=", ".join(f"'{t}'" for t in topics),
        moments=MOMENTS[imports],
        closes=IMPORT_CLOSES[imports],
    )


def _condition_topics(condition: str) -> set[str]:
    if condition == "opens":
        return set(OPENING)
    return set(re.findall(r"'(Lead\w+)'", condition))


def _kind_setters(kinds: list[Kind], imports: bool) -> list[dict[str, list[tuple[str, str]]]]:
    """Per kind, the setters of its topics (a column some of whose setters are of
    another kind has the others folded there)."""
    folded = []
    for topics, _ in kinds:
        mine: dict[str, list[tuple[str, str]]] = {}
        for column, setters in _setters(imports).items():
            own = [(c, v) for c, v in setters if _condition_topics(c) & set(topics)]
            if own:
                mine[column] = own
        folded.append(mine)
    return folded


def _setter_aggregates(setters: dict[str, list[tuple[str, str]]], once: bool) -> str:
    """The kind's setters per lead; ``once``: a kind a lead has one event of at most (its
    creation), whose setters need no aggregate."""
    parts = []
    for column, pairs in setters.items():
        condition = " OR ".join(f"({c})" for c, _ in pairs)
        value = "CASE " + " ".join(f"WHEN {c} THEN {v}" for c, v in pairs) + " END"
        # the version of the last event setting the column (NULL: none), and its value
        # (which may be NULL); no FILTER and no struct: both cost more than the CASE
        setter_version = f"CASE WHEN {condition} THEN version END"
        if once:
            parts.append(f"{setter_version} AS has_{column}, {value} AS last_{column}")
            continue
        parts.append(f"max({setter_version}) AS has_{column}")
        parts.append(f"arg_max_null({value}, {setter_version}) AS last_{column}")
    return ",\n  ".join(parts)


def _set_sources(kinds: list[Kind], imports: bool) -> dict[str, list[int]]:
    """Per column the page's kinds set: the indices (in ``kinds``) of those that do."""
    sources: dict[str, list[int]] = {}
    for i, setters in enumerate(_kind_setters(kinds, imports)):
        for column in setters:
            sources.setdefault(column, []).append(i)
    return sources


def _setter_columns(kinds: list[Kind], imports: bool) -> str:
    """For each column the page's events set: the version of the page's last event
    setting it (NULL: none) and its value (which may be NULL), the latest of its kinds'.
    A column no kind of the page sets keeps its stored value (``_lead_value``)."""
    sources = _set_sources(kinds, imports)
    parts = []
    for column in SETTERS:
        if column not in sources:
            continue
        indices = sources[column]
        if len(indices) == 1:
            (i,) = indices
            parts.append(f"s{i}.has_{column}, s{i}.last_{column}")
            continue
        latest = "greatest(" + ", ".join(f"s{i}.has_{column}" for i in indices) + ")"
        value = " ".join(
            f"WHEN s{i}.has_{column} = {latest} THEN s{i}.last_{column}" for i in indices
        )
        parts.append(f"{latest} AS has_{column}, CASE {value} END AS last_{column}")
    return ",\n  ".join(parts)


# For each column of ``leads`` that events set: (condition, value) pairs. The column takes
# the value of the page's last event (by version) meeting a condition, else keeps its own.
SETTERS: dict[str, list[tuple[str, str]]] = {
    "funnel": [(BORN, "e_funnel"), (_topic("LeadTransferred"), "e_to_funnel")],
    "stage": [
        (BORN, "e_stage"),
        (_topic("LeadStageChanged"), "e_to_stage"),
        (_topic("LeadTransferred"), "e_to_stage"),
    ],
    "status": [
        (CREATED, "'open'"),
        (IMPORTED, "e_status"),
        (_topic("LeadPaused"), "'paused'"),
        (_topic("LeadResumed"), "'open'"),
        (_topic("LeadQualified"), f"CASE WHEN {QUALITY} THEN 'open' ELSE 'non_quality' END"),
        (_topic("LeadClosed"), "e_outcome"),
    ],
    "repeat": [(BORN, "(e_repeat)::BOOLEAN")],
    **{
        field: [(BORN, f"e_{field}"), (_card(field), _card_new(field))]
        for field in CARD_TEXT_FIELDS
    },
    "company_id": [(BORN, "e_company_id")],
    "answer_due": [
        (BORN, "(e_answer_due)::DATE"),
        (_card("answer_due"), f"{_card_new('answer_due')}::DATE"),
    ],
    "amount": [
        (BORN, "(e_amount)::DECIMAL(18,2)"),
        (_card("amount"), f"{_card_new('amount')}::DECIMAL(18,2)"),
        (_topic("LeadCostBreakdownSet"), "(e_total)::DECIMAL(18,2)"),
    ],
    # LeadCreated v1 carried no currency: its leads were priced in the default currency
    # (the same rule as aggregates.lead.upcast_lead_created_v1).
    "currency": [(BORN, f"coalesce(e_currency, '{DEFAULT_CURRENCY}')")],
    "cost_components": [
        (BORN, "'[]'"),
        (_topic("LeadCostBreakdownSet"), "e_components::VARCHAR"),
    ],
    "quality": [(_topic("LeadQualified"), QUALITY), (IMPORTED, QUALITY)],
    "qualification_reason": [
        (_topic("LeadQualified"), "e_reason"),
        (IMPORTED, "e_qualification_reason"),
    ],
    "assessment_expert": [(_topic("LeadAssessed"), "e_expert")],
    "assessment_result": [(_topic("LeadAssessed"), "e_result")],
    "assessment_hours": [(_topic("LeadAssessed"), "(e_hours)::DECIMAL(18,2)")],
    "pause_reason": [
        (IMPORTED, "e_pause_reason"),
        (_topic("LeadPaused"), "e_reason"),
        (_topic("LeadResumed"), "NULL"),
        (_topic("LeadClosed"), "NULL"),
    ],
    "paused_since": [
        (IMPORTED, "(e_paused_since)::TIMESTAMPTZ"),
        (_topic("LeadPaused"), "event_at"),
        (_topic("LeadResumed"), "NULL"),
        (_topic("LeadClosed"), "NULL"),
    ],
    "close_reason": [(_topic("LeadClosed"), "e_reason"), (IMPORTED, "e_close_reason")],
    "closed_at": [
        (IMPORTED, "(e_closed_at)::TIMESTAMPTZ"),
        (_topic("LeadQualified"), f"CASE WHEN {QUALITY} THEN NULL ELSE event_at END"),
        (_topic("LeadClosed"), "event_at"),
    ],
    "created_at": [(CREATED, "event_at"), (IMPORTED, "(e_created_at)::TIMESTAMPTZ")],
    "created_by": [(BORN, "e_actor")],
    "stage_entered_at": [("opens", "opened_at")],
    "deal_id": [(_topic("LeadConvertedToDeal"), "e_deal_id")],
    # LeadCreated before version 3 asked nothing: NULL, the funnel's setting applies
    "assessment_required_on_card": [
        (BORN, "e_assessment_required"),
        (_card("assessment_required"), f"{_card_new('assessment_required')}::BOOLEAN"),
    ],
    "project_id": [(_topic("LeadProjectStarted"), "e_project_id")],
    # when the lead was found quality (the conversion cohorts' first step)
    "qualified_at": [
        (_topic("LeadQualified"), f"CASE WHEN {QUALITY} THEN event_at END"),
        (IMPORTED, "(e_qualified_at)::TIMESTAMPTZ"),
    ],
    # the contact record a private person's lead names (LeadCreated v4; earlier: none)
    "contact_id": [(CREATED, "e_contact_id")],
}


def _ddl(table: str, columns: tuple[tuple[str, str], ...]) -> str:
    body = ", ".join(f"{name} {sql_type}" for name, sql_type in columns)
    return f"CREATE TABLE IF NOT EXISTS {table} ({body})"


def _setters(imports: bool) -> dict[str, list[tuple[str, str]]]:
    """SETTERS, or for a page without imports the same without their conditions."""
    if imports:
        return SETTERS
    return {
        column: [(CREATED if c == BORN else c, v) for c, v in setters if c != IMPORTED]
        for column, setters in SETTERS.items()
    }


def _lead_value(column: str, set_columns: set[str] | dict[str, list[int]]) -> str:
    if column in SETTERS and column not in set_columns:
        return f"c.{column}"
    if column in SETTERS:
        return f"CASE WHEN a.has_{column} IS NOT NULL THEN a.last_{column} ELSE c.{column} END"
    computed = {
        "lead_id": "a.lead_id",
        "stage_step": "NULL",  # filled from the funnels below
        "assessment_required": "NULL",  # the card's choice, else the funnel's (below)
        "furthest_step": (
            "CASE WHEN a.reset_v IS NOT NULL THEN a.max_step"
            " WHEN c.furthest_step IS NULL THEN a.max_step"
            " WHEN a.max_step IS NULL THEN c.furthest_step"
            " ELSE greatest(c.furthest_step, a.max_step) END"
        ),
        "assessment_hours_total": (
            "coalesce(c.assessment_hours_total, 0) + coalesce(a.hours_sum, 0)"
        ),
        "assessments": "coalesce(c.assessments, 0) + a.assessed",
        "updated_at": "a.updated_at",
        "visits": "coalesce(c.visits, 0) + a.opened",
        "version": "a.version",
        "last_position": "a.last_position",
    }
    return computed[column]


def _final_value(column: str) -> str:
    if column == "stage_step":
        return f"CAST(s.step AS INTEGER) AS {column}"
    if column == "assessment_required":
        return f"coalesce(f.assessment_required_on_card, s.assessment_required, TRUE) AS {column}"
    return f"f.{column}"


CURRENT_SQL = """
CREATE OR REPLACE TEMP TABLE _lead_current AS
SELECT l.* FROM leads l WHERE l.lead_id IN (SELECT stream_id FROM _page WHERE topic IN ({topics}))
"""

# A kind's events, each parsed once (a field the kind does not read is NULL).
KIND_SQL = """
CREATE OR REPLACE TEMP TABLE _lead_kind{i} AS
WITH flat AS (
  SELECT position, lead_id, version, topic, {flat}
  FROM (
    SELECT position, stream_id AS lead_id, version, topic,
      json_transform(state, '{shape}') AS doc
    FROM _page WHERE topic IN ({topics})
  )
),
moments AS (
  SELECT *,
    e_at::TIMESTAMPTZ AS event_at,
    {moments},
    topic IN ('LeadCreated', 'LeadImported', 'LeadStageChanged', 'LeadTransferred') AS opens,
    (topic = 'LeadClosed' OR (topic = 'LeadQualified' AND NOT e_quality){closes}) AS closes,
    CASE topic WHEN 'LeadTransferred' THEN e_to_funnel ELSE e_funnel END AS funnel_at,
    CASE WHEN topic IN ('LeadCreated', 'LeadImported') THEN e_stage ELSE e_to_stage END AS stage_at
  FROM flat
)
SELECT {columns} FROM moments
"""

COMMON_COLUMNS = (
    "position",
    "lead_id",
    "version",
    "topic",
    "event_at",
    "opened_at",
    "closed_moment",
    "paused_moment",
    "opens",
    "closes",
    "funnel_at",
    "stage_at",
    "e_hours",
    "e_paused_seconds",
)

# The page's lead events, every kind's, with the columns they all have.
EVENTS_SQL = """
CREATE OR REPLACE TEMP VIEW _lead_events AS
{kinds}
"""

# An event's moments (the stage's entry, the close, the pause); with imports: an imported
# lead entered its stage, closed and paused at its original instants.
MOMENTS = {
    True: """CASE topic WHEN 'LeadImported' THEN e_stage_entered_at::TIMESTAMPTZ
    ELSE e_at::TIMESTAMPTZ END AS opened_at,
  CASE topic WHEN 'LeadImported' THEN e_closed_at::TIMESTAMPTZ
    ELSE e_at::TIMESTAMPTZ END AS closed_moment,
  CASE topic WHEN 'LeadImported' THEN e_paused_since::TIMESTAMPTZ
    WHEN 'LeadPaused' THEN e_at::TIMESTAMPTZ END AS paused_moment""",
    False: """e_at::TIMESTAMPTZ AS opened_at,
  e_at::TIMESTAMPTZ AS closed_moment,
  CASE topic WHEN 'LeadPaused' THEN e_at::TIMESTAMPTZ END AS paused_moment""",
}
IMPORT_CLOSES = {
    True: "\n   OR (topic = 'LeadImported' AND e_status IN ('won', 'lost', 'non_quality'))",
    False: "",
}

# Per event that opens, closes or pauses a visit (VISIT_TOPICS), narrow: the visit it
# belongs to, whether it resets the lead's funnel (creation or transfer; the last reset
# is found by an aggregate in STEPS_SQL, not a second window), and the step of the stage
# an opening event enters. Kept apart from the event rows, which are costly to sort. The
# other events (a card change, an assessment, ...) leave every visit as it is: a visit
# only they touch is not rewritten.
VISIT_TOPICS = (
    *OPENING,
    "LeadPaused",
    "LeadResumed",
    "LeadQualified",
    "LeadClosed",
)
VISIT_EVENTS_SQL = """
CREATE OR REPLACE TEMP VIEW _lead_visit_events AS
{kinds}
"""


def _visit_events(kinds: list[Kind]) -> str:
    """The page's visit events: the union of its kinds that have any (every kind's topics
    are all visit topics or none: no filter on the topic, which DuckDB would plan as a
    join in each of the three statements that read the view)."""
    selects = []
    for i, (topics, _) in enumerate(kinds):
        visit = [t for t in topics if t in VISIT_TOPICS]
        if not visit:
            continue
        where = "" if len(visit) == len(topics) else f" WHERE topic IN ({_quoted(visit)})"
        selects.append(f"SELECT {', '.join(COMMON_COLUMNS)} FROM _lead_kind{i}{where}")
    if not selects:  # no visit event: an empty view of the same columns
        return VISIT_EVENTS_SQL.format(kinds="SELECT * FROM _lead_events WHERE FALSE")
    return VISIT_EVENTS_SQL.format(kinds="\nUNION ALL\n".join(selects))


def _quoted(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f"'{n}'" for n in names)


SEQUENCE_SQL = """
CREATE OR REPLACE TEMP TABLE _lead_sequence AS
SELECT e.lead_id, e.version,
  (coalesce(c.visits, 0)
    + sum(e.opens::INTEGER) OVER (PARTITION BY e.lead_id ORDER BY e.version
                                  ROWS UNBOUNDED PRECEDING))::INTEGER AS visit_no,
  e.topic IN ('LeadCreated', 'LeadImported', 'LeadTransferred') AS resets,
  s.step AS step_at
FROM (SELECT lead_id, version, topic, opens, funnel_at, stage_at FROM _lead_visit_events) e
LEFT JOIN _lead_current c ON c.lead_id = e.lead_id
LEFT JOIN _funnel_steps s ON e.opens AND s.funnel = e.funnel_at AND s.stage = e.stage_at
"""

# Per kind, each lead's setters over the kind's events (a view for a creation kind: one
# row per lead already).
KIND_SET_SQL = """
CREATE OR REPLACE TEMP {what} _lead_set{i} AS
SELECT lead_id,
  {setters}
FROM _lead_kind{i} {group}
"""

# Per lead: its counters, and whether the page creates it.
BASE_SQL = """
CREATE OR REPLACE TEMP TABLE _lead_base AS
SELECT lead_id,
  max(version) AS version,
  max(position) AS last_position,
  arg_max(event_at, version) AS updated_at,
  sum(opens::INTEGER) AS opened,
  bool_or(topic IN ('LeadCreated', 'LeadImported')) AS created,
  sum((e_hours)::DECIMAL(18,2)) FILTER (WHERE topic = 'LeadAssessed') AS hours_sum,
  count(*) FILTER (WHERE topic = 'LeadAssessed') AS assessed
FROM _lead_events GROUP BY lead_id
"""

# Per lead: its counters and every column's last setter (a view: read once, by the new
# rows).
AGGREGATE_SQL = """
CREATE OR REPLACE TEMP VIEW _lead_changes AS
SELECT b.*,
  {setters}
FROM _lead_base b
{joins}
"""

STEPS_SQL = """
CREATE OR REPLACE TEMP TABLE _lead_steps AS
WITH resets AS (
  SELECT lead_id, max(CASE WHEN resets THEN version END) AS reset_v
  FROM _lead_sequence GROUP BY lead_id
)
SELECT lead_id, r.reset_v,
  max(q.step_at) FILTER (WHERE r.reset_v IS NULL OR q.version >= r.reset_v) AS max_step
FROM _lead_sequence q JOIN resets r USING (lead_id) GROUP BY lead_id, r.reset_v
"""

MISSING_SQL = """
SELECT a.lead_id FROM _lead_base a
WHERE NOT a.created AND a.lead_id NOT IN (SELECT lead_id FROM _lead_current) LIMIT 1
"""

NEW_LEADS_SQL = """
CREATE OR REPLACE TEMP TABLE _lead_rows AS
WITH folded AS (
  SELECT {values}
  FROM (SELECT * FROM _lead_changes LEFT JOIN _lead_steps USING (lead_id)) a
  LEFT JOIN _lead_current c ON c.lead_id = a.lead_id
)
SELECT {final} FROM folded f
LEFT JOIN _funnel_steps s ON s.funnel = f.funnel AND s.stage = f.stage
"""

# Every visit a page touches: those its events belong to, and the open visit its first
# opening event closes. Paused time is summed in whole microseconds, so that sums are
# exact whatever the page boundaries. A visit has one opening event at most (each opens
# the next visit): its values need no arg_max.
NEW_VISITS_SQL = """
CREATE OR REPLACE TEMP TABLE _visit_rows AS
WITH keys AS (
  SELECT DISTINCT lead_id, visit_no FROM _lead_sequence
  UNION
  SELECT c.lead_id, c.visits FROM _lead_current c
  WHERE c.lead_id IN (SELECT lead_id FROM _lead_visit_events WHERE opens)
),
per_visit AS (
  SELECT lead_id, visit_no,
    max(CASE WHEN opens THEN opened_at END) AS entered_at,
    max(CASE WHEN opens THEN funnel_at END) AS funnel,
    max(CASE WHEN opens THEN stage_at END) AS stage,
    min(CASE WHEN closes THEN closed_moment END) AS closed_at,
    sum(CASE WHEN topic = 'LeadResumed'
      THEN round((e_paused_seconds)::DOUBLE * 1000000)::BIGINT END) AS resumed_us,
    bool_or(topic IN ('LeadPaused', 'LeadResumed', 'LeadImported')) AS pause_events,
    arg_max_null(paused_moment,
      CASE WHEN topic IN ('LeadPaused', 'LeadResumed', 'LeadImported') THEN version END
    ) AS last_pause
  FROM _lead_visit_events JOIN _lead_sequence USING (lead_id, version) GROUP BY lead_id, visit_no
),
next_visit AS (
  SELECT lead_id, visit_no - 1 AS visit_no, opened_at AS next_entered_at
  FROM _lead_visit_events JOIN _lead_sequence USING (lead_id, version) WHERE opens
),
merged AS (
  SELECT k.lead_id, k.visit_no,
    coalesce(p.funnel, v.funnel) AS funnel,
    coalesce(p.stage, v.stage) AS stage,
    coalesce(p.entered_at, v.entered_at) AS entered_at,
    coalesce(n.next_entered_at, p.closed_at, v.left_at) AS left_at,
    p.closed_at,
    coalesce(round(v.paused_seconds::DECIMAL(38, 6) * 1000000)::BIGINT, 0)
      + coalesce(p.resumed_us, 0) AS paused_us,
    CASE WHEN p.pause_events THEN p.last_pause ELSE v.paused_since END AS pause_open
  FROM keys k
  LEFT JOIN per_visit p ON p.lead_id = k.lead_id AND p.visit_no = k.visit_no
  LEFT JOIN lead_stage_visits v ON v.lead_id = k.lead_id AND v.visit_no = k.visit_no
  LEFT JOIN next_visit n ON n.lead_id = k.lead_id AND n.visit_no = k.visit_no
)
SELECT lead_id, visit_no, funnel, stage, entered_at, left_at,
  ((paused_us + CASE WHEN closed_at IS NOT NULL AND pause_open IS NOT NULL
      THEN greatest(epoch_us(closed_at) - epoch_us(pause_open), 0) ELSE 0 END
   )::DECIMAL(18, 0) / 1000000)::DECIMAL(18, 6) AS paused_seconds,
  CASE WHEN closed_at IS NOT NULL THEN NULL ELSE pause_open END AS paused_since
FROM merged
"""

WRITE_SQL = (
    "DELETE FROM leads WHERE lead_id IN (SELECT lead_id FROM _lead_rows)",
    "INSERT INTO leads SELECT * FROM _lead_rows",
    "DELETE FROM lead_stage_visits v USING _visit_rows r "
    "WHERE v.lead_id = r.lead_id AND v.visit_no = r.visit_no",
    "INSERT INTO lead_stage_visits SELECT * FROM _visit_rows",
)

TEMP_TABLES = (
    "_lead_current",
    "_lead_base",
    "_lead_sequence",
    "_lead_steps",
    "_lead_rows",
    "_visit_rows",
)


class LeadProjection:
    name = "leads"
    tables: tuple[str, ...] = ("leads", "lead_stage_visits")
    topics: frozenset[str] = frozenset(
        {
            "LeadCreated",
            "LeadImported",
            "LeadCardUpdated",
            "LeadCostBreakdownSet",
            "LeadStageChanged",
            "LeadTransferred",
            "LeadPaused",
            "LeadResumed",
            "LeadAssessed",
            "LeadQualified",
            "LeadClosed",
            "LeadConvertedToDeal",
            "LeadProjectStarted",
            "LeadAnswerReminderSent",
            "LeadAnswerEscalated",
        }
    )

    def __init__(self, funnels: FunnelCatalog) -> None:
        self.funnels = funnels
        rows = [
            (f.id, s.id, s.step, f.assessment_required) for f in funnels.values() for s in f.stages
        ]
        self._step_rows = rows
        self._steps = pa.table(
            {
                "funnel": pa.array([r[0] for r in rows], pa.string()),
                "stage": pa.array([r[1] for r in rows], pa.string()),
                "step": pa.array([r[2] for r in rows], pa.int32()),
                "assessment_required": pa.array([r[3] for r in rows], pa.bool_()),
            }
        )
        self._topic_values = pa.array(sorted(self.topics), pa.string())
        self._variants: dict[tuple[int, ...], tuple[tuple[str, ...], str, tuple[str, ...]]] = {}

    def _variant(self, key: tuple[int, ...]) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
        """The statements of a page with the kinds ``key`` (indices in KINDS): those that
        fold it, the new leads' statement, the drops; built once per set of kinds. A page
        without LeadImported (a rebuild's usual page) neither parses nor carries the
        imported fields, nor tests for them."""
        variant = self._variants.get(key)
        if variant is not None:
            return variant
        imports = IMPORT_KIND in key
        kinds = [KINDS[i] for i in key]
        once = _once(kinds)
        topics = ", ".join(f"'{t}'" for t in sorted(self.topics))
        sources = _set_sources(kinds, imports)
        values = ",\n    ".join(f"{_lead_value(n, sources)} AS {n}" for n, _ in LEADS_COLUMNS)
        final = ", ".join(_final_value(n) for n, _ in LEADS_COLUMNS)
        statements = (
            CURRENT_SQL.format(topics=topics),
            *(
                _kind_statement(i, kind_topics, fields, imports)
                for i, (kind_topics, fields) in enumerate(kinds)
            ),
            EVENTS_SQL.format(
                kinds="\nUNION ALL\n".join(
                    f"SELECT {', '.join(COMMON_COLUMNS)} FROM _lead_kind{i}"
                    for i in range(len(kinds))
                )
            ),
            _visit_events(kinds),
            SEQUENCE_SQL,
            *(
                KIND_SET_SQL.format(
                    i=i,
                    what="VIEW" if one else "TABLE",
                    setters=_setter_aggregates(setters, one),
                    group="" if one else "GROUP BY lead_id",
                )
                for i, (setters, one) in enumerate(
                    zip(_kind_setters(kinds, imports), once, strict=True)
                )
            ),
            BASE_SQL,
            AGGREGATE_SQL.format(
                setters=_setter_columns(kinds, imports),
                joins="\n".join(
                    f"LEFT JOIN _lead_set{i} s{i} ON s{i}.lead_id = b.lead_id"
                    for i in range(len(kinds))
                ),
            ),
            STEPS_SQL,
        )
        drops = (
            "DROP VIEW _lead_changes",
            "DROP VIEW _lead_visit_events",
            "DROP VIEW _lead_events",
            *(f"DROP {'VIEW' if one else 'TABLE'} _lead_set{i}" for i, one in enumerate(once)),
            *(f"DROP TABLE _lead_kind{i}" for i in range(len(kinds))),
            *(f"DROP TABLE {table}" for table in TEMP_TABLES),
        )
        variant = (statements, NEW_LEADS_SQL.format(values=values, final=final), drops)
        self._variants[key] = variant
        return variant

    @property
    def fingerprint(self) -> str:
        parts = [
            _ddl("leads", LEADS_COLUMNS),
            _ddl("lead_stage_visits", VISITS_COLUMNS),
            # every kind's statements, with and without imports
            *self._variant(tuple(range(len(KINDS))))[0],
            *self._variant(tuple(i for i in range(len(KINDS)) if i != IMPORT_KIND))[0],
            self._variant(tuple(range(len(KINDS))))[1],
            NEW_VISITS_SQL,
            repr(sorted(self._step_rows)),
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(_ddl("leads", LEADS_COLUMNS))
        cursor.execute(_ddl("lead_stage_visits", VISITS_COLUMNS))

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        # A page of deals and hand-offs only: nothing to fold, and the statements below
        # cost tens of milliseconds even on an empty selection.
        if not pc.any(pc.is_in(page["topic"], value_set=self._topic_values)).as_py():
            return
        # On an error the caller rolls the transaction back, temporary tables included.
        cursor.register("_funnel_steps", self._steps)
        statements, new_leads, drops = self._variant(
            page_kinds(set(pc.unique(page["topic"]).to_pylist()))
        )
        for statement in statements:
            cursor.execute(statement)
        missing = cursor.execute(MISSING_SQL).fetchall()
        if missing:
            raise RuntimeError(
                f"events for lead {missing[0][0]} whose creation was never projected: "
                "rebuild the read models"
            )
        cursor.execute(new_leads)
        cursor.execute(NEW_VISITS_SQL)
        for statement in WRITE_SQL:
            cursor.execute(statement)
        for statement in drops:
            cursor.execute(statement)
        cursor.unregister("_funnel_steps")
