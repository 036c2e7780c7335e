"""The process log for process-mining tools: OCEL 2.0 (object-centric JSON) and XES (one
log per record kind), streamed a batch of rows at a time.

Both are read from the read models the process map reads, over the viewer's scoped
cursor, so a tool finds the same records, visits and transitions as the map:

- **objects**: leads, deals, hand-off requests and projects, with their public fields only
  (funnel, stage or status, source, manager, PM, department, amount — never a contact,
  a description or the sealed sensitive section, which no read model holds), and their
  links: a deal *from* its lead, a hand-off request and a project *for* their deal;
- **events**: every visit of a lead, a deal or a project to a stage or status (type
  ``lead:<stage>``, ``deal:<stage>``, ``project:<status>``, at the instant it was
  entered), the closing of a lead or a deal (``lead:closed``, ``deal:closed``, with its
  outcome) and a hand-off request's steps (``handoff:requested``, ``handoff:taken``,
  ``handoff:ready``). Events touch several objects where they do: a deal's first visit
  (created from a lead) touches the deal and the lead, a project's first status its
  deal and lead, a hand-off request's steps the request and its deal.

XES: one trace per lead, deal or project (``concept:name`` its id), one event per visit
(``concept:name`` the stage, ``time:timestamp`` when it was entered), in visit order: the
directly-follows graph a tool draws from it is the process map's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal
from xml.sax.saxutils import quoteattr

import duckdb
import orjson
import pyarrow as pa

Kind = Literal["lead", "deal", "project"]
BATCH_ROWS = 8_192
EPOCH = "1970-01-01T00:00:00Z"
"""The time OCEL gives an object's attribute that was not observed changing."""

VISITS: dict[Kind, str] = {
    "lead": "SELECT lead_id AS id, visit_no, funnel, stage, entered_at FROM lead_stage_visits",
    "deal": "SELECT deal_id AS id, visit_no, funnel, stage, entered_at FROM deal_stage_visits",
    "project": "SELECT project_id AS id, visit_no, NULL::VARCHAR AS funnel, status AS stage,"
    " entered_at FROM project_status_visits",
}

OBJECT_TYPES: list[dict[str, Any]] = [
    {
        "name": "lead",
        "attributes": [
            {"name": n, "type": t}
            for n, t in (
                ("funnel", "string"),
                ("source", "string"),
                ("manager", "string"),
                ("status", "string"),
                ("amount", "float"),
            )
        ],
    },
    {
        "name": "deal",
        "attributes": [
            {"name": n, "type": t}
            for n, t in (
                ("funnel", "string"),
                ("source", "string"),
                ("manager", "string"),
                ("status", "string"),
                ("amount", "float"),
            )
        ],
    },
    {
        "name": "handoff",
        "attributes": [
            {"name": n, "type": "string"} for n in ("department", "stage", "status", "assignee")
        ],
    },
    {
        "name": "project",
        "attributes": [
            {"name": n, "type": "string"} for n in ("status", "pm", "manager", "department")
        ],
    },
]

# Objects: (type, id, attributes as a struct, links as a list of (id, qualifier)).
OBJECTS_SQL = """
SELECT 'lead' AS type, lead_id AS id, funnel, source, manager, status,
  amount::DOUBLE AS amount, NULL::VARCHAR AS department, NULL::VARCHAR AS stage,
  NULL::VARCHAR AS assignee, NULL::VARCHAR AS pm, NULL::VARCHAR AS deal_id,
  NULL::VARCHAR AS lead_id
FROM leads
UNION ALL
SELECT 'deal', deal_id, funnel, source, manager, status, amount::DOUBLE, NULL, NULL, NULL,
  NULL, NULL, lead_id
FROM deals
UNION ALL
SELECT 'handoff', request_id, NULL, NULL, NULL, status, NULL, department, stage, assignee,
  NULL, deal_id, NULL
FROM handoffs
UNION ALL
SELECT 'project', project_id, NULL, NULL, manager, status, NULL, department, NULL, NULL, pm,
  deal_id, NULL
FROM projects
"""

OBJECT_ATTRIBUTES = {t["name"]: [a["name"] for a in t["attributes"]] for t in OBJECT_TYPES}

