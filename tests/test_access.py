"""Authentication, the role-by-endpoint matrix, ownership of commands and the read scope."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from aggregates.users import ROLES, Principal, Role
from leadledger.tokens import Signer
from leadledger.wiring import Platform
from read_api.access import ENDPOINTS, PUBLIC, Scope
from read_api.app import create_app
from tests.conftest import (
    ACTOR,
    SIGNER,
    FakeClock,
    PlatformFactory,
    bearer,
    new_lead_body,
    token,
)
from tests.deal_helpers import ok

ADMIN = bearer("adam.admin", "admin")
DEPARTMENTS = {"head": "sales", "department": "logistics"}


def settle(platform: Platform) -> None:
    """Wait for the background projector to fold everything stored so far."""
    assert platform.projector.wait_for(platform.store.last_position(), 10)


def as_role(role: Role, user: str | None = None) -> dict[str, str]:
    return bearer(user or f"someone.{role.value}", role.value, DEPARTMENTS.get(role.value))


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False)) as client:
        yield client


# --- authentication ------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(raw: str) -> dict[str, Any]:
    payload = raw.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def _unauthenticated(api: TestClient, headers: dict[str, str], why: str) -> None:
    response = api.get("/me", headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthenticated"
    assert why in response.json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_valid_token_names_the_actor_and_its_claims(api: TestClient) -> None:
    body = ok(api.get("/me", headers=bearer("hana.head", "head", "sales")))
    assert body == {"user": "hana.head", "role": "head", "department": "sales", "region": None}


def test_missing_malformed_tampered_forged_and_expired_tokens_get_401(
    api: TestClient, clock: FakeClock
) -> None:
    good = token("mia.manager", "manager")
    header, payload, signature = good.split(".")
    _unauthenticated(api, {}, "required")
    _unauthenticated(api, {"Authorization": good}, "Bearer <token>")
    _unauthenticated(api, {"Authorization": "Bearer not-a-token"}, "not a signed token")
    _unauthenticated(api, {"Authorization": "Bearer a.b.c"}, "malformed")
    # a manager promoting themselves to top management: the signature no longer matches
    claims = _claims(good) | {"role": "top"}
    tampered = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    _unauthenticated(api, {"Authorization": f"Bearer {tampered}"}, "signature")
    # the same claims signed with another secret
    forged = Signer(b"another-secret-of-at-least-32-bytes!!").issue(
        Principal("mia.manager", Role.TOP), now=clock.now, ttl=timedelta(hours=1)
    )
    _unauthenticated(api, {"Authorization": f"Bearer {forged}"}, "signature")
    # an unsigned token ("alg": "none")
    unsigned_header = _b64(b'{"alg":"none"}')
    none = f"{unsigned_header}.{payload}."
    _unauthenticated(api, {"Authorization": f"Bearer {none}"}, "")
    # expired: issued two hours ago for one hour, by the platform's clock
    expired = token(
        "mia.manager", "manager", issued=clock.now - timedelta(hours=2), ttl=timedelta(hours=1)
    )
    _unauthenticated(api, {"Authorization": f"Bearer {expired}"}, "expired")
    # still valid one second before it expires, not at it
    edge = token("mia.manager", "manager", issued=clock.now, ttl=timedelta(hours=1))
    assert api.get("/me", headers={"Authorization": f"Bearer {edge}"}).status_code == 200
    clock.advance(hours=1)
    _unauthenticated(api, {"Authorization": f"Bearer {edge}"}, "expired")


def test_claims_that_could_not_be_issued_are_refused(api: TestClient, clock: FakeClock) -> None:
    def signed(claims: dict[str, Any]) -> str:
        import hashlib
        import hmac

        from tests.conftest import TEST_AUTH_SECRET

        head = _b64(b'{"alg":"HS256","typ":"JWT"}')
        body = _b64(json.dumps(claims).encode())
        mac = hmac.new(TEST_AUTH_SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256)
        return f"{head}.{body}.{_b64(mac.digest())}"

    base = {"iss": "leadledger", "exp": int(clock.now.timestamp()) + 3600}
    for claims, why in (
        (base | {"sub": "x' OR '1'='1", "role": "manager"}, "sub"),
        (base | {"sub": "eve", "role": "overlord"}, "role"),
        (base | {"sub": "eve", "role": "head"}, "department"),
        (
            base | {"sub": "eve", "role": "head", "dept": "sales'; DROP TABLE leads; --"},
            "department",
        ),
        (base | {"sub": "eve", "role": "top", "iss": "elsewhere"}, "issued"),
        ({"iss": "leadledger", "sub": "eve", "role": "top"}, "expired"),
    ):
        _unauthenticated(api, {"Authorization": f"Bearer {signed(claims)}"}, why)


def test_the_token_command_issues_tokens_for_directory_users(
    make_platform: PlatformFactory,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from leadledger import cli
    from tests.conftest import TEST_AUTH_SECRET

    events = f"sqlite:///{tmp_path}/cli-events.sqlite"
    platform = make_platform(events)
    with TestClient(create_app(platform, close_on_exit=False)) as api:
        user = {
            "username": "lena.logistics",
            "name": "Lena",
            "role": "department",
            "department": "logistics",
        }
        ok(api.post("/users", json=user, headers=ADMIN), 201)
    monkeypatch.setenv("LEADLEDGER_EVENT_STORE_URL", events)
    monkeypatch.setenv("LEADLEDGER_AUTH_SECRET", TEST_AUTH_SECRET)
    assert cli.main(["token", "lena.logistics", "--hours", "2"]) == 0
    issued = capsys.readouterr().out.strip()
    principal = SIGNER.verify(issued, now=platform.clock())
    assert principal == Principal("lena.logistics", Role.DEPARTMENT, "logistics")
    assert _claims(issued)["exp"] - _claims(issued)["iat"] == 7200
    assert cli.main(["token", "nobody.here"]) == 2
    assert "not in the user directory" in capsys.readouterr().err
    assert cli.main(["token", "first.admin", "--role", "admin"]) == 0
    assert SIGNER.verify(capsys.readouterr().out.strip(), now=platform.clock()).role is Role.ADMIN
    assert cli.main(["token", "h", "--role", "head"]) == 2
    assert "needs a department" in capsys.readouterr().err


# --- the role-by-endpoint matrix -----------------------------------------------------------

PARAMS = {
    "lead_id": str(uuid4()),
    "deal_id": str(uuid4()),
    "request_id": str(uuid4()),
    "project_id": str(uuid4()),
    "task_id": str(uuid4()),
    "entry_id": str(uuid4()),
    "assignment_id": str(uuid4()),
    "contractor_id": str(uuid4()),
    "contact_id": str(uuid4()),
    "kind": "court",
    "number": "INV-1",
    "table": "leads",
    "username": "nobody.here",
    "subject_id": "company:matrix",
    "alert_id": "1",
    "activity_id": str(uuid4()),
    "manager": "nobody.here",
    "month": "2026-01",
    "week": "2026-01-05",
    "company_id": "matrix-company",
    "name": "crm-export",
}


def _operations(api: TestClient) -> set[tuple[str, str]]:
    paths = api.app.openapi()["paths"]  # type: ignore[attr-defined]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


def test_every_endpoint_is_in_the_table_and_the_table_names_only_endpoints(
    api: TestClient,
) -> None:
    operations = _operations(api)
    assert operations - set(ENDPOINTS) - PUBLIC == set(), "endpoints open to no role"
    assert set(ENDPOINTS) - operations == set(), "table entries for no endpoint"


def _call(api: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    url = path.format(**PARAMS)
    if path == "/events/stream":
        with api.stream("GET", url, headers=headers) as response:
            status: int = response.status_code
            if status == 200:
                next(response.iter_bytes())  # the stream is open: leave it
            return status
    body: dict[str, Any] | None = None if method == "GET" else {}
    answered: int = api.request(method, url, json=body, headers=headers).status_code
    return answered


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_role_endpoint_matrix(api: TestClient, role: Role) -> None:
    """Every endpoint, called as this role: 403 exactly where the table says no; anywhere
    else the request gets past authorisation (to its own 2xx, 404 or 422)."""
    headers = as_role(role)
    wrong: list[str] = []
    for method, path in sorted(_operations(api)):
        status = _call(api, method, path, headers)
        allowed = (method, path) in PUBLIC or role in ENDPOINTS[(method, path)]
        if allowed and status in (401, 403):
            wrong.append(f"{method} {path}: {status}, expected to pass")
        if not allowed and status != 403:
            wrong.append(f"{method} {path}: {status}, expected 403")
    assert wrong == []


def test_without_a_token_only_the_probes_answer(api: TestClient) -> None:
    wrong = []
    for method, path in sorted(_operations(api)):
        status = _call(api, method, path, {})
        expected = 200 if (method, path) in PUBLIC else 401
        if status != expected:
            wrong.append(f"{method} {path}: {status}, expected {expected}")
    assert wrong == []


def test_a_refusal_says_which_roles_may(api: TestClient) -> None:
    response = api.post("/leads", json=new_lead_body(), headers=as_role(Role.ANALYST))
    assert response.status_code == 403
    body = response.json()
    assert body["rule"] == "role_not_allowed"
    assert "analyst may not call POST /leads" in body["detail"]
    assert "head, manager, top" in body["detail"]


# --- records: who sees and changes what -----------------------------------------------------


def _directory(api: TestClient) -> int:
    """Sales: mia and max (managers) under hana (head); logistics: lev and its head."""
    people = [
        ("mia.manager", "manager", "sales"),
        ("max.manager", "manager", "sales"),
        ("hana.head", "head", "sales"),
        ("oleg.other", "manager", "retail"),
        ("lev.logistics", "department", "logistics"),
        ("lara.head", "head", "logistics"),
        ("pia.pm", "pm", "projects"),
        ("eve.expert", "expert", "engineering"),
    ]
    position = 0
    for username, role, department in people:
        body = {"username": username, "name": username, "role": role, "department": department}
        position = ok(api.post("/users", json=body, headers=ADMIN), 201)["position"]
    return position


def _lead(api: TestClient, manager: str, headers: dict[str, str] | None = None, **card: Any) -> str:
    body = new_lead_body(manager=manager, **card)
    lead_id: str = ok(api.post("/leads", json=body, headers=headers or ACTOR), 201)["lead_id"]
    return lead_id


USERS = {
    "mia": bearer("mia.manager", "manager"),
    "max": bearer("max.manager", "manager"),
    "oleg": bearer("oleg.other", "manager"),
    "hana": bearer("hana.head", "head", "sales"),
    "lara": bearer("lara.head", "head", "logistics"),
    "top": bearer("tom.top", "top"),
    "pia": bearer("pia.pm", "pm"),
    "eve": bearer("eve.expert", "expert", "engineering"),
    "lev": bearer("lev.logistics", "department", "logistics"),
    "ana": bearer("ana.analyst", "analyst"),
    "aud": bearer("aud.auditor", "auditor"),
    "adm": ADMIN,
}


def test_who_sees_a_lead_and_its_history(api: TestClient, platform: Platform) -> None:
    _directory(api)
    lead_id = _lead(api, "mia.manager", USERS["mia"])
    settle(platform)
    expected = {
        "mia": 200, "max": 404, "oleg": 404, "hana": 200, "lara": 404, "top": 200,
        "pia": 404, "eve": 404, "lev": 404, "ana": 200, "aud": 200, "adm": 403,
    }  # fmt: skip
    for path in (f"/leads/{lead_id}", f"/leads/{lead_id}/history", f"/leads/{lead_id}/status-time"):
        seen = {who: api.get(path, headers=h).status_code for who, h in USERS.items()}
        assert seen == expected, path
    # not visible is "not found", exactly as for a lead that does not exist
    hidden = api.get(f"/leads/{lead_id}", headers=USERS["max"]).json()
    missing = api.get(f"/leads/{uuid4()}", headers=USERS["max"]).json()
    assert hidden["code"] == missing["code"] == "not_found"
    # the expert assigned to the lead sees it too
    ok(api.post(f"/leads/{lead_id}/card", json={"expert": "eve.expert"}, headers=USERS["mia"]))
    settle(platform)
    assert api.get(f"/leads/{lead_id}", headers=USERS["eve"]).status_code == 200


def test_who_may_move_a_lead(api: TestClient, platform: Platform) -> None:
    _directory(api)
    lead_id = _lead(api, "mia.manager", USERS["mia"])
    move = {"stage": "assessment"}
    # a manager or head who may not even see the lead hears it does not exist (404, as
    # for an unknown lead); roles the endpoint is not open to hear that (403)
    expected = {
        "mia": 200, "max": 404, "oleg": 404, "hana": 200, "lara": 404, "top": 200,
        "pia": 403, "eve": 403, "lev": 403, "ana": 403, "aud": 403, "adm": 403,
    }  # fmt: skip
    seen: dict[str, int] = {}
    for who, headers in USERS.items():
        response = api.post(f"/leads/{lead_id}/pause", json={"reason": who}, headers=headers)
        seen[who] = response.status_code
        if response.status_code == 200:
            ok(api.post(f"/leads/{lead_id}/resume", headers=headers))
        elif who in ("max", "oleg", "lara"):
            assert response.json() == {"detail": f"lead {lead_id} not found", "code": "not_found"}
    assert seen == expected
    ok(api.post(f"/leads/{lead_id}/stage", json=move, headers=USERS["hana"]))
    # experts assess; the actor on every event is the token's user, with their role
    assessment = {"expert": "eve.expert", "result": "feasible", "hours": "2"}
    ok(api.post(f"/leads/{lead_id}/assessment", json=assessment, headers=USERS["eve"]))
    history = ok(api.get(f"/leads/{lead_id}/history", headers=USERS["top"]))["events"]
    assert [(e["actor"], e["actor_role"], e["command"]) for e in history][-2:] == [
        ("hana.head", "head", "move_to_stage"),
        ("eve.expert", "expert", "record_assessment"),
    ]


def test_managers_create_leads_for_themselves_heads_for_their_department(
    api: TestClient, platform: Platform
) -> None:
    _directory(api)
    assert (
        api.post(
            "/leads", json=new_lead_body(manager="mia.manager"), headers=USERS["mia"]
        ).status_code
        == 201
    )
    refused = api.post("/leads", json=new_lead_body(manager="max.manager"), headers=USERS["mia"])
    assert refused.status_code == 403
    assert refused.json()["rule"] == "not_your_team"
    assert (
        api.post(
            "/leads", json=new_lead_body(manager="max.manager"), headers=USERS["hana"]
        ).status_code
        == 201
    )
    assert (
        api.post(
            "/leads", json=new_lead_body(manager="oleg.other"), headers=USERS["hana"]
        ).status_code
        == 403
    )
    assert (
        api.post(
            "/leads", json=new_lead_body(manager="oleg.other"), headers=USERS["top"]
        ).status_code
        == 201
    )


def test_lists_reports_exports_and_the_feed_hold_only_what_the_viewer_may_see(
    api: TestClient, platform: Platform
) -> None:
    _directory(api)
    mine = {_lead(api, "mia.manager", USERS["mia"]) for _ in range(3)}
    maxs = {_lead(api, "max.manager", USERS["max"]) for _ in range(2)}
    others = {_lead(api, "oleg.other", USERS["oleg"])}
    settle(platform)

    def listed(headers: dict[str, str]) -> set[str]:
        return {i["lead_id"] for i in ok(api.get("/leads?limit=500", headers=headers))["items"]}

    assert listed(USERS["mia"]) == mine
    assert listed(USERS["hana"]) == mine | maxs
    assert listed(USERS["top"]) == listed(USERS["ana"]) == mine | maxs | others
    assert listed(USERS["lev"]) == set()

    def funnel_total(headers: dict[str, str]) -> int:
        report = ok(api.get("/reports/funnel?funnel=out_of_court", headers=headers))
        total: int = report["totals"]["count"]
        return total

    assert (
        funnel_total(USERS["mia"]),
        funnel_total(USERS["hana"]),
        funnel_total(USERS["aud"]),
    ) == (3, 5, 6)

    csv = api.get("/exports/leads?format=csv", headers=USERS["mia"])
    assert csv.status_code == 200
    rows = csv.text.strip().splitlines()[1:]
    assert len(rows) == 3
    assert all(any(i in r for i in mine) for r in rows)

    def fed(headers: dict[str, str]) -> set[str]:
        items = ok(api.get("/events?limit=1000", headers=headers))["items"]
        return {i["aggregate_id"] for i in items if i["type"] == "LeadCreated"}

    assert fed(USERS["mia"]) == mine
    assert fed(USERS["hana"]) == mine | maxs
    assert fed(USERS["aud"]) == mine | maxs | others


def test_filter_parameters_carrying_sql_are_values_not_sql(
    api: TestClient, platform: Platform
) -> None:
    _directory(api)
    _lead(api, "mia.manager", USERS["mia"])
    _lead(api, "oleg.other", USERS["oleg"])
    settle(platform)
    for value in (
        "' OR '1'='1",
        "mia.manager' OR 1=1 --",
        "x'; DROP TABLE leads; --",
        '") OR ("1"="1',
    ):
        for who in ("mia", "top"):
            response = api.get("/leads", params={"manager": value}, headers=USERS[who])
            assert response.status_code == 200, response.text
            assert response.json()["items"] == []
        response = api.get("/reports/funnel", params={"funnel": value}, headers=USERS["mia"])
        assert response.status_code in (200, 404, 422), response.text
        assert (
            api.get("/users", params={"department": value}, headers=USERS["aud"]).json()["items"]
            == []
        )
    assert ok(api.get("/leads", headers=USERS["top"]))["total"] == 2


def test_scope_quotes_every_value_it_writes_into_its_views() -> None:
    scope = Scope(Principal("o'neil", Role.HEAD, "sa'les"), frozenset({"o'neil", "x'); DROP"}))
    for statement in scope.view_statements("my'db"):
        assert "'o''neil'" in statement or "o'neil" not in statement
        assert "'x''); DROP'" in statement or "DROP'" not in statement
        # a view built only on other scoped views (the cohorts') names no catalog
        assert '"my\'db".main' in statement or "my'db" not in statement


def test_a_process_managers_events_name_what_caused_them(
    make_platform: PlatformFactory, clock: FakeClock
) -> None:
    from tests.deal_helpers import SELLER, new_deal

    platform = make_platform(process_managers=False)
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as api:
        deal_id = new_deal(api, funnel="transport")
        ok(api.post(f"/deals/{deal_id}/stage", json={"stage": "estimate"}, headers=SELLER))
        platform.processes.run_once()
        settle(platform)
        requests = ok(api.get(f"/deals/{deal_id}"))["handoffs"]
        assert requests, "the estimate hand-off opened a request"
        first = ok(api.get(f"/handoffs/{requests[0]['request_id']}/history"))["events"][0]
    assert first["actor"] == "leadledger.estimate-handoff"
    assert first["actor_role"] == "process"
    assert first["caused_by"].startswith("the estimate-handoff process, on Deal")
    assert deal_id in first["caused_by"]


def test_a_user_seen_only_after_the_read_models_catch_up_is_still_found(
    api: TestClient, platform: Platform
) -> None:
    """A manager reading their brand-new lead's history does not race the projector."""
    _directory(api)
    settle(platform)
    lead_id = _lead(api, "mia.manager", USERS["mia"])
    started = time.monotonic()
    assert api.get(f"/leads/{lead_id}/history", headers=USERS["mia"]).status_code == 200
    assert time.monotonic() - started < 5


