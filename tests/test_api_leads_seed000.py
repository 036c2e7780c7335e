"""Seed 000's lead rules through HTTP (issue 13 §1): an assessment only where one is
required, a lead delivered directly becomes a project (by the project-creation process,
driven step by step here), and paused leads shown as paused (funnel report, lead list and
detail, the paused-leads report)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient

from commands.projects import project_id_for_lead
from leadledger.wiring import CommandSide, Platform, process_runner, read_model_projections
from process_managers.state import DeadlineChanges
from projections.database import ReadModelDatabase
from projections.leads import LEADS_COLUMNS
from projections.projector import Projector, rebuild
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory, bearer, create

MANAGER_BORIS = bearer("boris", "manager")


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        yield client


def post(api: TestClient, lead_id: str, name: str, body: Any = None) -> httpx.Response:
    response: httpx.Response = api.post(f"/leads/{lead_id}/{name}", json=body)
    return response


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def refused(response: httpx.Response, status: int, **expected: Any) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    for key, value in expected.items():
        assert body.get(key) == value, body


def detail(api: TestClient, lead_id: str, position: int) -> dict[str, Any]:
    return ok(api.get(f"/leads/{lead_id}", params={"min_position": position}))


# --- assessment "if one is required" -------------------------------------------------


def test_the_funnels_say_whether_leads_are_assessed_and_what_they_become(
    api: TestClient,
) -> None:
    listed: list[dict[str, Any]] = api.get("/funnels").json()
    funnels = {f["id"]: f for f in listed}
    assert (funnels["court"]["assessment_required"], funnels["court"]["delivery"]) == (
        True,
        "deal",
    )
    assert (
        funnels["out_of_court"]["assessment_required"],
        funnels["out_of_court"]["delivery"],
    ) == (False, "project")


def test_a_court_lead_needs_its_assessment_before_it_is_quality(api: TestClient) -> None:
    lead_id = create(api, funnel="court")["lead_id"]
    refused(
        post(api, lead_id, "qualification", {"quality": True}),
        409,
        code="rule_violation",
        rule="assessment_required",
    )
    ok(post(api, lead_id, "assessment", {"expert": "eva", "result": "ok", "hours": "1"}))
    position = ok(post(api, lead_id, "qualification", {"quality": True}))["position"]
    assert detail(api, lead_id, position)["quality"] is True


def test_an_out_of_court_lead_is_qualified_without_an_assessment(api: TestClient) -> None:
    created = create(api)
    lead_id = created["lead_id"]
    shown = detail(api, lead_id, created["position"])
    assert (shown["assessment_required"], shown["assessment_required_on_card"]) == (False, None)
    position = ok(post(api, lead_id, "qualification", {"quality": True}))["position"]
    assert detail(api, lead_id, position)["quality"] is True


def test_a_non_quality_qualification_never_needs_an_assessment(api: TestClient) -> None:
    lead_id = create(api, funnel="court", assessment_required=True)["lead_id"]
    ok(post(api, lead_id, "qualification", {"quality": False, "reason": "spam"}))


def test_the_card_asks_for_an_assessment_and_the_detail_shows_it(api: TestClient) -> None:
    lead_id = create(api)["lead_id"]
    position = ok(post(api, lead_id, "card", {"assessment_required": True}))["position"]
    shown = detail(api, lead_id, position)
    assert (shown["assessment_required"], shown["assessment_required_on_card"]) == (True, True)
    refused(post(api, lead_id, "qualification", {"quality": True}), 409, rule="assessment_required")
    # as it was before the card asked: replayed from the store, the funnel's setting
    history = ok(api.get(f"/leads/{lead_id}/history"))["events"]
    assert history[-1]["changes"]["assessment_required"] == {"old": False, "new": True}
    back = ok(post(api, lead_id, "card", {"assessment_required": None}))["position"]
    assert detail(api, lead_id, back)["assessment_required"] is False


def test_a_court_lead_whose_card_waives_the_assessment_is_quality(api: TestClient) -> None:
    lead_id = create(api, funnel="court", assessment_required=False)["lead_id"]
    ok(post(api, lead_id, "qualification", {"quality": True}))


@pytest.mark.parametrize("value", ["maybe", 3, [True]])
def test_a_requirement_that_is_not_a_boolean_is_a_422_naming_it(
    api: TestClient, value: Any
) -> None:
    response = api.post(
        "/leads",
        json={
            "funnel": "court",
            "title": "t",
            "company_name": "c",
            "source": "s",
            "manager": "boris",
            "assessment_required": value,
        },
    )
    refused(response, 422, field="assessment_required")


# --- a lead that completes its funnel becomes a project ------------------------------


def _completed_lead(api: TestClient) -> str:
    """An out-of-court lead with a full card, through proposal, contract and invoice."""
    lead_id: str = create(
        api,
        company_id="inn-7701",
        contact="Olga Ivanova, +7 900 000 00 00",
        expert="eva",
        need_maturity="ready_to_buy",
        answer_due="2026-01-20",
        description="Appraisal of a warehouse in Tver",
        currency="EUR",
    )["lead_id"]
    components = [{"name": "survey", "amount": "1200.00"}, {"name": "report", "amount": "300"}]
    ok(post(api, lead_id, "cost", {"components": components}))
    ok(post(api, lead_id, "qualification", {"quality": True}))
    for stage in ("proposal_preparation", "proposal_sent", "contract", "invoice"):
        ok(post(api, lead_id, "stage", {"stage": stage}))
    return lead_id


def test_a_lead_closed_won_becomes_a_project_with_its_card(
    api: TestClient, platform: Platform
) -> None:
    lead_id = _completed_lead(api)
    ok(post(api, lead_id, "close", {"outcome": "won"}))
    project_id = project_id_for_lead(UUID(lead_id))
    assert api.get(f"/projects/{project_id}").status_code == 404
    platform.processes.run_once()  # the project appears by itself

    project = ok(api.get(f"/projects/{project_id}"))
    assert project["lead_id"] == lead_id
    assert project["deal_id"] is None
    assert (project["company_name"], project["company_id"]) == ("Northwind LLC", "inn-7701")
    assert (project["amount"], project["currency"]) == ("1500.00", "EUR")
    assert project["cost_components"] == [
        {"name": "survey", "amount": "1200.00"},
        {"name": "report", "amount": "300.00"},
    ]
    assert (project["contact"], project["source"], project["need_maturity"]) == (
        "Olga Ivanova, +7 900 000 00 00",
        "website",
        "ready_to_buy",
    )
    assert (project["manager"], project["expert"], project["funnel"]) == (
        "boris",
        "eva",
        "out_of_court",
    )
    assert (project["description"], project["answer_due"]) == (
        "Appraisal of a warehouse in Tver",
        "2026-01-20",
    )
    history = ok(api.get(f"/leads/{lead_id}/history"))["events"]
    assert history[-1]["type"] == "LeadProjectStarted"
    shown = detail(api, lead_id, history[-1]["position"])
    assert shown["project_id"] == str(project_id)
    listed = ok(
        api.get(
            "/projects",
            params={"lead_id": lead_id, "min_position": history[-1]["position"]},
        )
    )
    assert [p["project_id"] for p in listed["items"]] == [str(project_id)]
    row = (
        platform.db.cursor()
        .execute(
            "SELECT currency, contact, source, expert, cost_components FROM projects"
            " WHERE project_id = ?",
            [str(project_id)],
        )
        .fetchone()
    )
    assert row is not None
    assert row[:4] == (
        "EUR",
        "Olga Ivanova, +7 900 000 00 00",
        "website",
        "eva",
    )


def test_redelivery_and_restart_create_one_project_per_lead(
    api: TestClient, platform: Platform
) -> None:
    leads = []
    for _ in range(3):
        lead_id = _completed_lead(api)
        ok(post(api, lead_id, "close", {"outcome": "won"}))
        leads.append(lead_id)
    platform.processes.run_once()
    for manager in platform.processes.managers:  # every position forgotten
        platform.processes.state.advance(manager.name, 0, DeadlineChanges())
    platform.processes.run_once()
    other = CommandSide(
        platform.settings, platform.funnels, platform.rules, platform.store, platform.clock
    )
    process_runner(other).run_once()  # a second worker
    types = Counter(row[3] for row in platform.store.read_rows(0, 1_000_000))
    assert types["ProjectCreated"] == len(leads)
    assert types["LeadProjectStarted"] == len(leads)


def test_a_lead_that_chose_a_deal_gets_its_project_from_the_deal_only(
    api: TestClient, platform: Platform
) -> None:
    lead_id = _completed_lead(api)
    ok(api.post(f"/leads/{lead_id}/deal", json=None))
    ok(post(api, lead_id, "close", {"outcome": "won"}))
    platform.processes.run_once()
    assert api.get(f"/projects/{project_id_for_lead(UUID(lead_id))}").status_code == 404


@pytest.mark.parametrize(
    ("funnel", "outcome"),
    [("court", {"outcome": "won"}), ("out_of_court", {"outcome": "lost", "reason": "price"})],
)
def test_no_project_for_a_lead_lost_or_won_in_a_funnel_delivering_deals(
    api: TestClient, platform: Platform, funnel: str, outcome: dict[str, str]
) -> None:
    lead_id = create(api, funnel=funnel)["lead_id"]
    ok(post(api, lead_id, "close", outcome))
    platform.processes.run_once()
    assert api.get(f"/projects/{project_id_for_lead(UUID(lead_id))}").status_code == 404


def test_the_project_of_a_lead_on_postgres(
    make_platform: PlatformFactory, pg_schema_url: str
) -> None:
    platform = make_platform(pg_schema_url, process_managers=False)
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as api:
        lead_id = _completed_lead(api)
        ok(post(api, lead_id, "close", {"outcome": "won"}))
        platform.processes.run_once()
        platform.processes.run_once()
        project = ok(api.get(f"/projects/{project_id_for_lead(UUID(lead_id))}"))
        assert project["lead_id"] == lead_id
        types = Counter(row[3] for row in platform.store.read_rows(0, 1_000_000))
        assert types["ProjectCreated"] == 1


# --- paused leads are shown as paused ------------------------------------------------


def _paused(api: TestClient, reason: str, clock: FakeClock, **card: Any) -> str:
    lead_id: str = create(api, **card)["lead_id"]
    ok(post(api, lead_id, "pause", {"reason": reason}))
    clock.advance(hours=1)
    return lead_id


def test_the_funnel_report_shows_paused_figures_beside_the_totals(
    api: TestClient, clock: FakeClock
) -> None:
    create(api, amount="7")
    _paused(api, "client on holiday", clock, amount="100")
    moved = create(api, amount="40")["lead_id"]
    ok(post(api, moved, "stage", {"stage": "assessment"}))
    position = ok(post(api, moved, "pause", {"reason": "waiting for documents"}))["position"]
    report = ok(
        api.get("/reports/funnel", params={"funnel": "out_of_court", "min_position": position})
    )
    stages = {s["stage"]: s for s in report["stages"]}
    assert (stages["new"]["count"], stages["new"]["amount"]) == (2, "107.00")
    assert stages["new"]["paused"] == {"count": 1, "amount": "100.00"}
    assert stages["assessment"]["paused"] == {"count": 1, "amount": "40.00"}
    assert stages["contract"]["paused"] == {"count": 0, "amount": "0.00"}
    assert report["totals"] == {"count": 3, "amount": "147.00"}
    assert report["paused"] == {"count": 2, "amount": "140.00"}


def test_the_lead_list_and_detail_show_why_a_lead_is_paused(
    api: TestClient, clock: FakeClock
) -> None:
    lead_id = _paused(api, "budget frozen", clock)
    position = ok(post(api, create(api)["lead_id"], "card", {"title": "other"}))["position"]
    items = ok(api.get("/leads", params={"min_position": position}))["items"]
    by_id = {i["lead_id"]: i for i in items}
    assert by_id[lead_id]["pause_reason"] == "budget frozen"
    assert by_id[lead_id]["paused_since"] is not None
    assert [i["pause_reason"] for i in items if i["lead_id"] != lead_id] == [None]
    shown = detail(api, lead_id, position)
    assert (shown["status"], shown["pause_reason"]) == ("paused", "budget frozen")


def test_the_paused_leads_report_says_why_leads_are_not_worked(
    api: TestClient, clock: FakeClock
) -> None:
    # each _paused advances the clock an hour: at the end, paused 5 h, 3 h and 2 h
    first = _paused(api, "client on holiday", clock, amount="100")
    clock.advance(hours=1)
    _paused(api, "client on holiday", clock, amount="50")
    other = _paused(api, "waiting for documents", clock, amount="10", manager="clara")
    resumed = _paused(api, "client on holiday", clock, amount="1")
    position = ok(post(api, resumed, "resume"))["position"]
    report = ok(api.get("/reports/paused-leads", params={"min_position": position}))
    reasons = {r["reason"]: r for r in report["reasons"]}
    assert set(reasons) == {"client on holiday", "waiting for documents"}
    holiday = reasons["client on holiday"]
    assert (holiday["count"], holiday["amount"]) == (2, "150.00")
    assert holiday["longest_paused_seconds"] == pytest.approx(5 * 3600)
    assert holiday["average_paused_seconds"] == pytest.approx((5 + 3) * 3600 / 2)
    assert reasons["waiting for documents"]["longest_paused_seconds"] == pytest.approx(2 * 3600)
    assert report["totals"] == {"count": 3, "amount": "160.00"}
    assert report["total"] == 3
    assert report["items"][0]["lead_id"] == first  # longest paused first
    assert report["items"][0]["paused_seconds"] == pytest.approx(5 * 3600)

    mine = ok(
        api.get(
            "/reports/paused-leads",
            params={"manager": "clara", "min_position": position},
        )
    )
    assert [i["lead_id"] for i in mine["items"]] == [other]
    paged = ok(api.get("/reports/paused-leads", params={"limit": 1, "offset": 1}))
    assert (len(paged["items"]), paged["total"]) == (1, 3)


def test_a_scoped_viewer_sees_only_their_paused_leads(api: TestClient, clock: FakeClock) -> None:
    mine = _paused(api, "client on holiday", clock)  # boris's (the default manager)
    position = ok(
        post(api, _paused(api, "no answer", clock, manager="clara"), "card", {"title": "x"})
    )["position"]
    report = ok(
        api.get(
            "/reports/paused-leads",
            params={"min_position": position},
            headers=MANAGER_BORIS,
        )
    )
    assert [i["lead_id"] for i in report["items"]] == [mine]
    assert [r["reason"] for r in report["reasons"]] == ["client on holiday"]


def test_the_paused_leads_report_of_an_unknown_funnel_is_a_422_naming_it(
    api: TestClient,
) -> None:
    refused(api.get("/reports/paused-leads", params={"funnel": "nowhere"}), 422, field="funnel")


def test_amounts_are_decimals(api: TestClient) -> None:
    assert Decimal(ok(api.get("/reports/paused-leads"))["totals"]["amount"]) == 0


# --- the read models: page by page as a rebuild --------------------------------------


@pytest.mark.parametrize("page_size", [1, 3, 50])
def test_the_new_lead_and_project_fields_fold_page_by_page_as_a_rebuild(
    api: TestClient, platform: Platform, clock: FakeClock, tmp_path: Path, page_size: int
) -> None:
    """Card changes of contact and assessment_required, a lead's project, pauses: a
    projector over pages of any size ends equal to a rebuild and to the server's."""
    delivered = _completed_lead(api)
    ok(post(api, delivered, "card", {"assessment_required": True, "contact": "Nina"}))
    ok(post(api, delivered, "card", {"assessment_required": None}))
    ok(post(api, delivered, "close", {"outcome": "won"}))
    _paused(api, "client on holiday", clock, funnel="court", assessment_required=False)
    transferred = create(api, assessment_required=True)["lead_id"]
    ok(post(api, transferred, "transfer", {"funnel": "court"}))
    platform.processes.run_once()
    last = platform.store.last_position()
    ok(api.get("/leads", params={"min_position": last}))

    def tables(db: ReadModelDatabase) -> tuple[list[Any], list[Any]]:
        cursor = db.cursor()
        try:
            return (
                cursor.execute("SELECT * FROM leads ORDER BY lead_id").fetchall(),
                cursor.execute("SELECT * FROM projects ORDER BY project_id").fetchall(),
            )
        finally:
            cursor.close()

    projections = read_model_projections(platform.funnels, platform.rules)
    paged = ReadModelDatabase(tmp_path / "paged.duckdb")
    again = ReadModelDatabase(tmp_path / "rebuilt.duckdb")
    try:
        Projector(platform.store, paged, projections, page_size=page_size).catch_up()
        rebuild(platform.store, again, projections)
        server = tables(platform.db)
        assert tables(paged) == server
        assert tables(again) == server
    finally:
        paged.close()
        again.close()
    rows = {r[0]: r for r in server[0]}
    names = [c for c, _ in LEADS_COLUMNS]
    shown = dict(zip(names, rows[delivered], strict=True))
    assert shown["contact"] == "Nina"
    assert (shown["assessment_required"], shown["assessment_required_on_card"]) == (False, None)
    assert shown["project_id"] == str(project_id_for_lead(UUID(delivered)))
    moved = dict(zip(names, rows[transferred], strict=True))
    assert (moved["assessment_required"], moved["assessment_required_on_card"]) == (True, True)
