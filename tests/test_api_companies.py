"""The company directory, the client card and the deal volume by industry, over HTTP.

Register, read, search, change (PUT with If-Match, PATCH), the duplicate refusals, a
merge and what follows it (read-only, repeat leads of the survivor, the claims moved,
the records on the survivor's card), the scope of managers and heads, and the card's
dormant rule agreeing with the dormant-clients indicator.
"""

# ruff: noqa: RUF001

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aggregates.company import with_check_digits
from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory, bearer
from tests.deal_helpers import SELLER, contracted_deal, new_deal, ok

PROPOSAL = {"services": [{"name": "transport", "price": "100.00"}]}
CONTRACT = {"number": "C-2", "signed_on": "2026-01-06"}

INN_A = with_check_digits("770708389")
INN_B = with_check_digits("500100732")
BORIS = bearer("boris", "manager")
VERA = bearer("vera", "manager")


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        yield client


def register(api: TestClient, headers: dict[str, str] = ACTOR, **card: Any) -> dict[str, Any]:
    body = {"name": "ООО «Ромашка»", **card}
    return ok(api.post("/companies", json=body, headers=headers), 201)


def read(api: TestClient, path: str, position: int = 0, **params: Any) -> Any:
    """A GET that reads the read models at ``position`` at least (read-your-writes)."""
    return api.get(path, params={"min_position": position, **params})


def lead(api: TestClient, company_id: str, manager: str = "boris", **extra: Any) -> dict[str, Any]:
    body = {
        "funnel": "out_of_court",
        "title": "Appraisal",
        "company_name": "Ромашка",
        "company_id": company_id,
        "source": "website",
        "manager": manager,
        **extra,
    }
    return ok(api.post("/leads", json=body), 201)


def repeat_of(api: TestClient, created: dict[str, Any]) -> bool:
    found = ok(read(api, f"/leads/{created['lead_id']}", created["position"]))
    repeat: bool = found["repeat"]
    return repeat


# --- the directory ----------------------------------------------------------------------


def test_register_read_search_filter_and_page(api: TestClient) -> None:
    first = register(
        api,
        tax_id=INN_A,
        kpp="770701001",
        industry="Retail",
        region="Moscow region",
        city="Москва",
        legal_address="Tverskaya 1",
        notes="key account",
    )
    register(api, name="Agro Holding", tax_id=INN_B, industry="Agriculture", city="Тверь")
    last = register(api, name="Northwind LLC", industry="retail", city="Тверь")
    record = read(api, f"/companies/{first['company_id']}", last["position"])
    assert record.status_code == 200
    assert record.headers["ETag"] == '"1"'
    body = record.json()
    assert (body["name"], body["normalised_name"], body["tax_id"], body["kpp"]) == (
        "ООО «Ромашка»",
        "ромашка",
        INN_A,
        "770701001",
    )
    assert (body["industry"], body["city"], body["legal_address"], body["notes"]) == (
        "Retail",
        "Москва",
        "Tverskaya 1",
        "key account",
    )
    assert body["in_directory"] is True
    assert body["merged_into"] is None
    assert body["created_by"] == "anna.sales"

    def names(**params: Any) -> list[str]:
        return [c["name"] for c in ok(read(api, "/companies", **params))["items"]]

    assert names(search="ромашка ооо") == ["ООО «Ромашка»"]
    assert names(search=INN_B[:5]) == ["Agro Holding"]
    assert names(industry="RETAIL") == ["Northwind LLC", "ООО «Ромашка»"]
    assert names(city="тверь", industry="agriculture") == ["Agro Holding"]
    page = ok(read(api, "/companies", limit=2, offset=2))
    assert (page["total"], len(page["items"])) == (3, 1)
    assert api.get("/companies/nobody").status_code == 404


