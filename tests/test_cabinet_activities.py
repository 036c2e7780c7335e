"""The manager's cabinet carries their activities (seed 004's one window): this week's
table, the activity coefficient, the overdue ones, today's, and next week's plan."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from leadledger.wiring import Platform
from tests.conftest import FakeClock, bearer, iso

ADMIN = bearer("root.admin", "admin")
MIA = bearer("mia.manager", "manager", "sales")
HEAD = bearer("hana.head", "head", "sales")


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_the_manager_cabinet_shows_the_week_the_coefficient_overdue_today_and_next_week(
    client: TestClient, clock: FakeClock, platform: Platform
) -> None:
    for username, role in (("mia.manager", "manager"), ("hana.head", "head")):
        body = {"username": username, "name": username, "role": role, "department": "sales"}
        ok(client.post("/users", json=body, headers=ADMIN), 201)
    start = clock.now  # a Monday, 09:00

    def plan(at: Any, kind: str = "call_out_cold") -> str:
        body = {"type": kind, "company_id": "northwind", "planned_at": iso(at)}
        answer = ok(client.post("/activities", json=body, headers=MIA), 201)
        return str(answer["activity_id"])

    late = plan(start + timedelta(hours=1))
    made = plan(start + timedelta(hours=2), "meeting_cold")
    tomorrow = plan(start + timedelta(days=1, hours=1))
    clock.advance(hours=2, minutes=10)  # the first is overdue; the meeting is on
    ok(client.post(f"/activities/{made}/done", json={"result": "agreed"}, headers=MIA))
    monday = (start + timedelta(days=7)).date().isoformat()
    days = [{"day": monday, "counts": {"call_out_cold": 5}}]
    ok(client.put(f"/activity-plans/mia.manager/{monday}", json={"days": days}, headers=MIA))
    clock.advance(hours=1)

    at = {"min_position": platform.store.last_position()}
    cabinet = ok(client.get("/cabinets/manager", params=at, headers=MIA))
    assert cabinet["overdue_activities"]["total"] == 1
    assert [a["activity_id"] for a in cabinet["overdue_activities"]["items"]] == [late]
    today = [a["activity_id"] for a in cabinet["today_activities"]["items"]]
    assert today == [late, made]
    assert tomorrow not in today
    week = cabinet["activity_week"]
    assert (week["totals"]["total"]["all"], week["totals"]["total"]["done"]) == (3, 1)
    assert week["totals"]["total"]["overdue"] == 1
    coefficient = cabinet["coefficient"]
    assert coefficient["weighted_done"] > 0
    assert coefficient["coefficient"] is not None
    assert cabinet["next_week_plan"]["totals"] == {"call_out_cold": 5}
    # the head sees the same cabinet of their manager
    seen = ok(
        client.get("/cabinets/manager", params={**at, "manager": "mia.manager"}, headers=HEAD)
    )
    # (the deadlines process manager may have reminded the owner meanwhile: a new version)
    overdue = seen["overdue_activities"]
    assert overdue["total"] == 1
    assert [a["activity_id"] for a in overdue["items"]] == [late]
