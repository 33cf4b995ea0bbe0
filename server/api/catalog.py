"""Organisation and the service-item catalogue."""

from __future__ import annotations

from aiohttp import web

from server.api.base import READERS, actor, int_param, ok, parse, query, route
from server.api.responses import CloudWindow, Org, ServiceItem, Situation
from server.api.schemas import ItemIn, ItemQuery, QuestionsIn, ResolveIn, SituationIn, WindowIn
from server.domain import catalog, org, situations
from server.domain.views import item_view, situation_view, window_view
from server.keys import DOMAIN
from server.models import CentreLevel


@route("GET", "/api/org", "组织架构：区级云办中心 → 镇街便民中心 → 延伸点；部门；云窗口", roles=READERS, tag="org", response=Org)
async def get_org(request: web.Request) -> web.Response:
    await actor(request)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await org.org_tree(uow))


@route("GET", "/api/items", "事项及一次性告知材料清单（q 支持名称或拼音首字母）",
       query=ItemQuery, roles=READERS, tag="catalog", response=list[ServiceItem])
async def list_items(request: web.Request) -> web.Response:
    who = await actor(request)
    q = query(request, ItemQuery)
    everything = catalog.sees_inactive(who, q.include_inactive)
    async with request.app[DOMAIN].unit(write=False) as uow:
        items = await catalog.list_items(uow, q=q.q, department_id=q.department_id, level=q.level,
                                         include_inactive=everything)
        return ok([item_view(i, inactive_situations=everything) for i in items])


@route("GET", "/api/items/{item_id}", "事项详情（含已停用的情形，供查看办件所记的情形）", roles=READERS, tag="catalog",
       response=ServiceItem)
async def get_item(request: web.Request) -> web.Response:
    await actor(request)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(item_view(await catalog.get_item(uow, int_param(request, "item_id")), inactive_situations=True))


@route("POST", "/api/items", "新建事项（管理员）", body=ItemIn, roles=("admin",), tag="catalog", response=ServiceItem)
async def create_item(request: web.Request) -> web.Response:
    return await _save_item(request, None)


@route("PUT", "/api/items/{item_id}", "修改事项及材料清单（管理员）", body=ItemIn, roles=("admin",), tag="catalog",
       response=ServiceItem)
async def update_item(request: web.Request) -> web.Response:
    return await _save_item(request, int_param(request, "item_id"))


async def _save_item(request: web.Request, item_id: int | None) -> web.Response:
    who = await actor(request)
    body = await parse(request, ItemIn)
    async with request.app[DOMAIN].unit() as uow:
        item = await catalog.save_item(
            uow, who, item_id=item_id, **{**body.model_dump(), "level": CentreLevel(body.level)}
        )
        return ok(item_view(item, inactive_situations=True), status=201 if item_id is None else 200)


@route("POST", "/api/items/{item_id}/resolve", "办理情形：由问题的回答找出唯一对应的情形（没有则 422 situation_not_found）",
       body=ResolveIn, roles=READERS, tag="catalog", response=Situation)
async def resolve_situation(request: web.Request) -> web.Response:
    await actor(request)
    body = await parse(request, ResolveIn)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(situation_view(await situations.resolve(uow, int_param(request, "item_id"), body.answers)))


@route("PUT", "/api/items/{item_id}/questions", "修改事项的情形问题（管理员；情形仍在用的问题或选项不能删）",
       body=QuestionsIn, roles=("admin",), tag="catalog", response=ServiceItem)
async def save_questions(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, QuestionsIn)
    async with request.app[DOMAIN].unit() as uow:
        item = await situations.save_questions(uow, who, int_param(request, "item_id"),
                                               [q.model_dump() for q in body.questions])
        return ok(item_view(item, inactive_situations=True))


@route("POST", "/api/items/{item_id}/situations", "新建办理情形（管理员）", body=SituationIn, roles=("admin",),
       tag="catalog", response=Situation)
async def create_situation(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, SituationIn)
    async with request.app[DOMAIN].unit() as uow:
        found = await situations.save_situation(uow, who, item_id=int_param(request, "item_id"), **body.model_dump())
        return ok(situation_view(found), status=201)


@route("PUT", "/api/situations/{situation_id}", "修改或停用办理情形（管理员）", body=SituationIn, roles=("admin",),
       tag="catalog", response=Situation)
async def update_situation(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, SituationIn)
    async with request.app[DOMAIN].unit() as uow:
        found = await situations.save_situation(uow, who, situation_id=int_param(request, "situation_id"),
                                                **body.model_dump())
        return ok(situation_view(found))


@route("POST", "/api/windows", "新建云窗口（管理员）", body=WindowIn, roles=("admin",), tag="org", response=CloudWindow)
async def create_window(request: web.Request) -> web.Response:
    return await _save_window(request, None)


@route("PUT", "/api/windows/{window_id}", "修改云窗口（管理员）", body=WindowIn, roles=("admin",), tag="org",
       response=CloudWindow)
async def update_window(request: web.Request) -> web.Response:
    return await _save_window(request, int_param(request, "window_id"))


async def _save_window(request: web.Request, window_id: int | None) -> web.Response:
    who = await actor(request)
    body = await parse(request, WindowIn)
    async with request.app[DOMAIN].unit() as uow:
        window = await org.save_window(uow, who, window_id=window_id, **body.model_dump())
        return ok(window_view(window), status=201 if window_id is None else 200)
