"""Shared directories (issue 18 §1): kinds from configuration, entries validated against
their kind, links to leads and projects with a role, cards, the signatories report, and
read models that rebuild to what was folded page by page."""

from __future__ import annotations

import io
import random
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import openpyxl
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates import contact
from aggregates import directory_entry as entries
from aggregates.base import CommandMeta
from aggregates.errors import InvalidValue, RuleViolation
from event_store import NewEvent, open_event_store
from leadledger.settings import DEFAULT_DIRECTORIES_FILE
from leadledger.wiring import Platform, event_codec, load_directories
from projections.contacts import ContactProjection
from projections.database import ReadModelDatabase
from projections.directories import DirectoryEntryProjection
from projections.projector import Projector, rebuild
from read_api.app import create_app
from tests.conftest import ACTOR, create
from tests.deal_helpers import ok
from tests.test_access import USERS, _directory, settle

CATALOG = load_directories(DEFAULT_DIRECTORIES_FILE)
COURT = CATALOG.kinds["court"]
SIGNATORY = CATALOG.kinds["signatory"]
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def meta(n: int = 0) -> CommandMeta:
    return CommandMeta(actor="anna", at=T0 + timedelta(minutes=n), command_id=uuid4())


# --- configuration and rules ------------------------------------------------------------


