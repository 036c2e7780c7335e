"""Excel workbooks of the reports and exports: one renderer for every report.

A report's workbook is laid out from its response model's *type* and its result (the
dict the route returns, or the JSON it answers): the first sheet opens with a title block
(report, filters, generated at, by whom), then the report's first list of rows as a table
with its totals row (the report's own ``totals``, when their fields match the table's
columns) and, below, the report's scalars (the summary); every other list of rows is a
sheet of its own. Cells are typed from the model's field types: int, float and Decimal
are numbers (Decimal and money with two decimals and thousands separators), date and
datetime are Excel dates (datetimes in UTC), booleans are booleans, None is empty; every
table has a frozen header, an autofilter and widths from its contents. A native chart is
added where the workspace page shows one (``CHARTS``).

``install_excel`` hooks the renderer into the app once (``ExcelReports``, a middleware):
every report (``is_report_path``: ``/reports/...``, ``.../status-time`` and the paged
lists in ``LIST_REPORTS``) answers ``?format=xlsx`` or ``Accept: XLSX`` with a workbook
made from its route's JSON answer and response model, and declares both in its OpenAPI
operation. A read-model export (``write_rows``) streams its rows instead, in Arrow batches
converted a column at a time, into a constant-memory workbook on disk written by
rust_xlsxwriter's compiled core (100,000 rows of 42 columns are 3 million cells: XlsxWriter's
per-cell Python code took 20 s for them); both take their number formats from
``NUMBER_FORMATS``.
"""

from __future__ import annotations

import io
import json
import types
import typing
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal, Union
from urllib.parse import parse_qsl
from uuid import UUID

import pyarrow as pa
import pyarrow.compute as pc
import rvgsrust_xlsxwriter as rx
import xlsxwriter
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from xlsxwriter.format import Format as CellFormat
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from read_api.access import authenticate
from read_api.openapi import DESCRIPTIONS, ERROR_REF

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LIST_REPORTS = (
    "/leads",
    "/deals",
    "/handoffs",
    "/projects",
    "/alerts",
    "/contractors",
    "/client-assignments",
    "/sales-plans",
    "/cabinets/manager",
    "/cabinets/sales",
    "/activities",
)
"""Paged lists people take to Excel like reports (besides /reports/... and status time)."""

NOT_FILTERS = frozenset({"format", "min_position"})
MAX_WIDTH = 60
MONEY = "#,##0.00"
INTEGER = "#,##0"
SHARE = "0.0%"
DATE = "yyyy-mm-dd"
DATETIME = "yyyy-mm-dd hh:mm:ss"


# --- columns typed from the model --------------------------------------------------------

Kind = Literal["text", "int", "float", "share", "money", "date", "datetime", "bool"]

NUMBER_FORMATS: dict[Kind, str | None] = {
    "text": None,
    "bool": None,
    "int": INTEGER,
    "float": MONEY,
    "share": SHARE,
    "money": MONEY,
    "date": DATE,
    "datetime": DATETIME,
}
"""Each kind of cell's number format, in the reports' workbooks and the exports' alike."""


@dataclass(frozen=True)
class Column:
    """One column of a table: the field path in the row and how its cells are written."""

    path: tuple[str, ...]
    kind: Kind

    @property
    def title(self) -> str:
        return " ".join(part.replace("_", " ") for part in self.path)


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _strip_optional(args[0])
    return annotation


def _model_of(annotation: Any) -> type[BaseModel] | None:
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def _list_item_model(annotation: Any) -> type[BaseModel] | None:
    if typing.get_origin(annotation) in (list, tuple, Sequence):
        args = typing.get_args(annotation)
        return _model_of(_strip_optional(args[0])) if args else None
    return None


def _kind(annotation: Any) -> Kind:
    if annotation is bool:
        return "bool"
    if annotation is int:
        return "int"
    if annotation is float:
        return "float"
    if annotation is Decimal:
        return "money"
    if annotation is datetime:
        return "datetime"
    if annotation is date:
        return "date"
    return "text"


