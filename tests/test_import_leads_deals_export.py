"""Leads and deals exported in their import format (issue 18 §2, the round trip): leads
and deals made through the commands, exported by ``GET /imports/{kind}/export`` over the
viewer's scope, import into a fresh platform (PostgreSQL) as the same records on every
field the format carries, and into their own platform add nothing."""

# ruff: noqa: RUF001

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import openpyxl
import pytest
from fastapi.testclient import TestClient

from commands.context import CommandContext
from commands.imports import import_file
from leadledger.imports.kinds import KINDS
from leadledger.imports.runner import ImportReport
from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory, bearer

LEAD_FIELDS = (
    "lead_id",
    "funnel",
    "stage",
    "status",
    "title",
    "company_name",
    "company_id",
    "repeat",
    "source",
    "manager",
    "expert",
    "need_maturity",
    "answer_due",
    "description",
    "amount",
    "currency",
    "contact",
    "quality",
    "qualification_reason",
    "pause_reason",
    "paused_since",
    "close_reason",
    "closed_at",
    "created_at",
    "stage_entered_at",
    "deal_id",
    "assessment_required_on_card",
)
DEAL_FIELDS = (
    "deal_id",
    "funnel",
    "stage",
    "status",
    "title",
    "company_name",
    "company_id",
    "source",
    "manager",
    "amount",
    "lead_id",
    "previous_deal_id",
    "close_reason",
    "created_at",
    "stage_entered_at",
    "closed_at",
)


def client(platform: Platform, headers: dict[str, str] = ACTOR) -> TestClient:
    return TestClient(create_app(platform, close_on_exit=False), headers=headers)


def run(side: Platform, clock: FakeClock, path: Path, kind: str) -> ImportReport:
    ctx = CommandContext(actor="adam.admin", at=clock(), command_id=uuid4(), actor_role="admin")
    report, _ = import_file(side.store, side.funnels, side.rules, ctx, kind, path)
    return report


def ok(answer: Any, status: int = 200) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def _lead(api: TestClient, clock: FakeClock, day: str, **card: Any) -> str:
    clock.now = _at(day)
    body = {
        "funnel": "out_of_court",
        "title": "Appraisal",
        "company_name": "Northwind LLC",
        "source": "website",
        "manager": "boris",
        **card,
    }
    lead_id: str = ok(api.post("/leads", json=body), 201)["lead_id"]
    return lead_id


def _step(api: TestClient, clock: FakeClock, day: str, path: str, body: dict[str, Any]) -> int:
    clock.now = _at(day)
    position: int = ok(api.post(path, json=body))["position"]
    return position


def make_records(api: TestClient, clock: FakeClock) -> int:
    """Leads at every status (with card fields, companies seen before, a pause, reasons),
    two of them converted to deals (one lost, one moved on), an upsell; the last
    position."""
    full = _lead(
        api,
        clock,
        "2025-01-10T09:30:00",
        title="Ещё одна оценка",
        company_name="ООО «Альфа»",
        company_id="7701000001",
        amount="125000.50",
        currency="USD",
        expert="eve.expert",
        need_maturity="high",
        answer_due="2025-02-01",
        description="склад\nи офис",
        contact="Иван Петров",
        assessment_required=True,
    )
    _step(api, clock, "2025-01-12", f"/leads/{full}/stage", {"stage": "proposal_sent"})
    lost = _lead(api, clock, "2025-02-01", company_name="Альфа", company_id="7701000001")
    _step(api, clock, "2025-02-03", f"/leads/{lost}/stage", {"stage": "assessment"})
    _step(api, clock, "2025-02-10", f"/leads/{lost}/close", {"outcome": "lost", "reason": "цена"})
    spam = _lead(api, clock, "2025-02-11")
    _step(
        api,
        clock,
        "2025-02-12",
        f"/leads/{spam}/qualification",
        {"quality": False, "reason": "спам"},
    )
    paused = _lead(api, clock, "2025-03-01", company_id="7702000002")
    _step(api, clock, "2025-03-02", f"/leads/{paused}/pause", {"reason": "отпуск"})
    won = _lead(api, clock, "2025-03-05", company_id="7703000003")
    _step(api, clock, "2025-03-06", f"/leads/{won}/qualification", {"quality": True})
    _step(api, clock, "2025-03-20", f"/leads/{won}/close", {"outcome": "won", "reason": "ok"})
    deals: list[str] = []
    for n, day in enumerate(("2025-04-01", "2025-04-02")):
        converted = _lead(api, clock, day, title=f"Сделка {n}", company_id=f"770400000{n}")
        assessment = {"expert": "eve.expert", "result": "feasible", "hours": "1.5"}
        _step(api, clock, day, f"/leads/{converted}/assessment", assessment)
        _step(api, clock, day, f"/leads/{converted}/qualification", {"quality": True})
        clock.now = _at(day)
        made = api.post(f"/leads/{converted}/deal", json={"funnel": "turnkey"})
        deals.append(ok(made, 201)["deal_id"])
    _step(api, clock, "2025-04-05", f"/deals/{deals[0]}/close", {"outcome": "lost", "reason": "x"})
    clock.now = _at("2025-05-01")
    upsell = {"previous_deal_id": deals[1], "title": "Ещё", "manager": "boris", "amount": "10"}
    return int(ok(api.post("/deals", json=upsell), 201)["position"])


