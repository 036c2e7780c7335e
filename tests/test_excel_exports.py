"""Excel exports of the read models (issue 14, §4): ``/exports/{table}?format=xlsx``
streams the viewer's rows into a constant-memory workbook, served and then removed; its
rows are the CSV export's; 100,000 rows export whole.
"""

from __future__ import annotations

import csv
import glob
import io
import os
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from bench.bench_funnel_report import fill_read_model
from leadledger.demo import load_demo
from leadledger.settings import Settings
from leadledger.wiring import Platform, build, load_funnels
from read_api.app import create_app
from read_api.excel import XLSX
from read_api.routes.exports import EXPORTABLE
from tests.conftest import ACTOR, TEST_AUTH_SECRET, FakeClock, bearer

HEADER_ROW = 6
"""The header's row (1-based) under the title block."""


@pytest.fixture
def demo(platform: Platform) -> Iterator[TestClient]:
    load_demo(platform.store, platform.funnels, platform.clock(), leads=30)
    platform.projector.catch_up()
    with TestClient(create_app(platform, background=False, close_on_exit=False)) as client:
        yield client


def rows_of(content: bytes) -> list[dict[str, Any]]:
    sheet: Any = openpyxl.load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
    values = list(sheet.iter_rows(min_row=HEADER_ROW, values_only=True))
    header = [str(v) for v in values[0]]
    return [dict(zip(header, row, strict=False)) for row in values[1:]]


def leftovers() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "leadledger-export-*.xlsx")))


def test_every_read_model_exports_as_a_workbook(
    demo: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the exports of this test alone go to a directory of its own (other processes on the
    # machine write theirs to the shared temporary directory meanwhile)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert leftovers() == set()
    for table in EXPORTABLE:
        response = demo.get(f"/exports/{table}", params={"format": "xlsx"}, headers=ACTOR)
        assert response.status_code == 200, (table, response.text)
        assert response.headers["content-type"] == XLSX
        assert response.headers["content-disposition"].endswith(f'{table}.xlsx"')
        book = openpyxl.load_workbook(io.BytesIO(response.content))
        sheet = book.worksheets[0]
        assert sheet["A2"].value == "Filters"
        assert sheet["B2"].value == f"table = {table}"
        assert sheet.freeze_panes == f"A{HEADER_ROW + 1}"
        assert sheet.auto_filter.ref
    assert leftovers() == set(), "each workbook is removed once served"


def test_the_workbook_holds_the_csv_exports_rows(demo: TestClient) -> None:
    text = demo.get("/exports/leads", params={"format": "csv"}, headers=ACTOR).text
    expected = list(csv.DictReader(io.StringIO(text)))
    rows = rows_of(demo.get("/exports/leads", params={"format": "xlsx"}, headers=ACTOR).content)
    assert len(rows) == len(expected) == 30
    for cells, row in zip(rows, expected, strict=True):
        assert cells["lead id"] == row["lead_id"]
        assert cells["amount"] == float(Decimal(row["amount"]))  # the nearest double, exactly
        assert cells["stage step"] == int(row["stage_step"])
        assert cells["repeat"] is (row["repeat"] == "true")
        assert cells["created at"].isoformat(sep=" ")[:19] == row["created_at"][:19]


def test_a_scoped_viewer_exports_only_their_records(demo: TestClient) -> None:
    manager = bearer("boris.ivanov", "manager", "sales")
    response = demo.get("/exports/leads", params={"format": "xlsx"}, headers=manager)
    assert response.status_code == 200, response.text
    rows = rows_of(response.content)
    everyone = rows_of(demo.get("/exports/leads", params={"format": "xlsx"}, headers=ACTOR).content)
    assert rows
    assert {r["manager"] for r in rows} == {"boris.ivanov"}
    assert len(rows) == sum(r["manager"] == "boris.ivanov" for r in everyone)


def test_an_unknown_format_is_refused_naming_it(demo: TestClient) -> None:
    response = demo.get("/exports/leads", params={"format": "xls"}, headers=ACTOR)
    assert response.status_code == 422
    assert response.json()["field"] == "format"


@pytest.mark.slow
def test_a_hundred_thousand_rows_export_whole(tmp_path: Path) -> None:
    """100,000 leads (the bench's synthetic read model) in one workbook; the time it
    took is printed (bench/bench_excel.py measures it properly)."""
    rows = 100_000
    settings = Settings(
        event_store_url=f"sqlite:///{tmp_path}/events.sqlite",
        duckdb_path=tmp_path / "read_models.duckdb",
        auth_secret=SecretStr(TEST_AUTH_SECRET),
    )
    filled = fill_read_model(settings.duckdb_path, load_funnels(settings.funnels_file), rows, 7)
    assert filled["rows"] == rows
    platform = build(settings, clock=FakeClock())
    with TestClient(create_app(platform, background=False), headers=ACTOR) as client:
        started = time.perf_counter()
        response = client.get("/exports/leads", params={"format": "xlsx"})
        took = time.perf_counter() - started
    assert response.status_code == 200, response.text
    print(f"100,000 rows to Excel in {took:.1f} s")
    book = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
    sheet: Any = book.worksheets[0]
    assert sheet.max_row == HEADER_ROW + rows
    first = next(sheet.iter_rows(min_row=HEADER_ROW + 1, max_row=HEADER_ROW + 1, values_only=True))
    assert first[0] is not None
