"""Importing contacts (issue 18 §2): every row decided as ``POST /contacts`` decides a
person (phones and e-mails normalised, a phone or e-mail another contact holds refused as
a likely duplicate naming it, one an earlier row of the file took naming that row), the
dry run, idempotency; and the contacts' export in the import format making the same
records in a fresh platform and nothing in its own."""

# ruff: noqa: RUF001

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import openpyxl
import pytest
from fastapi.testclient import TestClient

from commands.context import CommandContext
from commands.imports import import_file
from leadledger.imports.runner import ImportReport
from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory

HEADER = ["ФИО", "Телефон", "E-mail", "Должность", "Компания", "Примечание"]
CARD = ("contact_id", "name", "phones", "emails", "position", "companies", "notes")


def contacts_csv(path: Path, rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(HEADER)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def run(side: Platform, clock: FakeClock, path: Path, **options: Any) -> ImportReport:
    ctx = CommandContext(actor="adam.admin", at=clock(), command_id=uuid4(), actor_role="admin")
    report, _ = import_file(side.store, side.funnels, side.rules, ctx, "contacts", path, **options)
    return report


def client(platform: Platform) -> TestClient:
    return TestClient(create_app(platform, close_on_exit=False), headers=ACTOR)


@pytest.fixture
def side(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(side: Platform) -> Iterator[TestClient]:
    with client(side) as c:
        yield c


def listed(api: TestClient) -> list[dict[str, Any]]:
    position = api.app.state.platform.store.last_position()  # type: ignore[attr-defined]
    answer = api.get("/contacts", params={"min_position": position, "limit": 500})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def cards(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        tuple(tuple(v) if isinstance(v, list) else v for v in map(i.get, CARD)) for i in items
    )


def test_rows_are_normalised_and_duplicates_refused_by_the_aggregates_rule(
    side: Platform, api: TestClient, clock: FakeClock, tmp_path: Path
) -> None:
    held = api.post("/contacts", json={"name": "Пётр Старый", "phones": ["+7 912 000-00-01"]})
    assert held.status_code == 201, held.text
    path = contacts_csv(
        tmp_path / "contacts.csv",
        [
            [
                "Иван Петров",
                "8 (912) 345-67-89, +7 912 345 00 00",
                "Ivan@Example.RU",
                "Директор",
                "alpha; ООО «Бета», филиал",
                "",
            ],
            ["Анна Смирнова", "", "anna@example.ru", "", "", "через Ивана"],
            # the same e-mail as row 2 (case aside), another first phone
            ["Анна С.", "+7 999 111-22-33", "ANNA@example.ru", "", "", ""],
            # the phone the directory's contact holds
            ["Пётр Новый", "89120000001", "", "", "", ""],
            ["Без телефона", "12-34", "", "", "", ""],
        ],
    )
    dry = run(side, clock, path, dry_run=True, mode="rows")
    assert (dry.status, dry.accepted, dry.refused) == ("dry_run", 2, 3)
    errors = {e.row: e for e in dry.errors}
    assert (errors[4].code, errors[4].field, errors[4].column) == (
        "likely_duplicate",
        "emails",
        "E-mail",
    )
    assert "row 3" in errors[4].reason
    assert (errors[5].code, errors[5].field) == ("likely_duplicate", "phones")
    assert held.json()["contact_id"] in errors[5].reason
    assert (errors[6].field, errors[6].column) == ("phones", "Телефон")
    assert len(listed(api)) == 1  # a dry run writes nothing

    report = run(side, clock, path, mode="rows")
    assert (report.status, report.imported, report.refused) == ("imported", 2, 3)
    ivan = next(i for i in listed(api) if i["name"] == "Иван Петров")
    assert ivan["phones"] == ["+79123456789", "+79123450000"]
    assert ivan["emails"] == ["ivan@example.ru"]
    assert ivan["companies"] == ["alpha", "ООО «Бета», филиал"]
    # the imported phone is the contact's now: the command refuses it for another
    taken = api.post("/contacts", json={"name": "Копия", "phones": ["89123456789"]})
    assert taken.status_code == 409
    assert taken.json()["contact_id"] == ivan["contact_id"]

    again = run(side, clock, path, mode="rows")
    assert (again.imported, again.already_imported, again.events) == (0, 2, 0)


def export(api: TestClient, **params: Any) -> bytes:
    position = api.app.state.platform.store.last_position()  # type: ignore[attr-defined]
    answer = api.get("/contacts", params={"format": "xlsx", "min_position": position, **params})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    content: bytes = answer.content
    return content


def test_the_contacts_export_in_the_import_format_and_import_back_unchanged(
    make_platform: PlatformFactory, clock: FakeClock, tmp_path: Path, pg_schema_url: str
) -> None:
    first = make_platform(process_managers=False)
    with client(first) as api:
        made = [
            {
                "name": "Иван Петров",
                "phones": ["8 912 345-67-89", "+44 20 7946 0958"],
                "emails": ["Ivan@Example.ru", "i.petrov@mail.ru"],
                "position": "Директор",
                "companies": ["alpha", "ООО «Бета», филиал"],
                "notes": "звонить\nпосле 12",
            },
            {"name": "Анна"},
            {"name": "Анна", "emails": ["anna@example.ru"]},
        ]
        for body in made:
            answer = api.post("/contacts", json=body)
            assert answer.status_code == 201, answer.text
        source = cards(listed(api))
        content = export(api)
        assert api.get("/contacts", params={"format": "pdf"}).status_code == 422
    path = tmp_path / "contacts.xlsx"
    path.write_bytes(content)
    sheet = openpyxl.load_workbook(path).worksheets[0]
    assert [c.value for c in next(sheet.iter_rows(max_row=1))] == list(CARD)
    assert sheet.max_row == 1 + len(source)

    fresh = make_platform(pg_schema_url, process_managers=False)
    report = run(fresh, clock, path)
    assert (report.status, report.imported, report.refused) == ("imported", len(source), 0), (
        report.errors
    )
    with client(fresh) as api:
        assert cards(listed(api)) == source
    again = run(first, clock, path)
    assert (again.status, again.already_imported, again.imported) == (
        "already_imported",
        len(source),
        0,
    )


def test_the_workspace_lists_link_their_export_in_the_import_format(
    make_platform: PlatformFactory, tmp_path: Path
) -> None:
    from tests.test_workspace_pages import ADMIN, PASSWORDS, sign_in

    platform = make_platform(signin_delay_seconds=0, process_managers=False)
    with TestClient(create_app(platform, close_on_exit=False)) as api:
        body = {"username": "tess.top", "name": "Tess", "role": "top"}
        assert api.post("/users", json=body, headers=ADMIN).status_code == 201
        platform.credentials.set_password("tess.top", PASSWORDS["tess.top"], set_by="test")
        for name in ("Иван", "Анна"):
            assert api.post("/contacts", json={"name": name}, headers=ACTOR).status_code == 201
        court = {"fields": {"name": "Арбитражный суд"}}
        assert api.post("/directories/court", json=court, headers=ACTOR).status_code == 201
        made = api.post("/companies", json={"name": "Альфа"}, headers=ACTOR).json()
        assert platform.projector.wait_for(made["position"], 10)
        assert sign_in(api, "tess.top") == 303
        pages = {
            "/workspace/contacts?q=Иван": ("contacts", ["Иван"]),
            "/workspace/directories/court": ("court", ["Арбитражный суд"]),
            "/workspace/companies": ("companies", ["Альфа"]),
        }
        for page, (kind, names) in pages.items():
            html = api.get(page).text
            found = re.search(r'id="export-records" href="([^"]+)"', html)
            assert found, html
            answer = api.get(found.group(1).replace("&amp;", "&"))
            assert answer.status_code == 200, answer.text
            path = tmp_path / f"{kind}.xlsx"
            path.write_bytes(answer.content)
            sheet = openpyxl.load_workbook(path).worksheets[0]
            header = [c.value for c in next(sheet.iter_rows(max_row=1))]
            assert header[1] == "name"
            assert [r[1] for r in sheet.iter_rows(min_row=2, values_only=True)] == names


def test_the_shipped_examples_import_with_their_headers(side: Platform, clock: FakeClock) -> None:
    examples = Path(__file__).resolve().parent.parent / "examples" / "import"
    contacts = run(side, clock, examples / "contacts.csv")
    assert (contacts.status, contacts.imported, contacts.refused) == ("imported", 3, 0)
    ctx = CommandContext(actor="adam.admin", at=clock(), command_id=uuid4(), actor_role="admin")
    courts, _ = import_file(
        side.store,
        side.funnels,
        side.rules,
        ctx,
        "court",
        examples / "courts.csv",
        directories=side.directories,
    )
    assert (courts.status, courts.imported, courts.refused) == ("imported", 2, 0)
