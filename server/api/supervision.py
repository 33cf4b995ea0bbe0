"""Queues, the wall display, alerts, tidal windows and the audit log."""

from __future__ import annotations

import asyncio

from aiohttp import web

from server import preflight
from server.api.base import STAFF, actor, client_ip, int_param, ok, parse, query, route
from server.api.responses import (
    Alert,
    AlertByLink,
    AuditEntry,
    AuditVerdict,
    CloudWindow,
    Dashboard,
    Health,
    LinkWall,
    Queue,
)
from server.api.schemas import (
    AlertQuery,
    AuditQuery,
    AuditVerifyQuery,
    CentreQuery,
    OpenTidal,
    QueueQuery,
)
from server.domain import alerts, audit, dashboard, links, org, queue
from server.domain.views import window_view
from server.keys import DB, DOMAIN, SETTINGS, STORE


@route("GET", "/api/health", "健康检查：数据库、Redis（如已配置）、对象存储各自是否可用；有一项不可用时返回 503",
       auth=False, tag="ops", response=Health)
async def health(request: web.Request) -> web.Response:
    """Each dependency "ok" or "unavailable" (no more: this answer is public); 503 while one is down,
    so a load balancer takes the node out and a compose health check shows which one failed."""
    settings = request.app[SETTINGS]
    states: dict[str, str] = {}
    try:
        await asyncio.wait_for(request.app[DB].ping(), preflight.TIMEOUT_S)
        states["database"] = "ok"
    except Exception:
        states["database"] = "unavailable"
    if settings.redis_url:
        states["redis"] = "ok" if await preflight.check_redis(settings.redis_url) is None else "unavailable"
    store = request.app[STORE]
    states["storage"] = "ok" if await preflight.check_store(store, "") is None else "unavailable"
    up = all(state == "ok" for state in states.values())
    body = {"status": "ok" if up else "unavailable", "database": request.app[DB].dialect, "dependencies": states}
    return ok(body, status=200 if up else 503)


@route("GET", "/api/queues", "各部门云窗口队列：等候人数、最长等候、预警级别",
       query=QueueQuery, roles=STAFF, tag="queue", response=list[Queue])
async def queues(request: web.Request) -> web.Response:
    await actor(request)
    q = query(request, QueueQuery)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await queue.queues(uow, centre_id=q.centre_id, department_id=q.department_id))


@route("GET", "/api/dashboard", "大屏数据：各部门等候、在办、最长等候、预警、今日办结、平均等候与办理时长、评价",
       roles=("supervisor", "admin"), query=CentreQuery, tag="supervision", response=Dashboard)
async def get_dashboard(request: web.Request) -> web.Response:
    who = await actor(request)
    centre_id = query(request, CentreQuery).centre_id
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await dashboard.dashboard(uow, who, centre_id=centre_id))


@route("GET", "/api/dashboard/links", "大屏：网络较差的通话（进行中）与各延伸点今日网络较差的通话数",
       roles=("supervisor", "admin"), query=CentreQuery, tag="supervision", response=LinkWall)
async def get_link_wall(request: web.Request) -> web.Response:
    who = await actor(request)
    centre_id = query(request, CentreQuery).centre_id
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await links.link_wall(uow, who, centre_id=centre_id))


@route("GET", "/api/alerts", "等候超时提醒与红黄预警", roles=("supervisor", "admin"),
       query=AlertQuery, tag="supervision", response=list[Alert])
async def list_alerts(request: web.Request) -> web.Response:
    who = await actor(request)
    q = query(request, AlertQuery)
    async with request.app[DOMAIN].unit(write=False) as uow:
        found = await alerts.list_alerts(uow, who, unacknowledged=q.unacknowledged, limit=q.limit or 100)
        return ok([alerts.alert_view(a) for a in found])


@route("POST", "/api/alerts/{alert_id}/acknowledge", "确认提醒", roles=("supervisor", "admin"), tag="supervision",
       response=Alert)
async def acknowledge(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        return ok(alerts.alert_view(await alerts.acknowledge(uow, who, int_param(request, "alert_id"))))


@route("GET", "/api/alert-links/{token}", "推送给负责人的提醒链接：提醒内容及是否已确认（无需登录；24 小时内有效）",
       auth=False, tag="supervision", response=AlertByLink)
async def read_alert_link(request: web.Request) -> web.Response:
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await alerts.read_by_link(uow, request.match_info["token"][:200]))


@route("POST", "/api/alert-links/{token}/acknowledge", "从推送链接确认收到提醒（无需登录，记为链接所发给的负责人确认）",
       auth=False, tag="supervision", response=AlertByLink)
async def acknowledge_alert_link(request: web.Request) -> web.Response:
    async with request.app[DOMAIN].unit() as uow:
        return ok(await alerts.acknowledge_by_link(uow, request.match_info["token"][:200], client_ip(request)))


@route("POST", "/api/tidal-windows", "开启潮汐窗口（指派云窗口人员支援某部门）", body=OpenTidal,
       roles=("supervisor", "admin"), tag="supervision", response=CloudWindow)
async def open_tidal(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, OpenTidal)
    async with request.app[DOMAIN].unit() as uow:
        window = await org.open_tidal_window(uow, who, **body.model_dump())
        return ok(window_view(window), status=201)


@route("POST", "/api/tidal-windows/{window_id}/close", "关闭潮汐窗口", roles=("supervisor", "admin"),
       tag="supervision", response=CloudWindow)
async def close_tidal(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        return ok(window_view(await org.close_tidal_window(uow, who, int_param(request, "window_id"))))


@route("GET", "/api/audit", "审计日志查询（审计员）：新的在前，before_id 向前翻页", roles=("auditor",),
       query=AuditQuery, tag="audit", response=list[AuditEntry])
async def get_audit(request: web.Request) -> web.Response:
    who = await actor(request)
    q = query(request, AuditQuery)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await audit.query(
            uow, who, action=q.action, actor_id=q.actor_id, actor_name=q.actor, target_type=q.target_type,
            target_id=q.target_id, since=q.since, until=q.until, before_id=q.before_id, limit=q.limit or 100,
        ))


@route("GET", "/api/audit/verify", "校验审计日志完整性（哈希链）；anchor=序号:哈希 核对外部保存的链头",
       roles=("auditor",), query=AuditVerifyQuery, tag="audit", response=AuditVerdict)
async def verify_audit(request: web.Request) -> web.Response:
    who = await actor(request)
    query(request, AuditVerifyQuery)
    anchors = dict(audit.parse_anchor(raw) for raw in request.query.getall("anchor", []))
    return ok((await request.app[DOMAIN].verify_audit(who, anchors)).view())
