"""Helpers for the deal tests: getting a lead to a deal over HTTP, and the actors."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import bearer

SELLER = bearer("anna.sales")
LOGISTICIAN = bearer("lev.logistics", "department", "logistics")
ENGINEER = bearer("egor.engineering", "department", "engineering")


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def qualified_lead(client: TestClient, **card: Any) -> str:
    body = {
        "funnel": "out_of_court",
        "title": "Transport of a tractor",
        "company_name": "Agro Holding",
        "company_id": "agro-holding",
        "source": "phone",
        "manager": "anna.sales",
        **card,
    }
    lead_id: str = ok(client.post("/leads", json=body, headers=SELLER), 201)["lead_id"]
    assessment = {"expert": "eve.expert", "result": "feasible", "hours": "1.5"}
    ok(client.post(f"/leads/{lead_id}/assessment", json=assessment, headers=SELLER))
    ok(client.post(f"/leads/{lead_id}/qualification", json={"quality": True}, headers=SELLER))
    return lead_id


def new_deal(client: TestClient, funnel: str = "transport", **card: Any) -> str:
    lead_id = qualified_lead(client, **card)
    response = client.post(f"/leads/{lead_id}/deal", json={"funnel": funnel}, headers=SELLER)
    deal_id: str = ok(response, 201)["deal_id"]
    return deal_id


def register_contractor(client: TestClient, name: str = "HeavyHaul LLC") -> str:
    body = {"name": name, "services": ["heavy haulage", "crane"], "contacts": "+7 900 000"}
    contractor_id: str = ok(client.post("/contractors", json=body, headers=SELLER), 201)[
        "contractor_id"
    ]
    return contractor_id


def contracted_deal(client: TestClient) -> str:
    deal_id = new_deal(client, funnel="upsell")
    proposal = {"services": [{"name": "transport", "price": "100.00"}]}
    ok(client.post(f"/deals/{deal_id}/proposal", json=proposal, headers=SELLER))
    contract = {"number": "C-1", "signed_on": "2026-01-06"}
    ok(client.post(f"/deals/{deal_id}/contract", json=contract, headers=SELLER))
    return deal_id
