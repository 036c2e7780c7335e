"""Importing companies (issue 18 §2): every row decided as ``POST /companies`` decides a
card (INN check digits, KPP, duplicates by tax id and by name in the city), duplicates
within the file named by their first row, the dry run and both modes, idempotency, the
import in the company's history, a company first seen on a lead getting its card, the
first imported lead of an imported company being new; and the directory's export in the
import format making the same records in a fresh platform and nothing in its own."""

# ruff: noqa: RUF001

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import openpyxl
import pytest
from fastapi.testclient import TestClient

from aggregates import company
from aggregates.company import with_check_digits
from commands.context import CommandContext
from commands.imports import import_file
from event_store import verify
from leadledger.imports.base import record_id
from leadledger.imports.runner import ImportReport
from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory, bearer
from tests.test_imports import lead_row, write_csv

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "import"
INN_A = with_check_digits("770708389")
INN_B = with_check_digits("500100732")
INN_C = with_check_digits("540312345")
PERSON = with_check_digits("7713456789")
HEADER = ["Название", "ИНН", "КПП", "Отрасль", "Регион", "Город", "Адрес", "Примечание"]


def row(name: str, inn: str = "", city: str = "Москва", **more: str) -> dict[str, str]:
    values = {
        "Название": name,
        "ИНН": inn,
        "КПП": "",
        "Отрасль": "Строительство",
        "Регион": "Москва",
        "Город": city,
        "Адрес": "",
        "Примечание": "",
    }
    values.update(more)
    return values


def companies_csv(path: Path, rows: list[dict[str, str]], header: list[str] = HEADER) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, delimiter=";")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def run(
    side: Platform, clock: FakeClock, path: Path, kind: str = "companies", **options: Any
) -> ImportReport:
    ctx = CommandContext(actor="adam.admin", at=clock(), command_id=uuid4(), actor_role="admin")
    report, _ = import_file(side.store, side.funnels, side.rules, ctx, kind, path, **options)
    return report


def client(platform: Platform, headers: dict[str, str] = ACTOR) -> TestClient:
    return TestClient(create_app(platform, close_on_exit=False), headers=headers)


