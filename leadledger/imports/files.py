"""Reading an import file: XLSX (openpyxl, read-only) or CSV (UTF-8 with or without a
BOM, ``;`` or ``,`` sniffed), streamed row by row, with the file's SHA-256."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

XLSX_MAGIC = b"PK\x03\x04"
SNIFF_BYTES = 64 * 1024


class UnreadableFile(ValueError):
    """The file is neither a readable XLSX nor a UTF-8 CSV (or has no header row)."""


@dataclass(frozen=True)
class SourceFile:
    """An import file on disk; ``name`` is the name it was given (shown in causes)."""

    path: Path
    name: str
    checksum: str
    format: str
    delimiter: str | None
    header: tuple[str, ...]

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        """(row number as a spreadsheet shows it, cells) for every data row; blank rows
        are skipped. The header is row 1."""
        if self.format == "xlsx":
            yield from _xlsx_rows(self.path)
        else:
            yield from _csv_rows(self.path, self.delimiter or ",")


def checksum_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def open_source(path: Path, name: str | None = None) -> SourceFile:
    """Open an import file, or raise UnreadableFile saying why."""
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as exc:
        raise UnreadableFile(f"cannot read {path}: {exc.strerror}") from exc
    if not head:
        raise UnreadableFile("the file is empty")
    checksum = checksum_of(path)
    if head.startswith(XLSX_MAGIC):
        header = _xlsx_header(path)
        return SourceFile(path, name or path.name, checksum, "xlsx", None, header)
    delimiter = _sniff(head)
    first = next(_csv_rows(path, delimiter, header=True), None)
    if first is None:
        raise UnreadableFile("the file has no header row")
    header = tuple(_header_text(c) for c in first[1])
    _check_header(header)
    return SourceFile(path, name or path.name, checksum, "csv", delimiter, header)


def _sniff(head: bytes) -> str:
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff")
    line = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(line, delimiters=";,").delimiter
    except csv.Error:
        return ";" if line.count(";") > line.count(",") else ","


def _header_text(cell: Any) -> str:
    return "" if cell is None else str(cell).strip()


def _check_header(header: tuple[str, ...]) -> None:
    if not any(header):
        raise UnreadableFile("the first row (the header) names no column")
    named = [h for h in header if h]
    seen: set[str] = set()
    for h in named:
        if h.casefold() in seen:
            raise UnreadableFile(f"column '{h}' appears twice in the header")
        seen.add(h.casefold())


def _csv_rows(
    path: Path, delimiter: str, *, header: bool = False
) -> Iterator[tuple[int, list[Any]]]:
    """Records as a spreadsheet numbers them (the header is row 1), blank ones skipped."""
    number = 0
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            records = csv.reader(f, delimiter=delimiter)
            first = next(records, None)
            if first is None:
                return
            number = 1
            if header:
                yield 1, first
                return
            for number, cells in enumerate(records, start=2):
                if "".join(cells).strip():  # not every cell blank
                    yield number, cells
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            f"the file is not UTF-8 text (after row {number}): save the CSV as UTF-8, "
            "or upload the XLSX"
        ) from exc
    except csv.Error as exc:
        raise UnreadableFile(f"the CSV cannot be read after row {number}: {exc}") from exc


@contextmanager
def _workbook(path: Path) -> Iterator[Any]:
    """The workbook, read-only (from a file object: an upload's name has no extension)."""
    from openpyxl import load_workbook

    with open(path, "rb") as f:
        try:
            workbook = load_workbook(f, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises what zipfile and its XML parser raise
            raise UnreadableFile(f"the file is not a readable XLSX workbook: {exc}") from exc
        try:
            yield workbook
        finally:
            workbook.close()


def _xlsx_header(path: Path) -> tuple[str, ...]:
    with _workbook(path) as workbook:
        sheet = workbook.worksheets[0]
        for cells in sheet.iter_rows(min_row=1, max_row=1, values_only=True):
            header = tuple(_header_text(c) for c in cells)
            while header and not header[-1]:
                header = header[:-1]
            _check_header(header)
            return header
        raise UnreadableFile("the first sheet has no header row")


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[Any]]]:
    with _workbook(path) as workbook:
        sheet = workbook.worksheets[0]
        for number, cells in enumerate(sheet.iter_rows(min_row=2, values_only=True), start=2):
            if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
                continue
            yield number, list(cells)
