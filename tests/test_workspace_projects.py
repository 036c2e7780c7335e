"""The project pages over the real app: the portfolio, the card and its forms (each as the
API operation it stands for: roles, ownership, scope, stale forms, double submits), and
the weekly timesheet (each cell one time entry; the 24 hours of a day per cell)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import FakeClock, PlatformFactory, bearer, caught_up
from workspace.projects import GANTT_RIGHT, gantt, week_of

ADMIN = bearer("adam.admin", "admin")
TOP = bearer("anna.sales")
USERS = {
    "pia.pm": ("pm", "pia-password", "projects"),
    "pete.pm": ("pm", "pete-password", "projects"),
    "tess.top": ("top", "tess-password", None),
    "lena.logistics": ("department", "lena-password", "logistics"),
}
MONDAY = "2026-01-05"
WEEK = "2026-01-12"  # a whole working week (the first one of January has holidays)


@pytest.fixture
def site(
    make_platform: PlatformFactory, clock: FakeClock
) -> Iterator[tuple[TestClient, Platform, dict[str, str]]]:
    """Two PMs with a project each (pia's: three tasks, one depending on another, and an
    invoice of 40,000 of its 100,000), a top manager and a logistician."""
    platform = make_platform(signin_delay_seconds=0)
    with TestClient(create_app(platform, close_on_exit=False)) as api:
        for user, (role, password, department) in USERS.items():
            body = {"username": user, "name": user.title(), "role": role}
            if department:
                body["department"] = department
            assert api.post("/users", json=body, headers=ADMIN).status_code == 201
            platform.credentials.set_password(user, password, set_by="test")
        projects = {}
        for pm, title in (("pia.pm", "Valuation of a mill"), ("pete.pm", "Audit of a port")):
            body = {
                "title": title,
                "company_name": "Northwind LLC",
                "amount": "100000.00",
                "department": "projects",
                "pm": pm,
                "planned_start": MONDAY,
                "planned_end": "2026-02-27",
            }
            made = api.post("/projects", json=body, headers=TOP)
            assert made.status_code == 201, made.text
            projects[pm] = made.json()["project_id"]
        mill = projects["pia.pm"]
        for task in (
            {"task_id": "survey", "title": "Survey", "planned_hours": "16", "assignee": "pia.pm"},
            {"task_id": "report", "title": "Report", "planned_hours": "24"}
            | {"depends_on": ["survey"]},
        ):
            dated = {**task, "start": MONDAY, "due": "2026-01-20"}
            assert api.post(f"/projects/{mill}/tasks", json=dated, headers=TOP).status_code == 201
        invoice = {"number": "P-1", "amount": "40000.00", "due_date": "2026-02-01"}
        assert api.post(f"/projects/{mill}/invoices", json=invoice, headers=TOP).status_code == 201
        clock.now = datetime.fromisoformat("2026-01-16T15:00:00+00:00")  # a Friday
        caught_up(api)
        yield api, platform, projects


def sign_in(api: TestClient, user: str) -> None:
    api.cookies.clear()
    page = api.get("/workspace/sign-in").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    response = api.post(
        "/workspace/sign-in",
        data={"username": user, "password": USERS[user][1], "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303


def form_of(html: str, action: str, target: str | None = None) -> dict[str, str]:
    """The hidden fields of the page's form posting to ``.../action`` (for ``target``)."""
    for match in re.finditer(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', html, re.S):
        if not match.group(1).endswith("/" + action):
            continue
        hidden = dict(
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', match.group(2))
        )
        if target is None or hidden.get("target") == target:
            return hidden
    raise AssertionError(f"no form for {action} {target or ''}")


def card(api: TestClient, project_id: str) -> str:
    page = api.get(f"/workspace/projects/{project_id}")
    assert page.status_code == 200, page.text
    html: str = page.text
    return html


def project(api: TestClient, project_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/projects/{project_id}", headers=TOP).json()
    return body


def pay(
    api: TestClient, project_id: str, fields: dict[str, str], amount: str
) -> Any:  # the response
    return api.post(
        f"/workspace/projects/{project_id}/payment",
        data={**fields, "amount": amount, "paid_on": "2026-01-08"},
        follow_redirects=False,
    )


def test_the_portfolio_shows_the_pms_projects_by_health_with_text_and_a_chart(site) -> None:
    api, _, projects = site
    sign_in(api, "pia.pm")
    page = api.get("/workspace/projects")
    assert page.status_code == 200
    assert "Valuation of a mill" in page.text
    assert "Audit of a port" not in page.text  # another PM's project is not in their scope
    level = project(api, projects["pia.pm"])["health"]["effective"]
    assert f'class="row-health row-health-{level}"' in page.text
    text = level.replace("_", " ")  # not colour only
    assert f'<span class="health health-{level}">{text}</span>' in page.text
    assert 'id="portfolio-data"' in page.text
    assert "/static/projects.js" in page.text
    assert 'href="/workspace/timesheet"' in page.text
    filtered = api.get("/workspace/projects?health=big_difficulties")
    assert "Valuation of a mill" not in filtered.text
    sign_in(api, "tess.top")
    both = api.get("/workspace/projects?payment_status=not_paid&status=nonsense").text
    assert "Valuation of a mill" in both
    assert "Audit of a port" in both


def test_the_card_shows_the_timeline_plan_vs_actual_and_the_payments(site) -> None:
    api, _, projects = site
    sign_in(api, "pia.pm")
    html = card(api, projects["pia.pm"])
    assert '<svg class="gantt"' in html
    assert html.count('marker-end="url(#arrowhead)"') == 1  # report depends on survey
    assert "waits for survey" in html  # the report cannot be completed yet
    assert 'id="payment-status">not paid' in html
    assert "RUB100,000.00" in html
    assert "RUB40,000.00" in html
    for action in ("task", "invoice", "health", "card", "act", "status", "payment"):
        assert f'/{action}"' in html, action
    assert "/health-clear" not in html  # no manual health to clear


def test_a_project_outside_the_scope_is_the_404_page(site) -> None:
    api, _, projects = site
    sign_in(api, "pia.pm")
    for missing in (projects["pete.pm"], "00000000-0000-0000-0000-000000000000", "nope"):
        page = api.get(f"/workspace/projects/{missing}")
        assert page.status_code == 404
        assert 'data-kind="missing"' in page.text
    fields = form_of(card(api, projects["pia.pm"]), "health")
    refused = api.post(
        f"/workspace/projects/{projects['pete.pm']}/health",
        data={**fields, "level": "good", "comment": "mine now"},
    )
    assert refused.status_code == 404
    assert project(api, projects["pete.pm"])["health"]["manual"] is None


def test_recording_a_payment_shows_the_new_status_and_remaining(site) -> None:
    api, _, projects = site
    mill = projects["pia.pm"]
    sign_in(api, "pia.pm")
    fields = form_of(card(api, mill), "payment", "P-1")
    response = pay(api, mill, fields, "15000")
    assert response.status_code == 303
    html = api.get(response.headers["location"]).text
    assert 'id="payment-status">partially paid' in html
    assert 'id="payment-remaining">RUB85,000.00' in html
    # the same form again (a double submit): the first answer, nothing applied twice
    assert pay(api, mill, fields, "15000").status_code == 303
    assert project(api, mill)["payments"]["paid"] == "15000.00"
    # the billing moved on since that form was rendered: stale, with the current state
    stale = pay(api, mill, {**fields, "key": "another"}, "1000")
    assert stale.status_code == 409
    assert 'data-kind="stale"' in stale.text
    assert 'id="payment-status">partially paid' in stale.text
    assert project(api, mill)["payments"]["paid"] == "15000.00"


def test_a_refused_payment_rerenders_the_card_with_the_reason_and_what_was_typed(site) -> None:
    api, _, projects = site
    mill = projects["pia.pm"]
    sign_in(api, "pia.pm")
    fields = form_of(card(api, mill), "payment", "P-1")
    over = pay(api, mill, fields, "40000.01")
    assert over.status_code == 409
    assert 'data-kind="rule"' in over.text
    assert "40000.01" in over.text
    bad = pay(api, mill, {**fields, "key": "k2"}, "lots")
    assert bad.status_code == 422
    assert "amount" in bad.text
    assert project(api, mill)["payments"]["paid"] == "0.00"


def test_tasks_are_added_and_completed_in_dependency_order(site) -> None:
    api, _, projects = site
    mill = projects["pia.pm"]
    sign_in(api, "pia.pm")
    html = card(api, mill)
    added = api.post(
        f"/workspace/projects/{mill}/task",
        data={
            **form_of(html, "task"),
            "task_id": "review",
            "title": "Review",
            "planned_hours": "4",
            "start": "2026-01-21",
            "due": "2026-01-23",
            "depends_on": "report",
        },
        follow_redirects=False,
    )
    assert added.status_code == 303
    html = card(api, mill)
    assert "review · Review" in html
    waits = api.post(
        f"/workspace/projects/{mill}/complete",
        data=form_of(html, "progress", "report") | {"target": "report", "key": "x1"},
    )
    assert waits.status_code == 409
    assert "dependency_not_done" in waits.text or "depends on survey" in waits.text
    done = api.post(
        f"/workspace/projects/{mill}/complete",
        data=form_of(html, "complete", "survey"),
        follow_redirects=False,
    )
    assert done.status_code == 303
    tasks = {t["task_id"]: t for t in project(api, mill)["tasks"]}
    assert tasks["survey"]["completed_at"] is not None
    assert tasks["report"]["completed_at"] is None


def test_the_health_is_set_by_hand_and_cleared(site) -> None:
    api, _, projects = site
    mill = projects["pia.pm"]
    sign_in(api, "pia.pm")
    fields = form_of(card(api, mill), "health")
    empty = api.post(f"/workspace/projects/{mill}/health", data={**fields, "level": "good"})
    assert empty.status_code == 422  # the comment is required
    set_by_hand = api.post(
        f"/workspace/projects/{mill}/health",
        data={**fields, "level": "big_difficulties", "comment": "the client is silent"},
        follow_redirects=False,
    )
    assert set_by_hand.status_code == 303
    html = card(api, mill)
    assert 'id="project-health">big difficulties' in html
    cleared = api.post(
        f"/workspace/projects/{mill}/health-clear",
        data=form_of(html, "health-clear"),
        follow_redirects=False,
    )
    assert cleared.status_code == 303
    assert project(api, mill)["health"]["manual"] is None


def test_forms_follow_the_role_table_and_the_csrf_check(site) -> None:
    api, _, projects = site
    mill = projects["pia.pm"]
    sign_in(api, "lena.logistics")  # a department worker: no project commands
    page = api.get(f"/workspace/projects/{mill}")
    if page.status_code == 200:
        assert '/payment"' not in page.text
        assert '/invoice"' not in page.text
    refused = api.post(f"/workspace/projects/{mill}/health", data={"level": "good", "comment": "x"})
    assert refused.status_code == 403
    sign_in(api, "pia.pm")
    no_token = api.post(f"/workspace/projects/{mill}/health", data={"level": "good"})
    assert no_token.status_code == 403
    assert 'data-kind="csrf"' in no_token.text


def test_the_card_is_edited_and_moved_to_another_status(site) -> None:
    api, _, projects = site
    mill = projects["pia.pm"]
    sign_in(api, "pia.pm")
    html = card(api, mill)
    fields = form_of(html, "card")
    edited = api.post(
        f"/workspace/projects/{mill}/card",
        data={**fields, "title": "Valuation of a watermill", "amount": "100000"},
        follow_redirects=False,
    )
    assert edited.status_code == 303
    assert project(api, mill)["title"] == "Valuation of a watermill"
    moved = api.post(
        f"/workspace/projects/{mill}/status",
        data={**form_of(card(api, mill), "status"), "status": "in_production"},
        follow_redirects=False,
    )
    assert moved.status_code == 303, moved.text
    assert project(api, mill)["status"] == "in_production"


def test_the_timesheet_logs_a_week_cell_by_cell_against_the_calendar(site) -> None:
    api, _, projects = site
    mill = projects["pia.pm"]
    sign_in(api, "pia.pm")
    page = api.get(f"/workspace/timesheet?week={WEEK}")
    assert page.status_code == 200
    assert "Valuation of a mill" in page.text
    assert "survey · Survey" in page.text
    assert 'id="week-required">40' in page.text
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    days = [(datetime.fromisoformat(WEEK) + timedelta(days=i)).date() for i in range(5)]
    cells = {f"h|{mill}||{d.isoformat()}": "6" for d in days[:4]}
    cells[f"h|{mill}|survey|{days[0].isoformat()}"] = "2"
    cells[f"h|{mill}|survey|{days[1].isoformat()}"] = "20"  # 6 + 20 > 24
    sent = api.post("/workspace/timesheet", data={**hidden, **cells})
    assert sent.status_code == 409
    assert 'aria-invalid="true"' in sent.text
    assert "over 24" in sent.text
    entries = project(api, mill)["time_entries"]
    assert sorted(e["hours"] for e in entries) == ["2.00", "6.00", "6.00", "6.00", "6.00"]
    # sending the same form again logs nothing twice (each cell has its own key)
    again = api.post("/workspace/timesheet", data={**hidden, **cells})
    assert again.status_code == 409
    assert len(project(api, mill)["time_entries"]) == 5
    week = api.get(f"/workspace/timesheet?week={WEEK}").text
    assert 'id="week-total">26' in week
    assert 'id="week-missing">14' in week
    other = api.post(
        "/workspace/timesheet",
        data={**hidden, "key": "k3", f"h|{projects['pete.pm']}||{days[0].isoformat()}": "1"},
    )
    assert other.status_code == 404  # another PM's project is not there for them


task_dates = st.tuples(
    st.none() | st.dates(date(2026, 1, 1), date(2026, 12, 31)),
    st.none() | st.dates(date(2026, 1, 1), date(2026, 12, 31)),
    st.integers(0, 100),
    st.booleans(),
)


@given(st.lists(task_dates, max_size=12), st.dates(date(2025, 6, 1), date(2027, 6, 1)))
def test_the_timeline_keeps_every_bar_inside_the_chart_and_its_done_part_inside_the_bar(
    specs: list[tuple[date | None, date | None, int, bool]], today: date
) -> None:
    tasks = [
        {
            "task_id": f"t{i}",
            "title": f"Task {i}",
            "start": start,
            "due": due,
            "percent_done": done,
            "completed_at": datetime(2026, 6, 1, tzinfo=UTC) if complete else None,
            "depends_on": [f"t{i - 1}"] if i else [],
        }
        for i, (start, due, done, complete) in enumerate(specs)
    ]
    chart = gantt(tasks, None, None, today)
    if not chart["rows"]:  # no task has a date: no timeline (the table lists them)
        assert all(t["start"] is None and t["due"] is None for t in tasks)
        return
    for row in chart["rows"]:
        bar = row["bar"]
        if row["task"]["start"] is None and row["task"]["due"] is None:
            assert bar is None
            continue
        assert chart["labels"] <= bar["x"]
        assert bar["x"] + bar["width"] <= chart["width"] - GANTT_RIGHT + 2.1
        assert 0 <= bar["done"] <= bar["width"]
    drawn = sum(1 for row in chart["rows"] if row["bar"] is not None)
    assert len(chart["arrows"]) == max(
        0,
        sum(
            1
            for i, row in enumerate(chart["rows"])
            if i and row["bar"] is not None and chart["rows"][i - 1]["bar"] is not None
        ),
    )
    assert drawn <= len(tasks)


@given(st.dates(date(2000, 1, 3), date(2030, 12, 31)))
def test_a_week_starts_on_the_monday_of_the_day_given(day: date) -> None:
    monday = week_of(day.isoformat(), date(2026, 1, 5))
    assert monday.isoweekday() == 1
    assert 0 <= (day - monday).days <= 6


def test_an_act_completes_the_tasks_it_covers_and_is_recorded_on_its_invoice(site) -> None:
    api, _, projects = site
    mill = projects["pia.pm"]
    sign_in(api, "pia.pm")
    fields = form_of(card(api, mill), "act")
    act = {"number": "A-1", "date": "2026-01-15", "task_ids": "survey", "invoice_number": "P-1"}
    over = api.post(f"/workspace/projects/{mill}/act", data={**fields, **act, "amount": "50000"})
    assert over.status_code == 409  # above the invoice's 40,000
    assert "act_over_invoice" in over.text
    recorded = api.post(
        f"/workspace/projects/{mill}/act",
        data={**fields, **act, "amount": "20000", "key": "another"},
        follow_redirects=False,
    )
    assert recorded.status_code == 303
    state = project(api, mill)
    assert next(t for t in state["tasks"] if t["task_id"] == "survey")["completed_at"]
    assert state["payments"]["invoices"][0]["acted"] == "20000.00"
