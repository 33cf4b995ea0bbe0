"""The network at a glance (supervisors, administrators) and extension points' administration."""

from __future__ import annotations

import asyncio

from aiohttp import web

from server.api.base import OVERSIGHT, actor, int_param, ok, parse, query, route
from server.api.responses import ExtensionPoint, Network, PointImport
from server.api.schemas import NetworkQuery, PointIn, PointPatch
from server.domain import network, points, tables
from server.domain.errors import TooLarge
from server.keys import DOMAIN, PRESENCE

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BINARY = {"schema": {"type": "string", "format": "binary"}}


@route("GET", "/api/network", "网点一览（1+17+288）：各镇街及其延伸点的在线人员、进行中的通话、今日取号、"
       "连续 silent_days 天未连接的延伸点；部门负责人只看所辖中心", roles=OVERSIGHT, query=NetworkQuery,
       tag="supervision", response=Network)
async def get_network(request: web.Request) -> web.Response:
    who = await actor(request)
    q = query(request, NetworkQuery)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await network.network(uow, who, request.app[PRESENCE], centre_id=q.centre_id,
                                        silent_days=q.silent_days))


@route("POST", "/api/extension-points", "新增延伸点（管理员）：名称在所属镇街内不重复", body=PointIn, roles=("admin",),
       tag="admin", response=ExtensionPoint)
async def create_point(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, PointIn)
    async with request.app[DOMAIN].unit() as uow:
        point = await points.create_point(uow, who, **body.model_dump())
        return ok(points.point_view(point), status=201)


@route("PATCH", "/api/extension-points/{point_id}", "修改延伸点（管理员）：改名、迁移到另一个镇街、地址电话、停用或启用"
       "（停用后其工作人员不能取号）", body=PointPatch, roles=("admin",), tag="admin", response=ExtensionPoint)
async def update_point(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, PointPatch)
    async with request.app[DOMAIN].unit() as uow:
        point = await points.update_point(uow, who, int_param(request, "point_id"), **body.model_dump())
        return ok(points.point_view(point))


@route("POST", "/api/extension-points/import",
       "导入延伸点（CSV 或 XLSX 文件作请求体，UTF-8 或 GBK；表头：延伸点名称、所属镇街、地址、联系电话、状态）："
       "正确的行按镇街和名称新增或更新，错误的行逐行报告行号、列和原因、不导入（管理员）",
       roles=("admin",), tag="admin",
       content={"text/csv": BINARY, XLSX: BINARY, "application/octet-stream": BINARY}, response=PointImport)
async def import_points(request: web.Request) -> web.Response:
    who = await actor(request)
    limit = tables.MAX_IMPORT_BYTES
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge("import_too_large", f"文件过大：不超过 {limit // 1024 // 1024} MB")
    data = await request.content.read(limit + 1)
    rows = await asyncio.to_thread(points.read_table, data)  # openpyxl and csv: off the loop
    async with request.app[DOMAIN].unit() as uow:
        return ok(await points.import_rows(uow, who, rows))
