"""GET /funnels, GET /reports/funnel and GET /health through HTTP (issue 2, §2, §4).

The funnel report's expected figures are computed here, independently of the
application, from a small scenario whose facts are written down lead by lead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ACTOR, FakeClock, create, iso

COURT = [
    "request_received",
    "assessment",
    "answer_given",
    "competitors_reviewed",
    "expertise_appointed",
    "expertise_declined",
]
OUT_OF_COURT = ["new", "assessment", "proposal_preparation", "proposal_sent", "contract", "invoice"]


def ok(client: TestClient, lead_id: str, name: str, body: dict[str, Any] | None = None) -> int:
    response = client.post(f"/leads/{lead_id}/{name}", json=body, headers=ACTOR)
    assert response.status_code == 200, (name, response.text)
    position: int = response.json()["position"]
    return position


def report(client: TestClient, position: int, **params: str) -> dict[str, Any]:
    response = client.get("/reports/funnel", params={"min_position": position, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_invalid(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field, body
    assert body["code"] == "invalid_request", body
    assert body["detail"], body


# --- GET /funnels -------------------------------------------------------------------------


def test_funnels_lists_both_funnels_with_ordered_stages(client: TestClient) -> None:
    response = client.get("/funnels")
    assert response.status_code == 200
    funnels = {f["id"]: f for f in response.json()}
    assert set(funnels) == {"court", "out_of_court"}

    court, ooc = funnels["court"], funnels["out_of_court"]
    assert [s["id"] for s in court["stages"]] == COURT
    assert [s["id"] for s in ooc["stages"]] == OUT_OF_COURT
    assert court["name"] == "Court leads"
    assert ooc["name"] == "Out-of-court leads"
    # expertise appointed | declined: alternative outcomes at one step
    assert [s["step"] for s in court["stages"]] == [0, 1, 2, 3, 4, 4]
    assert [s["step"] for s in ooc["stages"]] == [0, 1, 2, 3, 4, 5]
    assert [s["name"] for s in ooc["stages"]] == [
        "New",
        "Assessment",
        "Proposal preparation",
        "Proposal sent",
        "Contract",
        "Invoice",
    ]
    assert court["stages"][0]["time_limit_hours"] == 24
    assert court["stages"][4]["time_limit_hours"] is None
    assert all(set(s) == {"id", "name", "step", "time_limit_hours"} for s in court["stages"])


# --- GET /reports/funnel ------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """What the test knows about a lead once the scenario has run."""

    name: str
    day: int
    funnel: str
    stage: str
    furthest: str
    """The furthest stage the lead reached in its current funnel."""
    amount: Decimal
    repeat: bool
    non_quality: bool = False


def _step_of(funnels: dict[str, Any]) -> Callable[[str, str], int]:
    steps = {(f["id"], s["id"]): s["step"] for f in funnels.values() for s in f["stages"]}
    return lambda funnel, stage: steps[(funnel, stage)]


def expected_report(
    facts: list[Fact], funnel: dict[str, Any], step_of: Callable[[str, str], int]
) -> dict[str, Any]:
    """The report computed by hand from the facts, as plain Python numbers."""
    mine = [f for f in facts if f.funnel == funnel["id"]]
    last_step = max(s["step"] for s in funnel["stages"])

    def reached(step: int) -> int:
        return sum(1 for f in mine if step_of(f.funnel, f.furthest) >= step)

    stages = []
    for s in funnel["stages"]:
        here = [f for f in mine if f.stage == s["id"] and not f.non_quality]
        next_step = s["step"] + 1
        conversion = (
            None
            if next_step > last_step or reached(s["step"]) == 0
            else reached(next_step) / reached(s["step"])
        )
        stages.append(
            {
                "stage": s["id"],
                "count": len(here),
                "amount": sum((f.amount for f in here), Decimal(0)),
                "reached": reached(s["step"]),
                "conversion_to_next": conversion,
            }
        )

    def pair(subset: list[Fact]) -> dict[str, Any]:
        return {"count": len(subset), "amount": sum((f.amount for f in subset), Decimal(0))}

    return {
        "stages": stages,
        "totals": pair(mine),
        "non_quality": pair([f for f in mine if f.non_quality]),
        "new": pair([f for f in mine if not f.repeat]),
        "repeat": pair([f for f in mine if f.repeat]),
    }


def assert_report(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert [s["stage"] for s in actual["stages"]] == [s["stage"] for s in expected["stages"]]
    for got, want in zip(actual["stages"], expected["stages"], strict=True):
        label = want["stage"]
        assert got["count"] == want["count"], label
        assert Decimal(got["amount"]) == want["amount"], label
        assert got["reached"] == want["reached"], label
        if want["conversion_to_next"] is None:
            assert got["conversion_to_next"] is None, label
        else:
            assert got["conversion_to_next"] == pytest.approx(
                want["conversion_to_next"], abs=1e-4
            ), label
    for key in ("totals", "non_quality", "new", "repeat"):
        assert actual[key]["count"] == expected[key]["count"], key
        assert Decimal(actual[key]["amount"]) == expected[key]["amount"], key


@pytest.fixture
def scenario(client: TestClient, clock: FakeClock) -> dict[str, Any]:
    """Ten leads created a day apart; returns the facts, the start and the last position."""
    start = clock.now
    facts: list[Fact] = []

    def day() -> int:
        return (clock.now - start).days

    # L1: stays in New; its amount comes from a cost breakdown. First lead of company A.
    l1 = create(client, amount="100", company_id="A")["lead_id"]
    ok(
        client,
        l1,
        "cost",
        {
            "components": [
                {"name": "survey", "amount": "60"},
                {"name": "report", "amount": "40.50"},
            ]
        },
    )
    facts.append(Fact("L1", day(), "out_of_court", "new", "new", Decimal("100.50"), False))
    clock.advance(days=1)

    # L2: company A again (repeat); two steps forward; amount edited on the card.
    l2 = create(client, amount="200", company_id="A")["lead_id"]
    ok(client, l2, "stage", {"stage": "assessment"})
    ok(client, l2, "stage", {"stage": "proposal_preparation"})
    ok(client, l2, "card", {"amount": "250"})
    facts.append(
        Fact(
            "L2",
            day(),
            "out_of_court",
            "proposal_preparation",
            "proposal_preparation",
            Decimal("250"),
            True,
        )
    )
    clock.advance(days=1)

    # L3: forward to Proposal sent, then back to Assessment.
    l3 = create(client, amount="300")["lead_id"]
    ok(client, l3, "stage", {"stage": "proposal_sent"})
    ok(client, l3, "stage", {"stage": "assessment"})
    facts.append(
        Fact("L3", day(), "out_of_court", "assessment", "proposal_sent", Decimal("300"), False)
    )
    clock.advance(days=1)

    # L4: first lead of company B; assessed and qualified non-quality at Assessment.
    l4 = create(client, amount="400", company_id="B")["lead_id"]
    ok(client, l4, "stage", {"stage": "assessment"})
    ok(client, l4, "assessment", {"expert": "eva", "result": "no case", "hours": 2})
    ok(client, l4, "qualification", {"quality": False, "reason": "no case"})
    facts.append(
        Fact(
            "L4",
            day(),
            "out_of_court",
            "assessment",
            "assessment",
            Decimal("400"),
            False,
            non_quality=True,
        )
    )
    clock.advance(days=1)

    # L5: created in court, moved there, then transferred to out_of_court's Contract.
    l5 = create(client, funnel="court", amount="500")["lead_id"]
    ok(client, l5, "stage", {"stage": "answer_given"})
    ok(client, l5, "transfer", {"funnel": "out_of_court", "stage": "contract"})
    facts.append(Fact("L5", day(), "out_of_court", "contract", "contract", Decimal("500"), False))
    clock.advance(days=1)

    # L6: created in out_of_court, moved on, then transferred to court (its first stage).
    l6 = create(client, amount="600")["lead_id"]
    ok(client, l6, "stage", {"stage": "proposal_sent"})
    ok(client, l6, "transfer", {"funnel": "court"})
    facts.append(
        Fact("L6", day(), "court", "request_received", "request_received", Decimal("600"), False)
    )
    clock.advance(days=1)

    # L7: company B again (repeat); jumps to Invoice and is won.
    l7 = create(client, amount="700", company_id="B")["lead_id"]
    ok(client, l7, "stage", {"stage": "invoice"})
    ok(client, l7, "close", {"outcome": "won"})
    facts.append(Fact("L7", day(), "out_of_court", "invoice", "invoice", Decimal("700"), True))
    clock.advance(days=1)

    # L8: paused in New.
    l8 = create(client, amount="50.25")["lead_id"]
    ok(client, l8, "pause", {"reason": "client away"})
    facts.append(Fact("L8", day(), "out_of_court", "new", "new", Decimal("50.25"), False))
    clock.advance(days=1)

    # L9: court, expertise declined (an alternative outcome at the last step).
    l9 = create(client, funnel="court", amount="900", company_id="C")["lead_id"]
    ok(client, l9, "stage", {"stage": "expertise_declined"})
    facts.append(
        Fact(
            "L9", day(), "court", "expertise_declined", "expertise_declined", Decimal("900"), False
        )
    )
    clock.advance(days=1)

    # L10: Contract, then lost.
    l10 = create(client, amount="1000")["lead_id"]
    ok(client, l10, "stage", {"stage": "contract"})
    last = ok(client, l10, "close", {"outcome": "lost", "reason": "price"})
    facts.append(Fact("L10", day(), "out_of_court", "contract", "contract", Decimal("1000"), False))

    funnels = {f["id"]: f for f in client.get("/funnels").json()}
    return {"facts": facts, "start": start, "position": last, "funnels": funnels}


def test_out_of_court_report(client: TestClient, scenario: dict[str, Any]) -> None:
    funnels = scenario["funnels"]
    actual = report(client, scenario["position"], funnel="out_of_court")

    assert actual["funnel"] == "out_of_court"
    assert actual["created_from"] is None
    assert actual["created_to"] is None
    assert [s["step"] for s in actual["stages"]] == [0, 1, 2, 3, 4, 5]
    assert [s["name"] for s in actual["stages"]] == [
        s["name"] for s in funnels["out_of_court"]["stages"]
    ]
    assert_report(
        actual, expected_report(scenario["facts"], funnels["out_of_court"], _step_of(funnels))
    )


def test_out_of_court_report_figures_by_hand(client: TestClient, scenario: dict[str, Any]) -> None:
    """The same report with the figures written out, as a check on the test's own model."""
    actual = report(client, scenario["position"], funnel="out_of_court")
    rows = {s["stage"]: s for s in actual["stages"]}

    assert {k: (v["count"], Decimal(v["amount"])) for k, v in rows.items()} == {
        "new": (2, Decimal("150.75")),  # L1, L8 (paused counts)
        "assessment": (1, Decimal("300")),  # L3; non-quality L4 left out
        "proposal_preparation": (1, Decimal("250")),  # L2
        "proposal_sent": (0, Decimal("0")),
        "contract": (2, Decimal("1500")),  # L5 (transferred in), L10 (lost)
        "invoice": (1, Decimal("700")),  # L7 (won)
    }
    assert [rows[s]["reached"] for s in OUT_OF_COURT] == [8, 6, 5, 4, 3, 1]
    assert [rows[s]["conversion_to_next"] for s in OUT_OF_COURT] == [
        pytest.approx(0.75, abs=1e-4),
        pytest.approx(5 / 6, abs=1e-4),
        pytest.approx(0.8, abs=1e-4),
        pytest.approx(0.75, abs=1e-4),
        pytest.approx(1 / 3, abs=1e-4),
        None,
    ]
    assert (actual["totals"]["count"], Decimal(actual["totals"]["amount"])) == (
        8,
        Decimal("3300.75"),
    )
    assert (actual["non_quality"]["count"], Decimal(actual["non_quality"]["amount"])) == (
        1,
        Decimal("400"),
    )
    assert (actual["repeat"]["count"], Decimal(actual["repeat"]["amount"])) == (2, Decimal("950"))
    assert (actual["new"]["count"], Decimal(actual["new"]["amount"])) == (6, Decimal("2350.75"))


