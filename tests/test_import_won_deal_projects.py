"""An imported won deal counts where a won deal counts (issue 18 §2): it becomes its
project in the same write, as the project process makes one for a deal won through the
commands, so check growth and the client card's lifetime value count it; a deal with
several invoices and payments makes the round trip (continuation rows), each invoice and
payment decided by the same rules, bad ones named by row and column in the dry run.

The history, worked by hand (PostgreSQL): a deal of the client "monolit" (turnkey, boris)
proposes design for 250,000 on 3 April 2025, its contract is signed on 20 March (backdated
before the deal, as the command allows), invoices S-1 (100,000, simplified) and S-2
(150,000, main) are issued, and it is won on 10 April: its project (planning) is opened
then. The PM moves it to production, names olga.pm, plans 15 April to 30 June and values it
at 260,000; S-1 is paid 60,000 then 40,000, S-2 50,000. Check growth: value 260,000,
invoiced 250,000, paid 150,000; the client's lifetime value 150,000, invoiced 250,000.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from aggregates import billing, project
from commands.projects import project_id_for_deal
from leadledger.imports.base import MappingError, natural_key, record_id, resolve_mapping
from leadledger.imports.kinds.deals import KIND, PROJECT_COLUMNS, continues
from leadledger.wiring import Platform
from tests.conftest import FakeClock, PlatformFactory
from tests.test_import_leads_deals_export import (
    _at,
    _lead,
    _step,
    client,
    export,
    ok,
    run,
    sheet_rows,
)
from tests.test_imports import run as run_with

CLIENT = {"company_id": "monolit", "name": "Monolit LLC"}
GROWTH = (
    "lead_amount",
    "growth",
    "title",
    "company_name",
    "manager",
    "deal_id",
    "deal_amount",
    "value",
    "invoiced",
)


@pytest.fixture
def source(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(source: Platform) -> Iterator[TestClient]:
    with client(source) as c:
        yield c


def win_with_two_invoices(api: TestClient, source: Platform, clock: FakeClock) -> str:
    """The history above, through the commands and the project process."""
    clock.now = _at("2025-04-01T11:00:00")
    ok(api.post("/companies", json=CLIENT), 201)
    lead_id = _lead(api, clock, "2025-04-01T10:00:00", title="Hangar", company_id="monolit")
    assessment = {"expert": "eve.expert", "result": "feasible", "hours": "1.5"}
    _step(api, clock, "2025-04-01T10:00:00", f"/leads/{lead_id}/assessment", assessment)
    _step(api, clock, "2025-04-01T10:00:00", f"/leads/{lead_id}/qualification", {"quality": True})
    clock.now = _at("2025-04-01T11:00:00")
    answer = api.post(f"/leads/{lead_id}/deal", json={"funnel": "turnkey"})
    deal_id: str = ok(answer, 201)["deal_id"]
    services = {"services": [{"name": "design", "price": "250000.00"}]}
    _step(api, clock, "2025-04-03T09:00:00", f"/deals/{deal_id}/proposal", services)
    contract = {"number": "K-9", "signed_on": "2025-03-20"}
    _step(api, clock, "2025-04-05T09:00:00", f"/deals/{deal_id}/contract", contract)
    for number, amount, organisation, day in (
        ("S-1", "100000.00", "simplified", "2025-04-07"),
        ("S-2", "150000.00", "main", "2025-04-08"),
    ):
        invoice = {"number": number, "amount": amount, "organisation": organisation}
        _step(
            api, clock, f"{day}T09:00:00", f"/deals/{deal_id}/invoice", invoice | {"issued_on": day}
        )
    _step(api, clock, "2025-04-10T12:00:00", f"/deals/{deal_id}/close", {"outcome": "won"})
    source.processes.run_once()  # the project, opened when the deal was won
    project_id = project_id_for_deal(UUID(deal_id))
    _step(
        api,
        clock,
        "2025-04-11T09:00:00",
        f"/projects/{project_id}/status",
        {"status": "in_production"},
    )
    card = {
        "pm": "olga.pm",
        "planned_start": "2025-04-15",
        "planned_end": "2025-06-30",
        "amount": "260000.00",
    }
    _step(api, clock, "2025-04-11T10:00:00", f"/projects/{project_id}/card", card)
    for number, amount, day in (
        ("S-1", "60000.00", "2025-04-20"),
        ("S-1", "40000.00", "2025-05-02"),
        ("S-2", "50000.00", "2025-05-03"),
    ):
        clock.now = _at(day)  # a payment imported is recorded at its day's start
        paid = {"amount": amount, "paid_on": day}
        ok(api.post(f"/projects/{project_id}/invoices/{number}/payments", json=paid), 201)
    return deal_id


def figures(api: TestClient, deal_id: str) -> dict[str, Any]:
    """What check growth, the client card and the project's card say."""
    position = api.app.state.platform.store.last_position()  # type: ignore[attr-defined]
    wait = {"min_position": position}
    april = {**wait, "from": "2025-04-01", "to": "2025-04-30"}
    growth = ok(api.get("/reports/check-growth", params=april))
    card = ok(api.get("/clients/monolit", params=wait))
    project_id = str(project_id_for_deal(UUID(deal_id)))
    made = ok(api.get(f"/projects/{project_id}", params=wait))
    return {
        "growth": [{k: i[k] for k in (*GROWTH, "paid")} for i in growth["items"]],
        "totals": growth["totals"],
        "client": card["totals"],
        "project": {
            k: made[k]
            for k in ("status", "pm", "planned_start", "planned_end", "amount", "created_at")
        },
    }


