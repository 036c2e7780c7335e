"""One Excel library or two: the read-model export's write path with XlsxWriter in
``constant_memory`` mode against rust_xlsxwriter (``read_api.excel.write_rows``), on the
same N synthetic leads, in one process (no server, no network: the writer alone).

XlsxWriter gets its best case: the Arrow batches are converted a column at a time exactly
as the export converts them (``excel_batch``), then each cell goes through the typed writer
chosen once per column (``write_number``/``write_string``/``write_datetime``/
``write_boolean``, precomputed formats), as XlsxWriter allows nothing faster.

Run from the project root:

    .venv/bin/python -m bench.bench_excel_writers                 # 100,000 rows
    .venv/bin/python -m bench.bench_excel_writers --rows 20000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import xlsxwriter

from bench import benchlib
from bench.bench_funnel_report import fill_read_model
from leadledger.settings import Settings
from leadledger.wiring import load_funnels
from projections.database import ReadModelDatabase
from read_api.excel import NUMBER_FORMATS, Title, arrow_kind, excel_batch, write_rows

BATCH_ROWS = 4096
TARGET_SECONDS = 4.0
"""XlsxWriter replaces the Rust writer only with margin under the export's 5 s target."""


def _xlsxwriter_rows(path: str, reader: Any) -> int:
    """The rows into a constant-memory XlsxWriter workbook, typed writer per column."""
    workbook = xlsxwriter.Workbook(path, {"constant_memory": True})
    sheet = workbook.add_worksheet("leads")
    names = reader.schema.names
    kinds = [arrow_kind(f.type) for f in reader.schema]
    formats = [
        workbook.add_format({"num_format": fmt}) if (fmt := NUMBER_FORMATS[k]) else None
        for k in kinds
    ]
    for col, name in enumerate(names):
        sheet.write_string(0, col, name)
    writers = []
    for kind in kinds:
        if kind in ("int", "float", "share", "money"):
            writers.append(sheet.write_number)
        elif kind in ("date", "datetime"):
            writers.append(sheet.write_datetime)
        elif kind == "bool":
            writers.append(sheet.write_boolean)
        else:
            writers.append(sheet.write_string)
    row = 1
    for batch in reader:
        columns = [c.to_pylist() for c in excel_batch(batch).columns]
        for n in range(batch.num_rows):
            for col, (write, values) in enumerate(zip(writers, columns, strict=True)):
                value = values[n]
                if value is None:
                    continue
                if isinstance(value, datetime) and value.tzinfo is not None:
                    value = value.astimezone(UTC).replace(tzinfo=None)
                fmt = formats[col]
                if fmt is None:
                    write(row + n, col, value)
                else:
                    write(row + n, col, value, fmt)
        row += batch.num_rows
    workbook.close()
    return row - 1


def _rust_rows(path: str, reader: Any) -> int:
    title = Title("Export leads", [("table", "leads")], datetime.now(UTC), "bench")
    return write_rows(path, title, reader)


def timed(db: ReadModelDatabase, writer: Any, workdir: Path) -> tuple[float, float, int, int]:
    cursor = db.cursor()
    path = str(workdir / f"{writer.__name__}.xlsx")
    reader = cursor.sql("SELECT * FROM leads").to_arrow_reader(BATCH_ROWS)
    cpu, wall = time.process_time(), time.perf_counter()
    rows = writer(path, reader)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    size = os.path.getsize(path)
    os.unlink(path)
    cursor.close()
    return wall, cpu, rows, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="leadledger-bench-writers-"))
    try:
        settings = Settings(funnels_file=Settings().funnels_file)
        database = workdir / "read_models.duckdb"
        fill_read_model(database, load_funnels(settings.funnels_file), args.rows, args.seed)
        db = ReadModelDatabase(database)
        table = []
        try:
            for label, writer in (
                ("XlsxWriter constant_memory", _xlsxwriter_rows),
                ("rvgsrust-xlsxwriter (write_rows)", _rust_rows),
            ):
                load = os.getloadavg()[0]
                wall, cpu, rows, size = timed(db, writer, workdir)
                verdict = "ok" if wall * 100_000 / rows < TARGET_SECONDS else "over"
                table.append(
                    [
                        label,
                        benchlib.count(rows),
                        f"{wall:.2f}",
                        f"{cpu:.2f}",
                        benchlib.mib(size),
                        f"{load:.1f}",
                        verdict,
                    ]
                )
        finally:
            db.close()
    finally:
        benchlib.remove_tree(workdir)
    print(
        benchlib.table(
            "Export write path alone, one process",
            ["writer", "rows", "wall s", "CPU s", "file MiB", "load avg", "100k < 4 s"],
            table,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