def test_court_report_counts_the_transferred_lead_in_its_current_funnel(
    client: TestClient, scenario: dict[str, Any]
) -> None:
    funnels = scenario["funnels"]
    actual = report(client, scenario["position"], funnel="court")

    assert actual["funnel"] == "court"
    assert_report(actual, expected_report(scenario["facts"], funnels["court"], _step_of(funnels)))
    rows = {s["stage"]: s for s in actual["stages"]}
    assert rows["request_received"]["count"] == 1  # L6, transferred in from out_of_court
    assert rows["answer_given"]["count"] == 0  # L5 left for out_of_court
    assert rows["expertise_declined"]["count"] == 1
    assert rows["competitors_reviewed"]["conversion_to_next"] == pytest.approx(1.0)
    assert rows["expertise_appointed"]["reached"] == rows["expertise_declined"]["reached"] == 1
    assert (actual["totals"]["count"], Decimal(actual["totals"]["amount"])) == (2, Decimal("1500"))


@pytest.mark.parametrize(
    ("first_day", "last_day"),
    [(2, 6), (0, 0), (3, None), (None, 4), (9, 9), (10, 20)],
)
def test_report_period_filter(
    client: TestClient,
    scenario: dict[str, Any],
    first_day: int | None,
    last_day: int | None,
) -> None:
    start: datetime = scenario["start"]
    funnels = scenario["funnels"]
    params: dict[str, str] = {}
    if first_day is not None:
        params["from"] = iso(start + timedelta(days=first_day))
    if last_day is not None:
        params["to"] = iso(start + timedelta(days=last_day))
    facts = [
        f
        for f in scenario["facts"]
        if (first_day is None or f.day >= first_day) and (last_day is None or f.day <= last_day)
    ]
    for funnel in ("out_of_court", "court"):
        actual = report(client, scenario["position"], funnel=funnel, **params)
        assert_report(actual, expected_report(facts, funnels[funnel], _step_of(funnels)))
        if "from" in params:
            assert datetime.fromisoformat(actual["created_from"].replace("Z", "+00:00")) == (
                start + timedelta(days=first_day or 0)
            )