# Events: (id, type, time, attributes, the objects touched: main, deal, lead).
EVENTS_SQL = """
SELECT 'lead:' || v.lead_id || ':' || v.visit_no AS id, 'lead:' || v.stage AS type,
  v.entered_at AS time, v.funnel, v.stage, NULL::VARCHAR AS outcome,
  'lead' AS main_type, v.lead_id AS main_id, NULL::VARCHAR AS deal_id,
  NULL::VARCHAR AS lead_id
FROM lead_stage_visits v
UNION ALL
SELECT 'deal:' || v.deal_id || ':' || v.visit_no, 'deal:' || v.stage, v.entered_at,
  v.funnel, v.stage, NULL, 'deal', v.deal_id, NULL,
  CASE WHEN v.visit_no = 1 THEN d.lead_id END
FROM deal_stage_visits v LEFT JOIN deals d ON d.deal_id = v.deal_id
UNION ALL
SELECT 'project:' || v.project_id || ':' || v.visit_no, 'project:' || v.status,
  v.entered_at, NULL, v.status, NULL, 'project', v.project_id,
  CASE WHEN v.visit_no = 1 THEN p.deal_id END, CASE WHEN v.visit_no = 1 THEN p.lead_id END
FROM project_status_visits v LEFT JOIN projects p ON p.project_id = v.project_id
UNION ALL
SELECT 'lead:' || lead_id || ':closed', 'lead:closed', closed_at, funnel, NULL, status,
  'lead', lead_id, deal_id, NULL
FROM leads WHERE closed_at IS NOT NULL
UNION ALL
SELECT 'deal:' || deal_id || ':closed', 'deal:closed', closed_at, funnel, NULL, status,
  'deal', deal_id, NULL, NULL
FROM deals WHERE closed_at IS NOT NULL
UNION ALL
SELECT 'handoff:' || request_id || ':' || step, 'handoff:' || step, step_at, NULL, NULL, NULL,
  'handoff', request_id, deal_id, NULL
FROM (
  SELECT request_id, deal_id, 'requested' AS step, created_at AS step_at FROM handoffs
  UNION ALL SELECT request_id, deal_id, 'taken', taken_at FROM handoffs
    WHERE taken_at IS NOT NULL
  UNION ALL SELECT request_id, deal_id, 'ready', ready_at FROM handoffs
    WHERE ready_at IS NOT NULL
)
ORDER BY time, id
"""

EVENT_TYPES_SQL = """
SELECT DISTINCT type FROM (
  SELECT 'lead:' || stage AS type FROM lead_stage_visits
  UNION ALL SELECT 'deal:' || stage FROM deal_stage_visits
  UNION ALL SELECT 'project:' || status FROM project_status_visits
  UNION ALL SELECT 'lead:closed' FROM leads WHERE closed_at IS NOT NULL
  UNION ALL SELECT 'deal:closed' FROM deals WHERE closed_at IS NOT NULL
  UNION ALL SELECT 'handoff:requested' FROM handoffs
  UNION ALL SELECT 'handoff:taken' FROM handoffs WHERE taken_at IS NOT NULL
  UNION ALL SELECT 'handoff:ready' FROM handoffs WHERE ready_at IS NOT NULL
) ORDER BY type
"""

EVENT_ATTRIBUTES = ("funnel", "stage", "outcome")


def _escaped(column: str) -> str:
    """A SQL expression: the column's text escaped for an XML attribute."""
    expression = column
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;")):
        expression = f"replace({expression}, '{char}', '{entity}')"
    for code in (9, 10, 13):
        expression = f"replace({expression}, chr({code}), '&#{code};')"
    return expression


# Each object and event as its JSON text, made by DuckDB (a column at a time, not a
# Python dict per row): attributes and relationships without the empty ones.
OBJECT_DOCS_SQL = f"""
SELECT json_object(
  'id', id, 'type', type,
  'attributes', to_json(list_filter([
    {
    ", ".join(
        f"{{'name': '{n}', 'time': '{EPOCH}', 'value': to_json({n})}}"
        for n in (
            "funnel",
            "source",
            "manager",
            "status",
            "amount",
            "department",
            "stage",
            "assignee",
            "pm",
        )
    )
}], lambda a: a.value IS NOT NULL)),
  'relationships', to_json(list_filter([
    {{'objectId': lead_id, 'qualifier': 'from lead'}},
    {{'objectId': deal_id, 'qualifier': 'for deal'}}], lambda r: r.objectId IS NOT NULL))
)::VARCHAR AS doc
FROM ({OBJECTS_SQL}) ORDER BY type, id
"""

