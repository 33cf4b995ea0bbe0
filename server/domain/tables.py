"""导入表格 — reading an administrator's CSV or XLSX file into rows keyed by column, for the imports
that take one (certificates, extension points). Each import names its columns (the header names
each is known by) and checks its rows itself; a bad row is reported as `problem` (row number,
column, reason) and changes nothing. A missing column or an unreadable file imports nothing."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

from server.domain.errors import Invalid, TooLarge

MAX_IMPORT_BYTES = 2 * 1024 * 1024
MAX_IMPORT_ROWS = 5000
MAX_XLSX_UNPACKED = 40 * 1024 * 1024  # a zip bomb is refused before it is opened
UNREADABLE = "无法读取文件：请上传 CSV（UTF-8 或 GBK 编码）或 Excel（.xlsx）文件"

Cell = str | date | int | float | None


@dataclass(frozen=True)
class TableRow:
    """One data row of the file: its row number as the spreadsheet shows it (the header is 1)."""

    line: int
    cells: dict[str, Cell]


def problem(line: int, column: str, reason: str) -> dict[str, Any]:
    """One bad row's problem, as every import reports it."""
    return {"row": line, "column": column, "reason": reason}


class Checked(Protocol):
    line: int


G = TypeVar("G", bound=Checked)
K = TypeVar("K", bound=Hashable)


def sort_rows(rows: Sequence[TableRow], check: Callable[[TableRow], tuple[G | None, list[tuple[str, str]]]],
              key: Callable[[G], K], column: str, what: str) -> tuple[dict[K, G], list[dict[str, Any]]]:
    """An import's rows checked: the good ones by ``key`` (a second row of the same key is
    reported as a duplicate of the first, under ``column``), and every problem by row and column."""
    good: dict[K, G] = {}
    errors: list[dict[str, Any]] = []
    for row in rows:
        checked, problems = check(row)
        if checked is not None:
            earlier = good.get(key(checked))
            if earlier is not None:
                problems = [(column, f"与第 {earlier.line} 行的{what}重复")]
            else:
                good[key(checked)] = checked
        errors.extend(problem(row.line, c, reason) for c, reason in problems)
    return good, errors


def read_table(data: bytes, columns: Mapping[str, Sequence[str]], required: Sequence[str], header: str) -> list[TableRow]:
    """The rows of a CSV (UTF-8, or GBK/GB18030 as Excel saves it in China) or XLSX file (its
    first sheet), keyed by column; blank rows left out. ``columns``: each column's key and the
    header names it is known by (the first is the one we write); ``header``: the header row as
    the refusal of a file without a required column describes it. Blocking: call it in a thread."""
    if len(data) > MAX_IMPORT_BYTES:
        raise TooLarge("import_too_large", f"文件过大：不超过 {MAX_IMPORT_BYTES // 1024 // 1024} MB")
    if not data.strip():
        raise Invalid("import_empty", "文件是空的")
    grid = _xlsx(data) if data[:4] == b"PK\x03\x04" else _csv(data)
    titles = next(grid, None)
    if titles is None:
        raise Invalid("import_empty", "文件是空的")
    where: dict[str, int] = {}
    for index, title in enumerate(titles):
        text = str(title or "").strip().lstrip("\ufeff").replace(" ", "")
        for key, names in columns.items():
            if text in names and key not in where:
                where[key] = index
    missing = [columns[k][0] for k in required if k not in where]
    if missing:
        raise Invalid("import_columns", f"缺少列：{'、'.join(missing)}（第 1 行应为表头：{header}）", missing=missing)
    rows: list[TableRow] = []
    for line, values in enumerate(grid, start=2):
        cells = {key: values[i] if i < len(values) else None for key, i in where.items()}
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in cells.values()):
            continue
        if len(rows) >= MAX_IMPORT_ROWS:
            raise TooLarge("import_too_many_rows", f"一次最多导入 {MAX_IMPORT_ROWS} 行，请分批导入")
        rows.append(TableRow(line, cells))
    if not rows:
        raise Invalid("import_empty", "文件只有表头，没有数据行")
    return rows


def text(value: Cell) -> str:
    """A cell as text: a number Excel kept as a number (a phone) without its ``.0``."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _csv(data: bytes) -> Iterator[Sequence[Cell]]:
    try:
        decoded = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            decoded = data.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise Invalid("import_unreadable", UNREADABLE) from exc
    if "\x00" in decoded:
        raise Invalid("import_unreadable", UNREADABLE)
    try:
        return iter(list(csv.reader(io.StringIO(decoded, newline=""))))
    except csv.Error as exc:
        raise Invalid("import_unreadable", UNREADABLE) from exc


def _xlsx(data: bytes) -> Iterator[Sequence[Cell]]:
    from openpyxl import load_workbook  # only for XLSX files
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(i.file_size for i in archive.infolist()) > MAX_XLSX_UNPACKED:
                raise TooLarge("import_too_large", "文件解压后过大，请删去多余的工作表或格式后再导入")
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            sheet = book.worksheets[0]
            out: list[Sequence[Cell]] = []
            for values in sheet.iter_rows(max_col=30, values_only=True):
                out.append([_cell(v) for v in values])
                if len(out) > MAX_IMPORT_ROWS + 100:  # blank rows aside, more than may be imported
                    break
        finally:
            book.close()
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, TypeError, IndexError, OSError) as exc:
        raise Invalid("import_unreadable", UNREADABLE) from exc
    return iter(out)


def _cell(value: object) -> Cell:
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return str(value)
