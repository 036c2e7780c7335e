"""Importing a shared directory's entries (issue 18 §2): one import kind made from each
configured directory (named by its id), every row decided as ``POST /directories/{kind}``
decides an entry (required fields, phones and e-mails normalised), idempotency, the
configured names as headers; and each directory's export in its import format making the
same entries in a fresh platform and nothing in its own."""

# ruff: noqa: RUF001

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any
from uuid import uuid4

import openpyxl
import pytest
from fastapi.testclient import TestClient

from aggregates.errors import InvalidValue
from commands.context import CommandContext
from commands.imports import import_file
from leadledger.imports.runner import ImportReport
from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory


def run(side: Platform, clock: FakeClock, kind: str, path: Path, **options: Any) -> ImportReport:
    ctx = CommandContext(actor="adam.admin", at=clock(), command_id=uuid4(), actor_role="admin")
    report, _ = import_file(
        side.store,
        side.funnels,
        side.rules,
        ctx,
        kind,
        path,
        directories=side.directories,
        **options,
    )
    return report


def client(platform: Platform) -> TestClient:
    return TestClient(create_app(platform, close_on_exit=False), headers=ACTOR)


def listed(api: TestClient, kind: str) -> list[dict[str, Any]]:
    position = api.app.state.platform.store.last_position()  # type: ignore[attr-defined]
    answer = api.get(f"/directories/{kind}", params={"min_position": position, "limit": 500})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def entries(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((i["entry_id"], i["title"], tuple(sorted(i["fields"].items()))) for i in items)


def test_a_directory_is_an_import_kind_by_its_id_with_its_rules(
    make_platform: PlatformFactory, clock: FakeClock, tmp_path: Path
) -> None:
    side = make_platform(process_managers=False)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    # the configured names as headers (Name, Region, Phone, E-mail)
    writer.writerow(["Name", "Region", "Phone", "E-mail"])
    writer.writerow(["Арбитражный суд Москвы", "Москва", "8 (495) 600-99-99", "A40@Arbitr.ru"])
    writer.writerow(["", "Тверь", "", ""])
    writer.writerow(["Суд без почты", "", "", "не почта"])
    path = tmp_path / "courts.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")

    report = run(side, clock, "court", path, mode="rows")
    assert (report.status, report.imported, report.refused) == ("imported", 1, 2)
    errors = {e.row: (e.field, e.column) for e in report.errors}
    assert errors == {3: ("name", "Name"), 4: ("email", "E-mail")}
    with client(side) as api:
        [court] = listed(api, "court")
        assert court["fields"]["phone"] == "+74956009999"
        assert court["fields"]["email"] == "a40@arbitr.ru"
        assert listed(api, "opponent") == []
    again = run(side, clock, "court", path, mode="rows")
    assert (again.imported, again.already_imported, again.events) == (0, 1, 0)
    with pytest.raises(InvalidValue, match="court"):
        run(side, clock, "courts", path)


@pytest.mark.parametrize("kind", ["court", "signatory"])
def test_a_directory_exports_in_its_import_format_and_imports_back_unchanged(
    make_platform: PlatformFactory,
    clock: FakeClock,
    tmp_path: Path,
    pg_schema_url: str,
    kind: str,
) -> None:
    first = make_platform(process_managers=False)
    configured = first.directories.kinds[kind]
    with client(first) as api:
        for n in range(3):
            fields: dict[str, Any] = {}
            for spec in configured.fields:
                if spec.type == "phone":
                    fields[spec.id] = f"8 912 000-00-0{n}"
                elif spec.type == "email":
                    fields[spec.id] = f"Person{n}@Example.ru"
                elif spec.type == "long":
                    fields[spec.id] = "две\nстроки" if n == 0 else None
                elif spec.required or n != 2:
                    fields[spec.id] = f"{spec.name} «{n}», Москва"
            answer = api.post(f"/directories/{kind}", json={"fields": fields})
            assert answer.status_code == 201, answer.text
        source = entries(listed(api, kind))
        position = first.store.last_position()
        answer = api.get(
            f"/directories/{kind}", params={"format": "xlsx", "min_position": position}
        )
        assert answer.status_code == 200, answer.text
        assert api.get("/directories/nowhere", params={"format": "xlsx"}).status_code == 404
    path = tmp_path / f"{kind}.xlsx"
    path.write_bytes(answer.content)
    sheet = openpyxl.load_workbook(path).worksheets[0]
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    assert header == ["entry_id", *configured.field_ids]
    assert sheet.max_row == 1 + len(source)

    fresh = make_platform(pg_schema_url, process_managers=False)
    report = run(fresh, clock, kind, path)
    assert (report.status, report.imported, report.refused) == ("imported", 3, 0), report.errors
    with client(fresh) as api:
        assert entries(listed(api, kind)) == source
    again = run(first, clock, kind, path)
    assert (again.status, again.already_imported) == ("already_imported", 3)
