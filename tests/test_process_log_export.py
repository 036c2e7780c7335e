"""The process log for process-mining tools: OCEL 2.0 JSON and XES, loaded with pm4py.

Over the hand-worked history of tests/test_process_map.py: pm4py reads both exports and
finds the map's records, directly-follows transitions with their counts, start stages
and variants; the OCEL log holds the four kinds of object and events touching several of
them; neither holds a sensitive field; only analysts, top management and auditors may
take them; the CLI writes the same files.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from leadledger.cli import export_process_log, parser
from leadledger.wiring import Platform
from tests.conftest import ACTOR, bearer
from tests.test_process_map import History, history, platform  # noqa: F401  (fixtures)

pm4py = pytest.importorskip("pm4py")

ANALYST = bearer("ana.analyst", "analyst")
SECRET = "PRIVATE-MARKER-7f3a"


def _map(client: TestClient, history: History, **query: Any) -> dict[str, Any]:  # noqa: F811
    params = {"min_position": history.position, "variants": 100, **query}
    response = client.get("/reports/process-map", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _download(client: TestClient, path: str, tmp_path: Path, name: str, **query: Any) -> Path:
    response = client.get(path, params=query, headers=ANALYST)
    assert response.status_code == 200, response.text
    target = tmp_path / name
    target.write_bytes(response.content)
    return target


def _map_edges(body: dict[str, Any], prefix: str = "") -> dict[tuple[str, str], int]:
    return {(prefix + e["from_stage"], prefix + e["to_stage"]): e["count"] for e in body["edges"]}


def test_xes_loads_in_pm4py_with_the_maps_transitions(
    client: TestClient,
    history: History,  # noqa: F811
    tmp_path: Path,
) -> None:
    body = _map(client, history, kind="lead", funnel="out_of_court")
    path = _download(
        client,
        "/exports/process-log.xes",
        tmp_path,
        "leads.xes",
        kind="lead",
        funnel="out_of_court",
        min_position=history.position,
    )
    log = pm4py.read_xes(str(path))
    assert log["case:concept:name"].nunique() == body["records"] == 6
    assert len(log) == sum(n["visits"] for n in body["nodes"])
    dfg, starts, _ends = pm4py.discover_dfg(log)
    assert dict(dfg) == _map_edges(body)
    assert dict(starts) == {n["stage"]: n["starts"] for n in body["nodes"] if n["starts"]}
    variants = pm4py.get_variants(log)
    found = {" → ".join(v): count for v, count in variants.items()}
    assert found == {v["path"]: v["count"] for v in body["variants"]}

    deals = _map(client, history, kind="deal", funnel="turnkey")
    path = _download(client, "/exports/process-log.xes", tmp_path, "deals.xes", kind="deal")
    deal_log = pm4py.read_xes(str(path))
    dfg, _starts, _ends = pm4py.discover_dfg(deal_log)
    assert dict(dfg) == _map_edges(deals)


def test_ocel_loads_in_pm4py_with_objects_events_and_the_maps_transitions(
    client: TestClient,
    history: History,  # noqa: F811
    tmp_path: Path,
) -> None:
    body = _map(client, history, kind="lead", funnel="out_of_court")
    path = _download(
        client,
        "/exports/process-log.ocel.json",
        tmp_path,
        "log.jsonocel",
        min_position=history.position,
    )
    ocel = pm4py.read_ocel2_json(str(path))
    objects = Counter(ocel.objects["ocel:type"])
    assert objects == {"lead": 6, "deal": 1}
    # the deal's first visit touches the deal and the lead it was created from
    relations = ocel.relations
    first = relations[relations["ocel:activity"] == "deal:new"]
    assert set(first["ocel:oid"]) == {str(history.ids["X"]), str(history.ids["L2"])}
    # flattened on leads, the visits' directly-follows graph is the map's
    flat = pm4py.ocel_flattening(ocel, "lead")
    visits = flat[
        flat["concept:name"].str.startswith("lead:") & (flat["concept:name"] != "lead:closed")
    ]
    dfg, starts, _ends = pm4py.discover_dfg(visits)
    assert dict(dfg) == _map_edges(body, "lead:")
    assert sum(starts.values()) == body["records"]
    closed = flat[flat["concept:name"] == "lead:closed"]
    assert set(closed["case:concept:name"]) >= {str(history.ids["C"])}


def test_no_sensitive_field_leaves_in_an_export(
    client: TestClient,
    history: History,  # noqa: F811
    tmp_path: Path,
) -> None:
    lead_id = history.ids["A"]
    body = {"notes": f"call after 18:00 {SECRET}", "fields": {"phone": f"+49 {SECRET}"}}
    response = client.put(
        f"/leads/{lead_id}/sensitive", json=body, headers=bearer("mia.manager", "manager")
    )
    assert response.status_code in (200, 202), response.text
    position = response.json().get("position", history.position)
    for path in ("/exports/process-log.ocel.json", "/exports/process-log.xes"):
        text = client.get(path, params={"min_position": position}, headers=ANALYST).text
        assert SECRET not in text
        assert "call after" not in text
    document = json.loads(client.get("/exports/process-log.ocel.json", headers=ANALYST).content)
    names = {a["name"] for t in document["objectTypes"] for a in t["attributes"]}
    assert names.isdisjoint({"notes", "fields", "contact", "description", "phone"})


def test_who_may_take_the_process_log(client: TestClient, history: History) -> None:  # noqa: F811
    for role in ("analyst", "top", "auditor"):
        response = client.get("/exports/process-log.xes", headers=bearer(f"x.{role}", role))
        assert response.status_code == 200, (role, response.text)
    for headers in (bearer("x.m", "manager"), bearer("x.h", "head", "sales"), bearer("x.p", "pm")):
        response = client.get("/exports/process-log.ocel.json", headers=headers)
        assert response.status_code == 403, response.text
    bad = client.get("/exports/process-log.xes", params={"kind": "nope"}, headers=ACTOR)
    assert bad.status_code == 422
    assert "kind" in bad.text
    bad = client.get("/exports/process-log.xes", params={"funnel": "nope"}, headers=ACTOR)
    assert bad.status_code == 422
    assert "funnel" in bad.text


def test_the_cli_writes_the_same_logs(
    client: TestClient,
    history: History,  # noqa: F811
    platform: Platform,  # noqa: F811
) -> None:
    assert platform.projector.wait_for(history.position, 10)
    for fmt, path in (
        ("ocel", "/exports/process-log.ocel.json"),
        ("xes", "/exports/process-log.xes"),
    ):
        args = parser().parse_args(["export-process-log", "--format", fmt, "-o", "x"])
        assert (args.format, args.kind, args.output) == (fmt, "lead", "x")
        out = io.BytesIO()
        export_process_log(platform, fmt, out)
        assert out.getvalue() == client.get(path, headers=ANALYST).content
