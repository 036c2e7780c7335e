"""``POST /imports`` and the saved mappings over HTTP (issue 18 §2): admin and top only,
multipart upload of CSV or XLSX, the dry run's report and its workbook, modes, a mapping
given inline or saved by name, and a clear 4xx naming the problem for a bad kind, a bad
mapping, an unreadable file or a file over the body limit."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient

from leadledger.imports.base import record_id
from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import PlatformFactory, bearer
from tests.test_imports import BAD_ROWS, lead_row, write_csv

ADMIN = bearer("adam.admin", "admin")
TOP = bearer("tanya.top", "top")
MANAGER = bearer("boris", "manager")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "import"


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False, max_body_bytes=200_000)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ADMIN) as client:
        yield client


def upload(
    api: TestClient,
    content: bytes,
    name: str = "leads.csv",
    headers: dict[str, str] = ADMIN,
    **form: Any,
) -> Any:
    data = {
        "kind": "leads",
        **{k: str(v).lower() if isinstance(v, bool) else v for k, v in form.items()},
    }
    return api.post("/imports", files={"file": (name, content)}, data=data, headers=headers)


def csv_bytes(tmp_path: Path, rows: list[dict[str, str]]) -> bytes:
    return write_csv(tmp_path / "f.csv", rows).read_bytes()


def test_a_dry_run_answers_every_bad_row_then_rows_mode_imports_the_good_ones(
    api: TestClient, platform: Platform, tmp_path: Path
) -> None:
    content = csv_bytes(tmp_path, BAD_ROWS)
    dry = upload(api, content, dry_run=True)
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert (body["status"], body["accepted"], body["refused"]) == ("dry_run", 2, 6)
    assert body["errors"][2] == {
        "row": 5,
        "column": "reason",
        "field": "reason",
        "reason": "'reason' is required",
        "code": "invalid_value",
    }
    whole = upload(api, content)
    assert (whole.status_code, whole.json()["status"]) == (200, "rejected")
    assert platform.store.last_position() == 0
    rows = upload(api, content, mode="rows")
    assert (rows.json()["status"], rows.json()["imported"]) == ("imported", 2)
    again = upload(api, content, mode="rows")
    assert (again.json()["imported"], again.json()["already_imported"]) == (0, 2)
    # read back through the API at the import's position
    lead_id = record_id("leads", "id:L-1")
    lead = api.get(
        f"/leads/{lead_id}",
        params={"min_position": rows.json()["last_position"]},
        headers=TOP,
    )
    assert lead.status_code == 200, lead.text
    assert (lead.json()["title"], lead.json()["created_at"]) == ("Lead 1", "2025-02-02T10:00:00Z")


def test_the_error_workbook_has_the_refused_rows_with_their_reasons_beside_them(
    api: TestClient, tmp_path: Path
) -> None:
    answer = upload(api, csv_bytes(tmp_path, BAD_ROWS), dry_run=True, report="xlsx")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert "leads-errors.xlsx" in answer.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(answer.content)).active
    assert sheet is not None
    table = list(sheet.iter_rows(values_only=True))
    assert [r[0] for r in table[1:]] == [3, 4, 5, 6, 8, 9]
    assert table[1][2] == "Lead 2"  # the row as it was in the file
    assert str(table[1][-2]).startswith("created_at: 'created_at' must be a date")


def test_an_xlsx_upload_with_a_saved_mapping(api: TestClient, tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Deal", "Client", "Channel", "Owner", "Pipeline", "Opened", "Notes"])
    sheet.append(["Roof", "Acme", "web", "boris", "out_of_court", "2025-03-01", "keep"])
    sheet.append(["Wall", "Acme", "web", "boris", "out_of_court", "2025-03-02", ""])
    buffer = io.BytesIO()
    workbook.save(buffer)
    columns = {
        "Deal": "title",
        "Client": "company_name",
        "Channel": "source",
        "Owner": "manager",
        "Pipeline": "funnel",
        "Opened": "created_at",
        "Notes": "",
    }
    saved = api.put("/imports/mappings/crm-export", json={"kind": "leads", "columns": columns})
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 1
    got = api.get("/imports/mappings/crm-export")
    assert got.json()["columns"] == columns | {"Notes": ""}
    answer = upload(api, buffer.getvalue(), name="export.xlsx", mapping_name="crm-export")
    assert answer.status_code == 200, answer.text
    assert (answer.json()["format"], answer.json()["imported"]) == ("xlsx", 2)
    inline = upload(api, buffer.getvalue(), name="export.xlsx", mapping=json.dumps(columns))
    assert inline.json()["status"] == "already_imported"


def test_the_shipped_examples_go_in_over_http(api: TestClient) -> None:
    mapping = (EXAMPLES / "leads-mapping.json").read_text(encoding="utf-8")
    leads = upload(api, (EXAMPLES / "leads.csv").read_bytes(), mapping=mapping)
    assert leads.json()["imported"] == 6, leads.text
    deals = upload(api, (EXAMPLES / "deals.csv").read_bytes(), name="deals.csv", kind="deals")
    assert deals.json()["imported"] == 5, deals.text  # D-503 has a second invoice


@pytest.mark.parametrize(
    ("form", "content", "field", "says"),
    [
        (
            {"kind": "invoices"},
            None,
            "kind",
            "'kind' must be one of companies, contacts, deals, leads, court, opponent",
        ),
        ({"mode": "some"}, None, "mode", None),
        ({"mapping": "{not json"}, None, "mapping", "not JSON"),
        ({"mapping": '{"Nope": "title"}'}, None, "mapping", "column 'Nope' is not in the file"),
        ({"mapping": '{"title": "colour"}'}, None, "mapping", "'colour' is not a field of leads"),
        ({"mapping": '{"title": ""}'}, None, "mapping", "required field(s) title"),
        ({"mapping_name": "never-saved"}, None, None, "import mapping 'never-saved' not found"),
        ({}, b"\xff\xfe\x00garbage;1\n\x80\x81", "file", "not UTF-8"),
        ({}, b"PK\x03\x04 not a zip at all", "file", "not a readable XLSX"),
        ({}, b"", "file", "empty"),
    ],
)
def test_bad_requests_are_4xx_naming_the_problem(
    api: TestClient,
    tmp_path: Path,
    form: dict[str, str],
    content: bytes | None,
    field: str | None,
    says: str | None,
) -> None:
    body = content if content is not None else csv_bytes(tmp_path, [lead_row(1)])
    data = {"kind": "leads", **form}
    answer = api.post("/imports", files={"file": ("leads.csv", body)}, data=data)
    assert answer.status_code in (404, 422), answer.text
    text = answer.text
    if field is not None:
        assert field in text
    if says is not None:
        assert says in text


def test_only_admins_and_top_management_import_and_the_body_limit_holds(
    api: TestClient, tmp_path: Path
) -> None:
    content = csv_bytes(tmp_path, [lead_row(1)])
    assert upload(api, content, headers=MANAGER, dry_run=True).status_code == 403
    assert upload(api, content, headers=TOP, dry_run=True).status_code == 200
    assert api.get("/imports/mappings/x", headers=MANAGER).status_code == 403
    big = csv_bytes(tmp_path, [lead_row(n) for n in range(3000)])
    assert len(big) > 200_000
    answer = upload(api, big, dry_run=True)
    assert answer.status_code == 413, answer.text


def test_a_bad_saved_mapping_is_a_422_naming_the_column(api: TestClient) -> None:
    answer = api.put("/imports/mappings/x", json={"kind": "leads", "columns": {"A": "nope"}})
    assert answer.status_code == 422
    assert "columns.A" in answer.text
    named = api.put("/imports/mappings/Bad Name", json={"kind": "leads", "columns": {"A": "title"}})
    assert named.status_code == 422
    assert "name" in named.text