UNSCOPED = {
    "users": "the directory: names, roles and departments, read by oversight roles only",
    "contractors": "the shared contractor directory every department works from (its"
    " figures are the viewer's: a scoped view recounts them over the visible quotes)",
    "status_limit_changes": "the time limits set by hand: configuration, the same for all",
    "revenue_ledger": "each organisation's revenue against its yearly cap: company-wide"
    " figures, read through GET /reports/revenue-cap by top, heads and analysts only",
    "user_cost_rates": "people's hourly cost rates: no list or export of their own, read"
    " only by the projects' cost report to price the hours of the projects the viewer sees",
    "directory_entries": "the shared directories (courts, opponents, signatories...): read"
    " by everyone who reads leads",
    "directory_links": "the shared directories' links: read only joined to the viewer's"
    " scoped leads and projects (the rest only counted on a card)",
    "projection_positions": "the projector's bookkeeping",
    "read_model_fingerprints": "the projector's bookkeeping",
}


def test_every_read_model_table_is_scoped_or_named_as_shared(platform: Platform) -> None:
    """A new read model must be given a scope (or be named here as shared): the scope
    fails closed only if nobody forgets a table."""
    cursor = platform.db.cursor()
    try:
        tables = {
            r[0]
            for r in cursor.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        }
    finally:
        cursor.close()
    statements = Scope(Principal("mia.manager", Role.MANAGER), frozenset()).view_statements("x")
    scoped = {s.split("TEMP VIEW ")[1].split(" ")[0] for s in statements}
    assert scoped - tables == set()
    assert tables - scoped - set(UNSCOPED) == set()


