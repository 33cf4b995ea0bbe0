"""统计报表: the report as JSON for the page, and as CSV or XLSX to download."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from aiohttp import web

from server.api.base import OVERSIGHT, actor, ok, query, route
from server.api.responses import Report
from server.api.schemas import ReportExportQuery, ReportQuery
from server.domain import audit, report_files, reports
from server.keys import DOMAIN


@route("GET", "/api/reports", "统计报表：按受理中心、镇街、延伸点、部门、人员或事项，按日、周、月、年统计，"
       "与去年同期比较（按监管范围）", roles=OVERSIGHT, query=ReportQuery, tag="supervision", response=Report)
async def get_report(request: web.Request) -> web.Response:
    who = await actor(request)
    q = query(request, ReportQuery)
    async with request.app[DOMAIN].unit() as uow:  # the settled days it needs, rolled up once
        await reports.roll_for_report(uow, q.period, q.day)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await reports.report(uow, who, dimension=q.dimension, period=q.period, day=q.day))


@route("GET", "/api/reports/export", "导出统计报表（CSV 或 XLSX，中文表头）", roles=OVERSIGHT,
       query=ReportExportQuery, tag="supervision", response=None,
       files=(report_files.CSV_TYPE, report_files.XLSX_TYPE))
async def export_report(request: web.Request) -> web.Response:
    who = await actor(request)
    q = query(request, ReportExportQuery)
    async with request.app[DOMAIN].unit() as uow:
        await reports.roll_for_report(uow, q.period, q.day)
        found = await reports.report(uow, who, dimension=q.dimension, period=q.period, day=q.day, series=False)
        audit.record(uow, who, "report.export", "report", "", dimension=q.dimension, period=q.period,
                     start=found["current"]["start"], format=q.format)
    render = report_files.as_xlsx if q.format == "xlsx" else report_files.as_csv
    body = await asyncio.to_thread(render, found)
    name = f"{reports.file_stem(found)}.{q.format}"
    fallback = f"report-{q.dimension}-{q.period}-{found['current']['start']}.{q.format}"
    kind = report_files.XLSX_TYPE if q.format == "xlsx" else report_files.CSV_TYPE
    return web.Response(body=body, content_type=kind, charset="utf-8" if q.format == "csv" else None, headers={
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "no-store",
    })
