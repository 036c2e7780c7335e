"""The process map: the directly-follows graph of a funnel's stages, its variants, rework
and waits.

(a) A small history driven through the command handlers at known fake instants; every
    figure of ``GET /reports/process-map`` is checked against the hours worked out by hand
    in the comments, with the period, department and viewer's scope, and in Excel.
(b) Properties over random visits: the edges out of a stage and its end count are the
    visits that left it, the edges into it and its start count are its visits, and the
    variants' shares sum to 1.
(c) Bad filters answer 422 naming the field.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from aggregates import deal
from commands.context import CommandContext, CommandResult
from commands.deals import convert_lead, deal_id_for_lead, handle_deal_command
from leadledger.wiring import Platform
from projections.database import ReadModelDatabase
from projections.directory import DirectoryProjection
from projections.leads import LeadProjection
from projections.process import ProcessVisitProjection
from projections.process_months import ProcessMonthProjection
from queries.process_map import ProcessMapFilters, StageInfo, process_map
from tests.conftest import ACTOR, FakeClock, PlatformFactory, bearer, serving
from tests.factories import FUNNELS, LeadDriver
from tests.test_workspace_browser import CHROMIUM, browser, shot  # noqa: F401 (fixture)

H = 3600.0
ADMIN = bearer("adam.admin", "admin")
STAGES = ("new", "assessment", "proposal_preparation", "proposal_sent")


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    """The process managers stay off: nothing moves but what the tests send."""
    return make_platform(process_managers=False, signin_delay_seconds=0)


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@dataclass
class History:
    t: datetime
    ids: dict[str, UUID]
    position: int


@pytest.fixture
def history(platform: Platform, client: TestClient, clock: FakeClock) -> History:
    """Out-of-court leads; T is the clock's start, hours from T in brackets, now T + 200.

    - E (mia), created 40 days before T: new, never moved;
    - A (mia): new 0 → 10, assessment 10 → 30, proposal_preparation 30 → 40, assessment
      again 40 → 100 (a move back), proposal_preparation 100 → 110, proposal_sent from 110;
    - B (mia): new 0 → 20, assessment 20 → 50, proposal_preparation from 50;
    - C (oleg): new 0 → 5, proposal_preparation 5 → 60, closed lost at 60;
    - D (oleg): new from 0;
    - L2 (mia), assessed, qualified and converted at 0 into deal X (turnkey): new 0 → 50,
      proposal 50 → 180, lost at 180.

    mia is in sales, oleg in retail.
    """
    position = 0
    for username, department in (
        ("mia.manager", "sales"),
        ("oleg.other", "retail"),
        ("hana.head", "sales"),
    ):
        body = {"username": username, "name": username, "role": "manager", "department": department}
        if username == "hana.head":
            body["role"] = "head"
        response = client.post("/users", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        position = response.json()["position"]
    t = clock.now
    leads = LeadDriver(platform.store, clock=clock, funnels=platform.funnels)
    results: list[CommandResult] = []
    ids: dict[str, UUID] = {}

    def at(hours: float) -> None:
        clock.now = t + timedelta(hours=hours)

    at(-40 * 24)
    ids["E"] = leads.create(manager="mia.manager").stream_id
    at(0)
    for name, manager in (("A", "mia.manager"), ("B", "mia.manager")):
        ids[name] = leads.create(manager=manager).stream_id
    for name in ("C", "D"):
        ids[name] = leads.create(manager="oleg.other").stream_id
    ids["L2"] = leads.create(manager="mia.manager", title="Survey").stream_id
    leads.assess(ids["L2"])
    leads.qualify(ids["L2"], True)

    def ctx() -> CommandContext:
        return CommandContext.new(actor="anna.sales", clock=clock)

    results.append(
        convert_lead(platform.store, platform.funnels, platform.rules, ids["L2"], "turnkey", ctx())
    )
    ids["X"] = deal_id_for_lead(ids["L2"])
    for hours, name, stage in (
        (5, "C", "proposal_preparation"),
        (10, "A", "assessment"),
        (20, "B", "assessment"),
        (30, "A", "proposal_preparation"),
        (40, "A", "assessment"),
        (50, "B", "proposal_preparation"),
        (100, "A", "proposal_preparation"),
        (110, "A", "proposal_sent"),
    ):
        at(hours)
        results.append(leads.move(ids[name], stage))
    at(50)
    move = deal.MoveDealToStage("proposal")
    results.append(handle_deal_command(platform.store, platform.rules, ids["X"], move, ctx()))
    at(60)
    results.append(leads.close(ids["C"], "lost", "went elsewhere"))
    at(180)
    close = deal.CloseDeal("lost", "went to a competitor")
    results.append(handle_deal_command(platform.store, platform.rules, ids["X"], close, ctx()))
    at(200)
    return History(t, ids, max(position, *(r.position for r in results)))


def _map(
    client: TestClient,
    history: History,
    headers: dict[str, str] | None = None,
    /,
    **query: Any,
) -> dict[str, Any]:
    params = {"min_position": history.position, "kind": "lead", "funnel": "out_of_court", **query}
    return _ok(client.get("/reports/process-map", params=params, headers=headers or ACTOR))


def _by(rows: list[dict[str, Any]], *keys: str) -> dict[Any, dict[str, Any]]:
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


def test_the_map_of_a_funnel_worked_out_by_hand(client: TestClient, history: History) -> None:
    body = _map(client, history, **{"from": history.t.date().isoformat()})
    # E was created before the period; L2 is the fifth lead of the period (new, converted)
    assert body["records"] == 5
    nodes = _by(body["nodes"], "stage")
    assert [n["stage"] for n in body["nodes"]] == list(STAGES)
    # new: A 10, B 20, C 5, D 200 (open), L2 200 (open): sorted 5, 10, 20, 200, 200;
    # median 20; p90 at 3.6 → 200
    new = nodes["new"]
    assert (new["visits"], new["records"], new["left"], new["waiting_now"]) == (5, 5, 3, 2)
    assert (new["starts"], new["ends"]) == (5, 0)
    assert (new["median_wait_seconds"], new["p90_wait_seconds"]) == (20 * H, 200 * H)
    # assessment: A 20, A 60, B 30: median 30; p90 at 1.8 → 30 + 0.8 x 30 = 54
    assessment = nodes["assessment"]
    assert (assessment["visits"], assessment["records"], assessment["left"]) == (3, 2, 3)
    assert assessment["median_wait_seconds"] == 30 * H
    assert assessment["p90_wait_seconds"] == pytest.approx(54 * H)
    # proposal_preparation: A 10, A 10, B 150 (open), C 55 (closed): sorted 10, 10, 55,
    # 150: median 32.5; p90 at 2.7 → 55 + 0.7 x 95 = 121.5; C's path ends here
    prep = nodes["proposal_preparation"]
    assert (prep["visits"], prep["records"], prep["left"], prep["waiting_now"]) == (4, 3, 3, 1)
    assert prep["ends"] == 1
    assert prep["median_wait_seconds"] == 32.5 * H
    assert prep["p90_wait_seconds"] == pytest.approx(121.5 * H)
    sent = nodes["proposal_sent"]
    assert (sent["visits"], sent["left"], sent["waiting_now"]) == (1, 0, 1)
    assert sent["median_wait_seconds"] == 90 * H

    edges = _by(body["edges"], "from_stage", "to_stage")
    figures = {
        k: (e["count"], e["records"], e["median_seconds"], e["rework"]) for k, e in edges.items()
    }
    assert figures == {
        ("new", "assessment"): (2, 2, 15 * H, False),  # A 10, B 20
        ("new", "proposal_preparation"): (1, 1, 5 * H, False),  # C
        ("assessment", "proposal_preparation"): (3, 2, 30 * H, False),  # A 20, A 60, B 30
        ("proposal_preparation", "assessment"): (1, 1, 10 * H, True),  # A, back
        ("proposal_preparation", "proposal_sent"): (1, 1, 10 * H, False),  # A
    }
    assert edges[("new", "assessment")]["p90_seconds"] == pytest.approx(19 * H)
    assert edges[("assessment", "proposal_preparation")]["p90_seconds"] == pytest.approx(54 * H)

    # five paths, one record each; the duration runs from the first stage to the last
    variants = [(v["path"], v["count"], v["share"], v["median_seconds"]) for v in body["variants"]]
    assert variants == [
        ("new", 2, 0.4, 0.0),  # D and L2
        ("new → assessment → proposal_preparation", 1, 0.2, 50 * H),
        (
            "new → assessment → proposal_preparation → assessment → proposal_preparation"
            " → proposal_sent",
            1,
            0.2,
            110 * H,
        ),
        ("new → proposal_preparation", 1, 0.2, 5 * H),
    ]
    assert body["variant_count"] == 4
    assert (body["rework_moves"], body["rework_records"], body["rework_share"]) == (1, 1, 0.2)
    assert body["rework"] == [
        {"from_stage": "proposal_preparation", "to_stage": "assessment", "count": 1, "records": 1}
    ]
    # where records wait: proposal_sent (90 h), proposal_preparation (32.5 h), assessment
    # (30 h), new (20 h)
    assert [w["stage"] for w in body["waits"]] == [
        "proposal_sent",
        "proposal_preparation",
        "assessment",
        "new",
    ]


def test_the_period_the_department_and_the_scope(client: TestClient, history: History) -> None:
    assert _map(client, history)["records"] == 6  # E too
    before = _map(client, history, to=(history.t - timedelta(days=1)).isoformat())
    assert before["records"] == 1
    assert [n["stage"] for n in before["nodes"]] == ["new"]
    # retail: C and D
    retail = _map(client, history, department="retail")
    assert retail["records"] == 2
    assert _by(retail["edges"], "from_stage", "to_stage").keys() == {
        ("new", "proposal_preparation")
    }
    sales = _map(client, history, department="sales", **{"from": history.t.isoformat()})
    assert sales["records"] == 3  # A, B, L2
    # a manager sees their own; a head their department's; the same figures
    mine = _map(
        client, history, bearer("mia.manager", "manager"), **{"from": history.t.isoformat()}
    )
    head = _map(
        client, history, bearer("hana.head", "head", "sales"), **{"from": history.t.isoformat()}
    )
    for body in (mine, head):
        assert body["records"] == 3
        assert body["nodes"] == sales["nodes"]
        assert body["edges"] == sales["edges"]
    oleg = _map(client, history, bearer("oleg.other", "manager"))
    assert oleg["records"] == 2


def test_the_map_of_a_deal_funnel(client: TestClient, history: History) -> None:
    body = _map(client, history, kind="deal", funnel="turnkey")
    assert body["records"] == 1
    nodes = _by(body["nodes"], "stage")
    assert (nodes["new"]["visits"], nodes["new"]["median_wait_seconds"]) == (1, 50 * H)
    # lost at 180: the path ends in proposal after 130 h
    assert (nodes["proposal"]["ends"], nodes["proposal"]["median_wait_seconds"]) == (1, 130 * H)
    (edge,) = body["edges"]
    assert (edge["from_stage"], edge["to_stage"], edge["count"], edge["median_seconds"]) == (
        "new",
        "proposal",
        1,
        50 * H,
    )
    assert body["variants"][0]["path"] == "new → proposal"


def test_the_workbook_holds_the_same_numbers(client: TestClient, history: History) -> None:
    params = {
        "min_position": history.position,
        "kind": "lead",
        "funnel": "out_of_court",
        "format": "xlsx",
    }
    response = client.get("/reports/process-map", params=params)
    assert response.status_code == 200, response.text
    body = _map(client, history)
    workbook = load_workbook(io.BytesIO(response.content))
    first = workbook.worksheets[0]
    values = [[c.value for c in row] for row in first.iter_rows()]
    header = next(i for i, row in enumerate(values) if row[:2] == ["stage", "name"])
    rows = values[header + 1 : header + 1 + len(body["nodes"])]
    assert [r[0] for r in rows] == [n["stage"] for n in body["nodes"]]
    visits_col = values[header].index("visits")
    assert [r[visits_col] for r in rows] == [n["visits"] for n in body["nodes"]]
    sheets = {ws.title: ws for ws in workbook.worksheets}
    edges = next(ws for title, ws in sheets.items() if title.startswith("edges"))
    edge_values = [[c.value for c in row] for row in edges.iter_rows()]
    start = next(
        i
        for i, row in enumerate(edge_values)
        if row[:2] == ["from stage", "to stage"] or row[:2] == ["from_stage", "to_stage"]
    )
    counted = edge_values[start + 1 : start + 1 + len(body["edges"])]
    assert [(r[0], r[1], r[2]) for r in counted] == [
        (e["from_stage"], e["to_stage"], e["count"]) for e in body["edges"]
    ]


def test_bad_filters_are_refused_naming_them(client: TestClient, history: History) -> None:
    for query, field in (
        ({"funnel": "nope"}, "funnel"),
        ({"kind": "project", "funnel": "out_of_court"}, "funnel"),
        ({"kind": "handshake"}, "kind"),
        ({"department": "nowhere"}, "department"),
        ({"from": "2026-13-01"}, "from"),
        ({"variants": 0}, "variants"),
    ):
        params = {"kind": "lead", "funnel": "out_of_court", **query}
        response = client.get(
            "/reports/process-map", params={k: v for k, v in params.items() if v is not None}
        )
        assert response.status_code == 422, (query, response.text)
        assert field in response.text, (query, response.text)


PASSWORD = "a-good-password"


def _top_who_signs_in(client: TestClient, platform: Platform) -> None:
    body = {"username": "tess.top", "name": "Tess", "role": "top"}
    response = client.post("/users", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    assert platform.projector.wait_for(response.json()["position"], 10)
    platform.credentials.set_password("tess.top", PASSWORD, set_by="test")


def test_the_workspace_page_draws_the_graph_of_the_same_map(
    client: TestClient, history: History, platform: Platform
) -> None:
    _top_who_signs_in(client, platform)
    client.cookies.clear()
    page = client.get("/workspace/sign-in").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    signed = client.post(
        "/workspace/sign-in",
        data={"username": "tess.top", "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    query = {"kind": "lead", "funnel": "out_of_court", "from": history.t.date().isoformat()}
    shown = client.get(
        "/workspace/reports/process-map", params=query, headers={"Authorization": ""}
    )
    assert shown.status_code == 200, shown.text
    found = re.search(r'id="report-chart-data">(.*?)</script>', shown.text, re.S)
    assert found
    graph, *others = json.loads(found.group(1))
    assert graph["kind"] == "graph"
    expected = _map(client, history, **{"from": history.t.date().isoformat()})
    names = {n["stage"]: n["name"] for n in expected["nodes"]}
    assert [n["name"] for n in graph["nodes"]] == [n["name"] for n in expected["nodes"]]
    assert [n["x"] for n in graph["nodes"]] == [0, 180, 360, 540]  # left to right
    assert {(x["source"], x["target"], x["value"], x["rework"]) for x in graph["links"]} == {
        (names[e["from_stage"]], names[e["to_stage"]], e["count"], e["rework"])
        for e in expected["edges"]
    }
    # new → assessment: 2 records, median 15 h
    assert any(x["caption"] == "2 · 15.0 h" for x in graph["links"])
    assert [c["kind"] for c in others] == ["bar"]  # median wait per stage
    excel_link = client.get(
        "/workspace/reports/process-map/excel", params=query, headers={"Authorization": ""}
    )
    assert excel_link.status_code == 200


@pytest.mark.browser
def test_a_browser_draws_the_graph(
    client: TestClient,
    history: History,
    platform: Platform,
    browser: Any,  # noqa: F811
) -> None:
    if not CHROMIUM.exists():
        pytest.skip("no system Chromium at /usr/bin/chromium")
    _top_who_signs_in(client, platform)
    with serving(platform) as port:
        context = browser.new_context(base_url=f"http://127.0.0.1:{port}", locale="en-US")
        try:
            page = context.new_page()
            page.goto("/")
            page.fill("input[name=username]", "tess.top")
            page.fill("input[name=password]", PASSWORD)
            page.click("#sign-in button[type=submit]")
            page.wait_for_url(f"http://127.0.0.1:{port}/")
            since = history.t.date().isoformat()
            page.goto(f"/workspace/reports/process-map?kind=lead&funnel=out_of_court&from={since}")
            page.wait_for_selector("#report-charts[data-ready=true]")
            graph = page.locator(".process-graph svg")
            assert graph.count() == 1
            drawn = page.locator(".process-graph svg text").all_text_contents()
            for label in ("New", "Assessment", "2 · 15.0 h", "1 · 10.0 h"):
                assert any(label in t for t in drawn), (label, drawn)
            shot(page, "report-process-map")
        finally:
            context.close()


# --- (b) properties over random visits ----------------------------------------------------

T0 = datetime(2026, 3, 2, tzinfo=UTC)
OUT_OF_COURT = [StageInfo(s.id, s.name, s.step) for s in FUNNELS["out_of_court"].stages]


@st.composite
def paths(draw: st.DrawFn) -> list[tuple[list[tuple[str, int]], bool]]:
    """Per lead: its visits (stage, hours in it) and whether its last visit was left."""
    stage = st.sampled_from([s.id for s in OUT_OF_COURT])
    lead = st.tuples(
        st.lists(st.tuples(stage, st.integers(0, 500)), min_size=1, max_size=8),
        st.booleans(),
    )
    drawn: list[tuple[list[tuple[str, int]], bool]] = draw(st.lists(lead, max_size=25))
    return drawn


def _fill(cursor: Any, leads: list[tuple[list[tuple[str, int]], bool]]) -> None:
    cursor.execute("INSERT INTO users (username, department, active) VALUES ('m', 'sales', TRUE)")
    for i, (visits, left) in enumerate(leads):
        lead_id = f"lead-{i:03d}"
        start = T0 + timedelta(days=i % 7)
        cursor.execute(
            "INSERT INTO leads (lead_id, funnel, manager, created_at) VALUES (?, ?, 'm', ?)",
            [lead_id, "out_of_court", start],
        )
        at = start
        for n, (stage, hours) in enumerate(visits, 1):
            end = at + timedelta(hours=hours)
            last = n == len(visits)
            cursor.execute(
                "INSERT INTO lead_stage_visits (lead_id, visit_no, funnel, stage, entered_at,"
                " left_at, paused_seconds) VALUES (?, ?, 'out_of_court', ?, ?, ?, 0)",
                [lead_id, n, stage, at, None if last and not left else end],
            )
            at = end


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(leads=paths(), days=st.integers(0, 7))
def test_edges_balance_the_visits_and_variants_share_the_records(
    leads: list[tuple[list[tuple[str, int]], bool]], days: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = ReadModelDatabase(f"{tmp}/read_models.duckdb")
        try:
            cursor = db.cursor()
            LeadProjection(FUNNELS).create_tables(cursor)
            DirectoryProjection().create_tables(cursor)
            _fill(cursor, leads)
            # the process map's read model, derived from the visits as the projector does
            process = ProcessVisitProjection()
            process.create_tables(cursor)
            process.derive_all(cursor, ("lead",))
            months = ProcessMonthProjection()
            months.create_tables(cursor)
            months.derive_all(cursor, ("lead",))
            as_of = T0 + timedelta(days=400)  # after every visit
            filters = ProcessMapFilters(
                "lead", "out_of_court", as_of, start=T0 + timedelta(days=days), variants=500
            )
            body = process_map(cursor, filters, OUT_OF_COURT)
        finally:
            db.close()
    picked = [v for i, v in enumerate(leads) if i % 7 >= days]
    assert body["records"] == len(picked)
    visits = sum(len(v) for v, _ in picked)
    assert sum(n["visits"] for n in body["nodes"]) == visits
    for node in body["nodes"]:
        out = sum(e["count"] for e in body["edges"] if e["from_stage"] == node["stage"])
        into = sum(e["count"] for e in body["edges"] if e["to_stage"] == node["stage"])
        assert out + node["ends"] == node["left"]
        assert into + node["starts"] == node["visits"]
        assert node["left"] + node["waiting_now"] == node["visits"]
    assert sum(n["starts"] for n in body["nodes"]) == len(picked)
    assert sum(v["count"] for v in body["variants"]) == len(picked)
    if picked:
        assert sum(v["share"] for v in body["variants"]) == pytest.approx(1.0)
    assert body["rework_moves"] == sum(e["count"] for e in body["edges"] if e["rework"])
    assert body["rework_moves"] == sum(r["count"] for r in body["rework"])
