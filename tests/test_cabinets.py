"""The sales indicators and the two cabinets (seeds 003 and 004).

(a) Through HTTP, on real deals: the manager's cabinet (plan, % done, plan to date, deals
    in work, client-base growth, sums by stage; their own only), the head of sales'
    cabinet rolled up region → city → manager (top: everyone; a head: their department;
    a regional head: their department within their region; a manager: themselves), the
    drill-down, the indicators (new leads, new clients, dormant clients, invoices, deals
    in work) and their workbooks.
(b) Hypothesis: on random read models every split of an indicator adds up to its totals.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates.sales_plans import plan_to_date
from leadledger.settings import DEFAULT_FUNNELS_FILE, DEFAULT_RULES_FILE
from leadledger.wiring import Platform, load_rules, read_model_projections
from projections.database import ReadModelDatabase
from projections.projector import Projector
from queries import cabinets
from tests.conftest import FakeClock, bearer
from tests.deal_helpers import SELLER, ok

RULES = load_rules(DEFAULT_FUNNELS_FILE, DEFAULT_RULES_FILE)
ADMIN = bearer("root.admin", "admin")
TOP = bearer("tess.top", "top")
HEAD = bearer("hana.head", "head", "sales")
MIA = bearer("mia.manager", "manager", "sales")
PM = bearer("pat.pm", "pm", "projects")


def regional_head() -> dict[str, str]:
    from tests.conftest import token

    return {"Authorization": f"Bearer {token('vera.head', 'head', 'sales', 'Volga')}"}


PEOPLE = [
    ("hana.head", "head", "sales", None, None),
    ("vera.head", "head", "sales", "Volga", "Kazan"),
    ("mia.manager", "manager", "sales", "Moscow region", "Moscow"),
    ("kir.manager", "manager", "sales", "Volga", "Kazan"),
    ("ivan.manager", "manager", "sales", "Volga", "Samara"),
    ("otto.other", "manager", "partners", "North-West", "Saint Petersburg"),
]


def register_people(client: TestClient) -> None:
    for username, role, department, region, city in PEOPLE:
        body = {
            "username": username,
            "name": username.split(".")[0].title(),
            "role": role,
            "department": department,
            "region": region,
            "city": city,
        }
        ok(client.post("/users", json=body, headers=ADMIN), 201)


def lead(client: TestClient, manager: str, company: str) -> str:
    body = {
        "funnel": "out_of_court",
        "title": f"Work for {company}",
        "company_name": company.title(),
        "company_id": company,
        "source": "phone",
        "manager": manager,
        "amount": "250.00",
    }
    lead_id: str = ok(client.post("/leads", json=body, headers=SELLER), 201)["lead_id"]
    return lead_id


def deal(client: TestClient, manager: str, company: str) -> str:
    lead_id = lead(client, manager, company)
    assessment = {"expert": "eve.expert", "result": "feasible", "hours": "1.5"}
    ok(client.post(f"/leads/{lead_id}/assessment", json=assessment, headers=SELLER))
    ok(client.post(f"/leads/{lead_id}/qualification", json={"quality": True}, headers=SELLER))
    converted = client.post(f"/leads/{lead_id}/deal", json={"funnel": "upsell"}, headers=SELLER)
    deal_id: str = ok(converted, 201)["deal_id"]
    return deal_id


def won_deal(
    client: TestClient, manager: str, company: str, price: str, number: str, day: str
) -> str:
    deal_id = deal(client, manager, company)
    proposal = {"services": [{"name": "transport", "price": price}]}
    ok(client.post(f"/deals/{deal_id}/proposal", json=proposal, headers=SELLER))
    contract = {"number": f"C-{number}", "signed_on": day}
    ok(client.post(f"/deals/{deal_id}/contract", json=contract, headers=SELLER))
    ok(client.post(f"/deals/{deal_id}/stage", json={"stage": "invoice"}, headers=SELLER))
    invoice = {"number": number, "amount": price, "organisation": "main"}
    ok(client.post(f"/deals/{deal_id}/invoice", json=invoice, headers=SELLER))
    ok(client.post(f"/deals/{deal_id}/close", json={"outcome": "won"}, headers=SELLER))
    return deal_id


def plan(client: TestClient, manager: str, amount: str) -> None:
    body = {"amount": amount, "reason": "January plan"}
    ok(client.put(f"/sales-plans/{manager}/2026-01", json=body, headers=TOP))


def story(client: TestClient, clock: FakeClock, platform: Platform) -> dict[str, Any]:
    """An old client of kir's invoiced in 2023 (dormant now); in January 2026 mia wins a
    deal of 400 and has one open; kir and ivan each have an open deal; plans are set."""
    clock.now = datetime(2023, 6, 1, 9, 0, tzinfo=UTC)
    register_people(client)
    won_deal(client, "kir.manager", "old-co", "900.00", "OLD-1", "2023-06-01")
    clock.now = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
    won = won_deal(client, "mia.manager", "new-co", "400.00", "INV-1", "2026-01-12")
    open_mia = deal(client, "mia.manager", "second-co")
    deal(client, "kir.manager", "kazan-co")
    deal(client, "ivan.manager", "samara-co")
    deal(client, "otto.other", "neva-co")
    plan(client, "mia.manager", "1000.00")
    plan(client, "kir.manager", "500.00")
    return {"won": won, "open": open_mia, "position": platform.store.last_position()}


def test_the_cabinets_and_indicators(
    client: TestClient, clock: FakeClock, platform: Platform
) -> None:
    facts = story(client, clock, platform)
    at = {"min_position": facts["position"]}

    # --- the manager's cabinet: their own -----------------------------------------------
    mine = ok(client.get("/cabinets/manager", params=at, headers=MIA))
    summary = mine["plate"]
    due = plan_to_date(Decimal("1000.00"), "2026-01", date(2026, 1, 12), RULES.calendar)
    assert summary["manager"] == "mia.manager"
    assert (summary["plan"], summary["fact"], summary["won_deals"]) == ("1000.00", "400.00", 1)
    assert summary["done"] == 0.4
    assert Decimal(summary["plan_to_date"]) == due
    assert (summary["deals_in_work"], summary["new_clients"]) == (1, 2)
    assert [(b["measure"], Decimal(b["amount"])) for b in mine["plan_bar"]] == [
        ("plan", Decimal(1000)),
        ("plan to date", due),
        ("fact", Decimal(400)),
    ]
    assert [(s["funnel"], s["stage"], s["count"]) for s in mine["stages"]] == [("upsell", "new", 1)]
    december = ok(client.get("/cabinets/manager", params={**at, "month": "2025-12"}, headers=MIA))
    assert (december["plate"]["plan"], december["plate"]["fact"]) == (None, "0.00")
    other = client.get("/cabinets/manager", params={**at, "manager": "kir.manager"}, headers=MIA)
    assert other.status_code == 404
    assert client.get("/cabinets/manager", params=at, headers=PM).status_code == 403
    assert client.get("/cabinets/manager", params=at, headers=TOP).status_code == 422
    bad_month = client.get("/cabinets/manager", params={"month": "2026-1"}, headers=MIA)
    assert (bad_month.status_code, "month" in bad_month.text) == (422, True)
    kir = ok(client.get("/cabinets/manager", params={**at, "manager": "kir.manager"}, headers=HEAD))
    assert (kir["plate"]["plan"], kir["plate"]["fact"]) == ("500.00", "0.00")

    # --- the head of sales' cabinet: region → city → manager ------------------------------
    everyone = ok(client.get("/cabinets/sales", params=at, headers=TOP))
    assert [r["region"] for r in everyone["regions"]] == [
        "",
        "Moscow region",
        "North-West",
        "Volga",
    ]
    volga = everyone["regions"][3]
    assert [(c["city"], [m["manager"] for m in c["managers"]]) for c in volga["cities"]] == [
        ("Kazan", ["kir.manager", "vera.head"]),
        ("Samara", ["ivan.manager"]),
    ]
    assert (volga["plan"], volga["open_deals"], volga["fact"]) == ("500.00", 2, "0.00")
    totals = everyone["totals"]
    assert (totals["plan"], totals["fact"], totals["open_deals"]) == ("1500.00", "400.00", 4)

    def managers(answer: dict[str, Any]) -> list[str]:
        return [m["manager"] for r in answer["regions"] for c in r["cities"] for m in c["managers"]]

    head = ok(client.get("/cabinets/sales", params=at, headers=HEAD))
    assert managers(head) == [
        "hana.head",
        "mia.manager",
        "kir.manager",
        "vera.head",
        "ivan.manager",
    ]
    regional = ok(client.get("/cabinets/sales", params=at, headers=regional_head()))
    assert managers(regional) == ["kir.manager", "vera.head", "ivan.manager"]
    assert managers(ok(client.get("/cabinets/sales", params=at, headers=MIA))) == ["mia.manager"]
    kazan = ok(client.get("/cabinets/sales", params={**at, "city": "Kazan"}, headers=TOP))
    assert managers(kazan) == ["kir.manager", "vera.head"]

    drilled = ok(
        client.get("/cabinets/sales", params={**at, "manager": "mia.manager"}, headers=HEAD)
    )
    assert [d["deal_id"] for d in drilled["drill_down"]["deals"]] == [facts["open"]]
    unseen = client.get(
        "/cabinets/sales", params={**at, "manager": "mia.manager"}, headers=regional_head()
    )
    assert unseen.status_code == 404

    # --- the indicators ----------------------------------------------------------------
    january = {**at, "from": "2026-01-01", "to": "2026-01-31"}
    leads = ok(client.get("/reports/new-leads", params=january, headers=TOP))
    assert leads["totals"]["count"] == 5
    assert [(d["day"], d["count"]) for d in leads["days"]] == [("2026-01-12", 5)]
    assert [(w["week"], w["count"]) for w in leads["weeks"]] == [("2026-01-12", 5)]
    assert ok(client.get("/reports/new-leads", params=january, headers=MIA))["totals"]["count"] == 2
    volga_leads = ok(
        client.get("/reports/new-leads", params={**january, "region": "Volga"}, headers=TOP)
    )
    assert volga_leads["totals"]["count"] == 2

    growth = ok(client.get("/reports/new-clients", params=january, headers=TOP))
    assert {c["company_id"] for c in growth["items"]} == {
        "new-co",
        "second-co",
        "kazan-co",
        "samara-co",
        "neva-co",
    }
    assert growth["total"] == 5

    dormant = ok(client.get("/reports/dormant-clients", params=at, headers=HEAD))
    assert [(c["company_id"], c["manager"], c["last_invoice_on"]) for c in dormant["items"]] == [
        ("old-co", "kir.manager", "2023-06-01")
    ]
    assert dormant["after_days"] == 730
    assert ok(client.get("/reports/dormant-clients", params=at, headers=MIA))["total"] == 0
    earlier = ok(
        client.get("/reports/dormant-clients", params={**at, "on": "2024-06-01"}, headers=TOP)
    )
    assert earlier["total"] == 0

    invoices = ok(client.get("/reports/invoices", params=january, headers=TOP))
    assert invoices["totals"] == {"count": 1, "amount": "400.00", "clients": 1}
    assert [(c["company_id"], c["manager"]) for c in invoices["clients"]] == [
        ("new-co", "mia.manager")
    ]
    work = ok(client.get("/reports/deals-in-work", params=at, headers=HEAD))
    assert work["totals"]["count"] == 3
    assert {m["manager"]: m["count"] for m in work["managers"]} == {
        "mia.manager": 1,
        "kir.manager": 1,
        "ivan.manager": 1,
    }

    for path in (
        "/cabinets/manager",
        "/cabinets/sales",
        "/reports/new-leads",
        "/reports/deals-in-work",
        "/reports/dormant-clients",
    ):
        workbook = client.get(path, params={**at, "format": "xlsx"}, headers=HEAD)
        assert workbook.status_code == 200, (path, workbook.text)
        assert workbook.content[:2] == b"PK"


# --- (b) splits add up to totals ----------------------------------------------------------

MANAGERS = ["a.manager", "b.manager", "c.manager"]
DAY0 = datetime(2026, 1, 1, tzinfo=UTC)
STAGES = [(f.id, s.id) for f in RULES.deal_funnels.values() for s in f.stages][:6]


def read_models(
    leads: list[tuple[int, int, int]],
    deals: list[tuple[int, int, int, bool]],
    invoices: list[tuple[int, int, int]],
) -> duckdb.DuckDBPyConnection:
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    db.execute(
        "CREATE TABLE leads (lead_id VARCHAR, manager VARCHAR, created_at TIMESTAMPTZ,"
        " amount DECIMAL(18, 2), company_id VARCHAR, company_name VARCHAR)"
    )
    db.execute(
        "CREATE TABLE deals (deal_id VARCHAR, manager VARCHAR, status VARCHAR, funnel VARCHAR,"
        " stage VARCHAR, amount DECIMAL(38, 2), company_id VARCHAR, company_name VARCHAR,"
        " closed_at TIMESTAMPTZ)"
    )
    db.execute(
        "CREATE TABLE deal_invoices (deal_id VARCHAR, manager VARCHAR, company_id VARCHAR,"
        " company_name VARCHAR, number VARCHAR, amount DECIMAL(38, 2), issued_on DATE,"
        " prepayment BOOLEAN)"
    )
    # the client directory the reports map merged companies through (none merged here)
    db.execute("CREATE TABLE companies (company_id VARCHAR, name VARCHAR, merged_into VARCHAR)")
    for n, (who, day, amount) in enumerate(leads):
        db.execute(
            "INSERT INTO leads VALUES (?, ?, ?, ?, ?, ?)",
            [f"l{n}", MANAGERS[who], DAY0 + timedelta(days=day), amount, f"c{n % 5}", "C"],
        )
    # each company's first lead, as the projection keeps it (the earliest one)
    db.execute(
        "CREATE TABLE client_first_leads AS SELECT company_id, arg_min(company_name,"
        " created_at) AS company_name, arg_min(lead_id, created_at) AS lead_id,"
        " arg_min(manager, created_at) AS manager, min(created_at) AS created_at,"
        " 0::BIGINT AS position FROM leads GROUP BY company_id"
    )
    for n, (who, stage, amount, is_open) in enumerate(deals):
        funnel, stage_id = STAGES[stage]
        db.execute(
            "INSERT INTO deals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                f"d{n}",
                MANAGERS[who],
                "open" if is_open else "won",
                funnel,
                stage_id,
                amount,
                f"c{n % 4}",
                "C",
                None if is_open else DAY0,
            ],
        )
    for n, (deal_no, day, amount) in enumerate(invoices):
        if deals:
            db.execute(
                "INSERT INTO deal_invoices SELECT deal_id, manager, company_id, company_name,"
                " ?, ?, ?, false FROM deals WHERE deal_id = ?",
                [f"i{n}", amount, (DAY0 + timedelta(days=day)).date(), f"d{deal_no % len(deals)}"],
            )
    return db


who = st.integers(0, len(MANAGERS) - 1)
money = st.integers(0, 10_000)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(who, st.integers(0, 60), money), max_size=30),
    st.lists(st.tuples(who, st.integers(0, len(STAGES) - 1), money, st.booleans()), max_size=20),
    st.lists(st.tuples(st.integers(0, 50), st.integers(0, 60), money), max_size=20),
    st.none() | st.lists(st.sampled_from(MANAGERS), min_size=1, max_size=3, unique=True),
)
def test_every_split_adds_up_to_its_totals(
    leads: list[tuple[int, int, int]],
    deals: list[tuple[int, int, int, bool]],
    invoices: list[tuple[int, int, int]],
    chosen: list[str] | None,
) -> None:
    db = read_models(leads, deals, invoices)
    span = cabinets.Span(DAY0, DAY0 + timedelta(days=40))

    new = cabinets.new_leads(db, chosen, span)
    for split in ("days", "weeks", "managers"):
        assert sum(r["count"] for r in new[split]) == new["totals"]["count"]
        assert sum(r["amount"] for r in new[split]) == new["totals"]["amount"]

    work = cabinets.deals_in_work(db, chosen, RULES.deal_funnels)
    for split in ("stages", "managers"):
        assert sum(r["count"] for r in work[split]) == work["totals"]["count"]
        assert sum(r["amount"] for r in work[split]) == work["totals"]["amount"]

    issued = cabinets.invoices(db, chosen, span.start.date(), span.end.date(), 500, 0)
    assert sum(r["count"] for r in issued["clients"]) == issued["totals"]["count"]
    assert sum(r["amount"] for r in issued["clients"]) == issued["totals"]["amount"]
    assert issued["total"] == len(issued["clients"])

    growth = cabinets.new_clients(db, chosen, span, 500, 0)
    assert len(growth["items"]) == growth["totals"]["count"]
    assert sum(r["count"] for r in growth["managers"]) == growth["totals"]["count"]

    dormant = cabinets.dormant_clients(db, chosen, date(2028, 6, 1), 730, 500, 0)
    assert len(dormant["items"]) == dormant["totals"]["count"]
    db.close()


def test_the_sales_read_models_folded_in_any_page_size_equal_the_live_ones(
    client: TestClient, clock: FakeClock, platform: Platform, tmp_path: Any
) -> None:
    facts = story(client, clock, platform)
    ok(client.put("/sales-plans/mia.manager/2026-01", json={"amount": "1", "reason": "x"}))
    client.get("/sales-plans", params={"min_position": platform.store.last_position()})
    assert facts["position"] > 0
    projections = read_model_projections(platform.funnels, platform.rules)
    queries = {
        "sales_plans": "SELECT * EXCLUDE (last_position) FROM sales_plans ORDER BY plan_id",
        "sales_plan_changes": "SELECT * FROM sales_plan_changes ORDER BY position",
        "deal_invoices": "SELECT * FROM deal_invoices ORDER BY position",
        "client_first_leads": "SELECT * FROM client_first_leads ORDER BY company_id",
    }
    live = platform.db.cursor()
    expected = {name: live.execute(q).fetchall() for name, q in queries.items()}
    live.close()
    assert len(expected["sales_plan_changes"]) == 3
    assert [r[0] for r in expected["client_first_leads"]] == [
        "kazan-co",
        "neva-co",
        "new-co",
        "old-co",
        "samara-co",
        "second-co",
    ]
    assert {(r[1], r[2]) for r in expected["deal_invoices"]} == {
        ("kir.manager", "old-co"),
        ("mia.manager", "new-co"),
    }
    for size in (1, 7):
        db = ReadModelDatabase(tmp_path / f"folded{size}.duckdb")
        try:
            Projector(platform.store, db, projections, page_size=size).catch_up()
            cursor = db.cursor()
            for name, query in queries.items():
                assert cursor.execute(query).fetchall() == expected[name], (size, name)
            cursor.close()
        finally:
            db.close()
