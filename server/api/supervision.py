"""Queues, the wall display, alerts, tidal windows and the audit log."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from server.api.base import STAFF, InvalidInput, actor, int_param, ok, optional_int, parse, route
from server.api.schemas import OpenTidal
from server.domain import alerts, audit, dashboard, org, queue
from server.domain.views import window_view
from server.keys import DB, DOMAIN


@route("GET", "/api/health", "健康检查（含数据库连通性）", auth=False, tag="ops")
async def health(request: web.Request) -> web.Response:
    await request.app[DB].ping()
    return ok({"status": "ok", "database": request.app[DB].dialect})


@route("GET", "/api/queues", "各部门云窗口队列：等候人数、最长等候、预警级别",
       query={"centre_id": "integer", "department_id": "integer"}, roles=STAFF, tag="queue")
async def queues(request: web.Request) -> web.Response:
    await actor(request)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await queue.queues(
            uow, centre_id=optional_int(request, "centre_id"),
            department_id=optional_int(request, "department_id"),
        ))


@route("GET", "/api/dashboard", "大屏数据：各部门等候、在办、最长等候、预警、今日办结、平均等候与办理时长、评价",
       roles=("supervisor", "admin"), query={"centre_id": "integer"}, tag="supervision")
async def get_dashboard(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await dashboard.dashboard(uow, who, centre_id=optional_int(request, "centre_id")))


@route("GET", "/api/alerts", "等候超时提醒与红黄预警", roles=("supervisor", "admin"),
       query={"unacknowledged": "boolean", "limit": "integer"}, tag="supervision")
async def list_alerts(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit(write=False) as uow:
        found = await alerts.list_alerts(
            uow, who, unacknowledged=request.query.get("unacknowledged") in ("1", "true"),
            limit=optional_int(request, "limit") or 100,
        )
        return ok([alerts.alert_view(a) for a in found])


@route("POST", "/api/alerts/{alert_id}/acknowledge", "确认提醒", roles=("supervisor", "admin"), tag="supervision")
async def acknowledge(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        return ok(alerts.alert_view(await alerts.acknowledge(uow, who, int_param(request, "alert_id"))))


@route("POST", "/api/tidal-windows", "开启潮汐窗口（指派云窗口人员支援某部门）", body=OpenTidal,
       roles=("supervisor", "admin"), tag="supervision")
async def open_tidal(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, OpenTidal)
    async with request.app[DOMAIN].unit() as uow:
        window = await org.open_tidal_window(uow, who, **body.model_dump())
        return ok(window_view(window), status=201)


@route("POST", "/api/tidal-windows/{window_id}/close", "关闭潮汐窗口", roles=("supervisor", "admin"),
       tag="supervision")
async def close_tidal(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        return ok(window_view(await org.close_tidal_window(uow, who, int_param(request, "window_id"))))


@route("GET", "/api/audit", "审计日志查询（审计员）", roles=("auditor",),
       query={"action": "string", "actor_id": "integer", "target_type": "string", "target_id": "string",
              "since": "date-time", "until": "date-time", "limit": "integer"}, tag="admin")
async def get_audit(request: web.Request) -> web.Response:
    who = await actor(request)
    q = request.query
    try:
        since = datetime.fromisoformat(q["since"]) if q.get("since") else None
        until = datetime.fromisoformat(q["until"]) if q.get("until") else None
    except ValueError as exc:
        raise InvalidInput([{"field": "since/until", "problem": "ISO 8601 date-time"}]) from exc
    async with request.app[DOMAIN].unit() as uow:
        return ok(await audit.query(
            uow, who, action=q.get("action"), actor_id=optional_int(request, "actor_id"),
            target_type=q.get("target_type"), target_id=q.get("target_id"),
            since=since, until=until, limit=optional_int(request, "limit") or 100,
        ))