def test_a_won_deal_with_its_project_invoices_and_payments_makes_the_round_trip(
    source: Platform,
    api: TestClient,
    make_platform: PlatformFactory,
    clock: FakeClock,
    tmp_path: Path,
    pg_schema_url: str,
) -> None:
    deal_id = win_with_two_invoices(api, source, clock)
    clock.now = _at("2026-01-05T09:00:00")
    before = figures(api, deal_id)
    row = before["growth"][0]
    assert (Decimal(row["value"]), Decimal(row["invoiced"]), Decimal(row["paid"])) == (
        Decimal(260000),
        Decimal(250000),
        Decimal(150000),
    )
    assert Decimal(str(before["client"]["lifetime_value"])) == Decimal(150000)
    leads_file, deals_file = export(api, "leads", tmp_path), export(api, "deals", tmp_path)
    rows = sheet_rows(deals_file)
    # the deal's row (S-1 and its first payment), S-1's second payment, S-2 and its payment
    assert [(r["title"], r["invoice_number"], r["paid"]) for r in rows] == [
        ("Hangar", "S-1", 60000),
        (None, "S-1", 40000),
        (None, "S-2", 50000),
    ]
    assert (rows[0]["project_status"], rows[0]["project_pm"]) == ("in_production", "olga.pm")

    fresh = make_platform(pg_schema_url, process_managers=False)
    with client(fresh) as there:
        ok(there.post("/companies", json=CLIENT), 201)
    leads = run(fresh, clock, leads_file, "leads")
    assert (leads.status, leads.refused) == ("imported", 0), leads.errors
    deals = run(fresh, clock, deals_file, "deals")
    assert (deals.status, deals.imported, deals.refused) == ("imported", 3, 0), deals.errors
    with client(fresh) as there:
        after = figures(there, deal_id)
    assert after == before
    again = run(source, clock, deals_file, "deals")
    assert (again.status, again.imported, again.events) == ("already_imported", 0, 0)
    again = run(fresh, clock, deals_file, "deals")
    assert (again.status, again.imported, again.events) == ("already_imported", 0, 0)


