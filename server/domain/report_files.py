"""统计报表 exports: the report's table (``reports.table``) as CSV or XLSX, Chinese headers."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from server.domain import reports

CSV_TYPE = "text/csv"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def as_csv(report: Mapping[str, Any]) -> bytes:
    """UTF-8 with a byte-order mark, so that Excel opens the Chinese headers as such."""
    header, lines = reports.table(report)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in line] for line in lines)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def as_xlsx(report: Mapping[str, Any]) -> bytes:
    """One sheet of figures (headers in the first row, blank where there is no figure) and one
    saying which periods they compare."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    header, lines = reports.table(report)
    book = Workbook()
    sheet = book.active
    sheet.title = "统计报表"
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for line in lines:
        sheet.append(line)
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "B2"
    sheet.column_dimensions["A"].width = 24
    about = book.create_sheet("说明")
    cur, prev = report["current"], report["previous"]
    for line in (["维度", report["dimension_label"]], ["周期", report["period_label"]],
                 ["本期", f"{cur['label']}（{cur['start']} 至 {cur['end']}）"],
                 ["去年同期", f"{prev['label']}（{prev['start']} 至 {prev['end']}）"],
                 ["同比", "（本期 − 去年同期）÷ 去年同期 × 100%；去年同期为 0 或无数据时留空"],
                 ["指标定义", "见 docs/reports.md"]):
        about.append(line)
    about.column_dimensions["A"].width = 12
    about.column_dimensions["B"].width = 60
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