@pytest.fixture
def side(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(side: Platform) -> Iterator[TestClient]:
    with client(side) as c:
        yield c


def listed(api: TestClient, **params: Any) -> list[dict[str, Any]]:
    position = api.app.state.platform.store.last_position()  # type: ignore[attr-defined]
    answer = api.get("/companies", params={"min_position": position, "limit": 500, **params})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


CARD = (
    "company_id",
    "name",
    "tax_id",
    "kpp",
    "industry",
    "region",
    "city",
    "legal_address",
    "actual_address",
    "postal_address",
    "notes",
)


def cards(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(tuple(i[f] for f in CARD) for i in items)


# --- the kind -----------------------------------------------------------------------------


def test_the_shipped_example_imports_with_its_russian_headers_and_the_leads_follow(
    side: Platform, api: TestClient, clock: FakeClock
) -> None:
    dry = run(side, clock, EXAMPLES / "companies.csv", dry_run=True)
    assert (dry.status, dry.rows, dry.accepted, dry.refused) == ("dry_run", 4, 4, 0), dry.errors
    assert dry.columns["name"] == "Название"
    assert dry.columns["tax_id"] == "ИНН"
    assert side.store.last_position() == 0
    report = run(side, clock, EXAMPLES / "companies.csv")
    assert (report.status, report.imported) == ("imported", 4)
    by_id = {c["company_id"]: c for c in listed(api)}
    severny = by_id["7701234560"]
    assert (severny["name"], severny["kpp"], severny["city"]) == (
        'ООО "Северный ветер"',
        "770101001",
        "г. Москва",
    )
    assert severny["in_directory"] is True
    # no tax id: the id follows from the name in the city
    vector = company.name_key("АО «Вектор»", "Новосибирск")
    assert str(record_id("companies", f"name:{vector}")) in by_id
    # the leads file names the companies by their INN: their first leads are new
    leads = run(side, clock, EXAMPLES / "leads.csv", kind="leads")
    assert (leads.status, leads.imported) == ("imported", 6), leads.errors
    events = [r.event for r in side.store.load(company.company_stream_id("7701234560"))]
    assert [e.type for e in events] == ["CompanyAddedToDirectory", "CompanyFirstLeadRecorded"]
    first = events[1]
    assert isinstance(first, company.CompanyFirstLeadRecorded)
    assert first.lead_id == record_id("leads", "id:L-1001")  # created first
    deals = run(side, clock, EXAMPLES / "deals.csv", kind="deals")
    assert (deals.status, deals.imported) == ("imported", 5), (
        deals.errors
    )  # D-503 has a second invoice
    assert verify(side.store).ok
    repeat = {
        i["external"]: i["repeat"]
        for i in (
            {
                "external": n,
                **api.get(
                    f"/leads/{record_id('leads', f'id:{n}')}",
                    params={"min_position": side.store.last_position()},
                ).json(),
            }
            for n in ("L-1001", "L-1002", "L-1004", "L-1005")
        )
    }
    assert repeat == {"L-1001": False, "L-1002": True, "L-1004": False, "L-1005": True}


def test_every_bad_row_is_named_with_its_column_and_reason(
    side: Platform, clock: FakeClock, tmp_path: Path
) -> None:
    rows = [
        row("Альфа", INN_A, КПП="770701001"),  # row 2: good
        row("Бета", "7707083891"),  # row 3: a wrong check digit
        row("Гамма", PERSON, КПП="770701001"),  # row 4: a KPP needs an organisation's INN
        row(""),  # row 5: no name
        row("Дельта", "12345"),  # row 6: not 10 or 12 digits
        row("Эпсилон", INN_B, КПП="77A"),  # row 7: not a KPP
    ]
    report = run(side, clock, companies_csv(tmp_path / "c.csv", rows), dry_run=True)
    got = [(e.row, e.column, e.field, e.code) for e in report.errors]
    assert got == [
        (3, "ИНН", "tax_id", "invalid_value"),
        (4, "КПП", "kpp", "invalid_value"),
        (5, "Название", "name", "invalid_value"),
        (6, "ИНН", "tax_id", "invalid_value"),
        (7, "КПП", "kpp", "invalid_value"),
    ]
    reasons = {e.row: e.reason for e in report.errors}
    assert "check digit" in reasons[3]
    assert reasons[5] == "'name' is required"
    assert (report.accepted, report.refused) == (1, 5)
    assert side.store.last_position() == 0


def test_duplicates_within_the_file_name_the_first_row(
    side: Platform, clock: FakeClock, tmp_path: Path
) -> None:
    header = ["Код", *HEADER]
    rows = [
        {"Код": "A-1", **row("ООО «Альфа»", INN_A)},  # row 2
        {"Код": "A-2", **row("Альфа-2", INN_A)},  # row 3: the same tax id as row 2
        {"Код": "", **row("Бета", INN_B)},  # row 4
        {"Код": "", **row("Бета", INN_B)},  # row 5: the same record (its id is the INN)
        {"Код": "G-1", **row("ЗАО Гамма", city="г. Казань")},  # row 6
        {"Код": "G-2", **row("Гамма ООО", city="Казань")},  # row 7: the same name in the city
        {"Код": "G-3", **row("Гамма", city="Самара")},  # row 8: another city: fine
    ]
    report = run(side, clock, companies_csv(tmp_path / "d.csv", rows, header), dry_run=True)
    got = {e.row: (e.column, e.code, e.reason) for e in report.errors}
    assert set(got) == {3, 5, 7}
    assert got[3][:2] == ("ИНН", "likely_duplicate")
    assert (
        got[3][2] == f"likely a duplicate of row 2 (company A-1): it has the same tax id ({INN_A})"
    )
    assert got[5] == (None, "duplicate_row", "the same record as row 4")
    assert got[7][:2] == ("Название", "likely_duplicate")
    assert "row 6 (company G-1)" in got[7][2]
    # "another company" lets the name through, never the tax id
    rows[5]["Другая компания"] = "да"
    rows[1]["Другая компания"] = "да"
    for r in rows:
        r.setdefault("Другая компания", "")
    again = run(
        side,
        clock,
        companies_csv(tmp_path / "e.csv", rows, [*header, "Другая компания"]),
        dry_run=True,
    )
    assert {e.row for e in again.errors} == {3, 5}


def test_duplicates_of_the_directory_name_the_existing_company(
    side: Platform, api: TestClient, clock: FakeClock, tmp_path: Path
) -> None:
    existing = api.post(
        "/companies", json={"name": "ООО «Ромашка»", "tax_id": INN_A, "city": "Москва"}
    )
    assert existing.status_code == 201, existing.text
    existing_id = existing.json()["company_id"]
    rows = [
        row("Ромашка-2", INN_A),  # the tax id is held
        row("Ромашка", city="г. Москва"),  # the name in the city is held
        row("Ромашка", city="Тверь"),  # fine
    ]
    report = run(side, clock, companies_csv(tmp_path / "c.csv", rows), mode="rows")
    got = {e.row: (e.column, e.code, e.reason) for e in report.errors}
    assert got == {
        2: (
            "ИНН",
            "likely_duplicate",
            f"likely a duplicate of company {existing_id}: it has the same tax id ({INN_A})",
        ),
        3: (
            "Название",
            "likely_duplicate",
            f"likely a duplicate of company {existing_id}: it has the same name in the same city "
            "(Ромашка, г. Москва)",
        ),
    }
    assert (report.status, report.imported) == ("imported", 1)
    # the claims the import took hold against the commands too
    taken = api.post("/companies", json={"name": "ООО Ромашка", "city": "Тверь"})
    assert taken.status_code == 409
    assert taken.json()["existing_company_id"] == str(
        record_id("companies", f"name:{company.name_key('Ромашка', 'Тверь')}")
    )


def test_mode_all_or_rows_and_a_second_import_adds_nothing(
    side: Platform, api: TestClient, clock: FakeClock, tmp_path: Path
) -> None:
    rows = [row(f"Компания {n}", with_check_digits(f"77000000{n}")) for n in range(1, 8)]
    rows[4]["ИНН"] = "7700000000"  # a wrong check digit
    path = companies_csv(tmp_path / "c.csv", rows)
    rejected = run(side, clock, path)
    assert (rejected.status, rejected.imported, [e.row for e in rejected.errors]) == (
        "rejected",
        0,
        [6],
    )
    assert side.store.last_position() == 0
    partial = run(side, clock, path, mode="rows")
    assert (partial.status, partial.imported, partial.refused) == ("imported", 6, 1)
    # each company with its two claims
    assert partial.events == 18 == side.store.last_position()
    again = run(side, clock, path, mode="rows")
    assert (again.status, again.already_imported, again.imported) == ("already_imported", 6, 0)
    rows[4]["ИНН"] = with_check_digits("770000005")
    fixed = run(side, clock, companies_csv(tmp_path / "fixed.csv", rows))
    assert (fixed.status, fixed.imported, fixed.already_imported) == ("imported", 1, 6)
    assert len(listed(api)) == 7
    assert run(side, clock, tmp_path / "fixed.csv").status == "already_imported"


def test_the_import_is_the_cause_in_the_company_history(
    side: Platform, api: TestClient, clock: FakeClock, tmp_path: Path
) -> None:
    report = run(
        side, clock, companies_csv(tmp_path / "base.csv", [row("Альфа"), row("Бета", INN_B)])
    )
    history = api.get(f"/companies/{INN_B}/history")
    assert history.status_code == 200, history.text
    (entry,) = history.json()["events"]
    assert entry["type"] == "CompanyAddedToDirectory"
    assert entry["caused_by"] == f"import base.csv sha256:{report.checksum} row 3"
    assert entry["command"] == "import-companies"
    assert entry["actor"] == "adam.admin"
    # and it takes commands like any other
    changed = api.patch(f"/companies/{INN_B}", json={"industry": "Retail"})
    assert changed.status_code == 200, changed.text


def test_a_company_first_seen_on_a_lead_gets_its_card_once(
    side: Platform, api: TestClient, clock: FakeClock, tmp_path: Path
) -> None:
    run(side, clock, write_csv(tmp_path / "l.csv", [lead_row(1, company_id=INN_C)]), kind="leads")
    bare = companies_csv(
        tmp_path / "bare.csv", [{"Код": INN_C, "Название": "Company 1"}], ["Код", "Название"]
    )
    # nothing more than its name: in already
    assert run(side, clock, bare).status == "already_imported"
    full = companies_csv(tmp_path / "full.csv", [row("Company 1", INN_C, КПП="540301001")])
    report = run(side, clock, full)
    assert (report.status, report.imported) == ("imported", 1)
    types = [r.event.type for r in side.store.load(company.company_stream_id(INN_C))]
    assert types == ["CompanyRegistered", "CompanyCardChanged"]
    (record,) = listed(api)
    assert (record["in_directory"], record["kpp"], record["first_lead_id"]) == (
        True,
        "540301001",
        str(record_id("leads", "id:L-1")),
    )
    assert run(side, clock, full).status == "already_imported"


# --- the export and the round trip ----------------------------------------------------------


def export(api: TestClient, **params: Any) -> bytes:
    position = api.app.state.platform.store.last_position()  # type: ignore[attr-defined]
    answer = api.get("/companies", params={"format": "xlsx", "min_position": position, **params})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    content: bytes = answer.content
    return content


def test_the_directory_exports_in_the_import_format_and_imports_back_unchanged(
    make_platform: PlatformFactory, clock: FakeClock, tmp_path: Path, pg_schema_url: str
) -> None:
    first = make_platform(process_managers=False)
    with client(first) as api:
        made = [
            {
                "company_id": "alpha",
                "name": "ООО «Альфа»",
                "tax_id": INN_A,
                "kpp": "770701001",
                "industry": "Retail",
                "region": "Москва",
                "city": "Москва",
                "legal_address": "ул. Тверская, 1",
                "actual_address": "ул. Тверская, 1, оф. 2",
                "postal_address": "а/я 5",
                "notes": "важный\nклиент",
            },
            {"name": "Бета", "city": "Казань"},
            # the same name in the same city, told apart on purpose
            {"name": "Бета", "city": "Казань", "different_company": True, "company_id": "beta-2"},
            {"name": "ИП Лебедева", "tax_id": PERSON},
        ]
        for body in made:
            answer = api.post("/companies", json=body)
            assert answer.status_code == 201, answer.text
        merged = api.post("/companies", json={"name": "Альфа дубль", "city": "Тверь"}).json()
        merging = api.post(f"/companies/{merged['company_id']}/merge", json={"into": "alpha"})
        assert merging.status_code == 200, merging.text
        # a company first seen on a lead: just its name
        lead = api.post(
            "/leads",
            json={
                "funnel": "out_of_court",
                "title": "Roof",
                "company_name": "Гамма",
                "company_id": "gamma",
                "source": "website",
                "manager": "boris",
            },
        )
        assert lead.status_code == 201, lead.text
        source = cards(listed(api))
        content = export(api)
    path = tmp_path / "companies.xlsx"
    path.write_bytes(content)
    sheet = openpyxl.load_workbook(path).worksheets[0]
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    assert header[:3] == ["company_id", "name", "tax_id"]
    assert header[-1] == "different_company"
    assert sheet.max_row == 1 + len(source)

    # the fresh platform on PostgreSQL: the bulk COPY path, claim streams at version 2
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


def test_the_export_holds_what_the_viewer_sees_with_the_filters(
    side: Platform, api: TestClient, clock: FakeClock, tmp_path: Path
) -> None:
    run(
        side,
        clock,
        companies_csv(tmp_path / "c.csv", [row("Альфа", INN_A), row("Бета", city="Тверь")]),
    )
    path = tmp_path / "tver.xlsx"
    path.write_bytes(export(api, city="Тверь"))
    rows = list(openpyxl.load_workbook(path).worksheets[0].iter_rows(min_row=2, values_only=True))
    assert [r[1] for r in rows] == ["Бета"]
    # a manager with no record of these companies sees none of them
    with client(side, bearer("boris", "manager")) as boris:
        path.write_bytes(export(boris))
    assert openpyxl.load_workbook(path).worksheets[0].max_row == 1
    assert api.get("/companies", params={"format": "pdf"}).status_code == 422


def test_a_lead_external_id_that_is_a_lead_id_is_that_lead(
    side: Platform, clock: FakeClock, tmp_path: Path
) -> None:
    lead_id = uuid4()
    path = write_csv(tmp_path / "l.csv", [lead_row(1, external_id=str(lead_id))])
    assert run(side, clock, path, kind="leads").imported == 1
    assert [r.event.type for r in side.store.load(lead_id)] == ["LeadImported"]
    assert run(side, clock, path, kind="leads").status == "already_imported"