@pytest.mark.parametrize(
    ("card", "field"),
    [
        ({"tax_id": "7707083894"}, "tax_id"),
        ({"tax_id": "12345"}, "tax_id"),
        ({"tax_id": INN_A, "kpp": "12"}, "kpp"),
        ({"kpp": "770701001"}, "kpp"),
        ({"name": "   "}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_cards_are_refused_naming_the_field(
    api: TestClient, card: dict[str, Any], field: str
) -> None:
    refused = api.post("/companies", json={"name": "Acme", **card})
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == field


def test_duplicates_are_refused_naming_the_existing_record(api: TestClient) -> None:
    first = register(api, tax_id=INN_A, city="Москва")
    existing = first["company_id"]
    same_tax = api.post("/companies", json={"name": "Something else", "tax_id": INN_A})
    assert same_tax.status_code == 409
    assert same_tax.json()["rule"] == "likely_duplicate"
    assert same_tax.json()["existing_company_id"] == existing
    assert same_tax.json()["matched"] == "tax_id"
    same_name = api.post("/companies", json={"name": '"РОМАШКА" ооо', "city": "г. Москва"})
    assert same_name.status_code == 409
    assert same_name.json()["existing_company_id"] == existing
    assert same_name.json()["matched"] == "name_in_the_same_city"
    # another city is another company; so is one said to be different, but never the tax id
    register(api, name="Ромашка", city="Тверь")
    register(api, name="Ромашка", city="Москва", different_company=True)
    forced = api.post("/companies", json={"name": "X", "tax_id": INN_A, "different_company": True})
    assert forced.status_code == 409
    assert forced.json()["existing_company_id"] == existing


def test_changing_the_card_put_needs_if_match_and_patch_changes_what_is_sent(
    api: TestClient,
) -> None:
    company_id = register(api, tax_id=INN_A, city="Москва", notes="n")["company_id"]
    path = f"/companies/{company_id}"
    missing = api.put(path, json={"name": "Ромашка"})
    assert missing.status_code == 422
    assert missing.json()["field"] == "If-Match"
    stale = api.put(path, json={"name": "Ромашка"}, headers={**ACTOR, "If-Match": '"7"'})
    assert stale.status_code == 409
    assert stale.json()["code"] == "version_conflict"
    put = ok(api.put(path, json={"name": "Ромашка", "city": "Москва"}, headers={"If-Match": '"1"'}))
    assert put["version"] == 2
    after = ok(read(api, path, put["position"]))
    assert (after["tax_id"], after["notes"], after["version"]) == (None, None, 2)
    # the tax id was released: another company may take it now
    other = register(api, name="Agro", tax_id=INN_A)
    patched = ok(api.patch(path, json={"industry": "Retail"}))
    after = ok(read(api, path, patched["position"]))
    assert (after["industry"], after["city"]) == ("Retail", "Москва")
    taken = api.patch(path, json={"tax_id": INN_A})
    assert taken.status_code == 409
    assert taken.json()["existing_company_id"] == other["company_id"]
    same = api.patch(path, json={"industry": "Retail"})
    assert (same.status_code, same.json()["rule"]) == (409, "company_unchanged")
    assert api.patch("/companies/nobody", json={"notes": "x"}).status_code == 404


def test_a_company_first_seen_on_a_lead_is_a_record_with_its_name(api: TestClient) -> None:
    created = lead(api, "romashka-msk")
    record = ok(read(api, "/companies/romashka-msk", created["position"]))
    assert (record["name"], record["in_directory"], record["first_lead_id"]) == (
        "Ромашка",
        False,
        created["lead_id"],
    )
    assert record["tax_id"] is None
    filled = ok(api.patch("/companies/romashka-msk", json={"tax_id": INN_A, "city": "Москва"}))
    assert ok(read(api, "/companies/romashka-msk", filled["position"]))["in_directory"] is True
    refused = api.post("/companies", json={"name": "Romashka", "tax_id": INN_A})
    assert refused.json()["existing_company_id"] == "romashka-msk"


def test_the_first_lead_of_a_directory_company_is_new_and_later_ones_repeat(
    api: TestClient,
) -> None:
    company_id = register(api)["company_id"]
    first = lead(api, company_id)
    assert repeat_of(api, first) is False
    assert repeat_of(api, lead(api, company_id)) is True
    # a company never seen: its first lead is new as before
    assert repeat_of(api, lead(api, "brand-new")) is False
    assert repeat_of(api, lead(api, "brand-new")) is True


# --- merging ----------------------------------------------------------------------------


def test_a_merge_leaves_the_duplicate_read_only_under_its_survivor(api: TestClient) -> None:
    survivor = register(api, tax_id=INN_A, city="Москва", industry="Retail")["company_id"]
    duplicate = "romashka-old"
    old_lead = lead(api, duplicate)
    ok(api.patch(f"/companies/{duplicate}", json={"tax_id": INN_B, "city": "Тверь"}))
    merged = ok(api.post(f"/companies/{duplicate}/merge", json={"into": survivor}))
    record = ok(read(api, f"/companies/{duplicate}", merged["position"]))
    assert (record["merged_into"], record["merged_into_name"]) == (survivor, "ООО «Ромашка»")
    kept = ok(read(api, f"/companies/{survivor}"))
    assert kept["merged"] == [{"company_id": duplicate, "name": "Ромашка"}]
    assert kept["absorbed"] == 1
    # read-only, and not listed by default
    refused = api.patch(f"/companies/{duplicate}", json={"notes": "x"})
    assert (refused.status_code, refused.json()["rule"]) == (409, "company_merged")
    assert refused.json()["merged_into"] == survivor
    again = api.post(f"/companies/{survivor}/merge", json={"into": duplicate})
    assert (again.status_code, again.json()["rule"]) == (409, "company_merged")
    listed = ok(read(api, "/companies"))["items"]
    assert [c["company_id"] for c in listed] == [survivor]
    # its tax id went with it: registering it again names the survivor
    moved = api.post("/companies", json={"name": "New", "tax_id": INN_B})
    assert moved.json()["existing_company_id"] == survivor
    # the survivor had no lead of its own: the merged one's lead counts for it
    assert repeat_of(api, lead(api, survivor)) is True
    later = lead(api, duplicate)
    assert repeat_of(api, later) is True
    # the survivor's card holds the duplicate's leads; the duplicate's card is the survivor's
    card = ok(read(api, f"/clients/{duplicate}", later["position"]))
    assert card["company"]["company_id"] == survivor
    assert card["asked_for"] == duplicate
    assert sorted(card["company_ids"]) == sorted([survivor, duplicate])
    leads = {e["record_id"] for e in card["items"] if e["kind"] == "lead_created"}
    assert old_lead["lead_id"] in leads
    assert later["lead_id"] in leads
    # the history shows the merge
    history = ok(api.get(f"/companies/{duplicate}/history"))["events"]
    assert [e["type"] for e in history] == [
        "CompanyRegistered",
        "CompanyCardChanged",
        "CompanyMerged",
    ]
    survivor_history = ok(api.get(f"/companies/{survivor}/history"))["events"]
    assert "CompanyAbsorbed" in [e["type"] for e in survivor_history]


def test_merge_refusals(api: TestClient) -> None:
    company_id = register(api)["company_id"]
    itself = api.post(f"/companies/{company_id}/merge", json={"into": company_id})
    assert (itself.status_code, itself.json()["field"]) == (422, "into")
    unknown = api.post(f"/companies/{company_id}/merge", json={"into": "nobody"})
    assert (unknown.status_code, unknown.json()["field"]) == (422, "into")
    assert api.post("/companies/nobody/merge", json={"into": company_id}).status_code == 404
    manager = api.post(f"/companies/{company_id}/merge", json={"into": "x"}, headers=BORIS)
    assert manager.status_code == 403


# --- scope ------------------------------------------------------------------------------


def test_a_manager_sees_the_companies_of_their_records_and_those_they_registered(
    api: TestClient,
) -> None:
    boris_lead = lead(api, "boris-client", manager="boris")
    lead(api, "vera-client", manager="vera")
    own = register(api, headers=BORIS, name="Boris Own")
    position = own["position"]
    listed = api.get("/companies", params={"min_position": position}, headers=BORIS).json()
    assert sorted(c["company_id"] for c in listed["items"]) == sorted(
        ["boris-client", own["company_id"]]
    )
    assert api.get("/companies/vera-client", headers=BORIS).status_code == 404
    assert api.get("/clients/vera-client", headers=BORIS).status_code == 404
    assert api.get("/companies/vera-client/history", headers=BORIS).status_code == 404
    refused = api.patch("/companies/vera-client", json={"notes": "x"}, headers=BORIS)
    assert refused.status_code == 404
    assert api.get("/companies/boris-client", headers=BORIS).status_code == 200
    card = ok(api.get("/clients/boris-client", headers=BORIS))
    assert [e["record_id"] for e in card["items"]] == [boris_lead["lead_id"]]
    assert api.get("/companies/boris-client", headers=VERA).status_code == 404
    # a client direction held shows the company too
    held = {"company_id": "vera-client", "direction": "turnkey", "manager": "boris"}
    assigned = ok(api.post("/client-assignments", json=held))
    assert read(api, "/companies/vera-client", assigned["position"]).status_code == 200
    assert api.get("/companies/vera-client", headers=BORIS).status_code == 200


def test_the_event_feed_shows_a_scoped_viewer_the_events_of_the_companies_they_see(
    api: TestClient, platform: Platform
) -> None:
    lead(api, "boris-client", manager="boris")
    lead(api, "vera-client", manager="vera")
    own = register(api, headers=BORIS, name="Boris Own", city="Тверь")
    ok(api.patch("/companies/boris-client", json={"city": "Тверь", "industry": "Retail"}))
    contact = {"name": "Ivan", "companies": ["boris-client"], "phones": ["+79123450001"]}
    ok(api.post("/contacts", json=contact, headers=BORIS), 201)
    ok(api.post("/contacts", json={"name": "Olga", "companies": ["vera-client"]}), 201)
    head = platform.store.last_position()
    assert platform.projector.wait_for(head, 10)

    def company_events(headers: dict[str, str]) -> set[tuple[str, str]]:
        feed = ok(api.get("/events", params={"limit": 1000}, headers=headers))
        assert feed["next_after"] == head
        return {
            (e["type"], e["data"].get("company_id") or e["data"].get("name"))
            for e in feed["items"]
            if e["type"].startswith(("Company", "Contact"))
            and not e["type"].endswith(("Claimed", "Released"))
        }

    assert company_events(BORIS) == {
        ("CompanyRegistered", "boris-client"),
        ("CompanyCardChanged", "boris-client"),
        ("CompanyAddedToDirectory", own["company_id"]),
        ("ContactRegistered", "Ivan"),
    }
    vera = company_events(VERA)
    assert ("CompanyRegistered", "vera-client") in vera
    assert not {e for e in vera if e[1] in ("boris-client", own["company_id"], "Ivan")}
    everything = company_events(ACTOR)
    assert ("CompanyRegistered", "vera-client") in everything
    assert ("ContactRegistered", "Olga") in everything
    assert len(everything) == 6


# --- the client card --------------------------------------------------------------------


def invoiced_deal(api: TestClient, number: str, amount: str) -> str:
    """A contracted deal of the client ``agro-holding`` (tests.deal_helpers), invoiced."""
    deal_id = contracted_deal(api)
    invoice = {"number": number, "amount": amount, "organisation": "main"}
    ok(api.post(f"/deals/{deal_id}/invoice", json=invoice))
    return deal_id


def test_the_client_card_timeline_and_totals(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    deal_id = invoiced_deal(api, "INV-1", "300.00")
    clock.advance(days=1)
    project = ok(
        api.post(
            "/projects",
            json={"title": "Survey", "company_name": "Agro Holding", "company_id": "agro-holding"},
        ),
        201,
    )
    project_id = project["project_id"]
    invoice = {"number": "P-1", "amount": "500.00", "due_date": "2026-02-01"}
    ok(api.post(f"/projects/{project_id}/invoices", json=invoice), 201)
    clock.advance(days=1)
    paid = ok(
        api.post(
            f"/projects/{project_id}/invoices/P-1/payments",
            json={"amount": "200.00", "paid_on": "2026-01-07"},
        ),
        201,
    )
    card = ok(read(api, "/clients/agro-holding", paid["position"]))
    totals = card["totals"]
    assert Decimal(totals["lifetime_value"]) == Decimal("200.00")
    assert Decimal(totals["invoiced"]) == Decimal("800.00")
    assert Decimal(totals["invoiced_on_deals"]) == Decimal("300.00")
    assert totals["open_deals"] == 1
    assert totals["last_interaction_at"].startswith("2026-01-07")
    assert totals["dormant_since"] is None
    kinds = [e["kind"] for e in card["items"]]
    assert kinds[0] == "payment"
    assert {"lead_created", "deal_created", "invoice", "project_created"} <= set(kinds)
    times = [e["at"] for e in card["items"]]
    assert times == sorted(times, reverse=True)
    assert card["total"] == len(card["items"])
    second = ok(read(api, "/clients/agro-holding", limit=2, offset=2))
    assert second["items"] == card["items"][2:4]
    assert deal_id in {e["record_id"] for e in card["items"]}

    # two years and a day later the client is dormant, as the indicator says
    clock.advance(days=740)
    later = ok(api.get("/clients/agro-holding"))["totals"]
    dormant = ok(api.get("/reports/dormant-clients"))["items"]
    assert [d["company_id"] for d in dormant] == ["agro-holding"]
    assert later["last_invoice_on"] == dormant[0]["last_invoice_on"]
    assert later["dormant_since"] is not None
    assert later["dormant_since"] > later["last_invoice_on"]


def test_the_sales_reports_count_a_merged_companys_records_as_the_survivors(
    api: TestClient, clock: FakeClock
) -> None:
    invoiced_deal(api, "INV-1", "300.00")
    clock.advance(days=1)
    duplicate = new_deal(api, funnel="upsell", company_name="Agro Dup", company_id="agro-dup")
    ok(api.post(f"/deals/{duplicate}/proposal", json=PROPOSAL, headers=SELLER))
    ok(api.post(f"/deals/{duplicate}/contract", json=CONTRACT, headers=SELLER))
    invoice = {"number": "INV-2", "amount": "200.00", "organisation": "main"}
    ok(api.post(f"/deals/{duplicate}/invoice", json=invoice))
    january = {"from": "2026-01-01", "to": "2026-01-31"}

    def clients(position: int) -> tuple[Any, Any, Any]:
        invoices = ok(read(api, "/reports/invoices", position, **january))
        growth = ok(read(api, "/reports/new-clients", position, **january))
        clock.advance(days=800)
        dormant = ok(read(api, "/reports/dormant-clients", position))
        clock.advance(days=-800)
        return (
            sorted((c["company_id"], c["company_name"], c["count"]) for c in invoices["clients"]),
            (growth["totals"]["count"], sorted(c["company_id"] for c in growth["items"])),
            sorted((c["company_id"], c["invoices"]) for c in dormant["items"]),
        )

    before = clients(api.app.state.platform.store.last_position())  # type: ignore[attr-defined]
    assert before[0] == [("agro-dup", "Agro Dup", 1), ("agro-holding", "Agro Holding", 1)]
    assert before[1] == (2, ["agro-dup", "agro-holding"])
    merged = ok(api.post("/companies/agro-dup/merge", json={"into": "agro-holding"}))
    invoices, growth, dormant = clients(merged["position"])
    assert invoices == [("agro-holding", "Agro Holding", 2)]
    assert growth == (1, ["agro-holding"])
    assert dormant == [("agro-holding", 2)]


def test_the_deal_volume_by_industry_report(api: TestClient) -> None:
    deal_id = invoiced_deal(api, "INV-9", "100.00")
    filled = ok(api.patch("/companies/agro-holding", json={"industry": "Agriculture"}))
    report = ok(read(api, "/reports/deal-volume-by-industry", filled["position"]))
    [row] = report["items"]
    assert (row["industry"], row["count"], row["open_count"]) == ("Agriculture", 1, 1)
    assert report["totals"]["count"] == 1
    won = ok(api.post(f"/deals/{deal_id}/close", json={"outcome": "won"}))
    period = {"from": "2026-01-01", "to": "2026-01-31"}
    report = ok(read(api, "/reports/deal-volume-by-industry", won["position"], **period))
    assert report["items"][0]["won_count"] == 1
    later = api.get("/reports/deal-volume-by-industry", params={"from": "2027-01-01"})
    assert ok(later)["items"] == []
    workbook = api.get("/reports/deal-volume-by-industry", params={"format": "xlsx"})
    assert workbook.status_code == 200
    assert workbook.content[:2] == b"PK"
