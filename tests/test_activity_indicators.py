"""Indicators over the managers' activities (seeds 003, 004): the weekly table, the
activity coefficient, calls per day and week, clients without interaction and clients
with nothing planned.

(a) Properties (hypothesis) over random activity histories folded by the activities
    projection, in random page sizes: the weekly table's cells add up to the group
    totals and the total (and the week's totals to the days'); planned / overdue / done /
    cancelled partition the activities at any instant, and each activity's state in the
    read model is the aggregate's; a fold in any page sizes equals a fold in one page.
(b) Through HTTP: the weekly table with plan vs fact and drill-down links, the
    coefficient and its parts, calls per day and week, the client lists, the viewer's
    scope and the directory filters, and every report as an Excel workbook.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import duckdb
import openpyxl
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates import activities
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import DomainError
from aggregates.rules import DEFAULT_ACTIVITY_RULES
from leadledger.wiring import Platform, event_codec
from projections.activities import ActivityPlanProjection, ActivityProjection
from queries import activities as queries
from queries.activities import ActivityFilters
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory, bearer, iso

RULES = DEFAULT_ACTIVITY_RULES
CODEC = event_codec()
MONDAY = datetime(2026, 1, 5, tzinfo=UTC)
TYPES = [t.code for t in RULES.types]
OWNERS = ["boris", "vera"]


# --- (a) properties -------------------------------------------------------------------------

Step = tuple[str, int, int, int]
"""(action, target, hours, minutes): plan/register a new activity, or act on one."""

steps = st.lists(
    st.tuples(
        st.sampled_from(["plan", "plan", "register", "done", "cancel", "reschedule"]),
        st.integers(0, 50),
        st.integers(0, 24 * 6),
        st.integers(1, 120),
    ),
    min_size=1,
    max_size=40,
)


def history(script: list[Step]) -> tuple[list[tuple[UUID, int, DomainEvent]], datetime]:
    """Decide the script's commands one minute apart from the week's Monday 08:00: the
    recorded events (stream, version, event) and the instant after the last."""
    at = MONDAY + timedelta(hours=8)
    states: dict[UUID, activities.Activity] = {}
    recorded: list[tuple[UUID, int, DomainEvent]] = []
    for n, (action, target, hours, minutes) in enumerate(script):
        at += timedelta(minutes=1)
        meta = CommandMeta(actor=OWNERS[n % 2], at=at, command_id=uuid4())
        try:
            if action in ("plan", "register"):
                happened = action == "register"
                command = activities.PlanActivity(
                    activity_id=uuid4(),
                    activity_type=TYPES[target % len(TYPES)],
                    owner=OWNERS[target % 2],
                    planned_at=(at - timedelta(minutes=minutes))
                    if happened
                    else MONDAY + timedelta(hours=hours),
                    duration_minutes=minutes,
                    company_id=f"client-{target % 5}",
                    done=happened,
                )
                event: DomainEvent = activities.plan(command, RULES, meta)
                stream = command.activity_id
            else:
                if not states:
                    continue
                stream = list(states)[target % len(states)]
                acting: activities.ActivityCommand = (
                    activities.CompleteActivity("ok")
                    if action == "done"
                    else activities.CancelActivity(None)
                    if action == "cancel"
                    else activities.RescheduleActivity(MONDAY + timedelta(hours=hours), minutes)
                )
                event = activities.decide(states[stream], acting, meta)
        except DomainError:
            continue
        states[stream] = activities.evolve(states.get(stream), event)
        recorded.append((stream, states[stream].version, event))
    return recorded, at


def fold(
    recorded: list[tuple[UUID, int, DomainEvent]], cuts: list[int]
) -> duckdb.DuckDBPyConnection:
    """The events folded by the projections in pages cut at ``cuts``."""
    cursor = duckdb.connect()
    projections = (ActivityProjection(), ActivityPlanProjection())
    for projection in projections:
        projection.create_tables(cursor)
    bounds = sorted({0, len(recorded), *(c % (len(recorded) + 1) for c in cuts)})
    for start, end in itertools.pairwise(bounds):
        part = recorded[start:end]
        page = pa.table(
            {
                "position": pa.array(range(start + 1, end + 1), pa.int64()),
                "stream_id": pa.array([str(s) for s, _, _ in part], pa.string()),
                "version": pa.array([v for _, v, _ in part], pa.int64()),
                "topic": pa.array([e.type for _, _, e in part], pa.string()),
                "state": pa.array([CODEC.encode(e).decode() for _, _, e in part], pa.string()),
            }
        )
        cursor.register("_page", page)
        for projection in projections:
            projection.apply(cursor, page)
        cursor.unregister("_page")
    return cursor


def _add(cells: list[dict[str, Any]]) -> tuple[int, int, int]:
    return (
        sum(c["all"] for c in cells),
        sum(c["done"] for c in cells),
        sum(c["overdue"] for c in cells),
    )


def _of(cell: dict[str, Any]) -> tuple[int, int, int]:
    return (cell["all"], cell["done"], cell["overdue"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=steps, cuts=st.lists(st.integers(0, 60), max_size=4), later=st.integers(0, 200))
def test_cells_add_up_and_states_partition_the_activities(
    script: list[Step], cuts: list[int], later: int
) -> None:
    recorded, at = history(script)
    cursor = fold(recorded, cuts)
    now = at + timedelta(hours=later)
    table = queries.weekly_table(cursor, ActivityFilters(), MONDAY.date(), now, RULES)
    for row in [*table["days"], table["totals"]]:
        assert _of(row["total"]) == _add(row["types"])
        assert _of(row["total"]) == _add(row["groups"])
        for group in row["groups"]:
            assert _of(group) == _add([c for c in row["types"] if c["group"] == group["group"]])
    assert _of(table["totals"]["total"]) == _add([d["total"] for d in table["days"]])
    # the states partition the activities, each as the aggregate says at that instant
    states: dict[str, activities.Activity] = {}
    for stream, _, event in recorded:
        states[str(stream)] = activities.evolve(states.get(str(stream)), event)
    counts = queries.state_counts(cursor, ActivityFilters(), now)
    assert sum(counts.values()) == len(states)
    expected = dict.fromkeys(activities.STATES, 0)
    for state in states.values():
        expected[state.state_at(now)] += 1
    assert counts == expected
    for state_name in activities.STATES:
        items, total = queries.list_activities(
            cursor, ActivityFilters(state=state_name), now, 500, 0
        )
        assert total == counts[state_name]
        assert {i["state"] for i in items} <= {state_name}
    # each row is the aggregate's state
    stored = cursor.execute(
        "SELECT activity_id, status, registered, planned_at, duration_minutes, reschedules,"
        " result, version FROM activities"
    ).fetchall()
    assert len(stored) == len(states)
    for (
        activity_id,
        status,
        registered,
        planned_at,
        duration,
        reschedules,
        result,
        version,
    ) in stored:
        state = states[activity_id]
        assert (status, registered, planned_at, duration, reschedules, result, version) == (
            state.status,
            state.registered,
            state.planned_at,
            state.duration_minutes,
            state.reschedules,
            state.result,
            state.version,
        )
    # folding in any page sizes gives the rows one page gives
    rows = "SELECT * FROM activities ORDER BY activity_id"
    assert cursor.execute(rows).fetchall() == fold(recorded, []).execute(rows).fetchall()


# --- (b) through HTTP -----------------------------------------------------------------------

ADMIN = bearer("root.admin", "admin")
TOP = ACTOR
BORIS = bearer("boris", "manager", "sales")
VERA = bearer("vera", "manager", "sales")
OLEG = bearer("oleg", "manager", "retail")
HEAD = bearer("helen", "head", "sales")
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # Monday


@pytest.fixture
def platform(make_platform: PlatformFactory, clock: FakeClock) -> Platform:
    clock.now = START
    return make_platform(process_managers=False)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        for username, role, department, city in (
            ("boris", "manager", "sales", "Omsk"),
            ("vera", "manager", "sales", "Tomsk"),
            ("oleg", "manager", "retail", "Omsk"),
            ("helen", "head", "sales", "Omsk"),
        ):
            body = {"username": username, "name": username.title(), "role": role}
            body |= {"department": department, "region": "Siberia", "city": city}
            assert client.post("/users", json=body, headers=ADMIN).status_code == 201
        yield client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def read(
    api: TestClient, platform: Platform, path: str, headers: dict[str, str] = TOP, **params: Any
) -> Any:
    params["min_position"] = platform.store.last_position()
    return ok(api.get(path, params=params, headers=headers))


def activity(
    api: TestClient, headers: dict[str, str], type_: str, at: datetime, **more: Any
) -> str:
    body = {"type": type_, "company_id": "northwind", "planned_at": iso(at), **more}
    answer = ok(api.post("/activities", json=body, headers=headers), 201)
    return str(answer["activity_id"])


def week_of_boris(api: TestClient, clock: FakeClock) -> None:
    """Monday: 3 cold calls (2 done, 1 left overdue), a meeting done; Tuesday: a demo
    planned, a cancelled call; an incoming call registered on Monday; vera: one call."""
    calls = [activity(api, BORIS, "call_out_cold", START + timedelta(hours=h)) for h in (1, 2, 3)]
    meeting = activity(api, BORIS, "meeting_cold", START + timedelta(hours=4))
    activity(api, BORIS, "demo", START + timedelta(days=1, hours=2))
    cancelled = activity(api, BORIS, "call_out_deal", START + timedelta(days=1, hours=1))
    activity(api, VERA, "call_out_cold", START + timedelta(hours=1), company_id="acme")
    activity(api, OLEG, "call_out_cold", START + timedelta(hours=1), company_id="globex")
    clock.advance(hours=6)  # Monday 14:00
    activity(api, BORIS, "call_in_known", START + timedelta(hours=5), company_id="acme")
    for done in (*calls[:2], meeting):
        ok(api.post(f"/activities/{done}/done", json={"result": "ok"}, headers=BORIS))
    ok(api.post(f"/activities/{cancelled}/cancel", json={}, headers=BORIS))


def test_the_weekly_table_counts_all_done_and_overdue_per_day_and_type(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    week_of_boris(api, clock)
    table = read(api, platform, "/reports/activities/weekly", BORIS, week="2026-01-07")
    assert table["week"] == "2026-01-05"
    assert table["owners"] == ["boris"]
    monday, tuesday = table["days"][0], table["days"][1]
    cell = {c["type"]: c for c in monday["types"]}
    assert (cell["call_out_cold"]["all"], cell["call_out_cold"]["done"]) == (3, 2)
    assert cell["call_out_cold"]["overdue"] == 1
    assert (cell["call_in_known"]["all"], cell["call_in_known"]["done"]) == (1, 1)
    groups = {g["group"]: g for g in monday["groups"]}
    assert (groups["calls"]["all"], groups["calls"]["done"]) == (4, 3)
    assert (groups["meetings"]["all"], groups["meetings"]["done"]) == (1, 1)
    assert (monday["total"]["all"], monday["total"]["done"]) == (5, 4)
    # the cancelled call is not counted; the demo is planned, not overdue yet
    assert (tuesday["total"]["all"], tuesday["total"]["done"], tuesday["total"]["overdue"]) == (
        1,
        0,
        0,
    )
    assert table["totals"]["total"]["all"] == 6
    # the cell links to the activities it counts
    link = cell["call_out_cold"]["link"]
    assert link.startswith("/activities?")
    listed = read(
        api,
        platform,
        link.split("?")[0],
        BORIS,
        **dict(p.split("=") for p in link.split("?")[1].split("&")),
    )
    assert listed["total"] == 3
    # a head sees their department; top with a city filter sees the city's people
    department = read(api, platform, "/reports/activities/weekly", HEAD)
    assert department["owners"] == ["boris", "vera"]
    omsk = read(api, platform, "/reports/activities/weekly", TOP, city="Omsk")
    assert omsk["owners"] == ["boris", "oleg"]
    assert (
        read(api, platform, "/reports/activities/weekly", TOP, region="Siberia")["totals"]["total"][
            "all"
        ]
        == 8
    )
    assert api.get("/reports/activities/weekly", params={"week": "05.01.2026"}).status_code == 422


def test_plan_vs_fact_and_the_coefficient_with_its_parts(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    week_of_boris(api, clock)
    # without a plan: the target is what was due by now (3 cold calls, the meeting, the
    # incoming call; the cancelled one and the demo were not due yet)
    report = read(api, platform, "/reports/activities/coefficient", BORIS)
    parts = {p["type"]: p for p in report["parts"]}
    assert (parts["call_out_cold"]["planned"], parts["call_out_cold"]["done"]) == (3, 2)
    assert (parts["meeting_cold"]["planned"], parts["meeting_cold"]["done"]) == (1, 1)
    assert (parts["call_in_known"]["planned"], parts["call_in_known"]["done"]) == (1, 1)
    # weights: cold call 1, meeting 3, incoming call 0.5 → (2 + 3 + 0.5) / (3 + 3 + 0.5)
    assert report["weighted_planned"] == 6.5
    assert report["weighted_done"] == 5.5
    assert report["coefficient"] == round(5.5 / 6.5, 4)
    assert report["cap"] == 1.2
    # boris plans the week: Monday 2 cold calls and 1 meeting; the plan is the target
    plan = {"days": [{"day": "2026-01-05", "counts": {"call_out_cold": 2, "meeting_cold": 1}}]}
    ok(api.put("/activity-plans/boris/2026-01-05", json=plan, headers=BORIS))
    report = read(api, platform, "/reports/activities/coefficient", BORIS)
    parts = {p["type"]: p for p in report["parts"]}
    assert (parts["call_out_cold"]["planned"], parts["call_out_cold"]["from_plan"]) == (2, True)
    # done (2 + 3 + 0.5) over planned (2 + 3): above 1, capped at 1.2
    assert report["raw"] == round(5.5 / 5, 4)
    assert report["coefficient"] == 1.1
    table = read(api, platform, "/reports/activities/weekly", BORIS)
    assert table["has_plan"] is True
    monday = {c["type"]: c for c in table["days"][0]["types"]}
    assert monday["call_out_cold"]["planned"] == 2
    assert monday["demo"]["planned"] == 0
    # nothing planned at all: no coefficient
    empty = read(api, platform, "/reports/activities/coefficient", OLEG, **{"from": "2026-02-02"})
    assert empty["coefficient"] is None


def test_calls_per_day_and_week_and_the_client_lists(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    week_of_boris(api, clock)
    per_day = read(
        api,
        platform,
        "/reports/activities/calls",
        BORIS,
        **{"from": "2026-01-05", "to": "2026-01-09"},
    )
    assert [
        (r["owner"], r["period"], r["calls"], r["outgoing"], r["incoming"])
        for r in per_day["items"]
    ] == [("boris", "2026-01-05", 3, 2, 1)]
    per_week = read(
        api, platform, "/reports/activities/calls", TOP, by="week", **{"from": "2026-01-05"}
    )
    assert {(r["owner"], r["period"], r["calls"]) for r in per_week["items"]} == {
        ("boris", "2026-01-05", 3)
    }
    # a lead in work for a client nobody talks to
    lead = {
        "funnel": "out_of_court",
        "title": "Appraisal",
        "company_name": "Initech",
        "company_id": "initech",
        "source": "website",
        "manager": "boris",
    }
    ok(api.post("/leads", json=lead, headers=BORIS), 201)
    clock.advance(days=40)
    forgotten = read(api, platform, "/reports/activities/clients-without-interaction", BORIS)
    ids = [r["company_id"] for r in forgotten["items"]]
    assert ids[0] == "initech"  # never talked to: first
    assert forgotten["items"][0]["managers"] == ["boris"]
    assert set(ids) == {"initech", "northwind", "acme"}
    assert forgotten["days"] == 30
    recent = read(api, platform, "/reports/activities/clients-without-interaction", BORIS, days=60)
    assert [r["company_id"] for r in recent["items"]] == ["initech"]
    activity(api, BORIS, "meeting_potential", clock.now + timedelta(days=2), company_id="initech")
    unplanned = read(api, platform, "/reports/activities/clients-without-planned", BORIS)
    assert unplanned["total"] == 0
    clock.advance(days=3)
    unplanned = read(api, platform, "/reports/activities/clients-without-planned", BORIS)
    assert [r["company_id"] for r in unplanned["items"]] == ["initech"]
    assert read(api, platform, "/reports/activities/clients-without-planned", OLEG)["total"] == 0


@pytest.mark.parametrize(
    "path",
    [
        "/reports/activities/weekly",
        "/reports/activities/coefficient",
        "/reports/activities/calls",
        "/reports/activities/clients-without-interaction",
        "/reports/activities/clients-without-planned",
        "/activities",
    ],
)
def test_every_indicator_is_an_excel_workbook(
    api: TestClient, platform: Platform, clock: FakeClock, path: str
) -> None:
    week_of_boris(api, clock)
    params = {"format": "xlsx", "min_position": platform.store.last_position()}
    answer = api.get(path, params=params, headers=HEAD)
    assert answer.status_code == 200, answer.text
    workbook = openpyxl.load_workbook(io.BytesIO(answer.content))
    assert workbook.sheetnames
    first = workbook[workbook.sheetnames[0]]
    assert first.max_row > 1