def scalar_columns(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[Column]:
    """The model's scalar fields, nested models' flattened (``totals count``); lists of
    rows are tables of their own and left out."""
    columns: list[Column] = []
    for name, field in model.model_fields.items():
        annotation = _strip_optional(field.annotation)
        nested = _model_of(annotation)
        if nested is not None:
            columns += scalar_columns(nested, (*prefix, name))
        elif _list_item_model(annotation) is None:
            kind = _kind(annotation)
            if kind == "float" and (field.description or "").startswith("Share"):
                kind = "share"  # a fraction (a conversion), shown as a percentage
            columns.append(Column((*prefix, name), kind))
    return columns


@dataclass(frozen=True)
class Table:
    """A list of rows of the report: where it is (``funnels.stages``), its columns and
    the columns it repeats from the rows it hangs under (each stage's funnel)."""

    path: tuple[str, ...]
    model: type[BaseModel]
    parents: tuple[Column, ...]
    columns: tuple[Column, ...]

    @property
    def name(self) -> str:
        return " · ".join(part.replace("_", " ") for part in self.path)


def tables(
    model: type[BaseModel],
    prefix: tuple[str, ...] = (),
    parents: tuple[Column, ...] = (),
) -> list[Table]:
    """Every list of rows the model holds, in field order, nested ones after their own."""
    found: list[Table] = []
    for name, field in model.model_fields.items():
        annotation = _strip_optional(field.annotation)
        item = _list_item_model(annotation)
        nested = _model_of(annotation)
        if item is not None:
            own = scalar_columns(item)
            path = (*prefix, name)
            found.append(Table(path, item, parents, tuple(own)))
            # a nested list's rows repeat their parent's first column (its key)
            key = tuple(Column((name, *c.path), c.kind) for c in own[:1])
            found += tables(item, path, parents + key)
        elif nested is not None:
            found += tables(nested, (*prefix, name), parents)
    return found


def _get(value: Any, path: Sequence[str]) -> Any:
    for part in path:
        if value is None:
            return None
        value = getattr(value, part)
    return value


def _rows(report: BaseModel, table: Table) -> Iterator[tuple[Any, ...]]:
    """The table's rows: its parents' key cells, then its own."""

    def walk(value: Any, path: tuple[str, ...], keys: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
        if not path:
            return
        head, rest = path[0], path[1:]
        child = getattr(value, head)
        if child is None:
            return
        if isinstance(child, list):
            for item in child:
                if rest:
                    key = tuple(_get(item, c.path[1:]) for c in table.parents[len(keys) :][:1])
                    yield from walk(item, rest, keys + key)
                else:
                    yield keys + tuple(_get(item, c.path) for c in table.columns)
        else:
            yield from walk(child, rest, keys)

    yield from walk(report, table.path, ())


# --- writing cells -----------------------------------------------------------------------


class Cells:
    """Typed cell writers over one workbook's formats."""

    def __init__(self, workbook: Workbook) -> None:
        self.workbook = workbook
        self.title = workbook.add_format({"bold": True, "font_size": 14})
        self.label = workbook.add_format({"bold": True})
        self.header = workbook.add_format(
            {"bold": True, "bg_color": "#DDE4EE", "bottom": 1, "text_wrap": True, "valign": "top"}
        )
        self.total_label = workbook.add_format({"bold": True, "top": 1})
        self.formats: dict[Kind, CellFormat | None] = {
            kind: None if fmt is None else workbook.add_format({"num_format": fmt})
            for kind, fmt in NUMBER_FORMATS.items()
        }
        totals: tuple[tuple[Kind, str], ...] = (
            ("int", INTEGER),
            ("float", MONEY),
            ("money", MONEY),
            ("text", "General"),
        )
        self.totals: dict[Kind, CellFormat | None] = {
            kind: workbook.add_format({"bold": True, "top": 1, "num_format": fmt})
            for kind, fmt in totals
        }

    def write(
        self,
        sheet: Worksheet,
        row: int,
        col: int,
        kind: Kind,
        value: Any,
        fmt: CellFormat | None = None,
    ) -> int:
        """Write one typed cell; the width of its text (for the column's width)."""
        fmt = fmt or self.formats[kind]
        if value is None:
            if fmt is not None:
                sheet.write_blank(row, col, None, fmt)
            return 0
        if kind == "bool" or isinstance(value, bool):
            sheet.write_boolean(row, col, bool(value), fmt)
            return 5
        if kind in ("int", "float", "share", "money"):
            number = float(value)
            sheet.write_number(row, col, number, fmt)
            return len(f"{number:,.2f}")
        if kind in ("date", "datetime"):
            moment = _excel_moment(value)
            if moment is not None:
                sheet.write_datetime(row, col, moment, fmt)
                return 19 if kind == "datetime" else 10
        text = _text(value)
        sheet.write_string(row, col, text, fmt)
        return len(text)


def _excel_moment(value: Any) -> datetime | date | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return _excel_moment(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _text(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, UUID | str):
        return str(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, BaseModel):
        return _text(value.model_dump(mode="json"))
    return str(value)


class Widths:
    """The widest text seen per column, within bounds."""

    def __init__(self) -> None:
        self.seen: dict[int, int] = {}

    def see(self, col: int, width: int) -> None:
        if width > self.seen.get(col, 0):
            self.seen[col] = width

    def apply(self, sheet: Worksheet) -> None:
        for col, width in self.seen.items():
            sheet.set_column(col, col, min(MAX_WIDTH, max(8, width + 2)))


# --- charts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chart:
    """A native chart over one table: categories from one column, one series per value
    column (each a field name of the table's rows)."""

    table: str
    categories: str
    values: tuple[str, ...]
    kind: Literal["column", "bar", "pie"] = "column"
    title: str = ""


CHARTS: dict[str, tuple[Chart, ...]] = {
    "ManagerCabinet": (
        Chart("plan_bar", "measure", ("amount",), "bar", "Plan, plan to date and fact"),
        Chart("stages", "name", ("amount",), "bar", "Deal sums by stage"),
    ),
    "SalesCabinet": (
        Chart("regions", "region", ("plan", "plan_to_date", "fact"), "bar", "Plan by region"),
    ),
    "DealsInWorkReport": (Chart("stages", "name", ("amount",), "bar", "Deal sums by stage"),),
    "NewLeadsReport": (Chart("days", "day", ("count",), title="New leads per day"),),
    "FunnelReport": (Chart("stages", "name", ("count", "reached"), title="Leads per stage"),),
    "DealPipelineReport": (
        Chart("funnels.stages", "name", ("amount",), title="Open deals' amount per stage"),
    ),
    "DepartmentLoadReport": (
        Chart("departments", "name", ("open_requests",), "bar", "Open requests"),
    ),
    "PortfolioReport": (
        Chart("by_status", "name", ("projects",), title="Projects per status"),
        Chart("by_health", "health", ("projects",), "pie", "Projects by health"),
    ),
    "PlanFactReport": (
        Chart("items", "title", ("planned_hours", "actual_hours"), "bar", "Plan and fact"),
    ),
    "ResourceLoadReport": (
        Chart("items", "person", ("logged_hours", "calendar_hours"), "bar", "Hours per person"),
    ),
    "PaymentsReport": (
        Chart("clients", "company_name", ("invoiced", "paid", "outstanding"), "bar", "Payments"),
    ),
    "StatusTimeSummary": (
        Chart("stages", "stage", ("visits", "visits_over_limit"), title="Visits per stage"),
    ),
    "ProcessMap": (
        Chart(
            "waits",
            "name",
            ("median_wait_seconds", "p90_wait_seconds"),
            "bar",
            "Median wait per stage",
        ),
    ),
    # the sales pack (issue 16 §1)
    "LeadsPeriodReport": (Chart("rows", "key", ("count",), title="Leads"),),
    "ProposalsReport": (Chart("by_month", "key", ("amount",), title="Proposals"),),
    "AverageCheckReport": (Chart("rows", "key", ("average",), title="Average check"),),
    "ConversionCohortsReport": (
        Chart(
            "by_month",
            "month",
            ("leads", "quality", "deals", "won", "projects"),
            title="Conversion by creation month",
        ),
    ),
    "DeliveredSalesReport": (
        Chart(
            "months",
            "month",
            ("amount", "last_year_amount", "forecast_amount"),
            title="Delivered, last year and forecast",
        ),
    ),
    "ProjectCostsReport": (
        Chart("items", "title", ("value", "cost", "margin"), "bar", "Value, cost and margin"),
        Chart(
            "groups", "key", ("labour_cost", "contractor_cost", "margin"), title="Margin by group"
        ),
    ),
    "CheckGrowthReport": (
        Chart(
            "sources",
            "source",
            ("lead_amount", "deal_amount", "value", "invoiced", "paid"),
            title="Check growth by source",
        ),
    ),
}
"""The charts the workspace's report pages show, by response model."""


@dataclass
class Placed:
    """Where a table landed: its sheet, header row and rows."""

    sheet: Worksheet
    sheet_name: str
    header_row: int
    rows: int
    columns: list[Column]


def _add_chart(workbook: Workbook, placed: Placed, chart: Chart) -> None:
    names = [c.path[-1] for c in placed.columns]
    if chart.categories not in names or placed.rows == 0:
        return
    series = [names.index(v) for v in chart.values if v in names]
    if not series:
        return
    native = workbook.add_chart({"type": chart.kind})
    if native is None:
        return
    first, last = placed.header_row + 1, placed.header_row + placed.rows
    category = names.index(chart.categories)
    for col in series:
        native.add_series(
            {
                "name": [placed.sheet_name, placed.header_row, col],
                "categories": [placed.sheet_name, first, category, last, category],
                "values": [placed.sheet_name, first, col, last, col],
            }
        )
    native.set_title({"name": chart.title})
    native.set_size({"width": 640, "height": 360})
    placed.sheet.insert_chart(placed.header_row, len(placed.columns) + 1, native)


# --- the report workbook ------------------------------------------------------------------


@dataclass(frozen=True)
class Title:
    """The title block: what the report is, its filters, when and for whom."""

    report: str
    filters: Sequence[tuple[str, str]]
    generated_at: datetime
    viewer: str

    def lines(self) -> list[tuple[str, Any, Kind]]:
        filters = "; ".join(f"{k} = {v}" for k, v in self.filters) or "none"
        return [
            ("Filters", filters, "text"),
            ("Generated at (UTC)", self.generated_at, "datetime"),
            ("By", self.viewer, "text"),
        ]


def _sheet_name(name: str, taken: set[str]) -> str:
    clean = "".join("_" if ch in "[]:*?/\\" else ch for ch in name)[:28] or "Sheet"
    candidate, n = clean, 2
    while candidate.lower() in taken:
        candidate, n = f"{clean[:26]} {n}", n + 1
    taken.add(candidate.lower())
    return candidate


def _totals_of(
    report: BaseModel, model: type[BaseModel], table: Table
) -> dict[tuple[str, ...], Any] | None:
    """The report's own totals for a top-level table, by column path, where its fields
    are the table's columns at the same path: a column nested in the row (a stage's
    ``paused count``) takes a total only from the same nesting in the totals, never from
    a total of the same last name (the funnel's total ``count`` is not its paused count)."""
    if len(table.path) != 1:
        return None
    for name in ("totals", "summary"):
        field = model.model_fields.get(name)
        totals = _model_of(_strip_optional(field.annotation)) if field is not None else None
        if totals is None:
            continue
        figures = getattr(report, name).model_dump()
        found: dict[tuple[str, ...], Any] = {}
        for column in table.columns:
            value: Any = figures
            for key in column.path:
                if not isinstance(value, dict) or key not in value:
                    break
                value = value[key]
            else:
                if not isinstance(value, dict):  # a group of figures is no cell's total
                    found[column.path] = value
        if found:
            return found
    return None


def _write_table(
    cells: Cells,
    sheet: Worksheet,
    sheet_name: str,
    top: int,
    table: Table,
    rows: Iterable[tuple[Any, ...]],
    totals: dict[tuple[str, ...], Any] | None,
    widths: Widths,
) -> Placed:
    columns = [*table.parents, *table.columns]
    for col, column in enumerate(columns):
        sheet.write_string(top, col, column.title, cells.header)
        widths.see(col, min(len(column.title), 24))
    count = 0
    for count, row in enumerate(rows, start=1):
        for col, (column, value) in enumerate(zip(columns, row, strict=True)):
            widths.see(col, cells.write(sheet, top + count, col, column.kind, value))
    sheet.freeze_panes(top + 1, 0)
    sheet.autofilter(top, 0, top + max(count, 1), max(len(columns) - 1, 0))
    if totals is not None:
        row_at = top + count + 1
        sheet.write_string(row_at, 0, "Total", cells.total_label)
        for col, column in enumerate(columns):
            if col and column.path in totals:
                fmt = cells.totals.get(column.kind) or cells.totals["text"]
                cells.write(sheet, row_at, col, column.kind, totals[column.path], fmt)
    return Placed(sheet, sheet_name, top, count, columns)


def render_report(model: type[BaseModel], result: Any, title: Title) -> bytes:
    """The report's workbook (see the module's layout) from its model type and result."""
    report = model.model_validate(result)
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "nan_inf_to_errors": True})
    workbook.set_properties({"title": title.report, "author": title.viewer})
    cells = Cells(workbook)
    taken: set[str] = set()
    found = tables(model)
    placed: dict[str, Placed] = {}

    first_name = _sheet_name(title.report, taken)
    first = workbook.add_worksheet(first_name)
    widths = Widths()
    first.write_string(0, 0, title.report, cells.title)
    for n, (label, value, kind) in enumerate(title.lines(), start=1):
        first.write_string(n, 0, label, cells.label)
        cells.write(first, n, 1, kind, value)
    top = len(title.lines()) + 2
    if found:
        main = found[0]
        spot = _write_table(
            cells,
            first,
            first_name,
            top,
            main,
            _rows(report, main),
            _totals_of(report, model, main),
            widths,
        )
        placed[".".join(main.path)] = spot
        top = spot.header_row + spot.rows + 3
    summary = [(c, _get(report, c.path)) for c in scalar_columns(model)]
    if summary:
        first.write_string(top, 0, "Summary", cells.label)
        for n, (column, value) in enumerate(summary, start=top + 1):
            first.write_string(n, 0, column.title)
            cells.write(first, n, 1, column.kind, value)
    widths.see(0, 20)
    widths.apply(first)

    for table in found[1:]:
        name = _sheet_name(table.name, taken)
        sheet = workbook.add_worksheet(name)
        own = Widths()
        sheet.write_string(0, 0, f"{title.report} · {table.name}", cells.title)
        spot = _write_table(
            cells,
            sheet,
            name,
            2,
            table,
            _rows(report, table),
            _totals_of(report, model, table),
            own,
        )
        own.apply(sheet)
        placed[".".join(table.path)] = spot

    for chart in CHARTS.get(model.__name__, ()):
        if chart.table in placed:
            _add_chart(workbook, placed[chart.table], chart)
    workbook.close()
    return buffer.getvalue()


@dataclass(frozen=True)
class LaidTable:
    """One table of a report as its workbook lays it out: columns, rows and totals."""

    table: Table
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]
    totals: dict[tuple[str, ...], Any] | None