def leads_of(api: TestClient) -> list[dict[str, Any]]:
    position = api.app.state.platform.store.last_position()  # type: ignore[attr-defined]
    page = ok(api.get("/leads", params={"min_position": position, "limit": 500}))
    out = []
    for item in page["items"]:
        detail = ok(api.get(f"/leads/{item['lead_id']}"))
        out.append({f: detail[f] for f in LEAD_FIELDS})
    return sorted(out, key=lambda d: d["lead_id"])


def deals_of(api: TestClient) -> list[dict[str, Any]]:
    """The deals on the format's fields (an upsell's lead and earlier deal included)."""
    position = api.app.state.platform.store.last_position()  # type: ignore[attr-defined]
    page = ok(api.get("/deals", params={"min_position": position, "limit": 500}))
    out = []
    for item in page["items"]:
        deal = {f: item[f] for f in DEAL_FIELDS}
        detail = ok(api.get(f"/deals/{item['deal_id']}"))
        deal["description"] = detail["description"]
        out.append(deal)
    return sorted(out, key=str)


def export(api: TestClient, kind: str, tmp_path: Path, **params: Any) -> Path:
    position = api.app.state.platform.store.last_position()  # type: ignore[attr-defined]
    answer = api.get(f"/imports/{kind}/export", params={"min_position": position, **params})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    path = tmp_path / f"{kind}-{uuid4().hex[:6]}.xlsx"
    path.write_bytes(answer.content)
    return path


def sheet_rows(path: Path) -> list[dict[str, Any]]:
    sheet = openpyxl.load_workbook(path).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    header = [str(name) for name in rows[0]]
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