HEADER = (
    "external_id,title,company_name,company_id,source,manager,funnel,status,created_at,"
    "closed_at,service,proposal_amount,proposal_at,contract_number,contract_signed_on,invoice_number,"
    "invoiced,invoiced_on,organisation,paid,paid_on,project_status,project_pm,project_start,"
    "project_end,project_value\n"
)
DEAL = (
    "D-1,Hangar,Monolit LLC,monolit,referral,vera,turnkey,{status},2025-03-01,2025-03-20,"
    "design,120000,2025-03-05,K-1,2025-03-10,S-1,100000,2025-03-15,main,{paid},2025-03-25,"
    "{project}\n"
)


def more(external_id: str, **cells: str) -> str:
    """A continuation row: the deal named, its card left empty."""
    names = HEADER.strip().split(",")
    return ",".join(cells.get(n, external_id if n == "external_id" else "") for n in names) + "\n"


def test_an_imported_won_deal_opens_its_project_and_further_rows_add_invoices_and_payments(
    source: Platform, api: TestClient, clock: FakeClock, tmp_path: Path
) -> None:
    clock.now = _at("2026-01-05T09:00:00")
    ok(api.post("/companies", json=CLIENT), 201)
    path = tmp_path / "deals.csv"
    body = (
        DEAL.format(status="won", paid="60000", project="approval,olga.pm,2025-04-01,,130000")
        + more(
            "D-1",
            invoice_number="S-2",
            invoiced="50000",
            invoiced_on="2025-02-20",
            organisation="simplified",
            paid="50000",
            paid_on="2025-03-21",
        )
        + more("D-1", invoice_number="S-1", paid="40000", paid_on="2025-04-02")
    )
    path.write_text(HEADER + body, encoding="utf-8")
    done = run(source, clock, path, "deals")
    assert (done.status, done.imported, done.refused) == ("imported", 3, 0), done.errors
    deal_id = record_id("deals", "id:D-1")
    project_id = project_id_for_deal(deal_id)
    made = project.fold([r.event for r in source.store.load(project_id)])
    assert made is not None
    assert (made.deal_id, made.status, made.pm, made.planned_start, made.amount) == (
        deal_id,
        "approval",
        "olga.pm",
        date(2025, 4, 1),
        Decimal("130000"),
    )
    assert made.created_at == _at("2025-03-20")  # opened when the deal was won
    bills = billing.fold(
        [r.event for r in source.store.load(billing.billing_stream_id(project_id))]
    )
    assert bills is not None
    assert [(i.number, i.amount, i.paid) for i in bills.invoices] == [
        ("S-1", Decimal("100000"), Decimal("100000")),
        ("S-2", Decimal("50000"), Decimal("50000")),
    ]
    position = source.store.last_position()
    wait = {"min_position": position}
    march = {**wait, "from": "2025-03-01", "to": "2025-03-31"}
    growth = ok(api.get("/reports/check-growth", params=march))
    assert [(i["deal_id"], Decimal(i["paid"])) for i in growth["items"]] == [
        (str(deal_id), Decimal(150000))
    ]
    card = ok(api.get("/clients/monolit", params=wait))
    assert Decimal(str(card["totals"]["lifetime_value"])) == Decimal(150000)
    assert Decimal(str(card["totals"]["invoiced"])) == Decimal(150000)
    listed = ok(api.get("/deals", params=wait))["items"]
    assert [(d["invoices"], Decimal(d["invoiced_total"])) for d in listed] == [(2, Decimal(150000))]
    revenue = ok(api.get("/reports/revenue-cap", params={**wait, "year": 2025}))
    booked = {o["organisation"]: o for o in revenue["organisations"]}["simplified"]
    assert Decimal(str(booked["booked"])) == Decimal(50000)