def test_the_packaged_kinds_are_the_seeds_directories() -> None:
    assert list(CATALOG.kinds) == [
        "court",
        "opponent",
        "consultant",
        "lawyer",
        "expert",
        "signatory",
    ]
    assert COURT.roles == {"lead": ("sender",), "project": ("court",)}
    assert SIGNATORY.roles == {"project": ("signatory",)}


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({}, "name at least one kind"),
        ({"kinds": {"x": {"fields": {}}}}, "at least one field"),
        ({"kinds": {"x": {"fields": {"a": {"type": "int"}}}}}, "type must be one of"),
        ({"kinds": {"x": {"fields": {"a": {}}, "title_field": "b"}}}, "title_field"),
        ({"kinds": {"x": {"fields": {"a": {}}, "roles": {"deal": ["r"]}}}}, "target"),
    ],
)
def test_a_bad_configuration_is_refused_saying_why(config: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        entries.DirectoryCatalog.from_config(config)


def registered(kind: entries.DirectoryKind = COURT, **fields: Any) -> entries.DirectoryEntry:
    event = entries.register(kind, entries.RegisterEntry(uuid4(), fields or {"name": "A"}), meta())
    return entries.evolve(None, event)


def test_an_entry_holds_every_field_of_its_kind_normalised() -> None:
    command = entries.RegisterEntry(
        uuid4(), {"name": " Arbitration court of Moscow ", "phone": "8 495 600 00 00"}
    )
    event = entries.register(COURT, command, meta())
    assert event.title == "Arbitration court of Moscow"
    assert event.fields == {
        "name": "Arbitration court of Moscow",
        "region": None,
        "address": None,
        "phone": "+74956000000",
        "email": None,
        "notes": None,
    }


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"region": "Moscow"}, "name"),
        ({"name": "A", "judge": "X"}, "judge"),
        ({"name": "A", "email": "nobody"}, "email"),
        ({"name": "A", "phone": "call"}, "phone"),
        ({"name": "A" * 501}, "name"),
        ({"name": 5}, "name"),
    ],
)
def test_a_bad_field_is_refused_naming_it(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        entries.register(COURT, entries.RegisterEntry(uuid4(), fields), meta())
    assert refused.value.field == field


def test_an_edit_changes_only_what_it_names_and_must_change_something() -> None:
    court = registered(name="A", region="Moscow")
    event = entries.update(COURT, court, entries.UpdateEntry({"region": None}), meta(1))
    assert (event.fields["name"], event.fields["region"], event.changed) == ("A", None, ("region",))
    with pytest.raises(RuleViolation) as refused:
        entries.update(COURT, court, entries.UpdateEntry({"name": "A"}), meta(1))
    assert refused.value.rule == "no_change"


def test_links_follow_the_kinds_roles_once_each() -> None:
    court = registered()
    lead_id = uuid4()
    linked = entries.link(COURT, court, entries.LinkEntry("lead", lead_id, "sender"), meta(1))
    court = entries.evolve(court, linked)
    assert court.links == frozenset({("lead", lead_id, "sender")})
    with pytest.raises(RuleViolation, match="already linked"):
        entries.link(COURT, court, entries.LinkEntry("lead", lead_id, "sender"), meta(2))
    with pytest.raises(InvalidValue) as bad_role:
        entries.link(COURT, court, entries.LinkEntry("lead", lead_id, "judge"), meta(2))
    assert bad_role.value.field == "role"
    signatory = registered(SIGNATORY)
    with pytest.raises(InvalidValue) as bad_target:
        entries.link(SIGNATORY, signatory, entries.LinkEntry("lead", lead_id, "signatory"), meta())
    assert bad_target.value.field == "target"
    unlinked = entries.unlink(COURT, court, entries.UnlinkEntry("lead", lead_id, "sender"), meta(3))
    court = entries.evolve(court, unlinked)
    assert court.links == frozenset()
    with pytest.raises(RuleViolation, match="not linked"):
        entries.unlink(COURT, court, entries.UnlinkEntry("lead", lead_id, "sender"), meta(4))


# --- over HTTP --------------------------------------------------------------------------


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        _directory(client)
        yield client


def add_entry(api: TestClient, kind: str, headers: dict[str, str] = ACTOR, **fields: Any) -> str:
    answer = ok(api.post(f"/directories/{kind}", json={"fields": fields}, headers=headers), 201)
    return str(answer["entry_id"])


def new_project(api: TestClient, title: str, **card: Any) -> str:
    body = {"title": title, "company_name": "Client", "pm": "pia.pm", **card}
    return str(ok(api.post("/projects", json=body), 201)["project_id"])


def test_courts_are_listed_and_carded_with_the_leads_they_sent(
    api: TestClient, platform: Platform
) -> None:
    moscow = add_entry(api, "court", name="Moscow arbitration court", region="Moscow")
    add_entry(api, "court", name="Tver district court", region="Tver")
    lead = create(api, title="Appraisal for the court", manager="mia.manager")["lead_id"]
    ok(
        api.post(
            f"/directories/court/{moscow}/links",
            json={"target": "lead", "target_id": lead, "role": "sender"},
        )
    )
    settle(platform)
    listed = ok(api.get("/directories/court"))
    assert [e["title"] for e in listed["items"]] == [
        "Moscow arbitration court",
        "Tver district court",
    ]
    assert ok(api.get("/directories/court", params={"q": "tver"}))["total"] == 1
    card = ok(api.get(f"/directories/court/{moscow}"))
    assert card["fields"]["region"] == "Moscow"
    [link] = card["link_list"]
    assert (link["target_id"], link["role"], link["title"], link["status"]) == (
        lead,
        "sender",
        "Appraisal for the court",
        "open",
    )
    # a manager who does not see the lead sees the court, and the link only counted
    other = ok(api.get(f"/directories/court/{moscow}", headers=USERS["oleg"]))
    assert (other["link_list"], other["hidden_links"]) == ([], 1)
    mine = ok(api.get(f"/directories/court/{moscow}", headers=USERS["mia"]))
    assert len(mine["link_list"]) == 1
    # unlinking removes it
    ok(
        api.post(
            f"/directories/court/{moscow}/unlink",
            json={"target": "lead", "target_id": lead, "role": "sender"},
        )
    )
    settle(platform)
    assert ok(api.get(f"/directories/court/{moscow}"))["link_list"] == []


def test_an_unknown_kind_is_a_404_and_a_bad_field_a_422_naming_it(api: TestClient) -> None:
    assert api.get("/directories/judges").status_code == 404
    assert api.post("/directories/judges", json={"fields": {"name": "x"}}).status_code == 404
    court = add_entry(api, "court", name="A")
    assert api.get(f"/directories/opponent/{court}").status_code == 404
    assert api.put(
        f"/directories/opponent/{court}", json={"fields": {"name": "B"}}
    ).status_code == (404)
    for body, field in (
        ({"fields": {"judge": "x", "name": "A"}}, "judge"),
        ({"fields": {"region": "x"}}, "name"),
        ({"fields": {"name": "A", "email": "x"}}, "email"),
        ({"name": "A"}, "fields"),
    ):
        answer = api.post("/directories/court", json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == field
    bad_link = api.post(
        f"/directories/court/{court}/links",
        json={"target": "lead", "target_id": str(uuid4()), "role": "sender"},
    )
    assert (bad_link.status_code, bad_link.json()["field"]) == (422, "target_id")
    lead = create(api)["lead_id"]
    wrong_role = api.post(
        f"/directories/court/{court}/links",
        json={"target": "lead", "target_id": lead, "role": "judge"},
    )
    assert (wrong_role.status_code, wrong_role.json()["field"]) == (422, "role")
    kinds = ok(api.get("/directories"))["kinds"]
    assert len(kinds) == 6
    assert kinds[0]["id"] == "court"


def test_directories_are_read_by_everyone_and_written_by_sales_and_projects(
    api: TestClient, platform: Platform
) -> None:
    court = add_entry(api, "court", headers=USERS["mia"], name="A")
    add_entry(api, "signatory", headers=USERS["pia"], name="B")
    settle(platform)
    for who in ("ana", "aud", "lev", "eve"):
        assert api.get(f"/directories/court/{court}", headers=USERS[who]).status_code == 200
    forbidden = api.post("/directories/court", json={"fields": {"name": "x"}}, headers=USERS["ana"])
    assert forbidden.status_code == 403


def signatory_oracle(
    links: list[tuple[str, str, str, str]], statuses: set[str] | None
) -> list[tuple[str, str, str]]:
    """(signatory, project title, status) rows of links (signatory, id, title, status)."""
    return sorted(
        (s, title, status)
        for s, _, title, status in links
        if statuses is None or status in statuses
    )


def test_the_signatories_report_lists_signatories_and_their_projects_by_status(
    api: TestClient, platform: Platform
) -> None:
    rng = random.Random(18)
    people = {
        name: add_entry(api, "signatory", name=name) for name in ("Ivanov", "Petrov", "Sidorova")
    }
    projects = {title: new_project(api, title) for title in ("Bridge", "Plant", "Warehouse")}
    for status in ("in_production", "approval", "closing"):  # the warehouse is at closing
        ok(api.post(f"/projects/{projects['Warehouse']}/status", json={"status": status}))
    settle(platform)
    statuses = {p: ok(api.get(f"/projects/{pid}"))["status"] for p, pid in projects.items()}
    assert statuses["Warehouse"] == "closing" != statuses["Bridge"]
    links: list[tuple[str, str, str, str]] = []
    for name, entry in people.items():
        for title in rng.sample(sorted(projects), 2):
            ok(
                api.post(
                    f"/directories/signatory/{entry}/links",
                    json={"target": "project", "target_id": projects[title], "role": "signatory"},
                )
            )
            links.append((name, entry, title, statuses[title]))
    settle(platform)
    report = ok(api.get("/reports/signatories"))
    got = [(r["signatory"], r["title"], r["status"]) for r in report["items"]]
    assert got == signatory_oracle(links, None)
    assert report["signatories"] == 3
    assert report["projects"] == len({title for _, _, title, _ in links})
    filtered = ok(api.get("/reports/signatories", params={"status": "closing"}))
    assert [(r["signatory"], r["title"], r["status"]) for r in filtered["items"]] == (
        signatory_oracle(links, {"closing"})
    )
    assert filtered["items"], "someone signs the warehouse (two of three projects each)"
    both = ok(api.get("/reports/signatories", params={"status": ["closing", "planning"]}))
    assert both["total"] == len(signatory_oracle(links, {"closing", "planning"}))
    nothing = ok(api.get("/reports/signatories", params={"status": "no-such-status"}))
    assert (nothing["items"], nothing["total"]) == ([], 0)
    workbook = api.get("/reports/signatories", params={"format": "xlsx"})
    assert workbook.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(workbook.content)).worksheets[0]
    values = [c for row in sheet.iter_rows(values_only=True) for c in row if c is not None]
    for name, _, title, _ in links:
        assert name in values
        assert title in values


# --- read models: page by page == rebuilt -------------------------------------------------


def _random_history(seed: int) -> list[NewEvent]:
    """Contacts and entries registered, edited, linked and unlinked at random."""
    rng = random.Random(seed)
    events: list[NewEvent] = []
    contacts: dict[UUID, contact.Contact] = {}
    entries_by_id: dict[UUID, entries.DirectoryEntry] = {}
    targets = [uuid4() for _ in range(4)]
    for n in range(rng.randint(5, 60)):
        m = meta(n)
        roll = rng.random()
        if roll < 0.2 or not contacts:
            cid = uuid4()
            ev = contact.register(
                contact.RegisterContact(cid, f"P{n}", phones=(f"+7900{n:07d}",)), m
            )
            contacts[cid] = contact.evolve(None, ev)
            events.append(NewEvent(cid, 1, ev))
        elif roll < 0.35:
            cid = rng.choice(sorted(contacts))
            state = contacts[cid]
            upd = contact.update(state, contact.UpdateContact({"name": f"Q{n}"}), m)
            contacts[cid] = contact.evolve(state, upd)
            events.append(NewEvent(cid, state.version + 1, upd))
        elif roll < 0.55 or not entries_by_id:
            eid = uuid4()
            kind = CATALOG.kinds[rng.choice(["court", "lawyer"])]
            reg = entries.register(kind, entries.RegisterEntry(eid, {"name": f"E{n}"}), m)
            entries_by_id[eid] = entries.evolve(None, reg)
            events.append(NewEvent(eid, 1, reg))
        else:
            eid = rng.choice(sorted(entries_by_id))
            entry = entries_by_id[eid]
            kind = CATALOG.kinds[entry.kind]
            target = rng.choice(targets)
            role = kind.roles["lead"][0]
            key = ("lead", target, role)
            if roll < 0.65:
                ev2: Any = entries.update(kind, entry, entries.UpdateEntry({"name": f"F{n}"}), m)
            elif key in entry.links:
                ev2 = entries.unlink(kind, entry, entries.UnlinkEntry("lead", target, role), m)
            else:
                ev2 = entries.link(kind, entry, entries.LinkEntry("lead", target, role), m)
            entries_by_id[eid] = entries.evolve(entry, ev2)
            events.append(NewEvent(eid, entry.version + 1, ev2))
    return events


TABLES = {
    "contacts": "contact_id",
    "directory_entries": "entry_id",
    "directory_links": "entry_id, target_id, role",
}


def _snapshot(db: ReadModelDatabase) -> dict[str, list[Any]]:
    cursor = db.cursor()
    try:
        return {
            t: cursor.execute(f"SELECT * FROM {t} ORDER BY {k}").fetchall()
            for t, k in TABLES.items()
        }
    finally:
        cursor.close()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), sizes=st.lists(st.integers(1, 7), min_size=1, max_size=6))
