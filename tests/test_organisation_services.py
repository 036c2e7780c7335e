"""Each organisation sells only its allowed services (seed 002: «ограничить пул
предоставляемых услуг от организаций компании»).

``services`` of an organisation in rules.toml (absent: any). A proposal naming its
organisation, an invoice of a deal (checked against the deal's proposal services) and an
invoice issued on a project naming an organisation (checked against its won deal's
proposal services) may not name a service outside the list: 409 ``rule_violation``
``organisation_service_not_allowed`` naming the service and the organisation.
"""

from __future__ import annotations

import time
import tomllib
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import pytest
from fastapi.testclient import TestClient

from aggregates import deal
from aggregates.deal import (
    DealProposalRecorded,
    IssueInvoice,
    RecordContract,
    RecordProposal,
    ServiceLine,
)
from aggregates.errors import RuleViolation
from aggregates.rules import Rules
from commands.projects import project_id_for_deal
from leadledger.settings import DEFAULT_FUNNELS_FILE, DEFAULT_RULES_FILE
from leadledger.wiring import event_codec
from tests.deal_helpers import SELLER, new_deal, ok
from tests.gwt_deals import DEAL, RULES
from tests.test_deal_rules import CONTRACT
from tests.test_deal_rules import deal as deal_events

SURVEY = ServiceLine("survey", Decimal("100.00"))
HAULAGE = ServiceLine("haulage", Decimal("50.00"))


def test_the_demo_organisations_services() -> None:
    assert RULES.organisations["main"].services is None  # sells anything
    simplified = RULES.organisations["simplified"]
    assert simplified.services is not None
    assert "survey" in simplified.services
    assert not simplified.allows("haulage")


def test_a_proposal_of_an_organisation_outside_its_services_is_refused_naming_both() -> None:
    refusal = (
        DEAL.given(*deal_events())
        .when(RecordProposal((SURVEY, HAULAGE), "simplified"))
        .then_violates("organisation_service_not_allowed")
    )
    assert isinstance(refusal, RuleViolation)
    assert refusal.details == {"service": "haulage", "organisation": "simplified"}
    assert "haulage" in refusal.message
    assert "simplified" in refusal.message


def test_a_proposal_of_an_organisation_within_its_services_names_it() -> None:
    accepted = (
        DEAL.given(*deal_events())
        .when(RecordProposal((SURVEY,), "simplified"))
        .then(DealProposalRecorded, organisation="simplified", total=Decimal("100.00"))
    )
    assert accepted.state.proposal is not None
    assert accepted.state.proposal.organisation == "simplified"


def test_a_proposal_naming_no_organisation_is_not_held_to_a_list() -> None:
    DEAL.given(*deal_events()).when(RecordProposal((HAULAGE,))).then(organisation=None)


def test_a_proposal_naming_an_unknown_organisation_is_invalid() -> None:
    DEAL.given(*deal_events()).when(RecordProposal((SURVEY,), "offshore")).then_invalid(
        field="organisation"
    )


def test_an_invoice_is_held_to_the_proposals_services() -> None:
    sold = deal_events(RecordProposal((SURVEY, HAULAGE)), CONTRACT)
    refusal = (
        DEAL.given(*sold)
        .when(IssueInvoice("INV-1", Decimal(10), "simplified"))
        .then_violates("organisation_service_not_allowed")
    )
    assert isinstance(refusal, RuleViolation)
    assert refusal.details == {"service": "haulage", "organisation": "simplified"}
    DEAL.given(*sold).when(IssueInvoice("INV-1", Decimal(10), "main")).then(organisation="main")


def test_proposals_recorded_before_organisations_read_as_naming_none() -> None:
    codec = event_codec()
    recorded = DEAL.given(*deal_events()).when(RecordProposal((SURVEY,), "simplified")).then()
    stored = orjson.loads(codec.encode(recorded.event))
    stored.pop("organisation")
    stored["schema_version"] = 1
    old = codec.decode("DealProposalRecorded", orjson.dumps(stored))
    assert isinstance(old, DealProposalRecorded)
    assert old.organisation is None
    assert old.services == (SURVEY,)


