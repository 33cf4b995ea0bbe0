"""一事联办: bundles, their merged checklists, serving a bundle case and the savings report."""

from __future__ import annotations

from aiohttp import web

from server.api.base import (
    CASE_PARTIES,
    OVERSIGHT,
    READERS,
    actor,
    int_param,
    ok,
    parse,
    query,
    route,
)
from server.api.responses import Bundle, BundleReport, CaseItem, Ticket
from server.api.schemas import BundleIn, BundleQuery, CompleteItems
from server.domain import bundle_cases, bundles, catalog, queue
from server.keys import DOMAIN


@route("GET", "/api/bundles", "一事联办：联办事项及合并后的材料清单（共用材料只交一次）、减少的材料与跑动次数",
       query=BundleQuery, roles=READERS, tag="catalog", response=list[Bundle])
async def list_bundles(request: web.Request) -> web.Response:
    who = await actor(request)
    q = query(request, BundleQuery)
    async with request.app[DOMAIN].unit(write=False) as uow:
        joints = await bundles.list_bundles(uow, include_inactive=catalog.sees_inactive(who, q.include_inactive))
        return ok([bundles.bundle_view(j) for j in joints])


@route("POST", "/api/bundles", "新建一事联办事项（管理员；按办理顺序列出至少两个事项）", body=BundleIn, roles=("admin",),
       tag="catalog", response=Bundle)
async def create_bundle(request: web.Request) -> web.Response:
    return await _save_bundle(request, None)


@route("PUT", "/api/bundles/{bundle_id}", "修改或停办一事联办事项（管理员；已取号的办件仍按取号时的事项办理）",
       body=BundleIn, roles=("admin",), tag="catalog", response=Bundle)
async def update_bundle(request: web.Request) -> web.Response:
    return await _save_bundle(request, int_param(request, "bundle_id"))


async def _save_bundle(request: web.Request, bundle_id: int | None) -> web.Response:
    who = await actor(request)
    body = await parse(request, BundleIn)
    async with request.app[DOMAIN].unit() as uow:
        joint = await bundles.save_bundle(uow, who, bundle_id=bundle_id, **body.model_dump())
        return ok(bundles.bundle_view(joint), status=201 if bundle_id is None else 200)


@route("GET", "/api/bundles/report", "一事联办报表：各联办事项的办件数、办结数及减少的材料、跑动次数（按监管范围）",
       roles=OVERSIGHT, tag="supervision", response=BundleReport)
async def report(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await bundles.report(uow, who))


@route("GET", "/api/bundles/{bundle_id}", "联办事项详情", roles=READERS, tag="catalog", response=Bundle)
async def get_bundle(request: web.Request) -> web.Response:
    await actor(request)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(bundles.bundle_view(await bundles.get_bundle(uow, int_param(request, "bundle_id"))))


@route("GET", "/api/tickets/{ticket_id}/items", "联办件的各事项：所属部门、办理状态、结果、经办人（非联办件为空）",
       roles=CASE_PARTIES, tag="queue", response=list[CaseItem])
async def case_items(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await bundle_cases.case_items(uow, who, int_param(request, "ticket_id")))


@route("POST", "/api/tickets/{ticket_id}/items/complete", "办结联办件中本窗口部门的事项（逐项给出结果）；"
       "其他部门尚有事项时转入下一个部门的队列（保留取号时间），全部办结时办结本件", body=CompleteItems,
       roles=("clerk",), tag="queue", response=Ticket)
async def complete_items(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, CompleteItems)
    async with request.app[DOMAIN].unit() as uow:
        ticket = await bundle_cases.complete_items(
            uow, who, int_param(request, "ticket_id"),
            [bundle_cases.ItemResult(i.item_id, i.result, i.note) for i in body.items])
        return ok(queue.view(who, ticket))
