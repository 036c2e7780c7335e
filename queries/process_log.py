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
from datetime import UTC, datetime
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


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _batches(cursor: duckdb.DuckDBPyConnection, sql: str) -> Iterator[list[dict[str, Any]]]:
    reader: pa.RecordBatchReader = cursor.sql(sql).to_arrow_reader(BATCH_ROWS)
    for batch in reader:
        yield batch.to_pylist()


def _object(row: dict[str, Any]) -> dict[str, Any]:
    kind = row["type"]
    links = []
    if row["lead_id"] is not None:
        links.append({"objectId": row["lead_id"], "qualifier": "from lead"})
    if row["deal_id"] is not None:
        links.append({"objectId": row["deal_id"], "qualifier": "for deal"})
    return {
        "id": row["id"],
        "type": kind,
        "attributes": [
            {"name": name, "time": EPOCH, "value": row[name]}
            for name in OBJECT_ATTRIBUTES[kind]
            if row[name] is not None
        ],
        "relationships": links,
    }


def _event(row: dict[str, Any]) -> dict[str, Any]:
    touched = [{"objectId": row["main_id"], "qualifier": row["main_type"]}]
    if row["deal_id"] is not None:
        touched.append({"objectId": row["deal_id"], "qualifier": "deal"})
    if row["lead_id"] is not None:
        touched.append({"objectId": row["lead_id"], "qualifier": "lead"})
    return {
        "id": row["id"],
        "type": row["type"],
        "time": _instant(row["time"]),
        "attributes": [
            {"name": name, "value": row[name]} for name in EVENT_ATTRIBUTES if row[name] is not None
        ],
        "relationships": touched,
    }


def _json_list(items: Iterator[list[dict[str, Any]]]) -> Iterator[bytes]:
    first = True
    for batch in items:
        if not batch:
            continue
        joined = b",\n".join(orjson.dumps(item) for item in batch)
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
    yield from _json_list([_object(r) for r in rows] for rows in _batches(cursor, OBJECTS_SQL))
    yield b'],\n"events": [\n'
    yield from _json_list([_event(r) for r in rows] for rows in _batches(cursor, EVENTS_SQL))
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


def _xes_instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def xes(cursor: duckdb.DuckDBPyConnection, kind: Kind, funnel: str | None = None) -> Iterator[str]:
    """The XES log of one record kind (of one funnel, if given), a trace per record."""
    sql = VISITS[kind]
    params: list[Any] = []
    if funnel is not None:
        sql = f"SELECT * FROM ({sql}) WHERE funnel = ?"
        params.append(funnel)
    reader: pa.RecordBatchReader = cursor.sql(
        f"{sql} ORDER BY id, visit_no", params=params
    ).to_arrow_reader(BATCH_ROWS)
    yield XES_HEAD.format(name=quoteattr(f"LeadLedger {kind}s"))
    current: str | None = None
    for batch in reader:
        parts: list[str] = []
        for row in batch.to_pylist():
            if row["id"] != current:
                if current is not None:
                    parts.append("</trace>\n")
                current = row["id"]
                parts.append(f'<trace><string key="concept:name" value={quoteattr(current)}/>')
                if row["funnel"] is not None:
                    parts.append(f'<string key="funnel" value={quoteattr(row["funnel"])}/>')
                parts.append("\n")
            parts.append(
                f'<event><string key="concept:name" value={quoteattr(row["stage"])}/>'
                f'<date key="time:timestamp" value="{_xes_instant(row["entered_at"])}"/>'
                '<string key="lifecycle:transition" value="complete"/>'
                f'<int key="visit_no" value="{row["visit_no"]}"/></event>\n'
            )
        yield "".join(parts)
    if current is not None:
        yield "</trace>\n"
    yield "</log>\n"
