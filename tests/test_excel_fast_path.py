"""The exports' fast path (issue 14, §4): a read model's Arrow batches are converted a
whole column at a time (decimals to doubles, timestamps to naive UTC, dates kept, nulls
kept, anything else to text) and written by the compiled writer with the reports' number
formats; the cells read back typed and equal to the values they came from.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from read_api.excel import (
    DATE,
    DATETIME,
    INTEGER,
    MONEY,
    NUMBER_FORMATS,
    Title,
    arrow_kind,
    excel_batch,
    excel_column,
    write_rows,
)

HEADER_ROW = 6
MOSCOW = timezone(timedelta(hours=3))
TITLE = Title("Export leads", [("table", "leads")], datetime(2026, 5, 1, 9, 30, tzinfo=UTC), "t")


def sample() -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "lead_id": ["a", "b", None],
            "amount": pa.array(
                [Decimal("1234567.89"), None, Decimal("0.10")], pa.decimal128(18, 2)
            ),
            "answer_due": pa.array([date(2026, 2, 28), None, date(1999, 12, 31)], pa.date32()),
            "created_at": pa.array(
                [datetime(2026, 3, 1, 12, 0, 1, tzinfo=MOSCOW), None, None],
                pa.timestamp("us", "UTC"),
            ),
            "visits": pa.array([3, None, 0], pa.int32()),
            "repeat": [True, None, False],
            "tags": pa.array([["x", "y"], None, []], pa.list_(pa.string())),
            "formula_like": ["=1+2", "http://example.org", "0042"],
        }
    )


def test_each_column_is_converted_whole_to_its_cells_type() -> None:
    cells = excel_batch(sample())
    column = dict(zip(cells.schema.names, cells.columns, strict=True))
    assert column["amount"].type == pa.float64()
    assert column["amount"].to_pylist() == [1234567.89, None, 0.1]
    assert column["answer_due"].type == pa.date32()
    assert column["answer_due"].to_pylist() == [date(2026, 2, 28), None, date(1999, 12, 31)]
    assert column["created_at"].type == pa.timestamp("us")  # no zone: Excel has none
    assert column["created_at"].to_pylist() == [datetime(2026, 3, 1, 9, 0, 1), None, None]
    assert column["visits"].type == pa.float64()
    assert column["visits"].to_pylist() == [3.0, None, 0.0]
    assert column["repeat"].to_pylist() == [True, None, False]
    assert column["tags"].to_pylist() == ["x, y", None, ""]
    assert column["lead_id"].to_pylist() == ["a", "b", None]


def test_kinds_and_formats_come_from_the_arrow_types() -> None:
    kinds = {f.name: arrow_kind(f.type) for f in sample().schema}
    assert kinds == {
        "lead_id": "text",
        "amount": "money",
        "answer_due": "date",
        "created_at": "datetime",
        "visits": "int",
        "repeat": "bool",
        "tags": "text",
        "formula_like": "text",
    }
    assert NUMBER_FORMATS["money"] == MONEY
    assert NUMBER_FORMATS["int"] == INTEGER


def read_back(path: Path) -> tuple[Any, list[list[Any]]]:
    book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()))
    sheet = book.worksheets[0]
    return sheet, [list(row) for row in sheet.iter_rows(min_row=HEADER_ROW)]


def test_the_workbook_holds_typed_cells(tmp_path: Path) -> None:
    path = tmp_path / "leads.xlsx"
    reader = pa.RecordBatchReader.from_batches(sample().schema, [sample()])
    assert write_rows(str(path), TITLE, reader) == 3
    sheet, rows = read_back(path)
    assert sheet["A1"].value == "Export leads"
    assert sheet["B2"].value == "table = leads"
    assert sheet["B3"].value == datetime(2026, 5, 1, 9, 30)
    assert sheet.freeze_panes == f"A{HEADER_ROW + 1}"
    assert sheet.auto_filter.ref == f"A{HEADER_ROW}:H{HEADER_ROW + 3}"
    header = [c.value for c in rows[0]]
    assert header[:3] == ["lead id", "amount", "answer due"]
    first, second, third = (dict(zip(header, r, strict=False)) for r in rows[1:])
    assert first["amount"].value == 1234567.89
    assert first["amount"].number_format == MONEY
    assert first["answer due"].value == datetime(2026, 2, 28)
    assert first["answer due"].number_format == DATE
    assert first["created at"].value == datetime(2026, 3, 1, 9, 0, 1)
    assert first["created at"].number_format == DATETIME
    assert first["visits"].value == 3
    assert first["visits"].number_format == INTEGER
    assert first["repeat"].value is True
    assert first["tags"].value == "x, y"
    assert first["formula like"].value == "=1+2"
    assert first["formula like"].data_type == "s"  # text, never a formula
    assert second["formula like"].value == "http://example.org"
    assert third["formula like"].value == "0042"  # text, never a number
    assert third["repeat"].value is False
    assert second["lead id"].value == "b"
    for name in ("amount", "answer due", "created at", "visits", "repeat", "tags"):
        assert second[name].value is None  # a null is an empty cell
    assert third["lead id"].value is None


def test_an_empty_read_model_is_a_header_and_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    schema = sample().schema
    assert write_rows(str(path), TITLE, pa.RecordBatchReader.from_batches(schema, [])) == 0
    _, rows = read_back(path)
    assert [c.value for c in rows[0]][:2] == ["lead id", "amount"]
    assert all(c.value is None for row in rows[1:] for c in row)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.decimals(
                min_value=Decimal("-999999999.99"),
                max_value=Decimal("999999999.99"),
                places=2,
                allow_nan=False,
            ),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_money_cells_equal_their_decimals(amounts: list[Decimal | None]) -> None:
    column = excel_column(pa.array(amounts, pa.decimal128(18, 2)), "money")
    assert column.to_pylist() == [None if a is None else float(a) for a in amounts]


@pytest.mark.parametrize("batches", [1, 3])
def test_rows_of_every_batch_are_written_in_order(tmp_path: Path, batches: int) -> None:
    ids = [f"lead-{n}" for n in range(10 * batches)]
    schema = pa.schema([("lead_id", pa.string()), ("amount", pa.decimal128(18, 2))])
    parts = [
        pa.RecordBatch.from_pydict(
            {
                "lead_id": ids[10 * b : 10 * (b + 1)],
                "amount": [Decimal(n) / 100 for n in range(10 * b, 10 * (b + 1))],
            },
            schema=schema,
        )
        for b in range(batches)
    ]
    path = tmp_path / "batches.xlsx"
    assert write_rows(str(path), TITLE, pa.RecordBatchReader.from_batches(schema, parts)) == len(
        ids
    )
    _, rows = read_back(path)
    assert [r[0].value for r in rows[1:]] == ids
    assert [r[1].value for r in rows[1:]] == [n / 100 for n in range(len(ids))]