def test_bad_continuation_and_project_cells_get_their_row_and_column(
    source: Platform, api: TestClient, clock: FakeClock, tmp_path: Path
) -> None:
    clock.now = _at("2026-01-05T09:00:00")
    rows = [
        DEAL.format(status="won", paid="60000", project="nowhere,,,,"),  # 2: no such status
        DEAL.format(status="open", paid="", project="approval,,,,")
        .replace("D-1", "D-2")
        .replace(",2025-03-25,", ",,"),  # 3: an open deal makes no project
        DEAL.format(status="won", paid="", project=",,,,")
        .replace("D-1", "D-3")
        .replace(",2025-03-25,", ",,"),  # 4: good
        more(
            "D-3",
            invoice_number="S-1",
            invoiced="10",
            invoiced_on="2025-03-16",
            organisation="main",
        ),  # 5: S-1 taken
        more("D-3", invoice_number="S-2", invoiced="10", organisation="main"),  # 6: no day
        more("D-3", invoice_number="S-9", paid="5", paid_on="2025-03-21"),  # 7: no invoice S-9
        more("D-3", invoice_number="S-1", paid="100000.01", paid_on="2025-03-21"),  # 8: over
        more("D-3", invoice_number="S-1", paid="5", paid_on="2024-12-01"),  # 9: too early
        more(
            "D-3",
            invoice_number="S-3",
            invoiced="10",
            invoiced_on="2025-03-16",
            organisation="main",
            proposal_amount="5",
        ),  # 10: not a continuation's cell
        more("D-404", invoice_number="S-1", paid="5", paid_on="2025-03-21"),  # 11: no deal
        more("D-2", invoice_number="S-1", paid="5", paid_on="2025-03-21"),  # 12: refused deal
    ]
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    report = run_with(source, clock, path, "deals", dry_run=True)
    got = {e.row: (e.column, e.code) for e in report.errors}
    assert got == {
        2: ("project_status", "invalid_value"),
        3: ("project_status", "deal_not_won"),
        5: ("invoice_number", "invoice_number_taken"),
        6: ("invoiced_on", "invalid_value"),
        7: ("invoice_number", "invoice_not_found"),
        8: ("paid", "invalid_value"),
        9: ("paid_on", "invalid_value"),
        10: ("proposal_amount", "continuation_row"),
        11: ("external_id", "deal_not_found"),
        12: ("external_id", "deal_not_found"),
    }, report.errors
    reasons = {e.row: e.reason for e in report.errors}
    assert "row 3" in reasons[12]
    blank = DEAL.format(status="open", paid="", project=",,,,").replace("referral", "")
    path.write_text(HEADER + blank.replace(",2025-03-25,", ",,"), encoding="utf-8")
    report = run_with(source, clock, path, "deals", dry_run=True)
    assert [(e.row, e.column, e.reason) for e in report.errors] == [
        (2, "source", "'source' is required")
    ]


def test_a_deals_file_needs_the_cards_columns_though_a_continuation_row_leaves_them_empty() -> None:
    header = HEADER.strip().split(",")
    without = [h for h in header if h != "title"]
    with pytest.raises(MappingError, match=r"required field\(s\) title"):
        resolve_mapping(KIND, without)
    columns = resolve_mapping(KIND, header)
    row = more("D-1", invoice_number="S-2", paid="5", paid_on="2025-03-21").strip().split(",")
    values = columns.parse(row)
    assert continues(values)
    half = DEAL.format(status="open", paid="", project=",,,,").strip().split(",")
    half[header.index("source")] = ""
    assert not continues(columns.parse(half))  # a deal's row with a blank: refused as before


def test_a_row_without_external_id_keys_as_before_the_project_columns() -> None:
    """A file imported before the project's columns existed is 'already imported' now."""
    values = {"title": "Roof", "company_name": "Monolit LLC", "source": "referral"}
    before = tuple(f.name for f in KIND.fields if not f.name.startswith("project_"))
    assert len(before) + len(PROJECT_COLUMNS) == len(KIND.fields)
    assert KIND.key(2, values, "sha") == natural_key(values, before)