def report_layout(
    model: type[BaseModel], result: Any
) -> tuple[list[LaidTable], list[tuple[Column, Any]]]:
    """The report's tables and summary exactly as its workbook has them (the workspace's
    report pages show the same layout as the download)."""
    report = model.model_validate(result)
    laid = [
        LaidTable(
            table,
            (*table.parents, *table.columns),
            list(_rows(report, table)),
            _totals_of(report, model, table),
        )
        for table in tables(model)
    ]
    return laid, [(c, _get(report, c.path)) for c in scalar_columns(model)]


# --- the read-model exports: rows streamed to a file --------------------------------------


def arrow_kind(data_type: pa.DataType) -> Kind:
    """How a column of a read model (an Arrow type, as DuckDB streams it) is written."""
    if pa.types.is_boolean(data_type):
        return "bool"
    if pa.types.is_integer(data_type):
        return "int"
    if pa.types.is_floating(data_type):
        return "float"
    if pa.types.is_decimal(data_type):
        return "money"
    if pa.types.is_date(data_type):
        return "date"
    if pa.types.is_timestamp(data_type):
        return "datetime"
    return "text"


_NATIVE: dict[Kind, pa.DataType] = {
    "int": pa.float64(),
    "float": pa.float64(),
    "money": pa.float64(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
}
"""The Arrow type each kind of column is handed to the writer in (numbers as doubles,
Excel's own number type; moments without a zone, in UTC)."""


def excel_column(column: pa.Array, kind: Kind) -> pa.Array:
    """One column converted whole to what its cells hold: numbers and money as doubles
    (the nearest to each decimal; 2 decimals shown by the money format), dates as dates,
    timestamps as naive UTC (Excel has no zones), booleans as booleans, anything else as
    text; a null stays an empty cell."""
    if kind == "bool":
        return column
    if kind == "datetime" and column.type.tz is not None:
        column = column.cast(pa.timestamp(column.type.unit, "UTC")).cast(
            pa.timestamp(column.type.unit)
        )
    if pa.types.is_decimal(column.type):
        # through its text: Arrow's own cast divides in binary and may miss the nearest
        # double (1234567.8900000001), the text's parse is exact like float(Decimal)
        column = column.cast(pa.string())
    target = _NATIVE.get(kind)
    if target is not None:
        return column if column.type == target else column.cast(target)
    if pa.types.is_string(column.type):
        return column
    if pa.types.is_large_string(column.type) or pa.types.is_primitive(column.type):
        return column.cast(pa.string())
    # lists, structs, maps, UUIDs: their text as the reports write it
    return pa.array([None if v is None else _text(v) for v in column.to_pylist()], type=pa.string())


def excel_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch of rows with every column converted whole (``excel_column``)."""
    fields = zip(batch.schema, batch.columns, strict=True)
    return pa.RecordBatch.from_arrays(
        [excel_column(col, arrow_kind(f.type)) for f, col in fields], names=batch.schema.names
    )


def write_rows(path: str, title: Title, rows: pa.RecordBatchReader) -> int:
    """Stream a read model's rows, batch by batch, into a constant-memory workbook at
    ``path``: title block, frozen header, autofilter, number formats by column type
    (the reports' ``NUMBER_FORMATS``), widths from the first rows; the rows written.

    The cells are written by rust_xlsxwriter's compiled core, a whole Arrow batch at a
    time (XlsxWriter's per-cell Python code made 100,000 rows of 38 columns cost 20 s);
    each batch holds the GIL only for a few tens of milliseconds and the file's
    compression runs without it, so the server keeps answering."""
    names = rows.schema.names
    kinds = [arrow_kind(f.type) for f in rows.schema]
    workbook = rx.Workbook()
    workbook.set_properties(title=title.report, author=title.viewer)
    sheet = workbook.add_worksheet(_sheet_name(title.report, set()), constant_memory=True)
    bold = workbook.add_format().set_bold()
    sheet.write(0, 0, title.report, workbook.add_format().set_bold().set_font_size(14))
    for n, (label, value, kind) in enumerate(title.lines(), start=1):
        sheet.write(n, 0, label, bold)
        if kind == "datetime":
            moment = _excel_moment(value)
            fmt = workbook.add_format().set_num_format(DATETIME)
            sheet.write_datetime_py(n, 1, moment, fmt)
        else:
            sheet.write(n, 1, _text(value))
    top = len(title.lines()) + 2
    header = (
        workbook.add_format()
        .set_bold()
        .set_background_color("#DDE4EE")
        .set_bottom_border("thin")
        .set_text_wrap()
        .set_vertical_align("top")
    )
    for col, name in enumerate(names):
        sheet.write(top, col, name.replace("_", " "), header)
    number_formats = [NUMBER_FORMATS[kind] for kind in kinds]
    formats = {
        name: workbook.add_format().set_num_format(fmt)
        for name, fmt in zip(names, number_formats, strict=True)
        if fmt is not None
    }
    widths = Widths()
    for col, name in enumerate(names):
        widths.see(col, len(name))
    row = top + 1
    for batch in rows:
        if not batch.num_rows:
            continue
        cells = excel_batch(batch)
        if row == top + 1:  # widths from the first rows: later ones are already on disk
            _see_widths(widths, cells.slice(0, 200), kinds)
        sheet.write_dataframe(row, 0, cells, write_header=False, column_formats=formats)
        row += cells.num_rows
    sheet.freeze_panes(top + 1, 0)
    for col, width in widths.seen.items():
        sheet.set_column_width(col, min(MAX_WIDTH, max(8, width + 2)))
    sheet.autofilter(top, 0, max(row - 1, top + 1), max(len(names) - 1, 0))
    workbook.close(path)
    return row - top - 1


def _see_widths(widths: Widths, sample: pa.RecordBatch, kinds: Sequence[Kind]) -> None:
    for col, (column, kind) in enumerate(zip(sample.columns, kinds, strict=True)):
        if column.null_count == len(column):
            continue
        if kind == "text":
            longest = pc.max(pc.utf8_length(column)).as_py()
            widths.see(col, int(longest or 0))
        else:
            widths.see(col, 19 if kind == "datetime" else 12)


# --- the hook ---


def is_report_path(method: str, path: str) -> bool:
    """The GET operations that answer a report or a paged list of records."""
    return method == "get" and (
        path.startswith("/reports/") or path.endswith("/status-time") or path in LIST_REPORTS
    )


def wants_xlsx(formats: Sequence[str], accept: str) -> bool:
    """``format`` decides; without it, an Accept header naming the workbook's type."""
    if formats:
        return formats[-1] == "xlsx"
    return XLSX in accept


def report_title(scope: Scope, route_path: str) -> Title:
    """The title block of a report: its name from the route's path, its filters from
    the path and query parameters, the viewer from the request's token."""
    words = [
        part.replace("-", " ")
        for part in route_path.strip("/").split("/")
        if part != "reports" and not part.startswith("{")
    ]
    report = " · ".join(words).capitalize() or "Report"
    filters = [(k, str(v)) for k, v in scope.get("path_params", {}).items()]
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    filters += [(k, v) for k, v in query if k not in NOT_FILTERS]
    principal = scope.get("state", {}).get("principal")
    viewer = "" if principal is None else f"{principal.user} ({principal.role.value})"
    return Title(report, filters, _now(scope), viewer)


def filename(title: Title) -> str:
    return title.report.lower().replace(" · ", "-").replace(" ", "-") + ".xlsx"


class ExcelReports:
    """ASGI middleware: a report asked for as Excel is answered by the report's own
    route (so the same parameters, checks, scope and figures), and its JSON answer is
    laid out as a workbook from the route's response model. A ``format`` other than
    json or xlsx is a 422 naming it (after the route's own checks, so a 401 stays one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        formats = [v for k, v in query if k == "format"]
        bad = [v for v in formats if v not in FORMATS]
        accept = Headers(scope=scope).get("accept", "")
        # the paths of the reports are told apart as their routes' are (a path no route
        # serves answers its 404 as it would)
        if not (bad or wants_xlsx(formats, accept)) or not is_report_path("get", scope["path"]):
            await self.app(scope, receive, send)
            return
        answer = Captured()
        await self.app(scope, receive, answer.send)
        route = scope.get("route")
        model = getattr(route, "response_model", None)
        if answer.status != 200 or not isinstance(model, type):
            await answer.replay(send)
        elif bad:
            await _refuse_format(bad[0])(scope, receive, send)
        else:
            title = report_title(scope, str(getattr(route, "path", scope["path"])))
            content = await run_in_threadpool(render_report, model, answer.json(), title)
            await Response(
                content,
                media_type=XLSX,
                headers={"Content-Disposition": f'attachment; filename="{filename(title)}"'},
            )(scope, receive, send)


FORMATS = ("json", "xlsx")


def _refuse_format(value: str) -> JSONResponse:
    message = "Input should be 'json' or 'xlsx'"
    return JSONResponse(
        status_code=422,
        content={
            "detail": f"format: {message}",
            "code": "invalid_request",
            "field": "format",
            "errors": [{"field": "format", "message": message}],
        },
    )


class Captured:
    """A response held back: its status, headers and body."""

    def __init__(self) -> None:
        self.status = 500
        self.start: Message = {}
        self.body: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body.append(message.get("body", b""))

    def json(self) -> Any:
        return json.loads(b"".join(self.body))

    async def replay(self, send: Send) -> None:
        await send(self.start)
        await send({"type": "http.response.body", "body": b"".join(self.body)})


def declare_excel(doc: dict[str, Any]) -> None:
    """In the OpenAPI document: every report operation takes ``format`` (json or xlsx),
    answers the workbook's media type with its 200, and may answer 422."""
    for path, item in doc["paths"].items():
        operation = item.get("get")
        if operation is None or not is_report_path("get", path):
            continue
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("name") == "format" for p in parameters):
            parameters.append(
                {
                    "name": "format",
                    "in": "query",
                    "required": False,
                    "description": "json (the default) or xlsx: the report as an Excel "
                    f"workbook (also chosen by `Accept: {XLSX}`)",
                    "schema": {"type": "string", "enum": list(FORMATS), "default": "json"},
                }
            )
        responses = operation.setdefault("responses", {})
        ok = responses.setdefault("200", {"description": "Successful Response"})
        ok.setdefault("content", {})[XLSX] = {"schema": {"type": "string", "format": "binary"}}
        responses.setdefault(
            "422",
            {
                "description": DESCRIPTIONS["422"],
                "content": {"application/json": {"schema": ERROR_REF}},
            },
        )


def install_excel(app: FastAPI) -> None:
    """Give every report of the app its Excel answer and declare it in the OpenAPI
    document; call once, after install_openapi."""
    app.add_middleware(ExcelReports)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        doc = build()
        if fresh:
            declare_excel(doc)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def title_of_export(request: Request, table: str) -> Title:
    """The title block of a read-model export."""
    principal = authenticate(request)
    viewer = f"{principal.user} ({principal.role.value})"
    return Title(f"Export {table}", [("table", table)], _now(request.scope), viewer)


def _now(scope: Scope) -> datetime:
    """The platform's clock (the one its reports' "today" comes from)."""
    platform = getattr(getattr(scope.get("app"), "state", None), "platform", None)
    moment = platform.clock() if platform is not None else datetime.now(UTC)
    return moment if isinstance(moment, datetime) else datetime.now(UTC)
