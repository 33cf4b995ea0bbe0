"""Tickets: take, read, list, the clerk's actions and the resident's rating."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from server import logs, models
from server.api.base import CASE_PARTIES, TICKET_READERS, actor, int_param, ok, parse, query, route
from server.api.responses import Message, PlacedTicket, ResidentDetails, Ticket, TicketDetail
from server.api.schemas import (
    Cancel,
    Complete,
    Rating,
    SituationChoice,
    TakeTicket,
    TicketQuery,
    Transfer,
)
from server.domain import calls, queue
from server.keys import DOMAIN


@route("POST", "/api/tickets", "取号：社区工作人员为群众取号，或群众/企业在自己的手机上为自己取号（屏对屏，"
       "source=direct；镇级事项须给 centre_id；同一时间只能有一个未办结的号；一事联办给 bundle_id 代替 item_id）：返回号码、位置与预计等候", body=TakeTicket,
       roles=("worker", "resident"), tag="tickets", response=PlacedTicket)
async def take(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, TakeTicket)
    async with request.app[DOMAIN].unit() as uow:
        ticket, placement = await queue.take_ticket(
            uow, who, item_id=body.item_id, bundle_id=body.bundle_id, resident=body.resident.model_dump(exclude_none=True),
            priority=body.priority, centre_id=body.centre_id, situation_id=body.situation_id,
        )
        logs.bind(ticket_id=ticket.id)  # the new ticket, on this request's access line
        return ok(queue.view(who, ticket, **placement.as_dict()), status=201)


@route("GET", "/api/tickets/{ticket_id}", "查看号（含当前位置与预计等候；身份证号、手机号脱敏）",
       roles=TICKET_READERS, tag="tickets", response=TicketDetail)
async def read(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        ticket, extra = await queue.get_ticket(uow, who, int_param(request, "ticket_id"))
        return ok(queue.view(who, ticket, **extra))


@route("GET", "/api/tickets/{ticket_id}/resident", "办事群众完整信息（仅本件社区工作人员与云窗口工作人员；每次查看记入审计）",
       roles=("worker", "clerk"), tag="tickets", response=ResidentDetails)
async def resident(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await queue.resident_details(uow, who, int_param(request, "ticket_id")))


@route("GET", "/api/tickets", "号列表（按角色限定范围；个人信息脱敏）",
       query=TicketQuery, roles=TICKET_READERS, tag="tickets", response=list[Ticket])
async def list_(request: web.Request) -> web.Response:
    who = await actor(request)
    q = query(request, TicketQuery)
    async with request.app[DOMAIN].unit() as uow:
        tickets = await queue.list_tickets(uow, who, status=q.status, department_id=q.department_id,
                                           limit=q.limit or 200)
        return ok([queue.view(who, t) for t in tickets])


@route("POST", "/api/windows/{window_id}/call-next", "叫号：返回被叫的号；无人等候时 204",
       roles=("clerk",), tag="queue", response=Ticket, no_content="无人等候")
async def call_next(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        ticket = await queue.call_next(uow, who, int_param(request, "window_id"))
        if ticket is None:
            return web.Response(status=204)
        logs.bind(ticket_id=ticket.id)
        return ok(queue.view(who, ticket))


async def _act(request: web.Request, action: Callable[..., Awaitable[models.Ticket]], **kwargs: object) -> web.Response:
    """One of the queue's steps on the ticket in the path, answered with the ticket as the actor sees it."""
    who = await actor(request)
    ticket_id = int_param(request, "ticket_id")
    async with request.app[DOMAIN].unit() as uow:
        ticket = await action(uow, who, ticket_id, **kwargs)
        return ok(queue.view(who, ticket))


@route("POST", "/api/tickets/{ticket_id}/start", "开始办理（已叫号 → 办理中）", roles=("clerk",), tag="queue", response=Ticket)
async def start(request: web.Request) -> web.Response:
    return await _act(request, queue.start_service)


@route("POST", "/api/tickets/{ticket_id}/recall", "重呼", roles=("clerk",), tag="queue", response=Ticket)
async def recall(request: web.Request) -> web.Response:
    return await _act(request, queue.recall)


@route("POST", "/api/tickets/{ticket_id}/no-show", "过号（须先重呼规定次数）", roles=("clerk",), tag="queue", response=Ticket)
async def no_show(request: web.Request) -> web.Response:
    return await _act(request, queue.no_show)


@route("POST", "/api/tickets/{ticket_id}/transfer", "转办到其他部门（保留原取号时间）", body=Transfer,
       roles=("clerk",), tag="queue", response=Ticket)
async def transfer(request: web.Request) -> web.Response:
    body = await parse(request, Transfer)
    return await _act(request, queue.transfer, **body.model_dump())


@route("POST", "/api/tickets/{ticket_id}/complete", "办结", body=Complete, roles=("clerk",), tag="queue", response=Ticket)
async def complete(request: web.Request) -> web.Response:
    body = await parse(request, Complete)
    return await _act(request, queue.complete, **body.model_dump())


@route("POST", "/api/tickets/{ticket_id}/cancel", "取消（社区工作人员或群众本人取消等候中的号；云窗口取消在办的号）",
       body=Cancel, roles=("worker", "clerk", "resident"), tag="queue", response=Ticket)
async def cancel(request: web.Request) -> web.Response:
    body = await parse(request, Cancel)
    return await _act(request, queue.cancel, **body.model_dump())


@route("POST", "/api/tickets/{ticket_id}/rating", "好差评（1–5 分，办结后一次）", body=Rating,
       roles=("worker", "resident"), tag="tickets", response=Ticket)
async def rating(request: web.Request) -> web.Response:
    body = await parse(request, Rating)
    return await _act(request, queue.rate, **body.model_dump())


@route("PUT", "/api/tickets/{ticket_id}/situation",
       "选定或更正办件的办理情形（办件的社区工作人员、云窗口；已按清单上传材料后不能更改）",
       body=SituationChoice, roles=("worker", "clerk"), tag="tickets", response=Ticket)
async def situation(request: web.Request) -> web.Response:
    body = await parse(request, SituationChoice)
    return await _act(request, queue.set_situation, situation_id=body.situation_id)


@route("GET", "/api/tickets/{ticket_id}/messages", "通话内文字消息（存于办件）", roles=CASE_PARTIES, tag="call",
       response=list[Message])
async def messages(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await calls.messages(uow, who, int_param(request, "ticket_id")))