def test_the_directory_refuses_bad_users_naming_the_field(api: TestClient) -> None:
    bad = {"username": "Bad Name", "name": "x", "role": "manager"}
    refused = api.post("/users", json=bad, headers=ADMIN)
    assert (refused.status_code, refused.json()["field"]) == (422, "username")
    headless = {"username": "h1", "name": "x", "role": "head"}
    refused = api.post("/users", json=headless, headers=ADMIN)
    assert (refused.status_code, refused.json()["field"]) == (422, "department")
    unknown = api.post("/users/nobody.here", json={"role": "top"}, headers=ADMIN)
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "user nobody.here not found"
    ok(api.post("/users", json={**headless, "department": "sales"}, headers=ADMIN), 201)
    twice = api.post("/users", json={**headless, "department": "sales"}, headers=ADMIN)
    assert twice.status_code == 409
    moved = ok(api.post("/users/h1", json={"department": "retail"}, headers=ADMIN))
    assert moved["version"] == 2
    assert ok(api.get("/users/h1", headers=ADMIN))["department"] == "retail"


def test_an_upsell_is_built_only_on_a_deal_the_actor_runs(api: TestClient) -> None:
    from tests.deal_helpers import new_deal

    _directory(api)
    top = TestClient(api.app, headers=ACTOR)  # no second lifespan: the app runs already
    earlier = new_deal(top, manager="max.manager")
    body = {"previous_deal_id": earlier, "title": "Second tractor", "manager": "mia.manager"}
    # mia may not see max's deal: it reads as an unknown earlier deal
    refused = api.post("/deals", json=body, headers=USERS["mia"])
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == f"deal {earlier} does not exist"
    # hana (their head) sees it; a head of another department is refused in the same words
    elsewhere = {**body, "manager": "lara.head"}
    assert api.post("/deals", json=elsewhere, headers=USERS["lara"]).status_code == 422
    created = api.post("/deals", json={**body, "manager": "max.manager"}, headers=USERS["max"])
    assert created.status_code == 201, created.text
    assert api.post("/deals", json=body, headers=USERS["hana"]).status_code == 201
