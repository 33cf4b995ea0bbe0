"""The outbox of texts to residents' phones and to staff (administrators)."""

from __future__ import annotations

from aiohttp import web

from server.api.base import actor, int_param, ok, parse, query, route
from server.api.responses import Notification, Outbox
from server.api.schemas import NotificationQuery, NotificationTest
from server.domain import notify
from server.keys import DOMAIN


@route("GET", "/api/notifications", "消息外发记录（管理员）：新的在前，含各状态数量；before_id 向前翻页",
       roles=("admin",), query=NotificationQuery, tag="ops", response=Outbox)
async def list_notifications(request: web.Request) -> web.Response:
    who = await actor(request)
    q = query(request, NotificationQuery)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await notify.listing(uow, who, state=q.state, before_id=q.before_id, limit=q.limit or 100))


@route("POST", "/api/notifications/test", "发送一条测试消息，检查短信或工作通知通道（管理员）",
       roles=("admin",), body=NotificationTest, tag="ops", response=Notification)
async def test_notification(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, NotificationTest)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await notify.send_test(uow, who, body.channel, body.to), status=201)


@route("POST", "/api/notifications/{notification_id}/resend", "重新发送一条发送失败的消息（管理员）",
       roles=("admin",), tag="ops", response=Notification)
async def resend_notification(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await notify.send_again(uow, who, int_param(request, "notification_id")))
