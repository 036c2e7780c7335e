"""The error report of an import as a workbook: every refused row as it was in the file,
its row number first and the reasons beside it (XlsxWriter, constant memory)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import xlsxwriter

from leadledger.imports.files import SourceFile
from leadledger.imports.runner import ImportReport, rows_of

MAX_WIDTH = 60


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo is not None else value
    if isinstance(value, (int, float, date, Decimal)) and not isinstance(value, bool):
        return value
    return "" if value is None else str(value)


def write_errors(source: SourceFile, report: ImportReport, path: Path) -> int:
    """Write the refused rows of ``report`` to ``path``: columns Row, the file's own
    columns, Errors (each "column: reason" on its line) and Codes. Returns the rows
    written."""
    by_row = rows_of(report.errors)
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    try:
        sheet = workbook.add_worksheet("Refused rows")
        bold = workbook.add_format({"bold": True, "bg_color": "#F2F2F2", "border": 1})
        error = workbook.add_format(
            {"font_color": "#9C0006", "bg_color": "#FFC7CE", "text_wrap": True, "valign": "top"}
        )
        stamp = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        header = ["Row", *source.header, "Errors", "Codes"]
        widths = [len(h) + 2 for h in header]
        for col, title in enumerate(header):
            sheet.write_string(0, col, title, bold)
        out = 1
        errors_col = len(source.header) + 1
        for number, cells in source.rows():
            problems = by_row.get(number)
            if not problems:
                continue
            sheet.write_number(out, 0, number)
            for col, value in enumerate(cells[: len(source.header)], start=1):
                value = _cell(value)
                if isinstance(value, datetime):
                    sheet.write_datetime(out, col, value, stamp)
                else:
                    sheet.write(out, col, value)
                widths[col] = max(widths[col], min(MAX_WIDTH, len(str(value)) + 2))
            text = "\n".join(f"{p.column or p.field or 'row'}: {p.reason}" for p in problems)
            sheet.write_string(out, errors_col, text, error)
            sheet.write_string(out, errors_col + 1, ", ".join(p.code for p in problems))
            widths[errors_col] = max(widths[errors_col], min(MAX_WIDTH, len(text) + 2))
            out += 1
        for col, width in enumerate(widths):
            sheet.set_column(col, col, width)
        sheet.freeze_panes(1, 1)
        sheet.autofilter(0, 0, max(out - 1, 1), len(header) - 1)
        return out - 1
    finally:
        workbook.close()
