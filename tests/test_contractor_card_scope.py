"""Every figure on a contractor's card, in the directory list and in its export is
computed over the quotes the viewer may see: a manager outside a deal learns nothing of
its quote."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import ACTOR
from tests.deal_helpers import LOGISTICIAN, new_deal, ok, register_contractor
from tests.test_access import USERS, _directory, settle


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        _directory(client)
        yield client


def _quote(api: TestClient, manager: str, contractor_id: str, cost: str, rating: int) -> None:
    deal_id = new_deal(api, manager=manager)
    body = {"department": "logistics"}
    created = api.post(f"/deals/{deal_id}/requests", json=body, headers=ACTOR)
    request_id = ok(created, 201)["request_id"]
    ok(api.post(f"/handoffs/{request_id}/take", headers=LOGISTICIAN))
    estimate = {
        "service": "heavy haulage",
        "cost": cost,
        "lead_time_days": 3,
        "contractor_id": contractor_id,
        "rating": rating,
    }
    ok(api.post(f"/handoffs/{request_id}/estimate", json=estimate, headers=LOGISTICIAN))


def _figures(entry: dict[str, Any]) -> tuple[Any, ...]:
    prices = [(p["service"], p["quotes"], p["average_price"]) for p in entry["prices"]]
    return entry["quotes"], entry["average_rating"], entry["last_used_at"], prices


def test_a_contractors_figures_count_only_the_quotes_the_viewer_sees(
    api: TestClient, platform: Platform
) -> None:
    contractor_id = register_contractor(api)
    _quote(api, "mia.manager", contractor_id, "100.00", 5)
    _quote(api, "oleg.other", contractor_id, "300.00", 2)
    _quote(api, "oleg.other", contractor_id, "500.00", 2)
    settle(platform)

    def card(who: str) -> dict[str, Any]:
        return ok(api.get(f"/contractors/{contractor_id}", headers=USERS[who]))

    def listed(who: str) -> dict[str, Any]:
        items = ok(api.get("/contractors", headers=USERS[who]))["items"]
        return next(i for i in items if i["contractor_id"] == contractor_id)

    top = card("top")
    assert _figures(top)[:2] == (3, "3.00")
    assert _figures(top)[3] == [("heavy haulage", 3, "300.00")]
    mia = card("mia")
    assert len(mia["history"]) == 1
    assert _figures(mia) == (
        1,
        "5.00",
        mia["history"][0]["quoted_at"],
        [("heavy haulage", 1, "100.00")],
    )
    # max sees none of those deals: a contractor with no quotes, as far as he may know
    max_ = card("max")
    assert (max_["history"], _figures(max_)) == ([], (0, None, None, []))
    for who in ("top", "mia", "max"):
        assert _figures(listed(who)) == _figures(card(who)), who
    # the logistics department works from every quote
    assert _figures(card("lev"))[:2] == (3, "3.00")
    # and an export of the directory holds the viewer's figures too
    for who, expected in (("max", ["0", "0", ""]), ("mia", ["1", "5", "5.00"])):
        export = api.get("/exports/contractors?format=csv", headers=USERS[who])
        assert export.status_code == 200, export.text
        [row] = csv.DictReader(io.StringIO(export.text))
        figures = [row["quotes"], row["rating_total"], row["average_rating"]]
        assert figures == expected, (who, row)
    [row] = csv.DictReader(io.StringIO(api.get("/exports/contractors?format=csv").text))
    assert [row["quotes"], row["rating_total"], row["average_rating"]] == ["3", "9", "3.00"]
