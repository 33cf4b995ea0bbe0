"""督办台账: follow-up items raised from cases, extension points, supervisors and bad ratings."""

from __future__ import annotations

from aiohttp import web

from server.api.base import actor, int_param, ok, parse, query, route
from server.api.responses import LedgerItem, LedgerSummary
from server.api.schemas import LedgerAnswerIn, LedgerCloseIn, LedgerIn, LedgerQuery, LedgerVisitIn
from server.domain import ledger
from server.keys import DOMAIN

READ = ("worker", "clerk", "supervisor", "admin", "auditor")


@route("GET", "/api/ledger", "督办台账：本人可见的督办事项（按时限排序；可按状态、部门、来源、是否超期筛选）",
       query=LedgerQuery, roles=READ, tag="ledger", response=list[LedgerItem])
async def listing(request: web.Request) -> web.Response:
    who = await actor(request)
    q = query(request, LedgerQuery)
    async with request.app[DOMAIN].unit(write=False) as uow:
        items = await ledger.listing(uow, who, state=q.state, department_id=q.department_id, source=q.source,
                                     overdue=q.overdue)
        now = uow.clock.now()
        return ok([ledger.view(i, now) for i in items])


@route("GET", "/api/ledger/summary", "督办台账汇总：各部门各状态件数、超期件数、最久未结时长；差评整改及时率",
       roles=("supervisor", "admin", "auditor"), tag="ledger", response=LedgerSummary)
async def summary(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await ledger.summary(uow, who))


@route("POST", "/api/ledger", "登记督办事项：来自办件（材料不全、不符合条件、办不成事、群众投诉）、延伸点（无权限、不会办、答不上）或监管交办",
       body=LedgerIn, roles=("worker", "clerk", "supervisor"), tag="ledger", response=LedgerItem)
async def raise_item(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, LedgerIn)
    async with request.app[DOMAIN].unit() as uow:
        item = await ledger.raise_item(uow, who, ledger.Raised(**body.model_dump()))
        return ok(ledger.view(item, uow.clock.now()), status=201)


@route("GET", "/api/ledger/{ledger_id}", "督办事项详情及全部处理记录", roles=READ, tag="ledger", response=LedgerItem)
async def one(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit(write=False) as uow:
        item = await ledger.get(uow, who, int_param(request, "ledger_id"))
        return ok(ledger.view(item, uow.clock.now(), history=await ledger.steps(uow, item.id)))


@route("POST", "/api/ledger/{ledger_id}/claim", "认领督办事项（本部门云窗口或其监管人员）",
       roles=("clerk", "supervisor"), tag="ledger", response=LedgerItem)
async def claim(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        item = await ledger.claim(uow, who, int_param(request, "ledger_id"))
        return ok(ledger.view(item, uow.clock.now(), history=await ledger.steps(uow, item.id)))


@route("POST", "/api/ledger/{ledger_id}/answer", "答复督办事项：给群众的答复及采取的措施（认领人）",
       body=LedgerAnswerIn, roles=("clerk", "supervisor"), tag="ledger", response=LedgerItem)
async def answer(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, LedgerAnswerIn)
    async with request.app[DOMAIN].unit() as uow:
        item = await ledger.answer(uow, who, int_param(request, "ledger_id"), text=body.answer,
                                   action_taken=body.action_taken)
        return ok(ledger.view(item, uow.clock.now(), history=await ledger.steps(uow, item.id)))


@route("POST", "/api/ledger/{ledger_id}/visit", "回访：记录群众（电话）评价；不满意则重新交办",
       body=LedgerVisitIn, roles=("supervisor",), tag="ledger", response=LedgerItem)
async def visit(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, LedgerVisitIn)
    async with request.app[DOMAIN].unit() as uow:
        item = await ledger.visit(uow, who, int_param(request, "ledger_id"), verdict=body.verdict, note=body.note)
        return ok(ledger.view(item, uow.clock.now(), history=await ledger.steps(uow, item.id)))


@route("POST", "/api/ledger/{ledger_id}/close", "办结督办事项（回访满意后，监管人员）",
       body=LedgerCloseIn, roles=("supervisor",), tag="ledger", response=LedgerItem)
async def close(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, LedgerCloseIn)
    async with request.app[DOMAIN].unit() as uow:
        item = await ledger.close(uow, who, int_param(request, "ledger_id"), note=body.note)
        return ok(ledger.view(item, uow.clock.now(), history=await ledger.steps(uow, item.id)))