@pytest.mark.parametrize("services", ["survey", [""], [1]])
def test_a_services_list_that_is_no_list_of_names_is_a_configuration_error(
    services: Any,
) -> None:
    funnels = tomllib.loads(DEFAULT_FUNNELS_FILE.read_text())
    rules = tomllib.loads(DEFAULT_RULES_FILE.read_text())
    rules["organisations"]["simplified"]["services"] = services
    with pytest.raises(ValueError, match="services"):
        Rules.from_config(funnels, rules)


def test_a_contract_keeps_working_after_an_organisations_proposal() -> None:
    DEAL.given(*deal_events(RecordProposal((SURVEY,), "simplified"))).when(
        RecordContract("C-1", CONTRACT.signed_on)
    ).then()


# --- over HTTP ---------------------------------------------------------------------------


def project_of(client: TestClient, deal_id: str) -> UUID:
    """The won deal's project, once the project-creation process has made it."""
    project_id = project_id_for_deal(UUID(deal_id))
    for _ in range(200):
        if client.get(f"/projects/{project_id}").status_code == 200:
            return project_id
        time.sleep(0.05)
    raise AssertionError(f"the won deal {deal_id} never became project {project_id}")


def _proposal(client: TestClient, deal_id: str, *names: str, **extra: Any) -> Any:
    services = [{"name": n, "price": "100.00"} for n in names]
    return client.post(
        f"/deals/{deal_id}/proposal", json={"services": services, **extra}, headers=SELLER
    )


def test_over_http_a_proposal_outside_the_list_is_409_naming_service_and_organisation(
    client: TestClient,
) -> None:
    deal_id = new_deal(client, funnel="upsell")
    refused = _proposal(client, deal_id, "survey", "haulage", organisation="simplified")
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert (body["code"], body["rule"]) == ("rule_violation", "organisation_service_not_allowed")
    assert (body["service"], body["organisation"]) == ("haulage", "simplified")
    ok(_proposal(client, deal_id, "survey", organisation="simplified"))
    detail = ok(client.get(f"/deals/{deal_id}"))
    assert detail["proposal"]["organisation"] == "simplified"


def test_over_http_an_invoice_outside_the_list_is_409(client: TestClient) -> None:
    deal_id = new_deal(client, funnel="upsell")
    ok(_proposal(client, deal_id, "haulage"))
    contract = {"number": "C-1", "signed_on": "2026-01-05"}
    ok(client.post(f"/deals/{deal_id}/contract", json=contract, headers=SELLER))
    invoice = {"number": "INV-1", "amount": "10.00", "organisation": "simplified"}
    refused = client.post(f"/deals/{deal_id}/invoice", json=invoice, headers=SELLER)
    assert refused.status_code == 409, refused.text
    assert (refused.json()["rule"], refused.json()["service"]) == (
        "organisation_service_not_allowed",
        "haulage",
    )
    ok(client.post(f"/deals/{deal_id}/invoice", json=invoice | {"organisation": "main"}))


def test_over_http_a_project_invoice_is_held_to_its_deals_services(client: TestClient) -> None:
    deal_id = new_deal(client, funnel="upsell")
    ok(_proposal(client, deal_id, "haulage"))
    contract = {"number": "C-1", "signed_on": "2026-01-05"}
    ok(client.post(f"/deals/{deal_id}/contract", json=contract, headers=SELLER))
    invoice = {"number": "INV-1", "amount": "10.00", "organisation": "main"}
    ok(client.post(f"/deals/{deal_id}/invoice", json=invoice, headers=SELLER))
    ok(client.post(f"/deals/{deal_id}/close", json={"outcome": "won"}, headers=SELLER))
    project_id = project_of(client, deal_id)
    body = {"number": "P-1", "amount": "5.00", "due_date": "2026-02-01"}
    url = f"/projects/{project_id}/invoices"
    refused = client.post(url, json=body | {"organisation": "simplified"})
    assert refused.status_code == 409, refused.text
    assert (refused.json()["rule"], refused.json()["organisation"]) == (
        "organisation_service_not_allowed",
        "simplified",
    )
    unknown = client.post(url, json=body | {"organisation": "offshore"})
    assert (unknown.status_code, unknown.json()["field"]) == (422, "organisation")
    ok(client.post(url, json=body | {"organisation": "main"}), 201)


def test_rules_without_services_sell_anything() -> None:
    config: Rules = RULES
    assert all(o.allows("anything") for o in config.organisations.values() if o.services is None)
    assert deal.Proposal((SURVEY,), Decimal(100)).organisation is None