EVENT_DOCS_SQL = f"""
SELECT json_object(
  'id', id, 'type', type, 'time', strftime(time, '%Y-%m-%dT%H:%M:%S.%fZ'),
  'attributes', to_json(list_filter([
    {", ".join(f"{{'name': '{n}', 'value': {n}}}" for n in EVENT_ATTRIBUTES)}],
    lambda a: a.value IS NOT NULL)),
  'relationships', to_json(list_filter([
    {{'objectId': main_id, 'qualifier': main_type}},
    {{'objectId': deal_id, 'qualifier': 'deal'}},
    {{'objectId': lead_id, 'qualifier': 'lead'}}], lambda r: r.objectId IS NOT NULL))
)::VARCHAR AS doc
FROM ({EVENTS_SQL})
"""


def _docs(cursor: duckdb.DuckDBPyConnection, sql: str) -> Iterator[bytes]:
    """The rows' JSON texts as the items of a JSON array, a batch at a time."""
    reader: pa.RecordBatchReader = cursor.sql(sql).to_arrow_reader(BATCH_ROWS)
    first = True
    for batch in reader:
        if batch.num_rows == 0:
            continue
        joined = ",\n".join(batch.column(0).to_pylist()).encode()
        yield joined if first else b",\n" + joined
        first = False


def ocel_json(cursor: duckdb.DuckDBPyConnection) -> Iterator[bytes]:
    """The OCEL 2.0 JSON document of the records the cursor sees, in chunks."""
    event_types = [r[0] for r in cursor.execute(EVENT_TYPES_SQL).fetchall()]
    head = {
        "objectTypes": OBJECT_TYPES,
        "eventTypes": [
            {"name": t, "attributes": [{"name": n, "type": "string"} for n in EVENT_ATTRIBUTES]}
            for t in event_types
        ],
    }
    yield orjson.dumps(head)[:-1] + b',\n"objects": [\n'
    yield from _docs(cursor, OBJECT_DOCS_SQL)
    yield b'],\n"events": [\n'
    yield from _docs(cursor, EVENT_DOCS_SQL)
    yield b"]}\n"


XES_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1.0" xes.features="nested-attributes" xmlns="http://www.xes-standard.org/">
<extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
<extension name="Time" prefix="time" uri="http://www.xes-standard.org/time.xesext"/>
<extension name="Lifecycle" prefix="lifecycle" uri="http://www.xes-standard.org/lifecycle.xesext"/>
<global scope="trace"><string key="concept:name" value="UNKNOWN"/></global>
<global scope="event"><string key="concept:name" value="UNKNOWN"/>\
<date key="time:timestamp" value="1970-01-01T00:00:00.000Z"/></global>
<classifier name="Activity" keys="concept:name"/>
<string key="concept:name" value={name}/>
"""


# A trace per record, made by DuckDB: its id (and first funnel), then its visits in order.
XES_TRACES_SQL = """
SELECT '<trace><string key="concept:name" value="' || {id} || '"/>'
  || coalesce('<string key="funnel" value="' || {funnel} || '"/>', '') || chr(10)
  || string_agg('<event><string key="concept:name" value="' || {stage} || '"/>'
    || '<date key="time:timestamp" value="'
    || strftime(entered_at, '%Y-%m-%dT%H:%M:%S.%g') || 'Z"/>'
    || '<string key="lifecycle:transition" value="complete"/>'
    || '<int key="visit_no" value="' || visit_no || '"/></event>', chr(10) ORDER BY visit_no)
  || chr(10) || '</trace>' || chr(10) AS xml
FROM (SELECT *, arg_min(funnel, visit_no) OVER (PARTITION BY id) AS first_funnel
      FROM ({visits}))
GROUP BY id, first_funnel ORDER BY id
"""


def xes(cursor: duckdb.DuckDBPyConnection, kind: Kind, funnel: str | None = None) -> Iterator[str]:
    """The XES log of one record kind (of one funnel, if given), a trace per record."""
    visits = VISITS[kind]
    params: list[Any] = []
    if funnel is not None:
        visits = f"SELECT * FROM ({visits}) WHERE funnel = ?"
        params.append(funnel)
    sql = XES_TRACES_SQL.format(
        id=_escaped("id"),
        funnel=_escaped("first_funnel"),
        stage=_escaped("stage"),
        visits=visits,
    )
    reader: pa.RecordBatchReader = cursor.sql(sql, params=params).to_arrow_reader(BATCH_ROWS)
    yield XES_HEAD.format(name=quoteattr(f"LeadLedger {kind}s"))
    for batch in reader:
        yield "".join(batch.column(0).to_pylist())
    yield "</log>\n"