def test_contacts_and_directories_folded_in_any_pages_equal_a_rebuild(
    seed: int, sizes: list[int]
) -> None:
    def projections() -> list[Any]:
        return [ContactProjection(), DirectoryEntryProjection()]

    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        db = ReadModelDatabase(f"{tmp}/incremental.duckdb")
        fresh = ReadModelDatabase(f"{tmp}/rebuilt.duckdb")
        try:
            history = _random_history(seed)
            for i, event in enumerate(history):
                store.append([event])
                if i % 5 == 4:
                    Projector(store, db, projections(), page_size=sizes[i % len(sizes)]).run_once()
            Projector(store, db, projections(), page_size=sizes[0]).catch_up()
            rebuild(store, fresh, projections())
            assert _snapshot(db) == _snapshot(fresh)
        finally:
            db.close()
            fresh.close()
            store.close()


def test_the_demo_loads_contacts_entries_of_every_kind_and_links_once(
    api: TestClient, platform: Platform
) -> None:
    from leadledger.demo import DEMO_PERSONS, load_demo_directories

    project = new_project(api, "Demo project to sign")
    loaded = load_demo_directories(platform.store, platform.funnels, CATALOG, platform.clock())
    assert loaded == len(DEMO_PERSONS) + 9
    assert load_demo_directories(platform.store, platform.funnels, CATALOG, platform.clock()) == 0
    settle(platform)
    assert ok(api.get("/contacts"))["total"] == len(DEMO_PERSONS)
    for kind in CATALOG.kinds:
        assert ok(api.get(f"/directories/{kind}"))["total"] >= 1, kind
    olga = ok(api.get("/contacts", params={"q": "Olga"}))["items"][0]
    card = ok(api.get(f"/contacts/{olga['contact_id']}"))
    assert sorted(lead["repeat"] for lead in card["lead_list"]) == [False, True]
    report = ok(api.get("/reports/signatories"))
    assert [(r["signatory"], r["project_id"]) for r in report["items"]] == [
        ("Viktor Sokolov", project)
    ]
    courts = ok(api.get("/directories/court"))["items"]
    assert sum(c["links"] for c in courts) == 2