@pytest.fixture
def source(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(source: Platform) -> Iterator[TestClient]:
    with client(source) as c:
        yield c


def test_leads_and_deals_export_in_their_import_format_and_import_back_unchanged(
    source: Platform,
    api: TestClient,
    make_platform: PlatformFactory,
    clock: FakeClock,
    tmp_path: Path,
    pg_schema_url: str,
) -> None:
    make_records(api, clock)
    clock.now = _at("2026-01-05T09:00:00")
    leads, deals = leads_of(api), deals_of(api)
    assert {d["status"] for d in leads} == {"open", "paused", "lost", "won", "non_quality"}
    assert len(deals) == 3
    leads_file, deals_file = export(api, "leads", tmp_path), export(api, "deals", tmp_path)
    header = list(sheet_rows(leads_file)[0])
    assert header == [f.name for f in KINDS["leads"].fields]
    by_id = {r["external_id"]: r for r in sheet_rows(leads_file)}
    lost = next(d for d in leads if d["status"] == "lost")
    # the status's reason in the one reason column, the original instants as instants
    assert by_id[lost["lead_id"]]["reason"] == "цена"
    assert by_id[lost["lead_id"]]["closed_at"] == datetime(2025, 2, 10)
    assert list(sheet_rows(deals_file)[0]) == [f.name for f in KINDS["deals"].fields]

    fresh = make_platform(pg_schema_url, process_managers=False)
    first = run(fresh, clock, leads_file, "leads")
    assert (first.status, first.imported, first.refused) == ("imported", len(leads), 0), (
        first.errors
    )
    second = run(fresh, clock, deals_file, "deals")
    assert (second.status, second.imported, second.refused) == ("imported", len(deals), 0), (
        second.errors
    )
    with client(fresh) as there:
        assert leads_of(there) == leads
        assert deals_of(there) == deals
    # the upsell carries its client's lead and earlier deal; the lead keeps its first deal
    upsell = next(d for d in deals if d["previous_deal_id"] is not None)
    assert upsell["lead_id"] is not None
    earlier = next(d for d in deals if d["deal_id"] == upsell["previous_deal_id"])
    its_lead = next(d for d in leads if d["lead_id"] == upsell["lead_id"])
    assert its_lead["deal_id"] == earlier["deal_id"]

    for path, kind, count in ((leads_file, "leads", len(leads)), (deals_file, "deals", 3)):
        again = run(source, clock, path, kind)
        assert (again.status, again.already_imported, again.imported, again.events) == (
            "already_imported",
            count,
            0,
            0,
        )


def test_the_export_takes_the_lists_filters_and_the_viewers_scope(
    api: TestClient, source: Platform, clock: FakeClock, tmp_path: Path
) -> None:
    make_records(api, clock)
    clock.now = _at("2026-01-05T09:00:00")
    march = export(api, "leads", tmp_path, **{"from": "2025-03-01", "to": "2025-03-31"})
    assert {r["created_at"].month for r in sheet_rows(march)} == {3}
    assert len(sheet_rows(march)) == 2
    turnkey = sheet_rows(export(api, "deals", tmp_path, funnel="turnkey"))
    assert len(turnkey) == 2
    assert {r["status"] for r in turnkey} == {"open", "lost"}
    for kind, params, field in (
        ("leads", {"funnel": "nowhere"}, "funnel"),
        ("deals", {"funnel": "out_of_court"}, "funnel"),
        ("companies", {"manager": "boris"}, "manager"),
        ("nothing", {}, "kind"),
        ("leads", {"from": "someday"}, "from"),
    ):
        answer = api.get(f"/imports/{kind}/export", params=params)
        assert answer.status_code == 422, (kind, answer.text)
        assert answer.json()["field"] == field, answer.text
    # a manager sees (and exports) only the leads they manage
    _lead(api, clock, "2025-06-01", manager="gleb", title="Чужой")
    clock.now = _at("2026-01-05T09:00:00")
    everyone = sheet_rows(export(api, "leads", tmp_path))
    position = source.store.last_position()
    with client(source, bearer("boris", "manager")) as own:
        answer = own.get("/imports/leads/export", params={"min_position": position})
        assert answer.status_code == 200, answer.text
        mine = tmp_path / "mine.xlsx"
        mine.write_bytes(answer.content)
    assert {r["manager"] for r in everyone} == {"boris", "gleb"}
    assert [r["external_id"] for r in sheet_rows(mine)] == [
        r["external_id"] for r in everyone if r["manager"] == "boris"
    ]


def test_the_leads_and_deals_pages_link_their_export_in_the_import_format(
    make_platform: PlatformFactory, clock: FakeClock, tmp_path: Path
) -> None:
    from tests.test_workspace_pages import ADMIN, PASSWORDS, sign_in

    platform = make_platform(signin_delay_seconds=0, process_managers=False)
    with TestClient(create_app(platform, close_on_exit=False)) as api:
        body = {"username": "tess.top", "name": "Tess", "role": "top"}
        assert api.post("/users", json=body, headers=ADMIN).status_code == 201
        platform.credentials.set_password("tess.top", PASSWORDS["tess.top"], set_by="test")
        api.headers.update(ACTOR)
        position = make_records(api, clock)
        clock.now = _at("2026-01-05T09:00:00")
        assert platform.projector.wait_for(position, 10)
        del api.headers["Authorization"]
        assert sign_in(api, "tess.top") == 303
        pages = {
            "/workspace/leads?funnel=out_of_court&from=2025-03-01&to=2025-03-31": ("leads", 2),
            "/workspace/deals?funnel=turnkey": ("deals", 2),
        }
        for page, (kind, count) in pages.items():
            html = api.get(page).text
            found = re.search(r'id="export-records" href="([^"]+)"', html)
            assert found, html
            answer = api.get(found.group(1).replace("&amp;", "&"))
            assert answer.status_code == 200, answer.text
            path = tmp_path / f"{kind}.xlsx"
            path.write_bytes(answer.content)
            rows = sheet_rows(path)
            assert list(rows[0]) == [f.name for f in KINDS[kind].fields]
            assert len(rows) == count