def test_report_period_with_naive_timestamps_is_utc(
    client: TestClient, scenario: dict[str, Any]
) -> None:
    start: datetime = scenario["start"]
    naive_from = (start + timedelta(days=2)).replace(tzinfo=None).isoformat()
    naive_to = (start + timedelta(days=6)).replace(tzinfo=None).isoformat()
    actual = report(
        client, scenario["position"], funnel="out_of_court", **{"from": naive_from, "to": naive_to}
    )
    assert actual["totals"]["count"] == 4  # L3, L4, L5, L7
    assert Decimal(actual["totals"]["amount"]) == Decimal("1900")


def test_report_period_with_dates_covers_whole_days(
    client: TestClient, scenario: dict[str, Any]
) -> None:
    start: datetime = scenario["start"]
    first = (start + timedelta(days=2)).date().isoformat()
    last = (start + timedelta(days=6)).date().isoformat()
    actual = report(
        client, scenario["position"], funnel="out_of_court", **{"from": first, "to": last}
    )
    assert actual["totals"]["count"] == 4  # L3, L4, L5, L7: the last one at 09:00 on the 'to' day
    assert Decimal(actual["totals"]["amount"]) == Decimal("1900")


def test_report_of_an_empty_funnel(client: TestClient) -> None:
    position = create(client, funnel="court")["position"]
    actual = report(client, position, funnel="out_of_court")
    assert all(s["count"] == 0 and s["reached"] == 0 for s in actual["stages"])
    assert all(Decimal(s["amount"]) == 0 for s in actual["stages"])
    assert all(s["conversion_to_next"] is None for s in actual["stages"])
    for key in ("totals", "non_quality", "new", "repeat"):
        assert actual[key]["count"] == 0
        assert Decimal(actual[key]["amount"]) == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"funnel": "nowhere"}, "funnel"),
        ({"funnel": ""}, "funnel"),
        ({}, "funnel"),
        ({"funnel": "court", "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"funnel": "court", "from": "soon"}, "from"),
        ({"funnel": "court", "to": "2026-02-30"}, "to"),
        ({"funnel": "court", "min_position": "-1"}, "min_position"),
    ],
)
def test_report_invalid_parameters(client: TestClient, params: dict[str, str], field: str) -> None:
    assert_invalid(client.get("/reports/funnel", params=params), field)


# --- other endpoints ----------------------------------------------------------------------


def test_health_reports_the_lag(client: TestClient) -> None:
    position = create(client)["position"]
    client.get("/leads", params={"min_position": position})
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["event_store"] == "sqlite"
    assert body["event_store_position"] >= position
    assert body["read_model_position"] >= position
    assert body["lag"] == body["event_store_position"] - body["read_model_position"]


def test_unknown_route_and_wrong_method_share_the_error_shape(client: TestClient) -> None:
    response = client.get("/reports/nowhere")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    response = client.delete("/funnels")
    assert response.status_code == 405
    assert response.json()["code"] == "http_error"
    assert response.json()["detail"]
